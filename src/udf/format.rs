//! The wire formats: how a row is cut from the input and how a result is
//! written.
//!
//! - `RowBinary`: a String is a LEB128 length and the bytes; rows follow each
//!   other with no separator.
//! - `TabSeparated`: one row per line, backslash escapes (`\\`, `\t`, `\n`, …).
//! - `Lines`: one raw document per line, for shell use.

use memchr::memchr;

/// A row format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    RowBinary,
    TabSeparated,
    Lines,
}

/// The rows of one format: `[start, end)` of the row's value and the bytes
/// it took, or `None` when `data` does not hold a whole row yet.
pub(crate) enum Split {
    Row {
        start: usize,
        end: usize,
        used: usize,
    },
    NeedMore,
    /// RowBinary length beyond any real row.
    TooLarge(u64),
}

/// Rows longer than this are refused (ClickHouse's own String limit is 1 GiB).
pub(crate) const MAX_ROW: u64 = 1 << 30;

impl Format {
    /// Cuts the next row from `data`. With `eof`, a final line without a
    /// newline is a row.
    #[inline]
    pub(crate) fn split(self, data: &[u8], eof: bool) -> Split {
        match self {
            Format::RowBinary => {
                let Some((len, n)) = read_varint(data) else {
                    return Split::NeedMore;
                };
                if len > MAX_ROW {
                    return Split::TooLarge(len);
                }
                let end = n + len as usize;
                if end <= data.len() {
                    Split::Row {
                        start: n,
                        end,
                        used: end,
                    }
                } else {
                    Split::NeedMore
                }
            }
            Format::TabSeparated | Format::Lines => match memchr(b'\n', data) {
                Some(nl) => {
                    let mut end = nl;
                    if self == Format::Lines && end > 0 && data[end - 1] == b'\r' {
                        end -= 1;
                    }
                    Split::Row {
                        start: 0,
                        end,
                        used: nl + 1,
                    }
                }
                None if eof && !data.is_empty() => Split::Row {
                    start: 0,
                    end: data.len(),
                    used: data.len(),
                },
                None => Split::NeedMore,
            },
        }
    }

    /// Cuts the next row of two String columns (the document and the column list) from
    /// `data`; `second` gets the range of the second value. TabSeparated only (Lines has
    /// one value per row).
    #[inline]
    pub(crate) fn split2(self, data: &[u8], eof: bool, second: &mut (usize, usize)) -> Split {
        match self {
            Format::RowBinary => {
                let first = self.split(data, eof);
                let Split::Row { used, .. } = first else {
                    return first;
                };
                match self.split(&data[used..], eof) {
                    Split::Row {
                        start,
                        end,
                        used: n,
                    } => {
                        *second = (used + start, used + end);
                        match first {
                            Split::Row { start, end, .. } => Split::Row {
                                start,
                                end,
                                used: used + n,
                            },
                            other => other,
                        }
                    }
                    other => other,
                }
            }
            Format::TabSeparated | Format::Lines => {
                let row = self.split(data, eof);
                let Split::Row { start, end, used } = row else {
                    return row;
                };
                match memchr(b'\t', &data[start..end]) {
                    Some(tab) => {
                        *second = (start + tab + 1, end);
                        Split::Row {
                            start,
                            end: start + tab,
                            used,
                        }
                    }
                    None => {
                        *second = (end, end);
                        Split::Row { start, end, used }
                    }
                }
            }
        }
    }

    /// Appends `value` encoded as one result row.
    #[inline]
    pub(crate) fn write_row(self, value: &[u8], out: &mut Vec<u8>) {
        match self {
            Format::RowBinary => {
                write_varint(value.len() as u64, out);
                out.extend_from_slice(value);
            }
            Format::TabSeparated => {
                escape_tsv(value, out);
                out.push(b'\n');
            }
            Format::Lines => {
                out.extend_from_slice(value);
                out.push(b'\n');
            }
        }
    }
}

/// Reads a LEB128 unsigned integer; `None` if `data` ends inside it.
#[inline]
pub(crate) fn read_varint(data: &[u8]) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for (i, &b) in data.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    if data.len() >= 10 {
        // Ten continuation bytes: no real length looks like this.
        return Some((u64::MAX, 10));
    }
    None
}

