//! The open batch: records from any number of shards, cut by rows, bytes and time. Pure.

use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use super::config::BatchLimits;

/// One Kinesis record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub sequence_number: String,
    pub data: Vec<u8>,
}

/// What a shard reader hands over: the records of one GetRecords call, in order, and whether
/// the shard ended with them.
#[derive(Debug)]
pub struct Chunk {
    pub shard_id: Arc<str>,
    pub records: Vec<Record>,
    /// The shard is closed and this chunk holds its last records (SHARD_END).
    pub shard_end: bool,
}

impl Chunk {
    pub fn bytes(&self) -> usize {
        self.records.iter().map(|r| r.data.len()).sum()
    }
}

/// What a batch holds of one shard: the checkpoint to write once the batch is inserted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardProgress {
    pub shard_id: Arc<str>,
    pub first_sequence: Option<String>,
    /// The last record of this shard in the batch; `None` for a bare SHARD_END.
    pub last_sequence: Option<String>,
    pub records: usize,
    pub shard_end: bool,
}

/// The open batch. Record bytes live in one reusable buffer.
#[derive(Debug, Default)]
pub struct Batch {
    data: Vec<u8>,
    spans: Vec<Range<usize>>,
    shards: Vec<ShardProgress>,
    opened: Option<Instant>,
}

impl Batch {
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Adds a chunk. Records of one shard must arrive in order.
    pub fn push(&mut self, chunk: Chunk, now: Instant) {
        self.opened.get_or_insert(now);
        let pos = match self
            .shards
            .iter()
            .position(|s| s.shard_id == chunk.shard_id)
        {
            Some(p) => p,
            None => {
                self.shards.push(ShardProgress {
                    shard_id: chunk.shard_id.clone(),
                    first_sequence: None,
                    last_sequence: None,
                    records: 0,
                    shard_end: false,
                });
                self.shards.len() - 1
            }
        };
        let progress = &mut self.shards[pos];
        for r in chunk.records {
            let start = self.data.len();
            self.data.extend_from_slice(&r.data);
            self.spans.push(start..self.data.len());
            if progress.first_sequence.is_none() {
                progress.first_sequence = Some(r.sequence_number.clone());
            }
            progress.last_sequence = Some(r.sequence_number);
            progress.records += 1;
        }
        progress.shard_end |= chunk.shard_end;
    }

    pub fn rows(&self) -> usize {
        self.spans.len()
    }

    pub fn bytes(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.shards.is_empty()
    }

    /// Record `i`'s data.
    pub fn record(&self, i: usize) -> &[u8] {
        &self.data[self.spans[i].clone()]
    }

    /// Per shard: what the batch holds, and so the checkpoint to write after it.
    pub fn progress(&self) -> &[ShardProgress] {
        &self.shards
    }

    /// Send now: a limit is reached, or a shard ended (its children wait for the checkpoint).
    pub fn is_full(&self, limits: &BatchLimits) -> bool {
        self.rows() >= limits.max_rows
            || self.bytes() >= limits.max_bytes
            || self.shards.iter().any(|s| s.shard_end)
    }

    /// When the batch must be sent at the latest.
    pub fn deadline(&self, limits: &BatchLimits) -> Option<Instant> {
        self.opened.map(|t| t + limits.linger)
    }

    /// The insert deduplication token: the same for the same records (shard, first and last
    /// sequence number, count), in every run and every build, so a retried insert that
    /// reached the server is dropped. SHA-256 of that text, 128 bits in hex.
    pub fn token(&self) -> String {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        for s in &self.shards {
            for part in [
                &*s.shard_id,
                s.first_sequence.as_deref().unwrap_or(""),
                s.last_sequence.as_deref().unwrap_or(""),
            ] {
                h.update(part.as_bytes());
                h.update([0]);
            }
            h.update(u64::try_from(s.records).unwrap_or(u64::MAX).to_le_bytes());
        }
        let digest = h.finalize();
        let mut token = String::with_capacity(48);
        token.push_str("kf-");
        for b in &digest[..16] {
            token.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
            token.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
        }
        token.push('-');
        token.push_str(&self.rows().to_string());
        token
    }

    /// Empties the batch and keeps its buffers.
    pub fn clear(&mut self) {
        self.data.clear();
        self.spans.clear();
        self.shards.clear();
        self.opened = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn chunk(shard: &str, seqs: &[u32], end: bool) -> Chunk {
        Chunk {
            shard_id: shard.into(),
            records: seqs
                .iter()
                .map(|s| Record {
                    sequence_number: format!("{s:05}"),
                    data: format!("{{\"n\":{s}}}").into_bytes(),
                })
                .collect(),
            shard_end: end,
        }
    }

    const LIMITS: BatchLimits = BatchLimits {
        max_rows: 5,
        max_bytes: 1000,
        linger: Duration::from_secs(1),
    };

    #[test]
    fn tracks_each_shards_range_and_cuts_by_rows() {
        let t = Instant::now();
        let mut b = Batch::new();
        assert!(b.deadline(&LIMITS).is_none());
        b.push(chunk("a", &[1, 2], false), t);
        b.push(chunk("b", &[7], false), t + Duration::from_millis(300));
        b.push(chunk("a", &[3], false), t);
        assert!(!b.is_full(&LIMITS));
        assert_eq!(b.deadline(&LIMITS), Some(t + Duration::from_secs(1)));
        assert_eq!(b.rows(), 4);
        assert_eq!(b.record(3), br#"{"n":3}"#);
        let a = &b.progress()[0];
        assert_eq!(
            (
                a.first_sequence.as_deref(),
                a.last_sequence.as_deref(),
                a.records
            ),
            (Some("00001"), Some("00003"), 3)
        );
        b.push(chunk("b", &[8], false), t);
        assert!(b.is_full(&LIMITS));
        let token = b.token();
        assert_eq!(token, b.token());
        b.clear();
        assert!(b.is_empty() && b.rows() == 0 && b.bytes() == 0);
        b.push(chunk("a", &[1, 2], false), t);
        assert_ne!(token, b.token());
        // Stable across runs and builds: a known value.
        assert_eq!(b.token(), STABLE_TOKEN);
    }

    /// The token of shard "a" holding records 00001 and 00002.
    const STABLE_TOKEN: &str = "kf-3260eefb454c421e05d0e945d82f85f5-2";

    #[test]
    fn a_bare_shard_end_is_sent_at_once() {
        let mut b = Batch::new();
        b.push(chunk("a", &[], true), Instant::now());
        assert_eq!(b.rows(), 0);
        assert!(!b.is_empty());
        assert!(b.is_full(&LIMITS));
        assert_eq!(b.progress()[0].last_sequence, None);
    }

    #[test]
    fn cuts_by_bytes() {
        let mut b = Batch::new();
        let limits = BatchLimits {
            max_bytes: 14,
            ..LIMITS
        };
        b.push(chunk("a", &[1], false), Instant::now());
        assert!(!b.is_full(&limits));
        b.push(chunk("a", &[2], false), Instant::now());
        assert!(b.is_full(&limits));
    }
}
