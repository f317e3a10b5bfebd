//! Transcodes DynamoDB attribute values (`{"N":"26"}`, `{"M":{…}}`, …) into
//! plain JSON in one pass, copying string bytes verbatim.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::error::{Error, ErrorKind};
use super::number::dynamo_number;
use super::scan::{is_json_number, Cursor, Result, Str, MAX_JSON_DEPTH};

/// How an attribute value is written.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Style {
    /// Write `N` values as JSON strings (`"26"`) instead of numbers (`26`).
    pub(crate) numbers_as_strings: bool,
    /// `B`/`BS` values are base64 of base64 (Kinesis records): decode one layer.
    pub(crate) unwrap_binary: bool,
    /// Write DynamoDB JSON again (`{"N":"26"}`), compact and validated, instead of
    /// plain JSON: how attributes are kept in `_extra`.
    pub(crate) typed: bool,
}

/// Attribute names the top level of an item may not use as they are, because
/// the metadata fields take them; such an attribute is renamed.
#[derive(Clone, Debug)]
pub(crate) struct Reserved {
    /// (metadata name, renamed attribute name, renamed name as a JSON string)
    pub(crate) names: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)>,
    /// Renaming is impossible when a renamed name is itself a metadata name
    /// (e.g. fields `version` and `item_version`): such attributes are errors.
    pub(crate) renamable: bool,
    /// A filter of the metadata names and renamed names by length and first byte: the
    /// bit [`filter_bit`] gives each of them is set, so a name whose bit is not set is
    /// none of them.
    filter: u64,
}

/// One of 64 bits for a name, from its length and first byte (equal names, equal bits).
#[inline(always)]
fn filter_bit(name: &[u8]) -> u64 {
    let key = (name.len().min(255) as u64) << 8 | u64::from(name.first().copied().unwrap_or(0));
    1 << (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58)
}

/// Prefix given to an item attribute whose name is a metadata field's name.
pub const RENAMED_PREFIX: &str = "item_";

impl Reserved {
    pub(crate) fn new(metadata_names: &[&str]) -> Reserved {
        let names = metadata_names
            .iter()
            .map(|n| {
                let renamed = format!("{RENAMED_PREFIX}{n}");
                (
                    n.as_bytes().to_vec(),
                    renamed.as_bytes().to_vec(),
                    json_string(&renamed),
                )
            })
            .collect::<Vec<_>>();
        let renamable = !names
            .iter()
            .any(|(_, renamed, _)| metadata_names.iter().any(|m| m.as_bytes() == renamed));
        let filter = names
            .iter()
            .flat_map(|(meta, renamed, _)| [filter_bit(meta), filter_bit(renamed)])
            .fold(0u64, |m, bit| m | bit);
        Reserved {
            names,
            renamable,
            filter,
        }
    }

    /// False when no metadata name nor renamed one has the length and first byte of
    /// `name`.
    #[inline(always)]
    fn may_be_taken(&self, name: &[u8]) -> bool {
        self.filter & filter_bit(name) != 0
    }

    /// Whether the (raw, unescaped) name is a metadata name or a renamed one.
    #[inline(always)]
    pub(crate) fn is_taken(&self, name: &[u8]) -> bool {
        self.may_be_taken(name) && self.is_listed(name)
    }

    /// The compare of [`Reserved::is_taken`] after the filter, out of line: rare, and
    /// its calls would otherwise cost the fast path's loop registers.
    #[cold]
    #[inline(never)]
    fn is_listed(&self, name: &[u8]) -> bool {
        self.names
            .iter()
            .any(|(meta, renamed, _)| name == meta.as_slice() || name == renamed.as_slice())
    }
}

impl Reserved {
    /// Whether the attribute `name` (decoded) takes a metadata field's name: `Some(j)` when
    /// it is renamed to `names[j]`'s renamed form. Records in `seen` the names met (bit 2j:
    /// metadata name j; bit 2j+1: its renamed form), for [`Reserved::check`].
    #[inline]
    pub(crate) fn rename(&self, name: &[u8], at: usize, seen: &mut u32) -> Result<Option<usize>> {
        if !self.may_be_taken(name) {
            return Ok(None);
        }
        let mut renamed_to = None;
        for (j, (meta, renamed, _)) in self.names.iter().enumerate() {
            if name == meta.as_slice() {
                if !self.renamable {
                    let n = String::from_utf8_lossy(meta).into_owned();
                    return Err(Error::new(ErrorKind::MetadataCollision(n), at));
                }
                *seen |= 1 << (2 * j);
                renamed_to = Some(j);
                break;
            }
            if name == renamed.as_slice() {
                *seen |= 2 << (2 * j);
            }
        }
        Ok(renamed_to)
    }