#[inline]
pub(crate) fn write_varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// TabSeparated escaping of a value. JSON output holds no raw control
/// characters, so only backslashes need doubling, but all are handled.
fn escape_tsv(value: &[u8], out: &mut Vec<u8>) {
    let mut rest = value;
    while let Some(i) = rest
        .iter()
        .position(|&c| c == b'\\' || c == b'\t' || c == b'\n' || c == b'\r' || c == 0)
    {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(match rest[i] {
            b'\\' => b"\\\\",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            _ => b"\\0",
        });
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
}

/// Undoes TabSeparated escaping (`\\ \t \n \r \b \f \0 \a \v \' \" \xHH`);
/// returns `None` when `value` has no backslash and is used as it is.
pub(crate) fn unescape_tsv(value: &[u8], out: &mut Vec<u8>) -> bool {
    let Some(first) = memchr(b'\\', value) else {
        return false;
    };
    out.clear();
    out.extend_from_slice(&value[..first]);
    let mut i = first;
    while i < value.len() {
        let c = value[i];
        if c != b'\\' || i + 1 == value.len() {
            out.push(c);
            i += 1;
            continue;
        }
        let e = value[i + 1];
        i += 2;
        match e {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'0' => out.push(0),
            b'a' => out.push(0x07),
            b'v' => out.push(0x0b),
            b'x' => match value.get(i..i + 2).and_then(|h| {
                std::str::from_utf8(h)
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            }) {
                Some(byte) => {
                    out.push(byte);
                    i += 2;
                }
                None => out.extend_from_slice(b"\\x"),
            },
            // `\\`, `\'`, `\"` and unknown escapes: the character itself.
            other => out.push(other),
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trip() {
        for v in [0u64, 1, 127, 128, 300, 16_383, 16_384, 1 << 35, u64::MAX] {
            let mut b = Vec::new();
            write_varint(v, &mut b);
            assert_eq!(read_varint(&b), Some((v, b.len())));
            assert_eq!(read_varint(&b[..b.len() - 1]), None);
        }
    }

    #[test]
    fn tsv_escapes_round_trip() {
        let raw = b"a\\b\tc\nd\re\0f \"q\"";
        let mut esc = Vec::new();
        escape_tsv(raw, &mut esc);
        assert_eq!(&esc, b"a\\\\b\\tc\\nd\\re\\0f \"q\"");
        let mut back = Vec::new();
        assert!(unescape_tsv(&esc, &mut back));
        assert_eq!(&back, raw);
        assert!(!unescape_tsv(b"plain", &mut back));
        assert!(unescape_tsv(b"\\x41\\'", &mut back));
        assert_eq!(&back, b"A'");
    }

    #[test]
    fn split_lines_and_rowbinary() {
        match Format::Lines.split(b"ab\r\ncd", false) {
            Split::Row { start, end, used } => assert_eq!((start, end, used), (0, 2, 4)),
            _ => panic!(),
        }
        assert!(matches!(Format::Lines.split(b"cd", false), Split::NeedMore));
        assert!(matches!(
            Format::Lines.split(b"cd", true),
            Split::Row {
                end: 2,
                used: 2,
                ..
            }
        ));
        assert!(matches!(
            Format::RowBinary.split(b"\x03abcX", false),
            Split::Row {
                start: 1,
                end: 4,
                used: 4
            }
        ));
        assert!(matches!(
            Format::RowBinary.split(b"\x05abc", false),
            Split::NeedMore
        ));
        assert!(matches!(
            Format::RowBinary.split(&[0xff; 12], false),
            Split::TooLarge(_)
        ));
    }

    #[test]
    fn split_two_values() {
        let mut second = (0, 0);
        assert!(matches!(
            Format::RowBinary.split2(b"\x03abc\x02xyZ", false, &mut second),
            Split::Row {
                start: 1,
                end: 4,
                used: 7
            }
        ));
        assert_eq!(second, (5, 7));
        assert!(matches!(
            Format::RowBinary.split2(b"\x03abc\x05xy", false, &mut second),
            Split::NeedMore
        ));
        assert!(matches!(
            Format::TabSeparated.split2(b"ab\tc d\nrest", false, &mut second),
            Split::Row {
                start: 0,
                end: 2,
                used: 7
            }
        ));
        assert_eq!(second, (3, 6));
    }
}
