//! Low-level JSON scanning over a byte slice: whitespace, strings, literals,
//! numbers and validating skips. Nothing here allocates.
//!
//! The scanner never decodes strings: a JSON string is validated in place
//! (escapes, control characters) and callers copy its bytes verbatim, which is
//! why the flattener can run at close to memory speed.

use super::error::{Error, ErrorKind};

/// Maximum container nesting (objects and arrays, counted in the input JSON).
///
/// DynamoDB allows 32 levels of attribute nesting; each level is two JSON
/// containers (the `{"M":…}` wrapper and the map itself), plus the envelope.
pub const MAX_JSON_DEPTH: usize = 160;

pub(crate) type Result<T> = std::result::Result<T, Error>;

/// A position in a JSON document.
pub(crate) struct Cursor<'a> {
    pub(crate) b: &'a [u8],
    pub(crate) i: usize,
}

/// A string found by [`Cursor::string`]: the byte range of its content
/// (between the quotes) and whether it contains escape sequences.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Str {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) escaped: bool,
}

impl Str {
    /// The string with its surrounding quotes, as in the input.
    #[inline]
    pub(crate) fn quoted<'a>(&self, b: &'a [u8]) -> &'a [u8] {
        &b[self.start - 1..self.end + 1]
    }

    #[inline]
    pub(crate) fn content<'a>(&self, b: &'a [u8]) -> &'a [u8] {
        &b[self.start..self.end]
    }

    /// The string's value: its content, or for the rare escaped string the decoded
    /// text (so that `"vers\u0069on"` compares equal to `version`).
    #[inline]
    pub(crate) fn decoded<'a>(&self, b: &'a [u8]) -> std::borrow::Cow<'a, [u8]> {
        if !self.escaped {
            return std::borrow::Cow::Borrowed(self.content(b));
        }
        // The scanner validated the escapes, so decoding cannot fail.
        let text = serde_json::from_slice::<String>(self.quoted(b)).unwrap_or_default();
        std::borrow::Cow::Owned(text.into_bytes())
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Marks (with the byte's high bit) the bytes of `w` that end a run of plain
/// string content: `"`, `\` and control characters below 0x20. Only the lowest
/// marked byte is exact (borrows may mark later bytes), which is all we use.
#[inline(always)]
pub(crate) fn special_bytes(w: u64) -> u64 {
    let q = w ^ (ONES * b'"' as u64);
    let bs = w ^ (ONES * b'\\' as u64);
    let has_q = q.wrapping_sub(ONES) & !q;
    let has_bs = bs.wrapping_sub(ONES) & !bs;
    let has_ctl = w.wrapping_sub(ONES * 0x20) & !w;
    (has_q | has_bs | has_ctl) & HIGH
}

/// Bit mask of the bytes of a 16-byte chunk that end a run of plain string
/// content (`"`, `\\`, below 0x20). SSE2 is part of every x86_64 CPU.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn special_bytes_16(chunk: &[u8]) -> u32 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    assert!(chunk.len() >= 16);
    // SAFETY: SSE2 is enabled on every x86_64 target, and the chunk holds the
    // 16 bytes the unaligned load reads (checked above).
    unsafe {
        let v = _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>());
        let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
        let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
        // c < 0x20 (unsigned) exactly when min(c, 0x1f) == c.
        let control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
        _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control)) as u32
    }
}

#[inline(always)]
fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\n' | b'\r' | b'\t')
}

/// The value of the four hex digits of a `\uXXXX` escape, or `None`.
#[inline(always)]
fn hex4(h: &[u8]) -> Option<u16> {
    let mut v = 0u16;
    for &c in h.get(..4)? {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return None,
        };
        v = v << 4 | u16::from(d);
    }
    Some(v)
}