    /// After an item's attributes: an error when one had a metadata field's name and
    /// another its renamed form, so the renaming would lose a value.
    pub(crate) fn check(&self, seen: u32, item_at: usize) -> Result<()> {
        for (j, (name, _, _)) in self.names.iter().enumerate() {
            if seen >> (2 * j) & 0b11 == 0b11 {
                let name = String::from_utf8_lossy(name).into_owned();
                return Err(Error::new(ErrorKind::MetadataCollision(name), item_at));
            }
        }
        Ok(())
    }
}

/// Reads and writes the `{` of an item's attribute map, which must have attributes;
/// returns where it starts.
#[inline]
pub(crate) fn open_item(c: &mut Cursor<'_>, out: &mut Vec<u8>) -> Result<usize> {
    if c.peek()? != b'{' {
        return Err(c.err(ErrorKind::NotAnObject));
    }
    let open = c.i;
    c.i += 1;
    out.push(b'{');
    if c.peek()? == b'}' {
        return Err(Error::new(ErrorKind::EmptyItem, open));
    }
    Ok(open)
}

/// `s` as a JSON string literal, quotes included.
pub(crate) fn json_string(s: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(s.len() + 2);
    // Serialising a &str to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut v, s);
    v
}

pub(crate) struct Transcoder<'a, 'o> {
    pub(crate) c: Cursor<'a>,
    pub(crate) out: &'o mut Vec<u8>,
    pub(crate) style: Style,
    pub(crate) scratch: &'o mut Vec<u8>,
}

impl<'a, 'o> Transcoder<'a, 'o> {
    /// The top-level attribute map of an item, at `depth` open containers.
    /// Writes `{` and the attributes but not the closing `}`, so that the
    /// caller can append metadata fields.
    pub(crate) fn top_item(&mut self, depth: usize, reserved: Option<&Reserved>) -> Result<()> {
        let open = open_item(&mut self.c, self.out)?;
        // Bit 2j: attribute named like metadata field j; bit 2j+1: like its renamed form.
        let mut seen = 0u32;
        loop {
            let key = self.c.string("an attribute name")?;
            match reserved {
                Some(r) => self.reserved_key(key, r, &mut seen)?,
                None => self.out.extend_from_slice(key.quoted(self.c.b)),
            }
            self.c.expect(b':', "':'")?;
            self.out.push(b':');
            self.value(depth + 1)?;
            match self.c.peek()? {
                b',' => {
                    self.c.i += 1;
                    self.out.push(b',');
                }
                b'}' => {
                    self.c.i += 1;
                    break;
                }
                _ => return Err(self.c.unexpected("',' or '}'")),
            }
        }
        match reserved {
            Some(r) => r.check(seen, open),
            None => Ok(()),
        }
    }

    #[inline]
    fn reserved_key(&mut self, key: Str, r: &Reserved, seen: &mut u32) -> Result<()> {
        let b = self.c.b;
        match r.rename(&key.decoded(b), key.start - 1, seen)? {
            Some(j) => self.out.extend_from_slice(&r.names[j].2),
            None => self.out.extend_from_slice(key.quoted(b)),
        }
        Ok(())
    }

    /// An attribute name and its colon, copied.
    #[inline(always)]
    pub(crate) fn key(&mut self) -> Result<()> {
        let key = self.c.string("an attribute name")?;
        let b = self.c.b;
        if b.get(self.c.i) == Some(&b':') {
            self.c.i += 1;
            self.out.extend_from_slice(&b[key.start - 1..self.c.i]);
        } else {
            self.out.extend_from_slice(key.quoted(b));
            self.c.expect(b':', "':'")?;
            self.out.push(b':');
        }
        Ok(())
    }

    /// An attribute map nested in an `M` value; writes `{…}`.
    fn map(&mut self, depth: usize) -> Result<()> {
        self.c.i += 1; // '{', checked by the caller
        self.out.push(b'{');
        if self.c.peek()? == b'}' {
            self.c.i += 1;
            self.out.push(b'}');
            return Ok(());
        }
        loop {
            self.key()?;
            self.value(depth + 1)?;
            match self.c.peek()? {
                b',' => {
                    self.c.i += 1;
                    self.out.push(b',');
                }
                b'}' => {
                    self.c.i += 1;
                    self.out.push(b'}');
                    return Ok(());
                }
                _ => return Err(self.c.unexpected("',' or '}'")),
            }
        }
    }

    /// A list of attribute values (an `L` value); writes `[…]`.
    fn list(&mut self, depth: usize) -> Result<()> {
        self.c.i += 1; // '[', checked by the caller
        self.out.push(b'[');
        if self.c.peek()? == b']' {
            self.c.i += 1;
            self.out.push(b']');
            return Ok(());
        }
        loop {
            self.value(depth + 1)?;
            match self.c.peek()? {
                b',' => {
                    self.c.i += 1;
                    self.out.push(b',');
                }
                b']' => {
                    self.c.i += 1;
                    self.out.push(b']');
                    return Ok(());
                }
                _ => return Err(self.c.unexpected("',' or ']'")),
            }
        }
    }

