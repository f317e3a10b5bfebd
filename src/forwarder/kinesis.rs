//! Reading Kinesis: shard listing, iterators, and one reader task per shard.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_kinesis::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_kinesis::primitives::DateTime;
use aws_sdk_kinesis::types::ShardIteratorType;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::batch::{Chunk, Record};
use super::config::{Config, StartPosition};
use super::retry::Backoff;
use super::shards::Shard;
use super::stats::Stats;

/// Kinesis allows 5 GetRecords calls per second per shard. Calls start 250 ms apart (4 per
/// second), not 200: with 200 ms, a call that reaches the service a little late puts six
/// calls in one second as the service counts them. (A shard's 2 MB/s read limit, not the
/// call count, bounds what a busy shard delivers.)
pub const MIN_CALL_INTERVAL: Duration = Duration::from_millis(250);

/// A failed Kinesis call, sorted by what to do about it.
#[derive(Debug)]
pub enum KinesisError {
    /// ProvisionedThroughputExceeded or LimitExceeded: back off and retry.
    Throttled(String),
    /// The shard iterator is older than 5 minutes: get a new one.
    ExpiredIterator,
    /// The stream or shard does not exist.
    NotFound(String),
    /// The request was refused as invalid (for example a sequence number no longer held).
    InvalidArgument(String),
    /// The credentials were refused, or the caller may not read the stream.
    Denied(String),
    /// Anything else (network, 5xx, access): retried.
    Other(String),
}

impl std::fmt::Display for KinesisError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KinesisError::Throttled(m) => write!(f, "throttled: {m}"),
            KinesisError::ExpiredIterator => f.write_str("shard iterator expired"),
            KinesisError::NotFound(m) => write!(f, "not found: {m}"),
            KinesisError::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            KinesisError::Denied(m) => write!(f, "access denied: {m}"),
            KinesisError::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for KinesisError {}

fn sort<E>(e: aws_sdk_kinesis::error::SdkError<E>) -> KinesisError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let code = e.code().map(str::to_string);
    let text = format!("{}", DisplayErrorContext(&e));
    match code.as_deref() {
        Some("ProvisionedThroughputExceededException" | "LimitExceededException") => {
            KinesisError::Throttled(text)
        }
        Some("ExpiredIteratorException") => KinesisError::ExpiredIterator,
        Some("ResourceNotFoundException") => KinesisError::NotFound(text),
        Some("InvalidArgumentException") => KinesisError::InvalidArgument(text),
        Some(
            "AccessDeniedException"
            | "UnrecognizedClientException"
            | "InvalidSignatureException"
            | "IncompleteSignature"
            | "MissingAuthenticationToken"
            | "ExpiredTokenException",
        ) => KinesisError::Denied(text),
        _ => KinesisError::Other(text),
    }
}

/// Where to open a shard iterator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    Start(StartPosition),
    After(String),
}

/// The Kinesis client and the stream it reads.
pub struct Kinesis {
    client: aws_sdk_kinesis::Client,
    name: Option<String>,
    arn: Option<String>,
}

impl Kinesis {
    /// Credentials and region from the default chain (env, profile, IMDS, …); the endpoint
    /// from `--endpoint-url` when given.
    pub async fn connect(cfg: &Config) -> Kinesis {
        // The SDK's own retries are off: a retry inside one call would break the 5 calls
        // per second per shard that the reader keeps, and the reader retries with backoff.
        let mut loader =
            aws_config::from_env().retry_config(aws_config::retry::RetryConfig::disabled());
        if let Some(region) = &cfg.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some(url) = &cfg.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let sdk = loader.load().await;
        let (name, arn) = if cfg.stream_is_arn() {
            (None, Some(cfg.stream.clone()))
        } else {
            (Some(cfg.stream.clone()), None)
        };
        Kinesis {
            client: aws_sdk_kinesis::Client::new(&sdk),
            name,
            arn,
        }
    }

