//! Delivery: the batcher. It cuts batches, inserts them, sends the records ClickHouse
//! refuses to the errors table, and writes checkpoints after the rows.
//!
//! Order of durability: a batch's rows are inserted first, then the checkpoints of the
//! shards it holds. A crash between the two re-reads the batch on restart; a checkpoint is
//! never ahead of the data. Each insert carries a deduplication token made from the
//! batch's records, the same on every retry, so an insert whose answer was lost lands
//! once (with the `non_replicated_deduplication_window` of the shipped tables).
//!
//! Refusals: an insert the server refuses with a data code (see [`super::codes`]) is
//! retried, then split in halves until the refused record is alone; that record is held
//! until the server accepts another insert, then written to the errors table with the
//! server's reason, so one bad record never blocks its shard. The breaker
//! ([`super::breaker`]) stops this when the server refuses everything: nothing is
//! dead-lettered and no checkpoint moves until it accepts rows again. Every other error
//! is retried as is, without end.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::batch::Batch;
use super::breaker::{Breaker, Refusal};
use super::checkpoint::{Checkpoint, CheckpointStore};
use super::codes;
use super::config::BatchLimits;
use super::reader::Handover;
use super::retry::Backoff;
use super::sink::{InsertError, Inserted, Sink};
use super::startup::sleep_or;
use super::stats::Stats;
use super::Error;

/// Three refusals of the same rows in a row before they are split up.
const REJECTIONS_BEFORE_SPLIT: u32 = 3;
/// Longest server message kept as a dead letter's reason.
const MAX_REASON: usize = 2000;

/// A record refused alone, waiting for proof that the server accepts other rows.
struct Held {
    index: usize,
    token: String,
    reason: String,
}

/// How one range of a batch went.
enum Outcome {
    Inserted(Inserted),
    /// Refused with a data code, more than one record: split it.
    Split,
    /// Refused with a data code, one record.
    RefusedAlone {
        code: u32,
        reason: String,
    },
}

pub(crate) struct Batcher {
    pub sink: Sink,
    pub store: CheckpointStore,
    pub limits: BatchLimits,
    pub stats: Arc<Stats>,
    pub hard_stop: CancellationToken,
    /// The latest checkpoint per shard (what a bare SHARD_END repeats).
    pub checkpoints: HashMap<String, Checkpoint>,
    pub ended_tx: mpsc::UnboundedSender<String>,
    pub breaker: Breaker,
}

impl Batcher {
    pub(crate) async fn run(mut self, mut rx: mpsc::Receiver<Handover>) -> Result<(), Error> {
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
        Error::Abandoned(format!(
            "stopped while {during}: {} records were not inserted and not checkpointed; \
             they are read again at the next start",
            batch.rows()
        ))
    }

    /// Inserts records `range` (see the module's text for refusals).
    async fn commit(
        &mut self,
        batch: &Batch,
        range: Range<usize>,
        token: &str,
    ) -> Result<Inserted, Error> {
        let mut total = Inserted::default();
        let mut todo: Vec<(Range<usize>, String)> = vec![(range, token.to_string())];
        let mut held: Vec<Held> = Vec::new();
        while let Some((range, token)) = todo.pop() {
            match self.deliver(batch, range.clone(), &token).await? {
                Outcome::Inserted(i) => {
                    total.rows += i.rows;
                    total.errors += i.errors;
                    if let Some(open_for) = self.breaker.accepted(Instant::now()) {
                        self.stats.breaker(false);
                        info!(
                            open_s = open_for.as_secs(),
                            "ClickHouse accepts records again: the dead-letter breaker is closed"
                        );
                    }
                    // The server takes other rows: the held records are the bad ones.
                    total.errors += self.dead_letter_held(batch, &mut held).await?;
                }
                Outcome::Split => {
                    let mid = range.start + range.len() / 2;
                    warn!(
                        records = range.len(),
                        "ClickHouse keeps refusing these records; splitting them to find the bad one"
                    );
                    todo.push((mid..range.end, format!("{token}-{mid}-{}", range.end)));
                    todo.push((range.start..mid, format!("{token}-{}-{mid}", range.start)));
                }
                Outcome::RefusedAlone { code, reason } => {
                    held.push(Held {
                        index: range.start,
                        token,
                        reason,
                    });
                    if self.breaker.refused(code, Instant::now()) == Refusal::Opened {
                        self.stats.breaker(true);
                        error!(
                            code,
                            name = codes::data_code_name(code),
                            records = held.len(),
                            "ClickHouse refuses record after record with the same error: the \
                             dead-letter breaker is open; nothing goes to the errors table and \
                             no checkpoint moves until it accepts rows again"
                        );
                        // They are the server's fault: retried, in order, while it is open.
                        for h in held.drain(..).rev() {
                            todo.push((h.index..h.index + 1, h.token));
                        }
                    }
                }
            }
        }
        // Refused at the end of the batch, with nothing after them: fewer in a row than
        // the breaker's threshold, so taken for bad records.
        total.errors += self.dead_letter_held(batch, &mut held).await?;
        Ok(total)
    }

    /// Inserts one range, retrying until it goes in or is refused as data.
    async fn deliver(
        &mut self,
        batch: &Batch,
        range: Range<usize>,
        token: &str,
    ) -> Result<Outcome, Error> {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(15));
        let mut rejected = 0u32;
        loop {
            let got = tokio::select! {
                _ = self.hard_stop.cancelled() => return Err(self.abandoned(batch, "inserting")),
                r = self.sink.insert(batch, range.clone(), token) => r,
            };
            let e = match got {
                Ok(i) => return Ok(Outcome::Inserted(i)),
                Err(e) => e,
            };
            if let InsertError::Rejected { code, message } = &e {
                if !self.breaker.is_open() {
                    rejected += 1;
                    if rejected >= REJECTIONS_BEFORE_SPLIT {
                        return Ok(if range.len() > 1 {
                            Outcome::Split
                        } else {
                            Outcome::RefusedAlone {
                                code: *code,
                                reason: message.clone(),
                            }
                        });
                    }
                }
            }
            self.stats.retry("insert");
            let d = backoff.next_delay();
            match self.breaker.log_due(Instant::now()) {
                Some(open_for) => error!(
                    open_s = open_for.as_secs(),
                    code = self.breaker.open_code(),
                    name = self.breaker.open_code().map(codes::data_code_name),
                    error = e.message(),
                    "the dead-letter breaker is still open: ClickHouse refuses the records; \
                     retrying (nothing is dead-lettered or checkpointed meanwhile)"
                ),
                None if self.breaker.is_open() => {
                    debug!(error = e.message(), "insert refused; retrying")
                }
                None => warn!(
                    error = e.message(),
                    delay_ms = d.as_millis() as u64,
                    records = range.len(),
                    "insert failed; retrying"
                ),
            }
            if sleep_or(&self.hard_stop, d).await {
                return Err(self.abandoned(batch, "inserting"));
            }
        }
    }

    /// Writes the held records to the errors table; returns how many.
    async fn dead_letter_held(
        &mut self,
        batch: &Batch,
        held: &mut Vec<Held>,
    ) -> Result<usize, Error> {
        let n = held.len();
        for h in std::mem::take(held) {
            self.dead_letter(batch, h.index, &h.reason, &h.token)
                .await?;
        }
        Ok(n)
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
