//! The column-aware writer: each attribute converted exactly to its column's type, or
//! kept as DynamoDB JSON in `_extra` when there is no column for it or it does not fit.
//!
//! One pass, like the plain transcoder: a value is converted while it is read; only a
//! misfit is read a second time, from its start, into `_extra`.

use hashbrown::HashTable;

use super::decimal::Dec;
use super::error::{Error, ErrorKind};
use super::fast::Attr;
use super::item::{open_item, Reserved, Style, Transcoder};
use super::plan::{ColumnPlan, Ty, EXTRA_FIELD};
use super::scan::{Cursor, Result, Str, MAX_JSON_DEPTH};

/// The columns of a plan by name, without those the flattener writes itself.
#[derive(Clone, Debug)]
pub(crate) struct Lookup {
    by_name: HashTable<Entry>,
    types: Vec<Ty>,
    /// Key columns: (index, name); key j is bit j of a row's mask of written keys.
    keys: Vec<(usize, String)>,
    /// By column index: its bit in that mask (0 for a column that is not a key).
    key_bits: Vec<u64>,
}

/// A column's name in [`Lookup`], with two words of it (see [`name_words`]), which with
/// its length are the whole name up to 16 bytes: most names are told apart from another
/// one by compares, without a call to compare bytes.
#[derive(Clone, Debug)]
struct Entry {
    words: (u64, u64),
    name: Box<[u8]>,
    index: usize,
}

/// Two words that, with the length, make up a name of up to 16 bytes: its first and
/// last 8 bytes (overlapping below 16), 4 bytes each way below 8, and bytes 0, n / 2
/// and n - 1 below 4; together they hold each of its bytes.
#[inline]
fn name_words(name: &[u8]) -> (u64, u64) {
    let n = name.len();
    let at = |k: usize| name.get(k).map_or(0, |&c| u64::from(c));
    let word = |k: usize| {
        name.get(k..k + 8)
            .and_then(|w| w.try_into().ok())
            .map_or(0, u64::from_le_bytes)
    };
    let half = |k: usize| {
        name.get(k..k + 4)
            .and_then(|w| w.try_into().ok())
            .map_or(0, |w| u64::from(u32::from_le_bytes(w)))
    };
    if n >= 8 {
        (word(0), word(n - 8))
    } else if n >= 4 {
        (half(0), half(n - 4))
    } else {
        (at(0) | at(n / 2) << 8 | at(n.wrapping_sub(1)) << 16, 0)
    }
}

/// The hash of a name from its length and words (a folded multiply of each).
#[inline]
fn name_hash(len: usize, (a, b): (u64, u64)) -> u64 {
    let fold = |x: u64, k: u64| {
        let m = u128::from(x) * u128::from(k);
        (m as u64) ^ (m >> 64) as u64
    };
    fold(a ^ len as u64, 0x9e37_79b9_7f4a_7c15) ^ fold(b, 0xc2b2_ae3d_27d4_eb4f)
}

impl Lookup {
    /// `skip`: names that are not attribute columns (the metadata fields).
    pub(crate) fn new(plan: &ColumnPlan, skip: &[&str]) -> Lookup {
        let mut by_name = HashTable::new();
        let mut types = Vec::new();
        for c in plan.columns() {
            if c.name == EXTRA_FIELD || skip.contains(&c.name.as_str()) {
                continue;
            }
            let name = c.name.as_bytes();
            let words = name_words(name);
            let hash = name_hash(name.len(), words);
            let entry = Entry {
                words,
                name: name.into(),
                index: types.len(),
            };
            // The plan's names are distinct (`ColumnPlan::parse` refuses a name twice).
            by_name.insert_unique(hash, entry, |e| name_hash(e.name.len(), e.words));
            types.push(c.ty.clone());
        }
        let mut lookup = Lookup {
            by_name,
            types,
            keys: Vec::new(),
            key_bits: Vec::new(),
        };
        lookup.keys = plan
            .keys()
            .iter()
            .filter_map(|k| lookup.index(k.as_bytes()).map(|i| (i, k.clone())))
            .take(64)
            .collect();
        lookup.key_bits = vec![0; lookup.types.len()];
        for (j, &(i, _)) in lookup.keys.iter().enumerate() {
            lookup.key_bits[i] = 1 << j;
        }
        lookup
    }

    #[inline]
    fn index(&self, name: &[u8]) -> Option<usize> {
        let (len, words) = (name.len(), name_words(name));
        self.by_name
            .find(name_hash(len, words), |e| {
                e.name.len() == len && e.words == words && (len <= 16 || *e.name == *name)
            })
            .map(|e| e.index)
    }

    #[inline]
    fn get(&self, name: &[u8]) -> Option<(usize, &Ty)> {
        let i = self.index(name)?;
        Some((i, &self.types[i]))
    }
}

pub(crate) struct ColumnWriter<'a, 'o> {
    pub(crate) c: Cursor<'a>,
    pub(crate) out: &'o mut Vec<u8>,
    pub(crate) extra: &'o mut Vec<u8>,
    pub(crate) scratch: &'o mut Vec<u8>,
    /// A nested document before it is quoted.
    pub(crate) doc: &'o mut Vec<u8>,
    /// B values are base64 of base64 (Kinesis records).
    pub(crate) unwrap_binary: bool,
    /// When the fast path took the item: where each attribute stands (offsets from the
    /// item's `{`), and the plain row it wrote. A value kept in `_extra` is then copied
    /// as it stands, which is what the transcoder writes of it (compact DynamoDB JSON,
    /// checked), and a plain value that its column takes as it is, from that row.
    pub(crate) fast: Option<(&'o [Attr], &'o [u8])>,
}

/// Significant digits up to which a Float64 gives back the same decimal text.
const FLOAT64_EXACT_DIGITS: usize = 15;