    /// One attribute value object `{"T": v}` at `depth` open containers.
    pub(crate) fn value(&mut self, depth: usize) -> Result<()> {
        let tag = self.open_value(depth)?;
        if self.style.typed {
            self.out.extend_from_slice(b"{\"");
            self.out.extend_from_slice(tag);
            self.out.extend_from_slice(b"\":");
        }
        self.tagged(tag, depth)?;
        if self.style.typed {
            self.out.push(b'}');
        }
        self.close_value()
    }

    /// Reads `{"T":` of an attribute value object and returns the tag `T`.
    #[inline]
    pub(crate) fn open_value(&mut self, depth: usize) -> Result<&'a [u8]> {
        if depth >= MAX_JSON_DEPTH {
            return Err(self.c.err(ErrorKind::TooDeep));
        }
        if self.c.peek()? != b'{' {
            return Err(self
                .c
                .unexpected("an attribute value object like {\"S\":…}"));
        }
        self.c.i += 1;
        if self.c.peek()? == b'}' {
            return Err(self.c.err(ErrorKind::MissingTypeTag));
        }
        let tag_at = self.c.i;
        let tag = match self.c.short_tag()? {
            Some(t) => t,
            None => {
                let t = self.c.string("a type tag")?.content(self.c.b);
                self.c.expect(b':', "':'")?;
                t
            }
        };
        if !is_type_tag(tag) {
            let t = String::from_utf8_lossy(tag).into_owned();
            return Err(Error::new(ErrorKind::UnknownTypeTag(t), tag_at));
        }
        Ok(tag)
    }

    /// The `}` that ends an attribute value object.
    #[inline]
    pub(crate) fn close_value(&mut self) -> Result<()> {
        match self.c.peek()? {
            b'}' => {
                self.c.i += 1;
                Ok(())
            }
            b',' => Err(self.c.err(ErrorKind::TwoTypeTags)),
            _ => Err(self.c.unexpected("'}'")),
        }
    }

    /// The value of type tag `tag` (a known tag), written in the style.
    pub(crate) fn tagged(&mut self, tag: &[u8], depth: usize) -> Result<()> {
        match tag {
            b"S" => self.string_scalar("S"),
            b"N" => self.number(),
            b"B" => self.binary(),
            b"BOOL" => match self.c.peek()? {
                b't' => {
                    self.c.literal(b"true", "true or false")?;
                    self.out.extend_from_slice(b"true");
                    Ok(())
                }
                b'f' => {
                    self.c.literal(b"false", "true or false")?;
                    self.out.extend_from_slice(b"false");
                    Ok(())
                }
                _ => Err(self.wrong("BOOL", "true or false")),
            },
            b"NULL" => {
                self.null()?;
                let null: &[u8] = if self.style.typed { b"true" } else { b"null" };
                self.out.extend_from_slice(null);
                Ok(())
            }
            b"M" => {
                if self.c.peek()? != b'{' {
                    return Err(self.wrong("M", "an object"));
                }
                self.map(depth + 1)
            }
            b"L" => {
                if self.c.peek()? != b'[' {
                    return Err(self.wrong("L", "an array"));
                }
                self.list(depth + 1)
            }
            b"SS" => self.set(depth, "SS", Self::string_element),
            b"NS" => self.set(depth, "NS", |t| t.number()),
            _ => self.set(depth, "BS", |t| t.binary()),
        }
    }

    /// The value of a `NULL` tag, which must be `true`.
    #[inline]
    pub(crate) fn null(&mut self) -> Result<()> {
        match self.c.peek()? {
            b't' => self.c.literal(b"true", "true"),
            b'f' => Err(self.c.err(ErrorKind::NullNotTrue)),
            _ => Err(self.wrong("NULL", "true")),
        }
    }

    #[cold]
    pub(crate) fn wrong(&self, tag: &'static str, expected: &'static str) -> Error {
        self.c.err(ErrorKind::WrongValue { tag, expected })
    }

    /// A set (`SS`, `NS`, `BS`): an array of strings, each written by `element`.
    fn set(
        &mut self,
        depth: usize,
        tag: &'static str,
        element: fn(&mut Self) -> Result<()>,
    ) -> Result<()> {
        if self.c.peek()? != b'[' {
            return Err(self.wrong(tag, "an array of strings"));
        }
        if depth + 1 >= MAX_JSON_DEPTH {
            return Err(self.c.err(ErrorKind::TooDeep));
        }
        self.c.i += 1;
        self.out.push(b'[');
        if self.c.peek()? == b']' {
            self.c.i += 1;
            self.out.push(b']');
            return Ok(());
        }
        loop {
            if self.c.peek()? != b'"' {
                return Err(self.wrong(tag, "an array of strings"));
            }
            element(self)?;
            match self.c.peek()? {
                b',' => {
                    self.c.i += 1;
                    self.out.push(b',');
                }
                b']' => {
                    self.c.i += 1;
                    self.out.push(b']');
                    return Ok(());
                }
                _ => return Err(self.c.unexpected("',' or ']'")),
            }
        }
    }

    #[inline]
    pub(crate) fn string_element(&mut self) -> Result<()> {
        let s = self.c.string("a string")?;
        self.out.extend_from_slice(s.quoted(self.c.b));
        Ok(())
    }

    #[inline]
    fn string_scalar(&mut self, tag: &'static str) -> Result<()> {
        if self.c.peek()? != b'"' {
            return Err(self.wrong(tag, "a string"));
        }
        self.string_element()
    }

    /// An `N` value: a string holding a JSON number, written as a number or
    /// as a string, its text unchanged.
    #[inline]
    fn number(&mut self) -> Result<()> {
        let s = self.number_str()?;
        if self.style.numbers_as_strings || self.style.typed {
            self.out.extend_from_slice(s.quoted(self.c.b));
        } else {
            self.out.extend_from_slice(s.content(self.c.b));
        }
        Ok(())
    }

    /// The string of an `N` value, checked to hold a number.
    #[inline]
    pub(crate) fn number_str(&mut self) -> Result<Str> {
        if self.c.peek()? != b'"' {
            return Err(self.wrong("N", "a string"));
        }
        let s = self.c.string("a string")?;
        let text = s.content(self.c.b);
        if s.escaped || !is_json_number(text) {
            let shown = String::from_utf8_lossy(&text[..text.len().min(64)]).into_owned();
            return Err(Error::new(ErrorKind::InvalidNumber(shown), s.start));
        }
        if dynamo_number(text).is_err() {
            let shown = String::from_utf8_lossy(&text[..text.len().min(64)]).into_owned();
            return Err(Error::new(ErrorKind::NumberOutOfRange(shown), s.start));
        }
        Ok(s)
    }

    /// A `B` value: base64 text, written as it is (or with one layer of
    /// base64 removed, for Kinesis records).
    #[inline]
    pub(crate) fn binary(&mut self) -> Result<()> {
        if self.c.peek()? != b'"' {
            return Err(self.wrong("B", "a base64 string"));
        }
        let s = self.c.string("a string")?;
        if !self.style.unwrap_binary {
            self.out.extend_from_slice(s.quoted(self.c.b));
            return Ok(());
        }
        // Escaped only when a producer writes "/" as "\/" (rare).
        let text = s.decoded(self.c.b);
        let text: &[u8] = &text;
        self.scratch.clear();
        let inner_ok =
            STANDARD.decode_vec(text, self.scratch).is_ok() && is_base64_text(self.scratch);
        if !inner_ok {
            return Err(Error::new(ErrorKind::BinaryNotDoubleEncoded, s.start));
        }
        self.out.push(b'"');
        self.out.extend_from_slice(self.scratch);
        self.out.push(b'"');
        Ok(())
    }
}

