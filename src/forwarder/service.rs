//! The forwarder's main loop: shard discovery and readers, the batcher and its inserts,
//! checkpoints, and shutdown.
//!
//! ```text
//!  shard readers ──(chunk + read-buffer permit)──▶ batcher ──insert──▶ ClickHouse
//!        ▲                                            │
//!        └── coordinator ◀──── shard ended ───────────┘ (after its checkpoint is written)
//! ```
//!
//! Order of durability: a batch's rows are inserted first, then the checkpoints of the
//! shards it holds. A crash between the two re-reads the batch on restart (at-least-once;
//! the destination's ReplacingMergeTree and the insert deduplication token absorb the
//! repeat). A checkpoint is never ahead of the data.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::batch::Batch;
use super::checkpoint::{Checkpoint, CheckpointStore};
use super::config::{BatchLimits, Config, ExpiredCheckpoint, StartPosition};
use super::kinesis::{Handover, Kinesis, KinesisError, Position, ReaderExit, ShardReader};
use super::retry::Backoff;
use super::shards::{self, Shard};
use super::sink::{startup_error, InsertError, Inserted, Sink};
use super::stats::Stats;
use super::Error;

/// Three refusals of the same rows in a row before they are split up.
const REJECTIONS_BEFORE_SPLIT: u32 = 3;
/// Longest server message kept as a dead letter's reason.
const MAX_REASON: usize = 2000;

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub records_inserted: u64,
    pub batches: u64,
    pub error_rows: u64,
    pub shards_ended: usize,
}

/// Stops: `shutdown` ends reading and flushes what was read; `hard_stop` abandons the open
/// batch (it is not checkpointed, so it is read again on the next start).
#[derive(Clone, Default)]
pub struct Stop {
    pub shutdown: CancellationToken,
    pub hard_stop: CancellationToken,
}

/// Runs until `--once` is done or `stop.shutdown` is cancelled.
pub async fn run(cfg: Config, stop: Stop, stats: Arc<Stats>) -> Result<Summary, Error> {
    cfg.validate()?;
    let mut sink =
        Sink::new(&cfg.clickhouse, cfg.flatten, &cfg.flatten_options).map_err(Error::Config)?;
    let ch = &cfg.clickhouse;
    let store = |client| {
        CheckpointStore::new(
            client,
            &ch.checkpoint_table,
            cfg.stream_name(),
            &ch.table,
            &cfg.worker_label(),
        )
    };
    let reader_store = store(sink.client().clone());
    let writer_store = store(sink.client().clone());

    // ClickHouse first: tables, the destination's columns (--flatten local) and checkpoints.
    // Retried while the server is unreachable.
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(15));
    let (checkpoints, described) = loop {
        let attempt = async {
            if ch.create_checkpoint_table {
                reader_store
                    .create_table()
                    .await
                    .map_err(|e| startup_error("cannot create the checkpoint table", &e))?;
            }
            sink.check_tables().await?;
            let described = if sink.is_local() {
                let columns = sink.describe_destination().await?;
                let key = sink.sorting_key().await?;
                Some((columns, key))
            } else {
                None
            };
            let checkpoints = reader_store
                .load()
                .await
                .map_err(|e| startup_error("cannot read checkpoints", &e))?;
            Ok::<_, Error>((checkpoints, described))
        };
        match attempt.await {
            Ok(c) => break c,
            // A TLS failure: retrying cannot fix it.
            Err(e @ Error::Config(_)) => return Err(e),
            Err(e) => {
                let d = backoff.next_delay();
                warn!(error = %e, delay_ms = d.as_millis() as u64, "ClickHouse not ready; retrying");
                stats.retry("clickhouse_start");
                if sleep_or(&stop.shutdown, d).await {
                    return Ok(Summary::default());
                }
            }
        }
    };
    // A destination the flattened rows cannot go into is refused, not retried: it needs DDL.
    if let Some((described, sorting_key)) = described {
        let list = sink.use_columns(&described, &sorting_key)?;
        info!(table = %ch.table, columns = %list, "column plan from DESCRIBE TABLE");
    }
    info!(
        stream = %cfg.stream,
        table = %ch.table,
        flatten = ?cfg.flatten,
        worker = %cfg.worker_label(),
        checkpoints = checkpoints.len(),
        "starting"
    );

    let kinesis = Arc::new(Kinesis::connect(&cfg).await);
    let listed = loop {
        match kinesis.list_shards().await {
            Ok(l) => break l,
            Err(e @ KinesisError::NotFound(_)) => return Err(Error::Kinesis(e.to_string())),
            Err(e) => {
                let d = backoff.next_delay();
                warn!(error = %e, "ListShards failed; retrying");
                stats.retry("list_shards");
                if sleep_or(&stop.shutdown, d).await {
                    return Ok(Summary::default());
                }
            }
        }
    };
    check_expired(&cfg, &checkpoints, &listed)?;

    let (tx, rx) = mpsc::channel::<Handover>(256);
    let budget = Arc::new(Semaphore::new(cfg.max_buffer_bytes));
    let (ended_tx, ended_rx) = mpsc::unbounded_channel::<String>();
    let batcher = Batcher {
        sink,
        store: writer_store,
        limits: cfg.batch,
        stats: stats.clone(),
        hard_stop: stop.hard_stop.clone(),
        checkpoints: checkpoints.clone(),
        ended_tx,
    };
    let batcher = tokio::spawn(batcher.run(rx));

    let coordinator = Coordinator {
        cfg: &cfg,
        kinesis,
        store: reader_store,
        stats: stats.clone(),
        listed: listed.into_iter().map(|s| (s.id.clone(), s)).collect(),
        ended: checkpoints
            .iter()
            .filter(|(_, c)| c.shard_end)
            .map(|(id, _)| id.clone())
            .collect(),
        checkpoints,
        tx,
        budget,
        readers: CancellationToken::new(),
    };
    let coordinated = coordinator.run(&stop.shutdown, ended_rx).await;

    let delivered = match batcher.await {
        Ok(r) => r,
        Err(e) => Err(Error::ClickHouse(format!("the batcher stopped: {e}"))),
    };
    let shards_ended = coordinated?;
    delivered?;
    use std::sync::atomic::Ordering::Relaxed;
    Ok(Summary {
        records_inserted: stats.records_inserted.load(Relaxed),
        batches: stats.batches.load(Relaxed),
        error_rows: stats.error_rows.load(Relaxed),
        shards_ended,
    })
}