impl<'a> ColumnWriter<'a, '_> {
    /// Runs `f` on a plain transcoder at the cursor, writing to the output (or, with
    /// `typed`, DynamoDB JSON to `_extra`), and moves the cursor past what it read.
    #[inline]
    fn with<R>(
        &mut self,
        typed: bool,
        f: impl FnOnce(&mut Transcoder<'a, '_>) -> Result<R>,
    ) -> Result<R> {
        let style = Style {
            numbers_as_strings: false,
            unwrap_binary: self.unwrap_binary,
            typed,
        };
        let mut t = Transcoder {
            c: Cursor::at(self.c.b, self.c.i),
            out: if typed {
                &mut *self.extra
            } else {
                &mut *self.out
            },
            style,
            scratch: &mut *self.scratch,
        };
        let r = f(&mut t);
        self.c.i = t.c.i;
        r
    }

    /// The top-level attribute map at `depth` open containers. Writes `{`, the attributes
    /// that fit their columns and `"_extra":{…}`, without the closing brace.
    pub(crate) fn top_item(
        &mut self,
        depth: usize,
        reserved: Option<&Reserved>,
        lookup: &Lookup,
    ) -> Result<()> {
        let open = open_item(&mut self.c, self.out)?;
        self.extra.clear();
        self.extra.push(b'{');
        if let Some((attrs, plain)) = self.fast {
            let mark = self.out.len();
            if self.top_item_fast(open, attrs, plain, depth, lookup)? {
                return Ok(());
            }
            // Not reached (the fast path's records are within what it read and wrote);
            // if it were, the item is read the general way.
            debug_assert!(false, "fast path records out of bounds at {open}");
            self.out.truncate(mark);
            self.extra.truncate(1);
            self.c.i = open + 1;
        }
        let b = self.c.b;
        let mut wrote = false;
        // Bit 2j: attribute named like metadata field j; bit 2j+1: like its renamed form.
        let mut seen = 0u32;
        let mut keys_written = 0u64;
        loop {
            let key = self.c.string("an attribute name")?;
            let decoded = key.decoded(b);
            let name: &[u8] = &decoded;
            let (out_key, column) = column_name(name, key, b, reserved, &mut seen)?;
            self.c.expect(b':', "':'")?;
            let start = self.c.i;
            let mark = self.out.len();
            let mut fit = false;
            if name != EXTRA_FIELD.as_bytes() {
                if let Some((i, ty)) = lookup.get(column) {
                    if wrote {
                        self.out.push(b',');
                    }
                    self.out.extend_from_slice(out_key);
                    self.out.push(b':');
                    fit = self.convert(ty, depth + 1)?;
                    if fit {
                        keys_written |= lookup.key_bits[i];
                    }
                }
            }
            if fit {
                wrote = true;
            } else {
                self.out.truncate(mark);
                self.c.i = start;
                if self.extra.len() > 1 {
                    self.extra.push(b',');
                }
                self.extra.extend_from_slice(key.quoted(b));
                self.extra.push(b':');
                self.with(true, |t| t.value(depth + 1))?;
            }
            match self.c.peek()? {
                b',' => self.c.i += 1,
                b'}' => {
                    self.c.i += 1;
                    break;
                }
                _ => return Err(self.c.unexpected("',' or '}'")),
            }
        }
        if let Some(r) = reserved {
            r.check(seen, open)?;
        }
        self.finish_item(open, wrote, keys_written, lookup)
    }

    /// [`Self::top_item`] of an item the fast path took, after the item's `{` at `open`:
    /// the attributes are where it found them. Their names have no escapes and are none
    /// of the metadata names (the fast path leaves such items to the transcoder), so
    /// they are written and looked up as they stand. `Ok(false)` if a record does not
    /// fit the item or the plain row.
    fn top_item_fast(
        &mut self,
        open: usize,
        attrs: &[Attr],
        plain: &[u8],
        depth: usize,
        lookup: &Lookup,
    ) -> Result<bool> {
        let item = &self.c.b[open..];
        let (mut wrote, mut keys_written) = (false, 0u64);
        for a in attrs {
            let spans = (
                item.get(a.name..a.value.saturating_sub(2)),
                item.get(a.name.wrapping_sub(1)..a.value.saturating_sub(1)),
                item.get(a.value..a.end),
                plain.get(a.out.0..a.out.1),
            );
            let (Some(name), Some(quoted), Some(value), Some(plain)) = spans else {
                return Ok(false);
            };
            let mut fit = false;
            if name != EXTRA_FIELD.as_bytes() {
                if let Some((i, ty)) = lookup.get(name) {
                    let mark = self.out.len();
                    if wrote {
                        self.out.push(b',');
                    }
                    self.out.extend_from_slice(quoted);
                    self.out.push(b':');
                    fit = self.convert_fast(ty, open + a.value, value, plain, depth + 1)?;
                    if fit {
                        keys_written |= lookup.key_bits[i];
                        wrote = true;
                    } else {
                        self.out.truncate(mark);
                    }
                }
            }
            if !fit {
                if self.extra.len() > 1 {
                    self.extra.push(b',');
                }
                self.extra.extend_from_slice(quoted);
                self.extra.push(b':');
                self.extra.extend_from_slice(value);
            }
        }
        // Past the item's `}`, which follows the last value.
        self.c.i = open + attrs.last().map_or(0, |a| a.end) + 1;
        self.finish_item(open, wrote, keys_written, lookup)?;
        Ok(true)
    }

    /// A value of an item the fast path took, at `at`: `value` is its DynamoDB JSON
    /// (compact, checked), `plain` what the fast path wrote of it, which is what the
    /// transcoder writes. Copied when the column takes it as it is, quoted for a String
    /// column of a map or list; a number's text is taken from between its quotes;
    /// anything else is converted from `at`.
    fn convert_fast(
        &mut self,
        ty: &Ty,
        at: usize,
        value: &[u8],
        plain: &[u8],
        depth: usize,
    ) -> Result<bool> {
        // `{"T":…}`: the tag is at most four bytes, then `":`.
        let tag = value
            .get(2..value.len().min(8))
            .and_then(|t| t.split(|&c| c == b'"').next())
            .unwrap_or_default();
        let as_is = match ty.base() {
            Ty::String if matches!(tag, b"M" | b"L") => {
                // The plain document, as a JSON string (see `tagged`).
                json_quote(plain, self.out);
                return Ok(true);
            }
            Ty::String => matches!(tag, b"S" | b"B"),
            Ty::Bool => tag == b"BOOL",
            Ty::Array(el) => matches!(tag, b"SS" | b"BS") && *el.base() == Ty::String,
            Ty::Int { .. } | Ty::Decimal { .. } | Ty::Float32 | Ty::Float64 if tag == b"N" => {
                // `{"N":"…"}`.
                let text = value
                    .get(6..value.len().saturating_sub(2))
                    .unwrap_or_default();
                return self.number_text(ty.base(), text);
            }
            _ => false,
        };
        if as_is {
            self.out.extend_from_slice(plain);
            return Ok(true);
        }
        self.c.i = at;
        self.convert(ty, depth)
    }

    /// After the attributes: the key columns' check, then `_extra`.
    fn finish_item(
        &mut self,
        open: usize,
        wrote: bool,
        keys_written: u64,
        lookup: &Lookup,
    ) -> Result<()> {
        if keys_written.count_ones() as usize != lookup.keys.len() {
            let name = lookup
                .keys
                .iter()
                .enumerate()
                .find(|(b, _)| keys_written & (1 << b) == 0)
                .map(|(_, (_, k))| k.clone())
                .unwrap_or_default();
            return Err(Error::new(ErrorKind::KeyNotFitting(name), open));
        }
        self.extra.push(b'}');
        if wrote {
            self.out.push(b',');
        }
        self.out.extend_from_slice(b"\"_extra\":");
        // A JSON string, so that ClickHouse keeps the text exactly (escapes included).
        json_quote(self.extra, self.out);
        Ok(())
    }

    #[cold]
    fn wrong(&self, tag: &'static str, expected: &'static str) -> Error {
        self.c.err(ErrorKind::WrongValue { tag, expected })
    }

    /// Converts the attribute value object at the cursor to `ty` and writes it. `Ok(false)`
    /// when it does not fit: the cursor and the output are then left anywhere.
    fn convert(&mut self, ty: &Ty, depth: usize) -> Result<bool> {
        let tag = self.with(false, |t| t.open_value(depth))?;
        if !self.tagged(ty, tag, depth)? {
            return Ok(false);
        }
        self.with(false, |t| t.close_value())?;
        Ok(true)
    }

    fn tagged(&mut self, ty: &Ty, tag: &[u8], depth: usize) -> Result<bool> {
        if tag == b"NULL" {
            if !matches!(ty, Ty::Nullable(_)) {
                return Ok(false);
            }
            self.with(false, |t| t.null())?;
            self.out.extend_from_slice(b"null");
            return Ok(true);
        }
        let plain = |w: &mut Self| w.with(false, |t| t.tagged(tag, depth)).map(|()| true);
        match ty.base() {
            Ty::String => match tag {
                b"S" | b"B" => plain(self),
                // As a JSON string of the plain JSON text: read back as nested JSON,
                // ClickHouse would rewrite the numbers through Float64.
                b"M" | b"L" => {
                    // The document is written into `doc` (the buffers are swapped for it),
                    // then quoted into the row.
                    self.doc.clear();
                    std::mem::swap(self.out, self.doc);
                    let r = self.with(false, |t| t.tagged(tag, depth));
                    std::mem::swap(self.out, self.doc);
                    r?;
                    json_quote(self.doc, self.out);
                    Ok(true)
                }
                _ => Ok(false),
            },
            Ty::Bool => match tag {
                b"BOOL" => plain(self),
                _ => Ok(false),
            },
            t @ (Ty::Int { .. } | Ty::Decimal { .. } | Ty::Float32 | Ty::Float64) => match tag {
                b"N" => self.number(t),
                _ => Ok(false),
            },
            Ty::Array(el) => match tag {
                b"L" => self.list(el, depth + 1),
                b"SS" | b"BS" if *el.base() == Ty::String => plain(self),
                b"SS" if matches!(el.base(), Ty::DateTime { .. }) => self.string_set(el),
                b"NS" => self.number_set(el, depth),
                _ => Ok(false),
            },
            Ty::Map(v) => match tag {
                b"M" => self.map(v, depth + 1),
                _ => Ok(false),
            },
            Ty::Json => match tag {
                b"M" => self.json_map(depth + 1),
                _ => Ok(false),
            },
            Ty::DateTime { precision, wide } => match tag {
                b"S" => self.datetime(*precision, *wide),
                _ => Ok(false),
            },
            Ty::Nullable(_) => Ok(false),
        }
    }

    /// An `N` value into a number type (no Nullable).
    fn number(&mut self, ty: &Ty) -> Result<bool> {
        let s = self.with(false, |t| t.number_str())?;
        self.number_text(ty, s.content(self.c.b))
    }

    /// A number's text (checked) into a number type.
    fn number_text(&mut self, ty: &Ty, text: &[u8]) -> Result<bool> {
        if let Some(fit) = plain_number(ty, text, self.out) {
            return Ok(fit);
        }
        let Some(d) = Dec::parse(text) else {
            return Ok(false);
        };
        write_number(ty, &d, text, self.out)
    }

    /// The members of a container whose opening byte (`[` or `{`) is at the cursor: copies
    /// the brackets and the commas, and writes each member with `member`, which returns
    /// false for a misfit (then this returns false at once).
    fn members(&mut self, member: impl Fn(&mut Self) -> Result<bool>) -> Result<bool> {
        let (open, close, expected) = match self.c.b.get(self.c.i) {
            Some(b'[') => (b'[', b']', "',' or ']'"),
            _ => (b'{', b'}', "',' or '}'"),
        };
        self.c.i += 1;
        self.out.push(open);
        if self.c.peek()? == close {
            self.c.i += 1;
            self.out.push(close);
            return Ok(true);
        }
        loop {
            if !member(self)? {
                return Ok(false);
            }
            match self.c.peek()? {
                b',' => {
                    self.c.i += 1;
                    self.out.push(b',');
                }
                c if c == close => {
                    self.c.i += 1;
                    self.out.push(close);
                    return Ok(true);
                }
                _ => return Err(self.c.unexpected(expected)),
            }
        }
    }

    /// An `SS` value into `Array(T)` of a type that takes strings (not String itself):
    /// every element must fit T.
    fn string_set(&mut self, el: &Ty) -> Result<bool> {
        let Ty::DateTime { precision, wide } = *el.base() else {
            return Ok(false);
        };
        if self.c.peek()? != b'[' {
            return Err(self.wrong("SS", "an array of strings"));
        }
        self.members(|w| {
            if w.c.peek()? != b'"' {
                return Err(w.wrong("SS", "an array of strings"));
            }
            w.datetime(precision, wide)
        })
    }

    /// An `NS` value into `Array(T)`: every element must fit T.
    fn number_set(&mut self, el: &Ty, depth: usize) -> Result<bool> {
        if !matches!(
            el.base(),
            Ty::Int { .. } | Ty::Decimal { .. } | Ty::Float32 | Ty::Float64
        ) {
            return Ok(false);
        }
        if depth + 1 >= MAX_JSON_DEPTH {
            return Err(self.c.err(ErrorKind::TooDeep));
        }
        if self.c.peek()? != b'[' {
            return Err(self.wrong("NS", "an array of strings"));
        }
        self.members(|w| w.number(el.base()))
    }

    /// An `L` value into `Array(T)`.
    fn list(&mut self, el: &Ty, depth: usize) -> Result<bool> {
        if self.c.peek()? != b'[' {
            return Err(self.wrong("L", "an array"));
        }
        self.members(|w| w.convert(el, depth + 1))
    }

    /// An `M` value into `Map(String, T)`.
    fn map(&mut self, v: &Ty, depth: usize) -> Result<bool> {
        if self.c.peek()? != b'{' {
            return Err(self.wrong("M", "an object"));
        }
        self.members(|w| {
            w.with(false, |t| t.key())?;
            w.convert(v, depth + 1)
        })
    }

    /// An `M` value into a `JSON` column: numbers as JSON numbers only where the JSON
    /// type reads them back exactly, and no key with a dot (the JSON type would split it
    /// into a path).
    fn json_map(&mut self, depth: usize) -> Result<bool> {
        if self.c.peek()? != b'{' {
            return Err(self.wrong("M", "an object"));
        }
        self.members(|w| {
            let key = w.c.string("an attribute name")?;
            if has_dot(key, w.c.b) {
                return Ok(false);
            }
            w.out.extend_from_slice(key.quoted(w.c.b));
            w.c.expect(b':', "':'")?;
            w.out.push(b':');
            w.json_value(depth + 1)
        })
    }

    /// One attribute value inside a `JSON` column.
    fn json_value(&mut self, depth: usize) -> Result<bool> {
        let tag = self.with(false, |t| t.open_value(depth))?;
        let number = |w: &mut Self| {
            let s = w.with(false, |t| t.number_str())?;
            json_number(s.content(w.c.b), w.out);
            Ok(true)
        };
        let fit = match tag {
            b"N" => number(self)?,
            b"NS" => {
                if self.c.peek()? != b'[' {
                    return Err(self.wrong("NS", "an array of strings"));
                }
                self.members(number)?
            }
            b"M" => self.json_map(depth + 1)?,
            b"L" => {
                if self.c.peek()? != b'[' {
                    return Err(self.wrong("L", "an array"));
                }
                self.members(|w| w.json_value(depth + 2))?
            }
            _ => {
                self.with(false, |t| t.tagged(tag, depth))?;
                true
            }
        };
        if fit {
            self.with(false, |t| t.close_value())?;
        }
        Ok(fit)
    }

    /// An ISO-8601 `S` value into `DateTime64(p)` / `DateTime`.
    fn datetime(&mut self, precision: u8, wide: bool) -> Result<bool> {
        let s = self.with(false, |t| {
            if t.c.peek()? != b'"' {
                return Err(t.wrong("S", "a string"));
            }
            t.c.string("a string")
        })?;
        if s.escaped {
            return Ok(false);
        }
        match super::datetime::parse(s.content(self.c.b), precision, wide) {
            Some(dt) => {
                dt.write(self.out);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

/// The name an attribute is written and looked up under (renamed when it is a metadata
/// field's name), as JSON text and as plain bytes.
fn column_name<'k>(
    name: &'k [u8],
    key: Str,
    b: &'k [u8],
    reserved: Option<&'k Reserved>,
    seen: &mut u32,
) -> Result<(&'k [u8], &'k [u8])> {
    if let Some(r) = reserved {
        if let Some(j) = r.rename(name, key.start - 1, seen)? {
            let (_, renamed, renamed_json) = &r.names[j];
            return Ok((renamed_json, renamed));
        }
    }
    Ok((key.quoted(b), name))
}

/// Appends `text`, JSON written by the transcoder, as a JSON string: `"` and `\\`
/// escaped. (Such text holds no raw control characters: strings with them are refused,
/// and no whitespace is copied between tokens.)
fn json_quote(text: &[u8], out: &mut Vec<u8>) {
    // Room made beforehand: twice the text, the quotes, and a block's store past it.
    let start = out.len();
    out.resize(start + 2 * text.len() + 2 + 16, 0);
    let buf = &mut out[start..];
    buf[0] = b'"';
    let j = 1 + quote_into(text, &mut buf[1..]);
    buf[j] = b'"';
    out.truncate(start + j + 1);
}

/// Writes `text` with a backslash before each `"` and `\\` at the start of `buf`, which
/// holds at least `2 * text.len() + 16` bytes; returns the bytes written.
#[inline]
fn quote_into(text: &[u8], buf: &mut [u8]) -> usize {
    #[cfg(target_arch = "x86_64")]
    if has_quote_avx512() {
        // SAFETY: `has_quote_avx512` found every feature it is compiled with.
        return unsafe { quote_avx512(text, buf) };
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("ssse3") {
        // SAFETY: SSSE3 was found just above.
        return unsafe { quote_ssse3_from(text, buf, 0, 0) };
    }
    quote_bytes(text, buf, 0, 0)
}

/// [`quote_into`] a byte at a time, from `text[k..]` and `buf[j..]`.
fn quote_bytes(text: &[u8], buf: &mut [u8], mut k: usize, mut j: usize) -> usize {
    while let Some(&c) = text.get(k) {
        if c == b'"' || c == b'\\' {
            buf[j] = b'\\';
            j += 1;
        }
        buf[j] = c;
        j += 1;
        k += 1;
    }
    j
}

/// For each mask of the `"` and `\\` among eight bytes, the shuffle that spreads the
/// eight bytes over sixteen with a gap (0x80: a zero) before each marked one.
#[cfg(target_arch = "x86_64")]
static SPREAD: [[u8; 16]; 256] = {
    let mut t = [[0x80u8; 16]; 256];
    let mut m = 0;
    while m < 256 {
        let (mut pos, mut b) = (0, 0);
        while b < 8 {
            if m >> b & 1 == 1 {
                pos += 1;
            }
            t[m][pos] = b as u8;
            pos += 1;
            b += 1;
        }
        m += 1;
    }
    t
};

/// [`quote_into`] eight bytes at a time without a branch on them, from `text[k..]` and
/// `buf[j..]` (`j <= 2 * k`): the bytes spread by a shuffle from [`SPREAD`], a backslash
/// in each gap.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "ssse3,popcnt")]
unsafe fn quote_ssse3_from(text: &[u8], buf: &mut [u8], mut k: usize, mut j: usize) -> usize {
    use std::arch::x86_64::*;
    let quote = _mm_set1_epi8(b'"' as i8);
    let backslash = _mm_set1_epi8(b'\\' as i8);
    let gap = _mm_set1_epi8(0x80u8 as i8);
    while let Some(src) = text.get(k..k + 8) {
        // `buf` holds 2 * len + 16 bytes and `j <= 2 * k`, so 16 fit at `j`.
        let dst = &mut buf[j..j + 16];
        // SAFETY: SSSE3 (the caller's check); `src` holds the 8 bytes loaded and `dst`
        // the 16 stored (both checked by the indexing above).
        let marked = unsafe {
            let v = _mm_loadl_epi64(src.as_ptr().cast());
            let special = _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash));
            let m = (_mm_movemask_epi8(special) & 0xff) as usize;
            let spread = _mm_loadu_si128(SPREAD[m].as_ptr().cast());
            let bytes = _mm_shuffle_epi8(v, spread);
            let gaps = _mm_and_si128(_mm_cmpeq_epi8(spread, gap), backslash);
            _mm_storeu_si128(dst.as_mut_ptr().cast(), _mm_or_si128(bytes, gaps));
            m.count_ones() as usize
        };
        j += 8 + marked;
        k += 8;
    }
    quote_bytes(text, buf, k, j)
}

/// Whether the CPU runs [`quote_avx512`].
#[cfg(target_arch = "x86_64")]
#[inline]
fn has_quote_avx512() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512vbmi2")
        && std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("bmi2")
        && std::arch::is_x86_feature_detected!("popcnt")
}

