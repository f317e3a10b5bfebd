//! The forwarder's error type.

use std::fmt;

/// Why the forwarder stopped.
#[derive(Debug)]
pub enum Error {
    /// A setting is wrong (found at start-up).
    Config(String),
    /// A Kinesis call failed in a way retrying cannot fix (stream missing, access denied, …).
    Kinesis(String),
    /// A ClickHouse call failed in a way retrying cannot fix, or shutdown came first.
    ClickHouse(String),
    /// A checkpoint points at data the stream no longer holds.
    CheckpointExpired(String),
    /// The destination table cannot take the rows `--flatten local` writes (found at start-up).
    Destination(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(m) => write!(f, "configuration: {m}"),
            Error::Kinesis(m) => write!(f, "kinesis: {m}"),
            Error::ClickHouse(m) => write!(f, "clickhouse: {m}"),
            Error::CheckpointExpired(m) => write!(f, "checkpoint: {m}"),
            Error::Destination(m) => write!(f, "destination: {m}"),
        }
    }
}

impl std::error::Error for Error {}
