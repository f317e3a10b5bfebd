//! Shard lineage and the split of shards between workers. Pure: no I/O.

use std::collections::{HashMap, HashSet};

/// What the forwarder knows of a shard from ListShards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    pub id: String,
    /// `ParentShardId` and `AdjacentParentShardId` (after a merge), when present.
    pub parents: Vec<String>,
}

/// Whether worker `index` of `workers` reads `shard_id`.
///
/// The assignment is a hash of the shard id (FNV-1a, 64 bit), so it does not change when
/// shards are added, and every worker computes the same answer.
pub fn assigned(shard_id: &str, workers: u32, index: u32) -> bool {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in shard_id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    workers <= 1 || h % u64::from(workers) == u64::from(index)
}

/// Whether `shard` may be read now: every parent is finished (its SHARD_END is checkpointed,
/// by any worker) or no longer listed (it aged out of the stream's retention).
pub fn parents_done(
    shard: &Shard,
    listed: &HashMap<String, Shard>,
    ended: &HashSet<String>,
) -> bool {
    shard
        .parents
        .iter()
        .all(|p| ended.contains(p) || !listed.contains_key(p))
}

/// Shards assigned to worker `index` of `workers` that are neither finished nor `busy`
/// (being read, or done for this run): what is left to do.
pub fn pending<'a>(
    listed: &'a HashMap<String, Shard>,
    ended: &'a HashSet<String>,
    busy: &'a HashSet<String>,
    workers: u32,
    index: u32,
) -> impl Iterator<Item = &'a Shard> + 'a {
    listed.values().filter(move |s| {
        assigned(&s.id, workers, index) && !ended.contains(&s.id) && !busy.contains(&s.id)
    })
}

/// The [`pending`] shards whose parents are done: what to start now. Sorted by id, so
/// parents (older ids) come first.
pub fn ready<'a>(
    listed: &'a HashMap<String, Shard>,
    ended: &'a HashSet<String>,
    busy: &'a HashSet<String>,
    workers: u32,
    index: u32,
) -> Vec<&'a Shard> {
    let mut out: Vec<&Shard> = pending(listed, ended, busy, workers, index)
        .filter(|s| parents_done(s, listed, ended))
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(id: &str, parents: &[&str]) -> Shard {
        Shard {
            id: id.into(),
            parents: parents.iter().map(|p| p.to_string()).collect(),
        }
    }

    fn listing(shards: &[Shard]) -> HashMap<String, Shard> {
        shards.iter().map(|s| (s.id.clone(), s.clone())).collect()
    }

    #[test]
    fn children_wait_for_every_parent() {
        // 0 and 1 merged into 3; 2 split from nothing.
        let l = listing(&[
            shard("s0", &[]),
            shard("s1", &[]),
            shard("s2", &[]),
            shard("s3", &["s0", "s1"]),
        ]);
        let none = HashSet::new();
        let ids = |v: Vec<&Shard>| v.iter().map(|s| s.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(ready(&l, &none, &none, 1, 0)), ["s0", "s1", "s2"]);
        let ended: HashSet<String> = ["s0".to_string()].into();
        assert_eq!(ids(ready(&l, &ended, &none, 1, 0)), ["s1", "s2"]);
        let ended: HashSet<String> = ["s0".to_string(), "s1".to_string()].into();
        let busy: HashSet<String> = ["s2".to_string()].into();
        assert_eq!(ids(ready(&l, &ended, &busy, 1, 0)), ["s3"]);
    }

    #[test]
    fn a_parent_gone_from_the_listing_does_not_block() {
        let l = listing(&[shard("s5", &["s1"])]);
        assert!(parents_done(&l["s5"], &l, &HashSet::new()));
    }

    #[test]
    fn every_shard_has_exactly_one_worker() {
        for n in 1..6u32 {
            for i in 0..200 {
                let id = format!("shardId-{i:012}");
                let owners = (0..n).filter(|&w| assigned(&id, n, w)).count();
                assert_eq!(owners, 1, "{id} with {n} workers");
            }
        }
        // Both workers get some of 8 shards.
        let w0 = (0..8)
            .filter(|i| assigned(&format!("shardId-{i:012}"), 2, 0))
            .count();
        assert!(w0 > 0 && w0 < 8, "{w0}");
    }
}