/// [`quote_into`] 32 bytes at a time: the marks of the `"` and `\\` among them give (by
/// `pext` of the interleaved slots) the places of the 32 bytes among up to 64, which
/// `vpexpandb` spreads them to; the places between get a backslash.
///
/// # Safety
/// The CPU has the features [`has_quote_avx512`] checks.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi2,avx2,bmi2,popcnt")]
unsafe fn quote_avx512(text: &[u8], buf: &mut [u8]) -> usize {
    use std::arch::x86_64::*;
    let (mut k, mut j) = (0, 0);
    let quote = _mm256_set1_epi8(b'"' as i8);
    let backslash = _mm256_set1_epi8(b'\\' as i8);
    let backslashes = _mm512_set1_epi8(b'\\' as i8);
    while let Some(src) = text.get(k..k + 32) {
        // `buf` holds 2 * len + 16 bytes and `j <= 2 * k`, so 64 fit at `j`.
        let dst = &mut buf[j..j + 64];
        // SAFETY: the features are the caller's; `src` holds the 32 bytes loaded and
        // `dst` the 64 stored (both checked by the indexing above).
        let marked = unsafe {
            let v = _mm256_loadu_si256(src.as_ptr().cast());
            let special =
                _mm256_or_si256(_mm256_cmpeq_epi8(v, quote), _mm256_cmpeq_epi8(v, backslash));
            let marks = u64::from(_mm256_movemask_epi8(special) as u32);
            // Two slots per byte, a backslash's (used when marked) then the byte's; the
            // bytes' slots among the used ones are where they go.
            const BYTE_SLOTS: u64 = 0xaaaa_aaaa_aaaa_aaaa;
            let used = BYTE_SLOTS | _pdep_u64(marks, !BYTE_SLOTS);
            let places = _pext_u64(BYTE_SLOTS, used);
            let spread = _mm512_maskz_expand_epi8(places, _mm512_castsi256_si512(v));
            let out = _mm512_mask_blend_epi8(places, backslashes, spread);
            _mm512_storeu_si512(dst.as_mut_ptr().cast(), out);
            marks.count_ones() as usize
        };
        j += 32 + marked;
        k += 32;
    }
    // SAFETY: SSSE3 comes with AVX2.
    unsafe { quote_ssse3_from(text, buf, k, j) }
}

