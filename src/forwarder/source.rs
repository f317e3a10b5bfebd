//! What the shard readers read from: a Kinesis data stream, or a table's DynamoDB stream.
//! Both have shards with parents, iterators and pages of records; this module gives them
//! one face ([`Source`]) and sorts their errors ([`SourceError`]) by what to do about them.

use std::time::SystemTime;

use aws_sdk_kinesis::error::{DisplayErrorContext, ProvideErrorMetadata};

use super::batch::Record;
use super::config::{Config, SourceKind, StartPosition};
use super::kinesis::Kinesis;
use super::shards::Shard;
use super::streams::DynamoStreams;

/// A failed call to the stream's service, sorted by what to do about it.
#[derive(Debug)]
pub enum SourceError {
    /// ProvisionedThroughputExceeded or LimitExceeded: back off and retry.
    Throttled(String),
    /// The shard iterator is too old (5 minutes on Kinesis, 15 on DynamoDB Streams): get a
    /// new one.
    ExpiredIterator,
    /// The stream or shard does not exist.
    NotFound(String),
    /// The request was refused as invalid, or asks for records the stream no longer holds
    /// (a sequence number past the retention: `TrimmedDataAccessException`).
    InvalidArgument(String),
    /// The credentials were refused, or the caller may not read the stream.
    Denied(String),
    /// The stream cannot be read as configured (a DynamoDB stream without new images, …).
    Unusable(String),
    /// Anything else (network, 5xx): retried.
    Other(String),
}

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceError::Throttled(m) => write!(f, "throttled: {m}"),
            SourceError::ExpiredIterator => f.write_str("shard iterator expired"),
            SourceError::NotFound(m) => write!(f, "not found: {m}"),
            SourceError::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            SourceError::Denied(m) => write!(f, "access denied: {m}"),
            SourceError::Unusable(m) | SourceError::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for SourceError {}

/// Sorts an AWS SDK error (Kinesis or DynamoDB Streams: the same error types).
pub(crate) fn sort<E>(e: aws_sdk_kinesis::error::SdkError<E>) -> SourceError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let code = e.code().map(str::to_string);
    let text = format!("{}", DisplayErrorContext(&e));
    match code.as_deref() {
        Some("ProvisionedThroughputExceededException" | "LimitExceededException") => {
            SourceError::Throttled(text)
        }
        Some("ExpiredIteratorException") => SourceError::ExpiredIterator,
        Some("ResourceNotFoundException") => SourceError::NotFound(text),
        Some("InvalidArgumentException" | "TrimmedDataAccessException" | "ValidationException") => {
            SourceError::InvalidArgument(text)
        }
        Some(
            "AccessDeniedException"
            | "UnrecognizedClientException"
            | "InvalidSignatureException"
            | "IncompleteSignature"
            | "MissingAuthenticationToken"
            | "ExpiredTokenException",
        ) => SourceError::Denied(text),
        _ => SourceError::Other(text),
    }
}

/// Where to open a shard iterator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    Start(StartPosition),
    After(String),
}

/// One answer of GetRecords.
#[derive(Debug, Default)]
pub struct Page {
    /// In shard order.
    pub records: Vec<Record>,
    /// `None`: the shard is closed and this page holds its last records.
    pub next_iterator: Option<String>,
    /// How far the shard's end is ahead (Kinesis only).
    pub millis_behind: Option<i64>,
    /// When the newest record of the page reached the stream (Kinesis: its arrival time;
    /// DynamoDB Streams: the change's creation time, in whole seconds on AWS).
    pub newest_arrival: Option<SystemTime>,
}

/// The stream the forwarder reads.
pub enum Source {
    Kinesis(Kinesis),
    DynamoStreams(DynamoStreams),
}

impl Source {
    /// Connects to the configured stream. For `--dynamodb-table` this finds the table's
    /// latest stream, and for a DynamoDB stream it checks its view type.
    pub async fn connect(cfg: &Config) -> Result<Source, SourceError> {
        let sdk = sdk_config(cfg).await;
        Ok(match cfg.source {
            SourceKind::Kinesis => Source::Kinesis(Kinesis::new(&sdk, &cfg.stream)),
            SourceKind::DynamoStream => {
                Source::DynamoStreams(DynamoStreams::open(&sdk, cfg.stream.clone()).await?)
            }
            SourceKind::DynamoTable => {
                Source::DynamoStreams(DynamoStreams::open_latest(&sdk, &cfg.stream).await?)
            }
        })
    }

    /// The stream's name in the checkpoint table: the Kinesis stream's name, or the DynamoDB
    /// stream's ARN.
    pub fn checkpoint_name<'a>(&'a self, cfg: &'a Config) -> &'a str {
        match self {
            Source::Kinesis(_) => cfg.stream_name(),
            Source::DynamoStreams(s) => s.arn(),
        }
    }

    /// The service, for messages.
    pub fn service(&self) -> &'static str {
        match self {
            Source::Kinesis(_) => "Kinesis",
            Source::DynamoStreams(_) => "DynamoDB Streams",
        }
    }

    /// Every shard the stream still holds, open and closed.
    pub async fn list_shards(&self) -> Result<Vec<Shard>, SourceError> {
        match self {
            Source::Kinesis(k) => k.list_shards().await,
            Source::DynamoStreams(s) => s.list_shards().await,
        }
    }

    pub async fn iterator(&self, shard: &str, at: &Position) -> Result<String, SourceError> {
        match self {
            Source::Kinesis(k) => k.iterator(shard, at).await,
            Source::DynamoStreams(s) => s.iterator(shard, at).await,
        }
    }

    pub async fn get_records(&self, iterator: &str, limit: i32) -> Result<Page, SourceError> {
        match self {
            Source::Kinesis(k) => k.get_records(iterator, limit).await,
            Source::DynamoStreams(s) => s.get_records(iterator, limit).await,
        }
    }
}

/// Credentials and region from the default chain (env, profile, IMDS, …); the endpoint from
/// `--endpoint-url` when given.
async fn sdk_config(cfg: &Config) -> aws_config::SdkConfig {
    // The SDK's own retries are off: a retry inside one call would break the call rate per
    // shard that the reader keeps, and the reader retries with backoff.
    let mut loader =
        aws_config::from_env().retry_config(aws_config::retry::RetryConfig::disabled());
    if let Some(region) = &cfg.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    if let Some(url) = &cfg.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}