/// A checkpoint of an unfinished shard that the stream no longer lists: the shard aged out
/// of the stream's retention, and the changes after the checkpoint are gone.
fn check_expired(
    cfg: &Config,
    checkpoints: &HashMap<String, Checkpoint>,
    listed: &[Shard],
) -> Result<(), Error> {
    let ids: HashSet<&str> = listed.iter().map(|s| s.id.as_str()).collect();
    let mut gone: Vec<&String> = checkpoints
        .iter()
        .filter(|(id, c)| !c.shard_end && !ids.contains(id.as_str()))
        .map(|(id, _)| id)
        .collect();
    if gone.is_empty() {
        return Ok(());
    }
    gone.sort();
    let msg = format!(
        "the checkpoints of shard(s) {} are older than the stream's retention: those shards \
         are no longer in the stream, so changes after the checkpoints were lost. Reload the \
         table from a new export (sql/03) and delete its checkpoints, or pass \
         --on-expired-checkpoint trim-horizon to go on from the oldest records the stream holds",
        gone.iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    match cfg.expired_checkpoint {
        ExpiredCheckpoint::Fail => Err(Error::CheckpointExpired(msg)),
        ExpiredCheckpoint::TrimHorizon => {
            warn!("{msg}; going on as asked");
            Ok(())
        }
    }
}

/// Sleeps `d`; true when `token` is cancelled first.
async fn sleep_or(token: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = token.cancelled() => true,
        _ = tokio::time::sleep(d) => false,
    }
}

struct Coordinator<'a> {
    cfg: &'a Config,
    kinesis: Arc<Kinesis>,
    store: CheckpointStore,
    stats: Arc<Stats>,
    listed: HashMap<String, Shard>,
    /// Shards whose SHARD_END is checkpointed (by any worker).
    ended: HashSet<String>,
    /// Checkpoints as loaded at start.
    checkpoints: HashMap<String, Checkpoint>,
    tx: mpsc::Sender<Handover>,
    budget: Arc<Semaphore>,
    readers: CancellationToken,
}

