//! Errors of the UDF framing layer. Any of them ends the process: ClickHouse
//! then fails the query with the message written to stderr.

use std::fmt;
use std::io;

use crate::flatten;

#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Reading stdin or writing stdout failed.
    Io(io::Error),
    /// `--chunk-header` is set but a block did not start with `<rows>\n`.
    BadChunkHeader { block: u64, found: String },
    /// The first TabSeparated row is a bare row count: ClickHouse sends chunk
    /// headers but `--chunk-header` is not set.
    UnexpectedChunkHeader { found: String },
    /// Input ended in the middle of a row or a block.
    Truncated { what: String },
    /// A RowBinary row declared an impossible length.
    RowTooLarge { row: u64, len: u64 },
    /// The column list that came with a row cannot be used.
    Columns {
        row: u64,
        reason: flatten::PlanError,
    },
    /// A row could not be flattened and `--on-error fail` is set.
    Row {
        row: u64,
        block: u64,
        row_in_block: u64,
        reason: flatten::Error,
        input_prefix: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::BadChunkHeader { block, found } => write!(
                f,
                "block {block}: expected a chunk header (row count and newline), found {found:?}; \
                 send_chunk_header in the function config and --chunk-header must agree"
            ),
            Error::UnexpectedChunkHeader { found } => write!(
                f,
                "the first row {found:?} is a row count, not a document: the function config \
                 has send_chunk_header=1, so the command needs --chunk-header"
            ),
            Error::Truncated { what } => write!(f, "input ended {what}"),
            Error::RowTooLarge { row, len } => write!(
                f,
                "row {row}: RowBinary length {len} is too large; is the function's format RowBinary \
                 and its argument a String?"
            ),
            Error::Columns { row, reason } => write!(f, "row {row}: {reason}"),
            Error::Row {
                row,
                block,
                row_in_block,
                reason,
                input_prefix,
            } => write!(
                f,
                "row {row} (row {row_in_block} of block {block}): {reason}; input starts: {input_prefix:?}"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::Row { reason, .. } => Some(reason),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

impl Error {
    /// True when the reader of our output went away: not worth reporting.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Io(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }
}