/// True when a key contains a dot, escaped or not.
fn has_dot(key: Str, b: &[u8]) -> bool {
    memchr::memchr(b'.', &key.decoded(b)).is_some()
}

/// The common cases without [`Dec`]: plain integers (`-?[0-9]{1,18}`) into integer
/// columns, plain decimals without trailing zeros into decimal columns. `None` when the
/// text needs the general path.
#[inline]
fn plain_number(ty: &Ty, text: &[u8], out: &mut Vec<u8>) -> Option<bool> {
    let digits = text.strip_prefix(b"-").unwrap_or(text);
    match *ty {
        Ty::Int { signed, bits } => {
            if digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) || text == b"-0" {
                return None;
            }
            let mut v: i64 = 0;
            for &c in digits {
                v = v * 10 + i64::from(c - b'0');
            }
            let neg = digits.len() < text.len();
            let fits = match (signed, bits) {
                (false, _) if neg => false,
                (_, b) if b >= 64 => true,
                (false, b) => v < 1 << b,
                (true, b) => v < 1 << (b - 1) || (neg && v == 1 << (b - 1)),
            };
            if fits {
                quoted_if(bits > 64, out, |o| o.extend_from_slice(text));
            }
            Some(fits)
        }
        Ty::Decimal { precision, scale } => {
            let (int, frac) = match memchr::memchr(b'.', digits) {
                Some(p) => (&digits[..p], &digits[p + 1..]),
                None => (digits, &b""[..]),
            };
            let plain = int.first().is_some_and(|&c| c != b'0')
                && int.iter().all(u8::is_ascii_digit)
                && frac.iter().all(u8::is_ascii_digit)
                && frac.last() != Some(&b'0');
            if !plain {
                return None;
            }
            let fits =
                frac.len() <= usize::from(scale) && int.len() <= usize::from(precision - scale);
            if fits {
                out.push(b'"');
                out.extend_from_slice(text);
                out.push(b'"');
            }
            Some(fits)
        }
        _ => None,
    }
}

