//! Shard scheduling: which shards this worker reads, when (a child after its parents are
//! finished), from where (its checkpoint, or the configured start), and discovery of new
//! shards after a split or merge.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::checkpoint::{Checkpoint, CheckpointStore};
use super::config::{Config, ExpiredCheckpoint, StartPosition};
use super::reader::{Handover, ReaderExit, ShardReader};
use super::shards::{self, Shard};
use super::source::{Position, Source, SourceError};
use super::stats::Stats;
use super::Error;

type Readers = JoinSet<(Arc<str>, Result<ReaderExit, SourceError>)>;

pub(crate) struct Coordinator<'a> {
    pub cfg: &'a Config,
    pub source: Arc<Source>,
    pub store: CheckpointStore,
    pub stats: Arc<Stats>,
    pub listed: HashMap<String, Shard>,
    /// Shards whose SHARD_END is checkpointed (by any worker).
    pub ended: HashSet<String>,
    /// Checkpoints as loaded at start.
    pub checkpoints: HashMap<String, Checkpoint>,
    pub tx: mpsc::Sender<Handover>,
    pub budget: Arc<Semaphore>,
    pub readers: CancellationToken,
    /// `--once`: when reading began; readers end at the records written after it.
    pub once: Option<SystemTime>,
}

impl Coordinator<'_> {
    /// Returns the number of shards that ended during the run.
    pub(crate) async fn run(
        mut self,
        shutdown: &CancellationToken,
        mut ended_rx: mpsc::UnboundedReceiver<String>,
    ) -> Result<usize, Error> {
        let mut running: Readers = JoinSet::new();
        // Read or being read in this run; not started again.
        let mut busy: HashSet<String> = HashSet::new();
        // Readers that reached SHARD_END, whose checkpoint is not written yet.
        let mut ending: HashSet<String> = HashSet::new();
        let mut ended_now = 0usize;
        let mut discovery = tokio::time::interval(self.cfg.discovery_interval);
        discovery.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        discovery.tick().await;
        let mut outcome = Ok(());
        loop {
            let blocked: HashSet<String> = busy.union(&ending).cloned().collect();
            let ready: Vec<Shard> = shards::ready(
                &self.listed,
                &self.ended,
                &blocked,
                self.cfg.workers,
                self.cfg.worker_index,
            )
            .into_iter()
            .cloned()
            .collect();
            for shard in ready {
                let position = self.position(&shard);
                info!(shard = %shard.id, ?position, "reading shard");
                busy.insert(shard.id.clone());
                self.spawn(&mut running, shard.id.as_str().into(), position);
            }
            self.stats.shards(running.len());
            if self.cfg.once && running.is_empty() && ending.is_empty() {
                let blocked: HashSet<String> = busy.union(&ending).cloned().collect();
                let left = shards::pending(
                    &self.listed,
                    &self.ended,
                    &blocked,
                    self.cfg.workers,
                    self.cfg.worker_index,
                )
                .count();
                if left == 0 {
                    info!("--once: every shard is read to its current end");
                    break;
                }
                debug!(
                    left,
                    "--once: waiting for parent shards read by other workers"
                );
            }
            tokio::select! {
                _ = shutdown.cancelled() => {
                    info!("shutting down: reading stops, the open batch is sent");
                    break;
                }
                Some(joined) = running.join_next() => {
                    let (shard, exit) = match joined {
                        Ok(v) => v,
                        Err(e) => {
                            outcome = Err(Error::Task { what: "a shard reader failed", source: Box::new(e) });
                            break;
                        }
                    };
                    self.stats.shard_done(&shard);
                    match exit {
                        Ok(ReaderExit::ShardEnd) => {
                            if !self.ended.contains(&*shard) {
                                ending.insert(shard.to_string());
                            }
                        }
                        Ok(ReaderExit::CaughtUp) => debug!(shard = %shard, "caught up"),
                        Ok(ReaderExit::Cancelled) => {}
                        Ok(ReaderExit::CheckpointRefused(m)) => {
                            let msg = format!("{} refused the checkpoint of shard {shard}: {m}", self.source.service());
                            match self.cfg.expired_checkpoint {
                                ExpiredCheckpoint::Fail => {
                                    outcome = Err(Error::CheckpointExpired(format!(
                                        "{msg}. Pass --on-expired-checkpoint trim-horizon to go on from the oldest record held, \
                                         and fill the gap with an incremental export (sql/12_incremental_export.sql)")));
                                    break;
                                }
                                ExpiredCheckpoint::TrimHorizon => {
                                    warn!("{msg}; reading from the oldest record held, as asked");
                                    self.spawn(&mut running, shard, Position::Start(StartPosition::TrimHorizon));
                                }
                            }
                        }
                        Err(e) => {
                            outcome = Err(Error::Stream { what: format!("shard {shard}"), source: Box::new(e) });
                            break;
                        }
                    }
                }
                Some(id) = ended_rx.recv() => {
                    info!(shard = %id, "shard finished (SHARD_END checkpointed)");
                    ending.remove(&id);
                    self.ended.insert(id);
                    ended_now += 1;
                    // Its children may be new since the last listing.
                    self.discover().await;
                }
                _ = discovery.tick() => self.discover().await,
            }
        }
        // Stop the readers; what they handed over is still sent.
        self.readers.cancel();
        while running.join_next().await.is_some() {}
        self.stats.shards(0);
        drop(self.tx);
        // Let the batcher report the last SHARD_ENDs.
        while let Some(id) = ended_rx.recv().await {
            debug!(shard = %id, "shard finished (SHARD_END checkpointed)");
            ended_now += 1;
        }
        outcome.map(|_| ended_now)
    }

    fn position(&self, shard: &Shard) -> Position {
        match self
            .checkpoints
            .get(&shard.id)
            .and_then(|c| c.sequence_number.clone())
        {
            Some(seq) => Position::After(seq),
            // A child of a shard this stream still lists starts at its beginning, whatever
            // the configured start: its parent was read up to the split.
            None if shard.parents.iter().any(|p| self.listed.contains_key(p)) => {
                Position::Start(StartPosition::TrimHorizon)
            }
            None => Position::Start(self.cfg.start),
        }
    }

    fn spawn(&self, running: &mut Readers, shard_id: Arc<str>, position: Position) {
        let reader = ShardReader {
            source: self.source.clone(),
            shard_id: shard_id.clone(),
            position,
            records_per_call: self.cfg.records_per_call,
            idle_poll: self.cfg.idle_poll,
            once: self.once,
            tx: self.tx.clone(),
            budget: self.budget.clone(),
            budget_bytes: self.cfg.max_buffer_bytes,
            cancel: self.readers.clone(),
            stats: self.stats.clone(),
        };
        running.spawn(async move { (shard_id, reader.run().await) });
    }

    /// Reads the shard list again, and with several workers the checkpoints (for parents
    /// finished by another worker).
    async fn discover(&mut self) {
        match self.source.list_shards().await {
            Ok(l) => {
                for s in l {
                    if !self.listed.contains_key(&s.id) {
                        info!(shard = %s.id, parents = ?s.parents, "new shard");
                    }
                    self.listed.insert(s.id.clone(), s);
                }
            }
            Err(e) => {
                self.stats.retry("list_shards");
                warn!(error = %e, "listing the shards failed; the shard list is not refreshed");
            }
        }
        if self.cfg.workers > 1 {
            match self.store.load().await {
                Ok(c) => self
                    .ended
                    .extend(c.into_iter().filter(|(_, c)| c.shard_end).map(|(id, _)| id)),
                Err(e) => warn!(error = %e, "cannot read other workers' checkpoints"),
            }
        }
    }
}
