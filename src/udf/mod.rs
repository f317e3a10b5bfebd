//! The executable-UDF framing: reads rows from ClickHouse, flattens each
//! one, and answers with exactly one row per input row.
//!
//! Works in both ClickHouse modes. `executable` closes stdin after the
//! block; `executable_pool` keeps it open and reads exactly as many rows as
//! it sent, so every row that can be answered is written and flushed before
//! the next read would block. With `send_chunk_header`, each block starts
//! with its row count in ASCII and a newline (in every format).

mod error;
mod format;

pub use error::Error;
pub use format::Format;

use std::io::{self, Read, Write};
use std::sync::Arc;

use crate::flatten::{self, ColumnPlan, Flattener};
use format::Split;

/// What to do with a row that cannot be flattened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnError {
    /// Answer with an error row `{"_error":…,"_input":…}`.
    #[default]
    Row,
    /// Stop with an error: ClickHouse fails the query.
    Fail,
}

/// Framing settings.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    pub format: Format,
    pub chunk_header: bool,
    pub on_error: OnError,
    /// Each row has a second String value: the destination's column list, used as the
    /// flattener's column plan (parsed when it changes).
    pub columns_arg: bool,
}

/// Counts from one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub rows: u64,
    pub errors: u64,
    pub blocks: u64,
}

/// The read buffer's size (it grows for longer rows): 256 KiB stays in the core's L2
/// cache, where the kernel's copy writes it and the flattener reads it back (measured
/// ~4% faster than 1 MiB on a 64 MB file).
const READ_SIZE: usize = 1 << 18;