/// Checks the `\uXXXX` escape whose backslash is at `b[i]` and returns the
/// offset after it (after both halves of a surrogate pair). A surrogate must
/// be a high one followed by a low one.
#[inline]
pub(crate) fn u_escape(b: &[u8], i: usize) -> Result<usize> {
    let err = |kind, at| Err(Error::new(kind, at));
    match b.get(i + 2..i + 6).and_then(hex4) {
        Some(0xd800..=0xdbff) => match b.get(i + 6..i + 12) {
            Some([b'\\', b'u', low @ ..]) => match hex4(low) {
                Some(0xdc00..=0xdfff) => Ok(i + 12),
                Some(_) => err(ErrorKind::InvalidUnicodeEscape, i),
                None => err(ErrorKind::InvalidEscape, i + 6),
            },
            // Fewer than six bytes left: truncated, unless the string ends there.
            None if !b[i + 6..].contains(&b'"') => err(ErrorKind::UnexpectedEnd, b.len()),
            _ => err(ErrorKind::InvalidUnicodeEscape, i),
        },
        Some(0xdc00..=0xdfff) => err(ErrorKind::InvalidUnicodeEscape, i),
        Some(_) => Ok(i + 6),
        None => err(ErrorKind::InvalidEscape, i),
    }
}

impl<'a> Cursor<'a> {
    #[inline]
    pub(crate) fn new(b: &'a [u8]) -> Self {
        Cursor { b, i: 0 }
    }

    #[inline]
    pub(crate) fn at(b: &'a [u8], i: usize) -> Self {
        Cursor { b, i }
    }

    #[inline]
    pub(crate) fn err(&self, kind: ErrorKind) -> Error {
        Error::new(kind, self.i)
    }