impl Coordinator<'_> {
    /// Returns the number of shards that ended during the run.
    async fn run(
        mut self,
        shutdown: &CancellationToken,
        mut ended_rx: mpsc::UnboundedReceiver<String>,
    ) -> Result<usize, Error> {
        let mut running: JoinSet<(Arc<str>, Result<ReaderExit, KinesisError>)> = JoinSet::new();
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
                        Err(e) => { outcome = Err(Error::Kinesis(format!("a shard reader failed: {e}"))); break; }
                    };
                    match exit {
                        Ok(ReaderExit::ShardEnd) => {
                            if !self.ended.contains(&*shard) {
                                ending.insert(shard.to_string());
                            }
                        }
                        Ok(ReaderExit::CaughtUp) => debug!(shard = %shard, "caught up"),
                        Ok(ReaderExit::Cancelled) => {}
                        Ok(ReaderExit::CheckpointRefused(m)) => {
                            let msg = format!("Kinesis refused the checkpoint of shard {shard}: {m}");
                            match self.cfg.expired_checkpoint {
                                ExpiredCheckpoint::Fail => {
                                    outcome = Err(Error::CheckpointExpired(format!(
                                        "{msg}. Pass --on-expired-checkpoint trim-horizon to go on from the oldest record held")));
                                    break;
                                }
                                ExpiredCheckpoint::TrimHorizon => {
                                    warn!("{msg}; reading from the oldest record held, as asked");
                                    self.spawn(&mut running, shard, Position::Start(StartPosition::TrimHorizon));
                                }
                            }
                        }
                        Err(e) => {
                            outcome = Err(Error::Kinesis(format!("shard {shard}: {e}")));
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

    fn spawn(
        &self,
        running: &mut JoinSet<(Arc<str>, Result<ReaderExit, KinesisError>)>,
        shard_id: Arc<str>,
        position: Position,
    ) {
        let reader = ShardReader {
            kinesis: self.kinesis.clone(),
            shard_id: shard_id.clone(),
            position,
            records_per_call: self.cfg.records_per_call,
            idle_poll: self.cfg.idle_poll,
            once: self.cfg.once,
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
        match self.kinesis.list_shards().await {
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
                warn!(error = %e, "ListShards failed; the shard list is not refreshed");
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

struct Batcher {
    sink: Sink,
    store: CheckpointStore,
    limits: BatchLimits,
    stats: Arc<Stats>,
    hard_stop: CancellationToken,
    /// The latest checkpoint per shard (what a bare SHARD_END repeats).
    checkpoints: HashMap<String, Checkpoint>,
    ended_tx: mpsc::UnboundedSender<String>,
}

impl Batcher {
    async fn run(mut self, mut rx: mpsc::Receiver<Handover>) -> Result<(), Error> {
        let mut batch = Batch::new();
        let mut held: Vec<OwnedSemaphorePermit> = Vec::new();
        loop {
            let deadline = batch.deadline(&self.limits);
            let msg = tokio::select! {
                m = rx.recv() => m,
                _ = sleep_until_opt(deadline), if deadline.is_some() => {
                    self.flush(&mut batch).await?;
                    held.clear();
                    continue;
                }
            };
            match msg {
                Some((chunk, permit)) => {
                    batch.push(chunk, Instant::now());
                    held.push(permit);
                    if batch.is_full(&self.limits) {
                        self.flush(&mut batch).await?;
                        held.clear();
                    }
                }
                None => {
                    if !batch.is_empty() {
                        self.flush(&mut batch).await?;
                    }
                    return Ok(());
                }
            }
        }
    }

    /// Inserts the batch, then writes its checkpoints. Retries until both succeed or the
    /// hard stop comes.
    async fn flush(&mut self, batch: &mut Batch) -> Result<(), Error> {
        let started = Instant::now();
        let rows = batch.rows();
        let token = batch.token();
        let inserted = self.commit(batch, 0..rows, &token).await?;
        let took = started.elapsed();

        let mut rows_to_save: Vec<(String, Checkpoint)> = Vec::new();
        for p in batch.progress() {
            let previous = self.checkpoints.get(&*p.shard_id);
            let c = Checkpoint {
                sequence_number: p
                    .last_sequence
                    .clone()
                    .or_else(|| previous.and_then(|c| c.sequence_number.clone())),
                shard_end: p.shard_end,
            };
            rows_to_save.push((p.shard_id.to_string(), c));
        }
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        loop {
            let refs: Vec<(&str, &Checkpoint)> =
                rows_to_save.iter().map(|(s, c)| (s.as_str(), c)).collect();
            let saved = tokio::select! {
                _ = self.hard_stop.cancelled() => return Err(self.abandoned(batch, "writing checkpoints")),
                r = self.store.save(&refs) => r,
            };
            match saved {
                Ok(()) => break,
                Err(e) => {
                    self.stats.retry("checkpoint");
                    let d = backoff.next_delay();
                    warn!(
                        error = e.message(),
                        delay_ms = d.as_millis() as u64,
                        "checkpoint write failed; retrying"
                    );
                    if sleep_or(&self.hard_stop, d).await {
                        return Err(self.abandoned(batch, "writing checkpoints"));
                    }
                }
            }
        }
        self.stats.checkpoint(rows_to_save.len());
        self.stats
            .inserted(inserted.rows, batch.bytes(), inserted.errors, took);
        debug!(
            rows,
            error_rows = inserted.errors,
            took_ms = took.as_millis() as u64,
            "batch inserted"
        );
        for (shard, c) in rows_to_save {
            if c.shard_end {
                let _ = self.ended_tx.send(shard.clone());
            }
            self.checkpoints.insert(shard, c);
        }
        batch.clear();
        Ok(())
    }

    fn abandoned(&self, batch: &Batch, during: &str) -> Error {
        Error::ClickHouse(format!(
            "stopped while {during}: {} records were not inserted and not checkpointed; \
             they are read again at the next start",
            batch.rows()
        ))
    }

    /// Inserts records `range`. Rows the server keeps refusing are split in halves until the
    /// refused record is alone; it then goes to the errors table with the server's reason,
    /// so one bad record never blocks its shard.
    async fn commit(
        &mut self,
        batch: &Batch,
        range: Range<usize>,
        token: &str,
    ) -> Result<Inserted, Error> {
        let mut total = Inserted::default();
        let mut todo: Vec<(Range<usize>, String)> = vec![(range, token.to_string())];
        while let Some((range, token)) = todo.pop() {
            let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(15));
            let mut rejected = 0u32;
            loop {
                let got = tokio::select! {
                    _ = self.hard_stop.cancelled() => return Err(self.abandoned(batch, "inserting")),
                    r = self.sink.insert(batch, range.clone(), &token) => r,
                };
                let e = match got {
                    Ok(i) => {
                        total.rows += i.rows;
                        total.errors += i.errors;
                        break;
                    }
                    Err(e) => e,
                };
                if let InsertError::Rejected(_) = &e {
                    rejected += 1;
                    if rejected >= REJECTIONS_BEFORE_SPLIT {
                        if range.len() > 1 {
                            let mid = range.start + range.len() / 2;
                            warn!(records = range.len(), "ClickHouse keeps refusing these records; splitting them to find the bad one");
                            todo.push((mid..range.end, format!("{token}-{mid}-{}", range.end)));
                            todo.push((range.start..mid, format!("{token}-{}-{mid}", range.start)));
                        } else {
                            self.dead_letter(batch, range.start, e.message(), &token)
                                .await?;
                            total.errors += 1;
                        }
                        break;
                    }
                }
                self.stats.retry("insert");
                let d = backoff.next_delay();
                warn!(
                    error = e.message(),
                    delay_ms = d.as_millis() as u64,
                    records = range.len(),
                    "insert failed; retrying"
                );
                if sleep_or(&self.hard_stop, d).await {
                    return Err(self.abandoned(batch, "inserting"));
                }
            }
        }
        Ok(total)
    }

    async fn dead_letter(
        &mut self,
        batch: &Batch,
        i: usize,
        reason: &str,
        token: &str,
    ) -> Result<(), Error> {
        let mut reason = format!("ClickHouse refused the record: {reason}");
        if reason.len() > MAX_REASON {
            let mut cut = MAX_REASON;
            while !reason.is_char_boundary(cut) {
                cut -= 1;
            }
            reason.truncate(cut);
        }
        error!(reason = %reason, "record sent to the errors table");
        self.stats.error("dead_letter");
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(15));
        let rows = [(batch.record(i), reason.as_str())];
        let token = format!("{token}-dead");
        loop {
            let got = tokio::select! {
                _ = self.hard_stop.cancelled() => return Err(self.abandoned(batch, "writing a dead letter")),
                r = self.sink.insert_errors(&rows, &token) => r,
            };
            match got {
                Ok(()) => return Ok(()),
                Err(e) => {
                    self.stats.retry("dead_letter");
                    let d = backoff.next_delay();
                    warn!(
                        error = e.message(),
                        "writing to the errors table failed; retrying"
                    );
                    if sleep_or(&self.hard_stop, d).await {
                        return Err(self.abandoned(batch, "writing a dead letter"));
                    }
                }
            }
        }
    }
}

async fn sleep_until_opt(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}