/// Serves rows from `input` until it ends.
pub fn run<R: Read, W: Write>(
    cfg: Config,
    flattener: &mut Flattener,
    mut input: R,
    mut output: W,
) -> Result<Stats, Error> {
    let mut s = Server {
        cfg,
        flattener,
        stats: Stats::default(),
        out: Vec::with_capacity(READ_SIZE + READ_SIZE / 2),
        value: Vec::new(),
        unescaped: Vec::new(),
        columns: None,
        left_in_block: 0,
        row_in_block: 0,
    };
    let mut buf = vec![0u8; READ_SIZE];
    let (mut start, mut end) = (0usize, 0usize);
    let mut eof = false;
    loop {
        // Rows answered before a failure are still written.
        let served = s.serve(&buf[start..end], eof);
        if !s.out.is_empty() {
            output.write_all(&s.out)?;
            output.flush()?;
            s.out.clear();
        }
        start += served?;
        if eof {
            return s.finish(end - start);
        }
        // Keep the unread tail; make room for a read.
        if start > 0 {
            buf.copy_within(start..end, 0);
            end -= start;
            start = 0;
        }
        if buf.len() - end < READ_SIZE / 4 {
            buf.resize(buf.len() * 2, 0);
        }
        let n = loop {
            match input.read(&mut buf[end..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
        };
        end += n;
        eof = n == 0;
    }
}

struct Server<'f> {
    cfg: Config,
    flattener: &'f mut Flattener,
    stats: Stats,
    /// Encoded answers not yet written.
    out: Vec<u8>,
    /// One flattened value before it is framed.
    value: Vec<u8>,
    /// One TabSeparated row after unescaping.
    unescaped: Vec<u8>,
    /// The column list of the plan in use (with `columns_arg`), as received.
    columns: Option<Vec<u8>>,
    /// Rows still to come in this block (with chunk headers).
    left_in_block: u64,
    row_in_block: u64,
}

impl Server<'_> {
    /// Answers every whole row in `data`; returns the bytes used.
    fn serve(&mut self, data: &[u8], eof: bool) -> Result<usize, Error> {
        let mut used = 0;
        loop {
            let rest = &data[used..];
            if self.cfg.chunk_header && self.left_in_block == 0 {
                match chunk_header(rest) {
                    Header::Rows(n, len) => {
                        used += len;
                        self.stats.blocks += 1;
                        self.left_in_block = n;
                        self.row_in_block = 0;
                        continue;
                    }
                    Header::NeedMore => return Ok(used),
                    Header::Bad => {
                        let shown =
                            String::from_utf8_lossy(&rest[..rest.len().min(20)]).into_owned();
                        return Err(Error::BadChunkHeader {
                            block: self.stats.blocks + 1,
                            found: shown,
                        });
                    }
                }
            }
            let mut second = (0, 0);
            let split = if self.cfg.columns_arg {
                self.cfg.format.split2(rest, eof, &mut second)
            } else {
                self.cfg.format.split(rest, eof)
            };
            match split {
                Split::Row {
                    start,
                    end,
                    used: n,
                } => {
                    if self.cfg.columns_arg {
                        self.use_columns(&rest[second.0..second.1])?;
                    }
                    self.row(&rest[start..end])?;
                    used += n;
                }
                Split::NeedMore => return Ok(used),
                Split::TooLarge(len) => {
                    return Err(Error::RowTooLarge {
                        row: self.stats.rows + 1,
                        len,
                    })
                }
            }
        }
    }

    /// Makes `list` (the row's column list) the flattener's plan, unless it already is.
    #[inline]
    fn use_columns(&mut self, list: &[u8]) -> Result<(), Error> {
        if self.columns.as_deref() == Some(list) {
            return Ok(());
        }
        let mut text = Vec::new();
        let list_bytes =
            if self.cfg.format == Format::TabSeparated && format::unescape_tsv(list, &mut text) {
                &text[..]
            } else {
                list
            };
        let row = self.stats.rows + 1;
        let plan = std::str::from_utf8(list_bytes)
            .map_err(|_| flatten::PlanError {
                column: None,
                at: 0,
                reason: "the column list is not UTF-8".into(),
            })
            .and_then(ColumnPlan::parse)
            .map_err(|reason| Error::Columns { row, reason })?;
        self.flattener.set_columns(Some(Arc::new(plan)));
        self.columns = Some(list.to_vec());
        Ok(())
    }

    #[inline]
    fn row(&mut self, raw: &[u8]) -> Result<(), Error> {
        if self.stats.rows == 0
            && !self.cfg.chunk_header
            && self.cfg.format == Format::TabSeparated
            && looks_like_chunk_header(raw)
        {
            return Err(Error::UnexpectedChunkHeader {
                found: String::from_utf8_lossy(raw).into_owned(),
            });
        }
        self.stats.rows += 1;
        self.row_in_block += 1;
        self.left_in_block = self.left_in_block.saturating_sub(1);
        let doc = if self.cfg.format == Format::TabSeparated
            && format::unescape_tsv(raw, &mut self.unescaped)
        {
            &self.unescaped[..]
        } else {
            raw
        };
        // Plain lines go straight into the output; the others are framed.
        let direct = self.cfg.format == Format::Lines;
        let dst = if direct {
            &mut self.out
        } else {
            &mut self.value
        };
        if !direct {
            dst.clear();
        }
        if let Err(e) = self.flattener.flatten(doc, dst) {
            self.stats.errors += 1;
            if self.cfg.on_error == OnError::Fail {
                let cut = doc.len().min(flatten::ERROR_INPUT_PREFIX);
                return Err(Error::Row {
                    row: self.stats.rows,
                    block: self.stats.blocks.max(1),
                    row_in_block: self.row_in_block,
                    reason: e,
                    input_prefix: String::from_utf8_lossy(&doc[..cut]).into_owned(),
                });
            }
            flatten::write_error_row(&e, doc, dst);
        }
        if direct {
            self.out.push(b'\n');
        } else {
            self.cfg.format.write_row(&self.value, &mut self.out);
        }
        Ok(())
    }

    fn finish(self, unread: usize) -> Result<Stats, Error> {
        if unread > 0 {
            return Err(Error::Truncated {
                what: format!("inside a row ({unread} bytes left over)"),
            });
        }
        if self.cfg.chunk_header && self.left_in_block > 0 {
            return Err(Error::Truncated {
                what: format!(
                    "with {} rows of block {} still to come",
                    self.left_in_block, self.stats.blocks
                ),
            });
        }
        Ok(self.stats)
    }
}

/// A row made only of digits is never a document. As the first row of a
/// TabSeparated stream it is a chunk header that was not asked for; answering
/// it would shift every later answer by one row. (In RowBinary the same
/// mismatch breaks the framing and fails on its own.)
fn looks_like_chunk_header(row: &[u8]) -> bool {
    !row.is_empty() && row.len() < 20 && row.iter().all(u8::is_ascii_digit)
}

enum Header {
    /// Row count and the header's length in bytes.
    Rows(u64, usize),
    NeedMore,
    Bad,
}

fn chunk_header(data: &[u8]) -> Header {
    let digits = data.iter().take_while(|c| c.is_ascii_digit()).count();
    match data.get(digits) {
        None if digits < 20 => Header::NeedMore,
        Some(b'\n') if digits > 0 => std::str::from_utf8(&data[..digits])
            .ok()
            .and_then(|d| d.parse().ok())
            .map_or(Header::Bad, |n| Header::Rows(n, digits + 1)),
        _ => Header::Bad,
    }
}