/// True for the ten DynamoDB type tags.
#[inline]
pub(crate) fn is_type_tag(tag: &[u8]) -> bool {
    matches!(
        tag,
        b"S" | b"N" | b"B" | b"BOOL" | b"NULL" | b"M" | b"L" | b"SS" | b"NS" | b"BS"
    )
}

/// True for base64 text (standard alphabet, padded), including the empty string.
fn is_base64_text(s: &[u8]) -> bool {
    // Decoding into a fixed buffer, chunk by chunk, needs no allocation.
    let mut buf = [0u8; 768];
    s.len().is_multiple_of(4)
        && s.chunks(1024)
            .all(|c| STANDARD.decode_slice(c, &mut buf).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_names_pass_the_filter_and_only_they_are_taken() {
        let r = Reserved::new(&["version", "is_deleted"]);
        for name in ["version", "is_deleted", "item_version", "item_is_deleted"] {
            assert!(r.is_taken(name.as_bytes()), "{name}");
        }
        for name in [
            "", "v", "versio", "versions", "is_gift", "Version", "item_", "quantity",
        ] {
            assert!(!r.is_taken(name.as_bytes()), "{name}");
        }
        let mut seen = 0;
        assert_eq!(r.rename(b"version", 0, &mut seen).ok(), Some(Some(0)));
        assert_eq!(r.rename(b"item_is_deleted", 0, &mut seen).ok(), Some(None));
        assert_eq!(seen, 0b1001);
    }
}