    /// Every shard of the stream, open and closed, that the stream still holds.
    pub async fn list_shards(&self) -> Result<Vec<Shard>, KinesisError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            // ListShards refuses the stream name together with a NextToken.
            let req = match &token {
                Some(t) => self.client.list_shards().next_token(t),
                None => self
                    .client
                    .list_shards()
                    .set_stream_name(self.name.clone())
                    .set_stream_arn(self.arn.clone()),
            };
            let page = req.send().await.map_err(sort)?;
            for s in page.shards() {
                let parents = [s.parent_shard_id(), s.adjacent_parent_shard_id()]
                    .into_iter()
                    .flatten()
                    .map(str::to_string)
                    .collect();
                out.push(Shard {
                    id: s.shard_id().to_string(),
                    parents,
                });
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    pub async fn iterator(&self, shard: &str, at: &Position) -> Result<String, KinesisError> {
        let mut req = self
            .client
            .get_shard_iterator()
            .set_stream_name(self.name.clone())
            .set_stream_arn(self.arn.clone())
            .shard_id(shard);
        req = match at {
            Position::After(seq) => req
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .starting_sequence_number(seq),
            Position::Start(StartPosition::TrimHorizon) => {
                req.shard_iterator_type(ShardIteratorType::TrimHorizon)
            }
            Position::Start(StartPosition::Latest) => {
                req.shard_iterator_type(ShardIteratorType::Latest)
            }
            Position::Start(StartPosition::AtTimestamp(t)) => req
                .shard_iterator_type(ShardIteratorType::AtTimestamp)
                .timestamp(DateTime::from(*t)),
        };
        let out = req.send().await.map_err(sort)?;
        out.shard_iterator()
            .map(str::to_string)
            .ok_or_else(|| KinesisError::Other(format!("no shard iterator returned for {shard}")))
    }

    async fn get_records(
        &self,
        iterator: &str,
        limit: i32,
    ) -> Result<aws_sdk_kinesis::operation::get_records::GetRecordsOutput, KinesisError> {
        self.client
            .get_records()
            .set_stream_arn(self.arn.clone())
            .shard_iterator(iterator)
            .limit(limit)
            .send()
            .await
            .map_err(sort)
    }
}

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
    pub kinesis: Arc<Kinesis>,
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
    pub async fn run(self) -> Result<ReaderExit, KinesisError> {
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
                        r = self.kinesis.iterator(shard, &position) => r,
                    };
                    match got {
                        Ok(it) => it,
                        Err(KinesisError::InvalidArgument(m))
                            if matches!(position, Position::After(_)) =>
                        {
                            return Ok(ReaderExit::CheckpointRefused(m));
                        }
                        Err(e @ KinesisError::NotFound(_)) => return Err(e),
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
                r = self.kinesis.get_records(&it, self.records_per_call) => r,
            };
            let out = match got {
                Ok(out) => out,
                Err(KinesisError::ExpiredIterator) => {
                    info!(
                        shard,
                        "shard iterator expired; opening a new one after the last record read"
                    );
                    self.stats.retry("expired_iterator");
                    continue;
                }
                Err(e @ KinesisError::NotFound(_)) => return Err(e),
                Err(e) => {
                    let kind = if matches!(e, KinesisError::Throttled(_)) {
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
            let behind = out.millis_behind_latest();
            let end = out.next_shard_iterator().is_none();
            let next = out.next_shard_iterator().map(str::to_string);
            let past_start = self.once.is_some_and(|start| {
                out.records().iter().any(|r| {
                    r.approximate_arrival_timestamp()
                        .and_then(|t| SystemTime::try_from(*t).ok())
                        .is_some_and(|t| t >= start)
                })
            });
            let records: Vec<Record> = out
                .records
                .into_iter()
                .map(|r| Record {
                    sequence_number: r.sequence_number,
                    data: r.data.into_inner(),
                })
                .collect();
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