    #[inline(always)]
    pub(crate) fn skip_ws(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            if !is_ws(c) {
                break;
            }
            self.i += 1;
        }
    }

    /// The next non-whitespace byte, without consuming it.
    #[inline(always)]
    pub(crate) fn peek(&mut self) -> Result<u8> {
        // Compact JSON: the next byte is already a token (all are above ' ').
        if let Some(&c) = self.b.get(self.i) {
            if c > b' ' {
                return Ok(c);
            }
        }
        self.skip_ws();
        match self.b.get(self.i) {
            Some(&c) => Ok(c),
            None => Err(self.err(ErrorKind::UnexpectedEnd)),
        }
    }

    /// Consumes the next non-whitespace byte, which must be `c`.
    #[inline(always)]
    pub(crate) fn expect(&mut self, c: u8, what: &'static str) -> Result<()> {
        if self.peek()? == c {
            self.i += 1;
            Ok(())
        } else {
            Err(self.unexpected(what))
        }
    }

    /// An error for the byte at the cursor, which is not `what` was expected.
    #[cold]
    pub(crate) fn unexpected(&self, what: &'static str) -> Error {
        match self.b.get(self.i) {
            None => self.err(ErrorKind::UnexpectedEnd),
            Some(&c) => self.err(ErrorKind::Expected {
                what,
                found: found_char(c),
            }),
        }
    }

    /// After the last value: only whitespace may follow.
    pub(crate) fn finish(&mut self) -> Result<()> {
        self.skip_ws();
        if self.i == self.b.len() {
            Ok(())
        } else {
            Err(self.err(ErrorKind::TrailingCharacters))
        }
    }

    /// Scans a JSON string starting at the next non-whitespace byte, which
    /// must be `"`. Validates escapes and rejects raw control characters.
    #[inline]
    pub(crate) fn string(&mut self, what: &'static str) -> Result<Str> {
        if self.peek()? != b'"' {
            return Err(self.unexpected(what));
        }
        self.i += 1;
        let start = self.i;
        self.string_from::<false>(start, start, false)
    }

    /// The rest of the string opened at `start`, from its first `\u` escape
    /// (at `i`) on, with every `\u` escape checked to be valid Unicode. Out of
    /// line, so that the scan of strings without `\u` escapes stays as lean
    /// as it was.
    #[inline(never)]
    fn string_after_u(&mut self, start: usize, i: usize) -> Result<Str> {
        self.string_from::<true>(start, i, true)
    }

    /// The string scanner's loop, from `i` in the string opened at `start`.
    /// Until the first `\u` escape (`U` false) it hands over to
    /// [`Cursor::string_after_u`].
    #[inline(always)]
    fn string_from<const U: bool>(
        &mut self,
        start: usize,
        mut i: usize,
        mut escaped: bool,
    ) -> Result<Str> {
        let b = self.b;
        loop {
            // Fast path: sixteen (x86_64) or eight bytes at a time while no
            // special byte shows.
            #[cfg(target_arch = "x86_64")]
            while let Some(chunk) = b.get(i..i + 16) {
                let m = special_bytes_16(chunk);
                if m != 0 {
                    i += m.trailing_zeros() as usize;
                    break;
                }
                i += 16;
            }
            #[cfg(not(target_arch = "x86_64"))]
            while let Some(chunk) = b.get(i..i + 8) {
                let mut word = [0u8; 8];
                word.copy_from_slice(chunk);
                let m = special_bytes(u64::from_le_bytes(word));
                if m != 0 {
                    i += (m.trailing_zeros() / 8) as usize;
                    break;
                }
                i += 8;
            }
            match b.get(i) {
                None => {
                    self.i = i;
                    return Err(self.err(ErrorKind::UnexpectedEnd));
                }
                Some(b'"') => {
                    self.i = i + 1;
                    return Ok(Str {
                        start,
                        end: i,
                        escaped,
                    });
                }
                Some(b'\\') => {
                    escaped = true;
                    match b.get(i + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                        Some(b'u') if !U => return self.string_after_u(start, i),
                        Some(b'u') => match u_escape(b, i) {
                            Ok(next) => i = next,
                            Err(e) => {
                                self.i = e.offset();
                                return Err(e);
                            }
                        },
                        None => {
                            self.i = i + 1;
                            return Err(self.err(ErrorKind::UnexpectedEnd));
                        }
                        Some(_) => {
                            self.i = i;
                            return Err(self.err(ErrorKind::InvalidEscape));
                        }
                    }
                }
                Some(&c) if c < 0x20 => {
                    self.i = i;
                    return Err(self.err(ErrorKind::ControlCharacter));
                }
                Some(_) => i += 1,
            }
        }
    }

    /// A type tag (`"S"`, `"SS"`, `"BOOL"`: one, two or four characters) and
    /// the colon after it, at the next non-whitespace byte, read without the
    /// general string scanner. `Ok(None)`, with nothing consumed, for anything
    /// else. Whatever it
    /// returns is then matched against the known tags, so a string that only
    /// looks short (`"\"…`) ends as an unknown tag, never as a wrong parse.
    #[inline(always)]
    pub(crate) fn short_tag(&mut self) -> Result<Option<&'a [u8]>> {
        self.skip_ws();
        let Some(rest) = self.b.get(self.i..) else {
            return Ok(None);
        };
        // The colon usually follows at once; take it along when it does.
        let (len, colon) = match rest {
            [b'"', _, b'"', b':', ..] => (1, 1),
            [b'"', _, _, b'"', b':', ..] => (2, 1),
            [b'"', _, _, _, _, b'"', b':', ..] => (4, 1),
            [b'"', _, b'"', ..] => (1, 0),
            [b'"', _, _, b'"', ..] => (2, 0),
            [b'"', _, _, _, _, b'"', ..] => (4, 0),
            _ => return Ok(None),
        };
        // Only a string without quotes or escapes inside: `"S" :":x"` is the tag `S`
        // and the value `":x"`, not the tag `S" :`.
        if rest[1..1 + len].iter().any(|&c| c == b'"' || c == b'\\') {
            return Ok(None);
        }
        self.i += len + 2 + colon;
        if colon == 0 {
            self.expect(b':', "':'")?;
        }
        Ok(Some(&rest[1..1 + len]))
    }

    /// Scans a JSON number at the cursor and returns its text.
    pub(crate) fn number(&mut self) -> Result<&'a [u8]> {
        self.skip_ws();
        let start = self.i;
        let len =
            number_len(&self.b[start..]).ok_or_else(|| self.err(ErrorKind::InvalidJsonNumber))?;
        self.i += len;
        Ok(&self.b[start..start + len])
    }

    /// Consumes the literal `word` (`true`, `false`, `null`).
    pub(crate) fn literal(&mut self, word: &'static [u8], what: &'static str) -> Result<()> {
        self.skip_ws();
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(self.unexpected(what))
        }
    }

    /// Skips any JSON value, validating it. `depth` counts the containers
    /// already open around it.
    pub(crate) fn skip_value(&mut self, depth: usize) -> Result<()> {
        match self.peek()? {
            b'"' => self.string("a string").map(|_| ()),
            b'{' => {
                if depth >= MAX_JSON_DEPTH {
                    return Err(self.err(ErrorKind::TooDeep));
                }
                self.i += 1;
                if self.peek()? == b'}' {
                    self.i += 1;
                    return Ok(());
                }
                loop {
                    self.string("an object key")?;
                    self.expect(b':', "':'")?;
                    self.skip_value(depth + 1)?;
                    match self.peek()? {
                        b',' => self.i += 1,
                        b'}' => {
                            self.i += 1;
                            return Ok(());
                        }
                        _ => return Err(self.unexpected("',' or '}'")),
                    }
                }
            }
            b'[' => {
                if depth >= MAX_JSON_DEPTH {
                    return Err(self.err(ErrorKind::TooDeep));
                }
                self.i += 1;
                if self.peek()? == b']' {
                    self.i += 1;
                    return Ok(());
                }
                loop {
                    self.skip_value(depth + 1)?;
                    match self.peek()? {
                        b',' => self.i += 1,
                        b']' => {
                            self.i += 1;
                            return Ok(());
                        }
                        _ => return Err(self.unexpected("',' or ']'")),
                    }
                }
            }
            b't' => self.literal(b"true", "a JSON value"),
            b'f' => self.literal(b"false", "a JSON value"),
            b'n' => self.literal(b"null", "a JSON value"),
            b'-' | b'0'..=b'9' => self.number().map(|_| ()),
            _ => Err(self.unexpected("a JSON value")),
        }
    }
}

