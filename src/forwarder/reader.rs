//! One reader task per shard: iterators (renewed when they expire), GetRecords at a bounded
//! rate, and the hand-over of each page to the batcher, in shard order.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::batch::Chunk;
use super::retry::Backoff;
use super::source::{Page, Position, Source, SourceError};
use super::stats::Stats;

/// Kinesis allows 5 GetRecords calls per second per shard. Calls start 250 ms apart (4 per
/// second), not 200: with 200 ms, a call that reaches the service a little late puts six
/// calls in one second as the service counts them. (A shard's 2 MB/s read limit, not the
/// call count, bounds what a busy shard delivers.) DynamoDB Streams is read at the same
/// pace.
pub const MIN_CALL_INTERVAL: Duration = Duration::from_millis(250);

/// How a reader stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReaderExit {
    /// The shard is closed and every record was handed over (the last chunk says so).
    ShardEnd,
    /// `--once`: the shard is open and was read to its end as of the start.
    CaughtUp,
    /// Shutdown.
    Cancelled,
    /// The iterator could not be opened at the checkpoint (sequence number no longer held).
    CheckpointRefused(String),
}

/// What a reader hands to the batcher: a chunk and its share of the read buffer.
pub type Handover = (Chunk, OwnedSemaphorePermit);

/// Reads one shard from `position` and hands its records over in order.
pub struct ShardReader {
    pub source: Arc<Source>,
    pub shard_id: Arc<str>,
    pub position: Position,
    pub records_per_call: i32,
    pub idle_poll: Duration,
    /// `--once`: the time the run started. The reader ends at the first answer that holds a
    /// record that arrived after it, or none while caught up, so a busy shard is not chased.
    pub once: Option<SystemTime>,
    pub tx: mpsc::Sender<Handover>,
    /// Read-buffer budget in bytes; a reader waits here while the buffer is full.
    pub budget: Arc<Semaphore>,
    pub budget_bytes: usize,
    pub cancel: CancellationToken,
    pub stats: Arc<Stats>,
}

impl ShardReader {
    pub async fn run(self) -> Result<ReaderExit, SourceError> {
        let shard = &*self.shard_id;
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        let mut position = self.position.clone();
        let mut iterator: Option<String> = None;
        let mut next_call = Instant::now();
        loop {
            if self.cancel.is_cancelled() {
                return Ok(ReaderExit::Cancelled);
            }
            let it = match iterator.take() {
                Some(it) => it,
                None => {
                    let got = tokio::select! {
                        _ = self.cancel.cancelled() => return Ok(ReaderExit::Cancelled),
                        r = self.source.iterator(shard, &position) => r,
                    };
                    match got {
                        Ok(it) => it,
                        Err(SourceError::InvalidArgument(m))
                            if matches!(position, Position::After(_)) =>
                        {
                            return Ok(ReaderExit::CheckpointRefused(m));
                        }
                        Err(e @ SourceError::NotFound(_)) => return Err(e),
                        Err(e) => {
                            self.stats.retry("get_shard_iterator");
                            let d = backoff.next_delay();
                            warn!(shard, error = %e, delay_ms = d.as_millis() as u64, "GetShardIterator failed; retrying");
                            if self.pause(d).await {
                                return Ok(ReaderExit::Cancelled);
                            }
                            continue;
                        }
                    }
                }
            };
            if self.pause_until(next_call).await {
                return Ok(ReaderExit::Cancelled);
            }
            next_call = Instant::now() + MIN_CALL_INTERVAL;
            let got = tokio::select! {
                _ = self.cancel.cancelled() => return Ok(ReaderExit::Cancelled),
                r = self.source.get_records(&it, self.records_per_call) => r,
            };
            let page = match got {
                Ok(page) => page,
                Err(SourceError::ExpiredIterator) => {
                    info!(
                        shard,
                        "shard iterator expired; opening a new one after the last record read"
                    );
                    self.stats.retry("expired_iterator");
                    continue;
                }
                Err(e @ SourceError::NotFound(_)) => return Err(e),
                Err(e) => {
                    let kind = if matches!(e, SourceError::Throttled(_)) {
                        "get_records_throttled"
                    } else {
                        "get_records"
                    };
                    self.stats.retry(kind);
                    let d = backoff.next_delay();
                    warn!(shard, error = %e, delay_ms = d.as_millis() as u64, "GetRecords failed; retrying");
                    iterator = Some(it);
                    if self.pause(d).await {
                        return Ok(ReaderExit::Cancelled);
                    }
                    continue;
                }
            };
            backoff.reset();
            let Page {
                records,
                next_iterator: next,
                millis_behind: behind,
                newest_arrival,
            } = page;
            let end = next.is_none();
            let past_start = self
                .once
                .is_some_and(|start| newest_arrival.is_some_and(|t| t >= start));
            let got_records = !records.is_empty();
            if let Some(last) = records.last() {
                position = Position::After(last.sequence_number.clone());
            }
            let chunk = Chunk {
                shard_id: self.shard_id.clone(),
                records,
                shard_end: end,
            };
            self.stats
                .read(shard, chunk.records.len(), chunk.bytes(), behind);
            if (got_records || end) && !self.hand_over(chunk).await {
                return Ok(ReaderExit::Cancelled);
            }
            if end {
                debug!(shard, "shard end reached");
                return Ok(ReaderExit::ShardEnd);
            }
            iterator = next;
            if past_start {
                debug!(shard, "--once: reached the records written after the start");
                return Ok(ReaderExit::CaughtUp);
            }
            if !got_records {
                if self.once.is_some() && behind.unwrap_or(0) == 0 {
                    return Ok(ReaderExit::CaughtUp);
                }
                next_call = next_call.max(Instant::now() + self.idle_poll);
            }
        }
    }

    /// Waits for room in the read buffer, then sends. False when cancelled first.
    async fn hand_over(&self, chunk: Chunk) -> bool {
        let want = chunk.bytes().clamp(1, self.budget_bytes);
        let permits = u32::try_from(want).unwrap_or(u32::MAX);
        let permit = tokio::select! {
            _ = self.cancel.cancelled() => return false,
            p = self.budget.clone().acquire_many_owned(permits) => match p {
                Ok(p) => p,
                Err(_) => return false,
            },
        };
        self.tx.send((chunk, permit)).await.is_ok()
    }

    /// Sleeps; true when cancelled first.
    async fn pause(&self, d: Duration) -> bool {
        tokio::select! {
            _ = self.cancel.cancelled() => true,
            _ = tokio::time::sleep(d) => false,
        }
    }

    async fn pause_until(&self, t: Instant) -> bool {
        let now = Instant::now();
        if t <= now {
            return false;
        }
        self.pause(t - now).await
    }
}
