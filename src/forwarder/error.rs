//! The forwarder's error type: why it stopped, and so its exit status.

use std::fmt;

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why the forwarder stopped.
#[derive(Debug)]
pub enum Error {
    /// A setting is wrong (found before anything is contacted). Exit status 2.
    Config(String),
    /// At start-up, something that no retry can fix: the URL, the credentials, the
    /// database, a table or stream that does not exist, a destination that cannot take the
    /// rows. Exit status 3.
    StartUp {
        what: String,
        source: Option<Source>,
    },
    /// A checkpoint points at data the stream no longer holds. Exit status 1.
    CheckpointExpired(String),
    /// Reading the stream failed in a way retrying cannot fix (it was deleted, …).
    Stream { what: String, source: Source },
    /// The stop came before the open batch was delivered; it is read again at the next start.
    Abandoned(String),
    /// A task of the forwarder failed.
    Task { what: &'static str, source: Source },
}

impl Error {
    pub(crate) fn start_up(what: impl Into<String>) -> Error {
        Error::StartUp {
            what: what.into(),
            source: None,
        }
    }

    /// The process's exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config(_) => 2,
            Error::StartUp { .. } => 3,
            _ => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(m) => write!(f, "configuration: {m}"),
            Error::StartUp { what, source: None } => write!(f, "cannot start: {what}"),
            Error::StartUp {
                what,
                source: Some(s),
            } => write!(f, "cannot start: {what}: {s}"),
            Error::CheckpointExpired(m) => write!(f, "checkpoint: {m}"),
            Error::Stream { what, source } => write!(f, "stream: {what}: {source}"),
            Error::Abandoned(m) => write!(f, "stopped: {m}"),
            Error::Task { what, source } => write!(f, "{what}: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::StartUp {
                source: Some(s), ..
            }
            | Error::Stream { source: s, .. }
            | Error::Task { source: s, .. } => Some(s.as_ref()),
            _ => None,
        }
    }
}