/// Describes a byte for an error message.
pub(crate) fn found_char(c: u8) -> String {
    if c.is_ascii_graphic() {
        format!("'{}'", c as char)
    } else {
        format!("byte 0x{c:02x}")
    }
}

/// Length of the JSON number at the start of `s` (RFC 8259 grammar:
/// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`), or `None`.
#[inline]
pub(crate) fn number_len(s: &[u8]) -> Option<usize> {
    let mut i = 0;
    if s.first() == Some(&b'-') {
        i += 1;
    }
    match s.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            i += 1;
            while matches!(s.get(i), Some(b'0'..=b'9')) {
                i += 1;
            }
        }
        _ => return None,
    }
    if s.get(i) == Some(&b'.') {
        i += 1;
        if !matches!(s.get(i), Some(b'0'..=b'9')) {
            return None;
        }
        while matches!(s.get(i), Some(b'0'..=b'9')) {
            i += 1;
        }
    }
    if matches!(s.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(s.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !matches!(s.get(i), Some(b'0'..=b'9')) {
            return None;
        }
        while matches!(s.get(i), Some(b'0'..=b'9')) {
            i += 1;
        }
    }
    Some(i)
}

/// True when all of `s` is one JSON number.
#[inline]
pub(crate) fn is_json_number(s: &[u8]) -> bool {
    number_len(s) == Some(s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_first_special(s: &[u8]) -> Option<usize> {
        s.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20)
    }

    #[test]
    fn swar_finds_first_special_byte() {
        let samples: &[&[u8]] = &[
            b"abcdefgh",
            b"abc\"efgh",
            b"\x1fbcdefgh",
            b"abcdefg\\",
            b"\xc3\xa9\xc3\xa9\"\x00\x00\x00",
            b"\x20\x21\x22\x23\x5b\x5c\x5d\x7f",
            b"\xff\xfe\x80\x81\x1f\x22\x5c\x00",
            b"\x01\x22\x22\x22\x22\x22\x22\x22",
        ];
        for s in samples {
            let w = u64::from_le_bytes((*s).try_into().unwrap());
            let m = special_bytes(w);
            let got = (m != 0).then(|| (m.trailing_zeros() / 8) as usize);
            assert_eq!(got, naive_first_special(s), "{s:?}");
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn sse2_finds_every_special_byte() {
        for pos in 0..16 {
            for special in [b'"', b'\\', 0x00, 0x1f] {
                let mut chunk = [b'a'; 16];
                chunk[pos] = special;
                chunk[15 - pos / 2] = 0xe9;
                if 15 - pos / 2 == pos {
                    chunk[pos] = special;
                }
                let m = special_bytes_16(&chunk);
                assert_eq!(m.trailing_zeros() as usize, pos, "{chunk:?}");
            }
        }
        assert_eq!(special_bytes_16(&[0x20u8; 16]), 0);
        assert_eq!(special_bytes_16(&[0xffu8; 16]), 0);
        assert_eq!(special_bytes_16(&[0x7fu8; 16]), 0);
    }

    #[test]
    fn numbers() {
        for ok in [
            "0",
            "-0",
            "1",
            "26",
            "1E+2",
            "-0.000001",
            "1e100",
            "12.5e-3",
        ] {
            assert!(is_json_number(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "", "-", "01", "+1", ".5", "5.", "1e", "1e+", "0x10", "1 ", "NaN", "1.2.3",
        ] {
            assert!(!is_json_number(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn strings_and_escapes() {
        let mut c = Cursor::new(br#"  "a\"b\u00e9\\" x"#);
        let s = c.string("s").unwrap();
        assert!(s.escaped);
        assert_eq!(s.content(c.b), br#"a\"b\u00e9\\"#);
        for bad in [&br#""a\x""#[..], br#""\u12g4""#, b"\"a\tb\"", br#""abc"#] {
            assert!(Cursor::new(bad).string("s").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn unicode_escapes_must_be_valid() {
        for ok in [
            r#""\ud83d\ude00""#,
            r#""a\uD83D\uDE00b""#,
            r#""\ud800\udc00\udbff\udfff""#,
            r#""\u0000\ud7ff\ue000\uffff""#,
            r#""0123456789abcdef\ud83d\ude00""#,
        ] {
            let mut c = Cursor::new(ok.as_bytes());
            let s = c.string("s").unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert_eq!(s.quoted(c.b), ok.as_bytes());
        }
        for (bad, at) in [
            (r#""\ud800""#, 1),
            (r#""\udc00""#, 1),
            (r#""\uDFFF""#, 1),
            (r#""0123456789abcdefgh\ud800xyzxyz""#, 19),
            (r#""\ud800\n12345""#, 1),
            (r#""\ud800\u0041""#, 1),
            (r#""\ud800\ud800\udc00""#, 1),
            (r#""\ude00\ud83d""#, 1),
            (r#""\ud83d""#, 1),
            (r#""a\ud83d"}"#, 2),
        ] {
            let e = Cursor::new(bad.as_bytes()).string("s").unwrap_err();
            assert_eq!(
                (e.kind(), e.offset()),
                (&ErrorKind::InvalidUnicodeEscape, at),
                "{bad}"
            );
        }
        let e = Cursor::new(br#""\ud800\u12g4""#).string("s").unwrap_err();
        assert_eq!((e.kind(), e.offset()), (&ErrorKind::InvalidEscape, 7));
        for cut in [&br#""\ud800"#[..], br#""\ud800\"#, br#""\ud800\udc0"#] {
            let e = Cursor::new(cut).string("s").unwrap_err();
            assert_eq!(e.kind(), &ErrorKind::UnexpectedEnd, "{cut:?}");
        }
    }

    #[test]
    fn skip_value_limits_depth() {
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        let e = Cursor::new(deep.as_bytes()).skip_value(0).unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::TooDeep));
        let ok = "[".repeat(100) + &"]".repeat(100);
        Cursor::new(ok.as_bytes()).skip_value(0).unwrap();
    }
}
