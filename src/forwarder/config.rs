//! What the forwarder is told. The binary fills this from flags and environment variables.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::flatten;
pub use crate::flatten::check_field_names;

/// Where a shard without a checkpoint starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartPosition {
    /// The oldest record the stream still holds (the default: the stream was enabled before
    /// the export, so its beginning overlaps the snapshot and nothing falls between them).
    TrimHorizon,
    /// Only records written after the forwarder starts.
    Latest,
    /// Records written at or after this time.
    AtTimestamp(SystemTime),
}

/// What `stream` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// A Kinesis data stream (name or ARN): the table's Kinesis streaming destination.
    Kinesis,
    /// A DynamoDB stream, by its ARN.
    DynamoStream,
    /// A DynamoDB table, whose latest DynamoDB stream is read.
    DynamoTable,
}

/// Where records are flattened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlattenMode {
    /// Raw records go into the stream landing table; its materialized view calls
    /// `dynamo_flatten` on the server (sql/05_stream.sql).
    Server,
    /// Records are flattened here, with the same core library and the same column plan as
    /// `dynamo_flatten_columns` (the destination's columns, read with `DESCRIBE TABLE` at
    /// start-up: each attribute in its column, converted exactly, or in `_extra`), and the
    /// flat rows go straight into the destination table (`FORMAT JSONEachRow`); bad records
    /// go to the errors table. For servers without executable UDFs.
    Local,
}

/// What to do when a checkpoint points before the oldest record the stream still holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiredCheckpoint {
    /// Stop with an error: changes were lost, reload the snapshot first.
    Fail,
    /// Warn and continue from the oldest record still held.
    TrimHorizon,
}

/// A string that is never printed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}

/// The ClickHouse side.
#[derive(Debug, Clone)]
pub struct ClickHouse {
    /// `http://…` or `https://…`.
    pub url: String,
    /// PEM certificates trusted for `https://`, besides the system's root certificates.
    pub ca_file: Option<PathBuf>,
    pub user: String,
    pub password: Secret,
    pub database: Option<String>,
    pub lz4: bool,
    /// The destination table (`people`).
    pub table: String,
    /// The stream landing table (`people_stream`), for [`FlattenMode::Server`].
    pub stream_table: String,
    /// The errors table (`dynamo_errors`), for [`FlattenMode::Local`] and dead letters.
    pub errors_table: String,
    /// The checkpoint table (`kinesis_checkpoints`).
    pub checkpoint_table: String,
    /// Create the checkpoint table if it does not exist.
    pub create_checkpoint_table: bool,
    /// The longest an insert may take before it is given up and retried.
    pub timeout: Duration,
}

/// When the open batch is sent.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    pub max_rows: usize,
    pub max_bytes: usize,
    /// The longest a record waits in the open batch.
    pub linger: Duration,
}

/// Everything the forwarder needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The Kinesis stream's name or ARN, the DynamoDB stream's ARN, or the table's name,
    /// as `source` says.
    pub stream: String,
    pub source: SourceKind,
    pub endpoint_url: Option<String>,
    pub region: Option<String>,
    pub start: StartPosition,
    pub expired_checkpoint: ExpiredCheckpoint,
    pub clickhouse: ClickHouse,
    pub flatten: FlattenMode,
    /// Options for [`FlattenMode::Local`], the metadata field names among them (the
    /// destination's version and delete-flag columns). The column plan is added at start-up.
    pub flatten_options: flatten::Options,
    pub batch: BatchLimits,
    /// Records read but not yet inserted, at most (reading pauses above it).
    pub max_buffer_bytes: usize,
    /// Drain every shard to its current end, then exit.
    pub once: bool,
    pub workers: u32,
    pub worker_index: u32,
    /// How often the shard list is read again (new shards after resharding).
    pub discovery_interval: Duration,
    /// Wait between GetRecords calls on a shard that returned nothing.
    pub idle_poll: Duration,
    /// Records per GetRecords call (Kinesis allows 1..=10000).
    pub records_per_call: i32,
    /// How long a shutdown may spend inserting the open batch.
    pub shutdown_timeout: Duration,
    /// Serve Prometheus metrics here.
    pub metrics_addr: Option<SocketAddr>,
    /// Print a one-line progress display to stderr.
    pub progress: bool,
    /// Records refused in a row, with one error code and nothing accepted between, that
    /// open the dead-letter breaker (see `forwarder::breaker`).
    pub breaker_after: u32,
    /// `/readyz` fails when records wait and nothing was inserted for this long.
    pub ready_stall: Duration,
}

impl Config {
    /// Checks what flags alone cannot.
    pub fn validate(&self) -> Result<(), super::Error> {
        let bad = |m: String| Err(super::Error::Config(m));
        if self.stream.is_empty() {
            return bad("the stream name or ARN is empty".into());
        }
        if self.source != SourceKind::Kinesis {
            if let StartPosition::AtTimestamp(_) = self.start {
                return bad(
                    "--start at-timestamp: DynamoDB Streams has no AT_TIMESTAMP iterator; \
                     use trim-horizon (the last 24 hours) or latest"
                        .into(),
                );
            }
        }
        let url = &self.clickhouse.url;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return bad(format!(
                "--clickhouse-url {url:?}: the ClickHouse HTTP interface is an http:// or https:// URL"
            ));
        }
        if self.clickhouse.timeout.is_zero() {
            return bad("--clickhouse-timeout must be above zero".into());
        }
        if self.breaker_after == 0 {
            return bad("--breaker-after must be at least 1".into());
        }
        if self.workers == 0 || self.worker_index >= self.workers {
            return bad(format!(
                "--worker-index {} must be below --workers {}",
                self.worker_index, self.workers
            ));
        }
        if self.batch.max_rows == 0 || self.batch.max_bytes == 0 {
            return bad("batch limits must be above zero".into());
        }
        if !(1..=10_000).contains(&self.records_per_call) {
            return bad(format!(
                "--records-per-call {} is outside 1..=10000",
                self.records_per_call
            ));
        }
        check_field_names(
            &self.flatten_options.version_field,
            &self.flatten_options.deleted_field,
        )
        .map_err(super::Error::Config)?;
        if let Some(path) = &self.clickhouse.ca_file {
            super::client::read_ca_file(path).map_err(super::Error::Config)?;
        }
        if self.max_buffer_bytes < self.batch.max_bytes {
            return bad(format!(
                "--max-buffer-bytes {} is below --batch-bytes {}: a batch could never fill",
                self.max_buffer_bytes, self.batch.max_bytes
            ));
        }
        Ok(())
    }

    /// The stream's name (the part after `stream/` in an ARN).
    pub fn stream_name(&self) -> &str {
        match self.stream.rsplit_once(":stream/") {
            Some((_, name)) => name,
            None => &self.stream,
        }
    }

    /// This process's name in the checkpoint table.
    pub fn worker_label(&self) -> String {
        format!("{}/{}", self.worker_index, self.workers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_names_are_checked_as_dynamo_flatten_checks_them() {
        assert_eq!(check_field_names("version", "is_deleted"), Ok(()));
        assert_eq!(check_field_names("v", "d"), Ok(()));
        assert!(check_field_names("v", "v")
            .unwrap_err()
            .contains("must differ"));
        assert!(check_field_names("v", "item_v")
            .unwrap_err()
            .contains("renamed form"));
        assert!(check_field_names("_extra", "d").is_err());
        assert!(check_field_names("", "d").is_err());
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "\"***\"");
        assert_eq!(s.expose(), "hunter2");
    }
}