/// Writes with `write`, in quotes when `quote`: integers beyond 64 bits, which a JSON
/// number would bring through Float64.
#[inline]
fn quoted_if(quote: bool, out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) {
    if quote {
        out.push(b'"');
    }
    write(out);
    if quote {
        out.push(b'"');
    }
}

/// Writes `d` (whose text is `text`) for a number type; false when it does not fit.
fn write_number(ty: &Ty, d: &Dec, text: &[u8], out: &mut Vec<u8>) -> Result<bool> {
    match *ty {
        Ty::Int { signed, bits } => {
            if !d.int_fits(signed, bits) {
                return Ok(false);
            }
            quoted_if(bits > 64, out, |o| d.write_plain(o));
            Ok(true)
        }
        Ty::Decimal { precision, scale } => {
            if !d.decimal_fits(precision, scale) {
                return Ok(false);
            }
            // A JSON number would be read through Float64; a string is read exactly.
            out.push(b'"');
            d.write_plain(out);
            out.push(b'"');
            Ok(true)
        }
        Ty::Float64 => {
            out.extend_from_slice(text);
            Ok(true)
        }
        Ty::Float32 => {
            let Some(v) = std::str::from_utf8(text)
                .ok()
                .and_then(|t| t.parse::<f32>().ok())
                .filter(|v| v.is_finite())
            else {
                return Ok(false);
            };
            // The float's shortest text, when it reads back (as a Float64, narrowed) as the
            // same float; else its exact value as the shortest text of that Float64.
            use std::io::Write as _;
            let start = out.len();
            let _ = write!(out, "{v:e}");
            let back = std::str::from_utf8(&out[start..])
                .ok()
                .and_then(|t| t.parse::<f64>().ok());
            if back.map(|b| b as f32) != Some(v) {
                out.truncate(start);
                let _ = write!(out, "{:e}", f64::from(v));
            }
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// A number inside a `JSON` column: integers within Int64/UInt64 and numbers of at most
/// 15 significant digits as JSON numbers (read back exactly), others as strings.
fn json_number(text: &[u8], out: &mut Vec<u8>) {
    match Dec::parse(text) {
        Some(d) if d.int_fits(true, 64) || d.int_fits(false, 64) => d.write_plain(out),
        Some(d) if d.significant() <= FLOAT64_EXACT_DIGITS => out.extend_from_slice(text),
        _ => {
            out.push(b'"');
            out.extend_from_slice(text);
            out.push(b'"');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_words_hold_every_byte_up_to_16() {
        // Every name of each length over two bytes that differ in each bit position
        // alike: two names of one length with the same words would be one name.
        for len in 0..=16 {
            let mut seen = std::collections::HashMap::new();
            for bits in 0u32..1 << len {
                let name: Vec<u8> = (0..len)
                    .map(|k| if bits >> k & 1 == 1 { 0xff } else { 0 })
                    .collect();
                if let Some(other) = seen.insert(name_words(&name), name.clone()) {
                    panic!("{name:?} and {other:?} have the same words");
                }
            }
        }
    }

    #[test]
    fn lookup_finds_each_column_and_no_near_miss() {
        let names: Vec<String> = (1..=40)
            .map(|len| {
                (0..len)
                    .map(|k| (b'a' + (k * 7 + len) as u8 % 26) as char)
                    .collect()
            })
            .collect();
        let list = names
            .iter()
            .map(|n| format!("{n} String"))
            .collect::<Vec<_>>()
            .join(", ");
        let plan = ColumnPlan::parse(&list).unwrap();
        let lookup = Lookup::new(&plan, &[]);
        for (i, name) in names.iter().enumerate() {
            assert_eq!(lookup.index(name.as_bytes()), Some(i), "{name}");
            // The name with one byte changed, one byte more and one less.
            for k in 0..name.len() {
                let mut near = name.clone().into_bytes();
                near[k] = b'_';
                assert_eq!(lookup.index(&near), None, "{name} at {k}");
            }
            assert_eq!(lookup.index(format!("{name}_").as_bytes()), None, "{name}");
            let shorter = &name.as_bytes()[1..];
            assert_eq!(
                lookup.index(shorter),
                names.iter().position(|n| n.as_bytes() == shorter)
            );
        }
    }

    #[test]
    fn quoting_eight_bytes_at_a_time_equals_the_byte_loop() {
        let mut texts: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            br#"{"a":"b\"c\\d"}"#.to_vec(),
            br#""""""""""""""""""#.to_vec(),
            b"\\\\\\\\\\\\\\\\\\".to_vec(),
            "é\"中文\\🎁".repeat(9).into_bytes(),
        ];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..200 {
            let mut t = Vec::new();
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                t.push([b'"', b'\\', b'a', b'{', 0xc3, b'0'][(x % 6) as usize]);
            }
            texts.push(t);
        }
        for t in texts {
            let mut fast = vec![0u8; 2 * t.len() + 16];
            let mut slow = vec![0u8; 2 * t.len() + 16];
            let m = super::quote_bytes(&t, &mut slow, 0, 0);
            let n = super::quote_into(&t, &mut fast);
            assert_eq!(fast[..n], slow[..m], "{:?}", String::from_utf8_lossy(&t));
            #[cfg(target_arch = "x86_64")]
            {
                // SAFETY: SSSE3 is checked first.
                if std::arch::is_x86_feature_detected!("ssse3") {
                    let n = unsafe { super::quote_ssse3_from(&t, &mut fast, 0, 0) };
                    assert_eq!(
                        fast[..n],
                        slow[..m],
                        "ssse3 {:?}",
                        String::from_utf8_lossy(&t)
                    );
                }
                // SAFETY: its features are checked first.
                if super::has_quote_avx512() {
                    let n = unsafe { super::quote_avx512(&t, &mut fast) };
                    assert_eq!(
                        fast[..n],
                        slow[..m],
                        "avx512 {:?}",
                        String::from_utf8_lossy(&t)
                    );
                }
            }
            let mut out = b"x".to_vec();
            super::json_quote(&t, &mut out);
            if let Ok(text) = std::str::from_utf8(&t) {
                let back: String = serde_json::from_slice(&out[1..]).unwrap_or_default();
                assert_eq!(back, text);
            }
        }
    }

    use std::sync::Arc;

    use crate::flatten::{ColumnPlan, Flattener, Options};

    /// `s` as a JSON string.
    fn quoted(s: &str) -> String {
        serde_json::to_string(s).unwrap()
    }

    fn flat(list: &str, doc: &str) -> String {
        let opts = Options {
            columns: Some(Arc::new(ColumnPlan::parse(list).unwrap())),
            ..Options::default()
        };
        let mut out = Vec::new();
        match Flattener::new(opts).flatten(doc.as_bytes(), &mut out) {
            Ok(_) => String::from_utf8(out).unwrap(),
            Err(e) => format!("error: {e}"),
        }
    }

    #[test]
    fn fits_and_misfits() {
        let cases = [
            // (column list, attribute value, written value or None for a misfit)
            ("x UInt8", r#"{"N":"200"}"#, Some("200")),
            ("x UInt8", r#"{"N":"300"}"#, None),
            ("x UInt8", r#"{"N":"-5"}"#, None),
            ("x Int8", r#"{"N":"1E+2"}"#, Some("100")),
            ("x Int64", r#"{"N":"1.5"}"#, None),
            ("x Int64", r#"{"S":"1"}"#, None),
            (
                "x UInt128",
                r#"{"N":"1e38"}"#,
                Some(r#""100000000000000000000000000000000000000""#),
            ),
            ("x Decimal(38, 2)", r#"{"N":"12.505"}"#, None),
            ("x Decimal(38, 2)", r#"{"N":"12.50"}"#, Some(r#""12.5""#)),
            ("x Decimal(38, 2)", r#"{"N":"1e100"}"#, None),
            (
                "x Decimal(5, 2)",
                r#"{"N":"-999.99"}"#,
                Some(r#""-999.99""#),
            ),
            ("x Decimal(5, 2)", r#"{"N":"1000"}"#, None),
            ("x Float64", r#"{"N":"1e100"}"#, Some("1e100")),
            ("x Float32", r#"{"N":"1e100"}"#, None),
            ("x Float32", r#"{"N":"0.1"}"#, Some("1e-1")),
            ("x Bool", r#"{"BOOL":false}"#, Some("false")),
            ("x Bool", r#"{"N":"1"}"#, None),
            ("x String", r#"{"S":"a\"b"}"#, Some(r#""a\"b""#)),
            ("x String", r#"{"N":"1"}"#, None),
            (
                "x String",
                r#"{"M":{"a":{"N":"1.50"},"b":{"S":"\u00e9\""}}}"#,
                Some(r#""{\"a\":1.50,\"b\":\"\\u00e9\\\"\"}""#),
            ),
            ("x String", r#"{"NULL":true}"#, None),
            ("x Nullable(String)", r#"{"NULL":true}"#, Some("null")),
            ("x Nullable(Int64)", r#"{"S":"q"}"#, None),
            (
                "x Array(String)",
                r#"{"SS":["a","b"]}"#,
                Some(r#"["a","b"]"#),
            ),
            ("x Array(String)", r#"{"L":[{"S":"a"},{"N":"1"}]}"#, None),
            ("x Array(Int64)", r#"{"NS":["1","2"]}"#, Some("[1,2]")),
            ("x Array(Int64)", r#"{"NS":["1","2.5"]}"#, None),
            ("x Array(Int64)", r#"{"SS":["1"]}"#, None),
            (
                "x Array(Nullable(Int64))",
                r#"{"L":[{"NULL":true},{"N":"3"}]}"#,
                Some("[null,3]"),
            ),
            (
                "x Map(String, Int64)",
                r#"{"M":{"a":{"N":"1"}}}"#,
                Some(r#"{"a":1}"#),
            ),
            ("x Map(String, Int64)", r#"{"M":{"a":{"S":"1"}}}"#, None),
            (
                "x JSON",
                r#"{"M":{"a":{"N":"12345678901234567890123"},"b":{"N":"0.1"}}}"#,
                Some(r#"{"a":"12345678901234567890123","b":0.1}"#),
            ),
            ("x JSON", r#"{"M":{"a.b":{"N":"1"}}}"#, None),
            ("x JSON", r#"{"L":[]}"#, None),
            (
                "x DateTime64(3)",
                r#"{"S":"2024-01-02T03:04:05.123Z"}"#,
                Some(r#""2024-01-02T03:04:05.123Z""#),
            ),
            (
                "x DateTime64(3)",
                r#"{"S":"2024-01-02T03:04:05.1234Z"}"#,
                None,
            ),
        ];
        for (list, value, want) in cases {
            let got = flat(list, &format!(r#"{{"x":{value}}}"#));
            let want = match want {
                Some(v) => format!(r#"{{"x":{v},"_extra":"{{}}","version":0,"is_deleted":0}}"#),
                None => format!(
                    r#"{{"_extra":{},"version":0,"is_deleted":0}}"#,
                    quoted(&format!(r#"{{"x":{value}}}"#))
                ),
            };
            assert_eq!(got, want, "{list} <- {value}");
        }
    }

    #[test]
    fn fast_number_path_agrees_with_the_general_one() {
        use super::{plain_number, write_number, Dec, Ty};
        let mut types = vec![];
        for bits in [8, 16, 32, 64, 128, 256] {
            for signed in [false, true] {
                types.push(Ty::Int { signed, bits });
            }
        }
        for (precision, scale) in [(1, 0), (2, 1), (5, 2), (9, 0), (18, 4), (38, 2), (76, 20)] {
            types.push(Ty::Decimal { precision, scale });
        }
        let mut texts: Vec<String> = [
            "0",
            "-0",
            "1",
            "-1",
            "9",
            "10",
            "99",
            "100",
            "127",
            "128",
            "-128",
            "-129",
            "255",
            "256",
            "32767",
            "32768",
            "-32768",
            "65535",
            "65536",
            "2147483647",
            "2147483648",
            "-2147483648",
            "4294967295",
            "4294967296",
            "999999999999999999",
            "-999999999999999999",
            "1.5",
            "-1.5",
            "12.50",
            "12.05",
            "99.99",
            "999.99",
            "1000.5",
            "0.5",
            "-0.01",
            "123456789.1234",
            "1E+2",
            "1e-2",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        texts.push("9".repeat(18));
        texts.push(format!("-{}", "9".repeat(18)));
        for ty in &types {
            for t in &texts {
                let mut fast = Vec::new();
                let Some(fit) = plain_number(ty, t.as_bytes(), &mut fast) else {
                    continue;
                };
                let mut slow = Vec::new();
                let d = Dec::parse(t.as_bytes()).unwrap();
                let slow_fit = write_number(ty, &d, t.as_bytes(), &mut slow).unwrap();
                assert_eq!((fit, &fast), (slow_fit, &slow), "{t} in {ty:?}");
            }
        }
    }

    #[test]
    fn names_order_and_metadata() {
        let got = flat(
            "id String, item_version Int64, version UInt64, _extra String",
            r#"{"Item":{"new":{"BS":["AA=="]},"id":{"S":"a"},"version":{"N":"3"},"_extra":{"S":"x"}}}"#,
        );
        assert_eq!(
            got,
            format!(
                r#"{{"id":"a","item_version":3,"_extra":{},"version":0,"is_deleted":0}}"#,
                quoted(r#"{"new":{"BS":["AA=="]},"_extra":{"S":"x"}}"#)
            )
        );
        // No column for a renamed attribute: it stays under its own name in _extra.
        let got = flat("id String", r#"{"id":{"S":"a"},"version":{"N":"3"}}"#);
        assert_eq!(
            got,
            format!(
                r#"{{"id":"a","_extra":{},"version":0,"is_deleted":0}}"#,
                quoted(r#"{"version":{"N":"3"}}"#)
            )
        );
    }

    #[test]
    fn key_columns_must_fit() {
        let list = "pk String, sk Int64, x Int64, PRIMARY KEY (pk, sk)";
        let good = flat(list, r#"{"sk":{"N":"1"},"pk":{"S":"a"},"x":{"S":"z"}}"#);
        assert!(good.starts_with(r#"{"sk":1,"pk":"a","_extra":"#), "{good}");
        for doc in [
            r#"{"pk":{"S":"a"}}"#,
            r#"{"pk":{"S":"a"},"sk":{"S":"1"}}"#,
            r#"{"pk":{"N":"1"},"sk":{"N":"1"}}"#,
        ] {
            let got = flat(list, doc);
            assert!(got.starts_with("error: key attribute"), "{doc}: {got}");
        }
        let got = flat(list, r#"{"pk":{"S":"a"},"sk":{"N":"1.5"}}"#);
        assert!(
            got.starts_with("error: key attribute \"sk\" is missing or does not fit"),
            "{got}"
        );
    }

    #[test]
    fn kinesis_binary_is_unwrapped_in_extra_too() {
        // "QUFFQg==" is base64 of the text "AAEB".
        let rec = r#"{"eventName":"INSERT","dynamodb":{"ApproximateCreationDateTime":1700000000000,"NewImage":{"id":{"S":"a"},"b":{"B":"QUFFQg=="},"c":{"B":"QUFFQg=="}}}}"#;
        assert_eq!(
            flat("id String, b String", rec),
            format!(
                r#"{{"id":"a","b":"AAEB","_extra":{},"version":1700000000000000,"is_deleted":0}}"#,
                quoted(r#"{"c":{"B":"AAEB"}}"#)
            )
        );
    }

    #[test]
    fn bad_values_are_errors_whether_they_fit_or_not() {
        for list in ["x Int64", "x String", "y String"] {
            let got = flat(list, r#"{"x":{"N":"12a"}}"#);
            assert!(
                got.starts_with("error: N value \"12a\" is not a number"),
                "{list}: {got}"
            );
            let got = flat(list, r#"{"x":{"Q":"1"}}"#);
            assert!(
                got.starts_with("error: unknown type tag \"Q\""),
                "{list}: {got}"
            );
            let got = flat(list, r#"{"x":{"L":[{"N":"1"},{"S":5}]}}"#);
            assert!(
                got.starts_with("error: S value must be a string"),
                "{list}: {got}"
            );
        }
    }
}
