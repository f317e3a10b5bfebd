//! The documents that carry items: full-export lines, incremental-export
//! lines, Kinesis Data Streams for DynamoDB records and DynamoDB Streams
//! records. Finds the image to write, its version and its delete flag.

use super::error::{Error, ErrorKind};
use super::number::scaled_u64;
use super::scan::{Cursor, Result, Str};

/// One member of a scanned JSON object: its key and where its value starts
/// and ends in the document.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Field {
    pub(crate) key: Str,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// Scans the object at the cursor, validating it, and appends its members
/// to `fields`.
pub(crate) fn scan_object(c: &mut Cursor<'_>, depth: usize, fields: &mut Vec<Field>) -> Result<()> {
    if c.peek()? != b'{' {
        return Err(c.err(ErrorKind::NotAnObject));
    }
    c.i += 1;
    if c.peek()? == b'}' {
        c.i += 1;
        return Ok(());
    }
    loop {
        let key = c.string("an object key")?;
        c.expect(b':', "':'")?;
        c.skip_ws();
        let start = c.i;
        c.skip_value(depth + 1)?;
        fields.push(Field {
            key,
            start,
            end: c.i,
        });
        match c.peek()? {
            b',' => c.i += 1,
            b'}' => {
                c.i += 1;
                return Ok(());
            }
            _ => return Err(c.unexpected("',' or '}'")),
        }
    }
}

/// The member of `fields` named `name` (matched on the raw key text).
pub(crate) fn get(b: &[u8], fields: &[Field], name: &str) -> Option<Field> {
    fields
        .iter()
        .find(|f| !f.key.escaped && f.key.content(b) == name.as_bytes())
        .copied()
}

/// Top-level keys of change records and incremental-export lines. A document
/// whose first key is one of them is scanned in full before anything is
/// written; which shape it has is still decided by [`classify`] alone.
pub(crate) fn is_envelope_key(key: &[u8]) -> bool {
    matches!(
        key,
        b"Metadata"
            | b"Keys"
            | b"NewImage"
            | b"OldImage"
            | b"Records"
            | b"eventName"
            | b"eventID"
            | b"eventSource"
            | b"eventVersion"
            | b"eventSourceARN"
            | b"awsRegion"
            | b"dynamodb"
            | b"userIdentity"
            | b"recordFormat"
            | b"tableName"
    )
}

/// What kind of document an envelope is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Export,
    Incremental,
    Change,
    Lambda,
    Item,
}

/// The kind of a document, from the set of its top-level keys and the kinds
/// of their values: never from their order.
///
/// Every value of an item is an attribute value object `{"T":…}`, so the
/// marks of the envelopes are values an attribute cannot have: a `Records`
/// array, a string `eventName`, a `Metadata` object that is not an attribute
/// value. A real item is therefore always an item, whatever its attribute
/// names, and a real envelope always an envelope. The one exception is a
/// document whose only key is `Item`: an export line.
pub(crate) fn classify(b: &[u8], fields: &[Field]) -> Kind {
    let has = |n| get(b, fields, n).is_some();
    let any = |n: &str, kind: fn(&[u8], &Field) -> bool| {
        fields
            .iter()
            .any(|f| !f.key.escaped && f.key.content(b) == n.as_bytes() && kind(b, f))
    };
    if any("Records", |b, f| b.get(f.start) == Some(&b'[')) {
        Kind::Lambda
    } else if any("eventName", |b, f| b.get(f.start) == Some(&b'"')) {
        Kind::Change
    } else if any("Metadata", |b, f| {
        b.get(f.start) == Some(&b'{') && !is_attribute_value(b, f)
    }) && (has("Keys") || has("NewImage") || has("OldImage"))
    {
        Kind::Incremental
    } else if fields.len() == 1 && has("Item") {
        Kind::Export
    } else {
        Kind::Item
    }
}

/// True when the value of `f` has the shape of an attribute value: an object
/// with one member whose key is a type tag. (Whether that member's value
/// fits the tag is left to the item's reader.)
fn is_attribute_value(b: &[u8], f: &Field) -> bool {
    const TAGS: [&[u8]; 10] = [
        b"S", b"N", b"B", b"BOOL", b"NULL", b"M", b"L", b"SS", b"NS", b"BS",
    ];
    fn one_tagged_member(c: &mut Cursor<'_>) -> Result<bool> {
        c.expect(b'{', "'{'")?;
        if c.peek()? != b'"' {
            return Ok(false);
        }
        let tag = c.string("a type tag")?;
        if tag.escaped || !TAGS.contains(&tag.content(c.b)) {
            return Ok(false);
        }
        c.expect(b':', "':'")?;
        c.skip_value(1)?;
        Ok(c.peek()? == b'}')
    }
    one_tagged_member(&mut Cursor::at(b, f.start)).unwrap_or(false)
}

/// Where the image to write is, and the row's metadata.
pub(crate) struct Change {
    /// Where the image's attribute map starts and ends.
    pub(crate) image_at: usize,
    pub(crate) image_end: usize,
    pub(crate) version: u64,
    pub(crate) deleted: bool,
    /// A Kinesis Data Streams record (as opposed to DynamoDB Streams).
    pub(crate) kinesis: bool,
}

/// A "Kinesis Data Streams for DynamoDB" or DynamoDB Streams record.
pub(crate) fn change_record(b: &[u8], top: &[Field], inner: &mut Vec<Field>) -> Result<Change> {
    let name_field = get(b, top, "eventName").ok_or_else(|| missing("eventName"))?;
    let name = string_at(b, name_field, "eventName")?;
    let (deleted, event) = match name {
        b"INSERT" => (false, "INSERT"),
        b"MODIFY" => (false, "MODIFY"),
        b"REMOVE" => (true, "REMOVE"),
        other => {
            let n = String::from_utf8_lossy(other).into_owned();
            return Err(Error::new(ErrorKind::UnknownEventName(n), name_field.start));
        }
    };
    let dynamodb = get(b, top, "dynamodb").ok_or_else(|| missing("dynamodb"))?;
    inner.clear();
    scan_object(&mut Cursor::at(b, dynamodb.start), 1, inner)?;
    let d = inner.as_slice();

    let streams = get(b, top, "eventVersion").is_some()
        || get(b, top, "eventSourceARN").is_some()
        || get(b, d, "SequenceNumber").is_some()
        || get(b, d, "StreamViewType").is_some();
    let ts = get(b, d, "ApproximateCreationDateTime")
        .ok_or_else(|| missing("dynamodb.ApproximateCreationDateTime"))?;
    let scale = match get(b, d, "ApproximateCreationDateTimePrecision") {
        Some(p) => match string_at(b, p, "ApproximateCreationDateTimePrecision")? {
            b"MICROSECOND" => 0,
            b"MILLISECOND" => 3,
            other => {
                let p2 = String::from_utf8_lossy(other).into_owned();
                return Err(Error::new(ErrorKind::BadPrecision(p2), p.start));
            }
        },
        // DynamoDB Streams: seconds. Kinesis records without a precision: milliseconds.
        None if streams => 6,
        None => 3,
    };
    let version = timestamp(b, ts, scale, "dynamodb.ApproximateCreationDateTime")?;

    let image = if deleted {
        get(b, d, "OldImage")
            .or_else(|| get(b, d, "Keys"))
            .ok_or_else(|| missing("dynamodb.Keys"))?
    } else {
        get(b, d, "NewImage")
            .ok_or_else(|| Error::new(ErrorKind::NoNewImage(event), dynamodb.start))?
    };
    Ok(Change {
        image_at: image.start,
        image_end: image.end,
        version,
        deleted,
        kinesis: !streams,
    })
}

/// An incremental-export line: `Metadata.WriteTimestampMicros`, `Keys`,
/// `NewImage` (absent for a delete), `OldImage`.
pub(crate) fn incremental(b: &[u8], top: &[Field], inner: &mut Vec<Field>) -> Result<Change> {
    let meta = get(b, top, "Metadata").ok_or_else(|| missing("Metadata"))?;
    inner.clear();
    scan_object(&mut Cursor::at(b, meta.start), 1, inner)?;
    let ts = get(b, inner, "WriteTimestampMicros")
        .ok_or_else(|| missing("Metadata.WriteTimestampMicros"))?;
    // {"N":"1732406600000123"}
    let mut c = Cursor::at(b, ts.start);
    let bad = || {
        Error::new(
            ErrorKind::BadTimestamp("Metadata.WriteTimestampMicros"),
            ts.start,
        )
    };
    c.expect(b'{', "'{'").map_err(|_| bad())?;
    let tag = c.string("a type tag").map_err(|_| bad())?;
    c.expect(b':', "':'").map_err(|_| bad())?;
    let text = c.string("a string").map_err(|_| bad())?;
    if tag.content(b) != b"N" || c.expect(b'}', "'}'").is_err() {
        return Err(bad());
    }
    let version = scaled_u64(text.content(b), 0).ok_or_else(bad)?;
    let (image, deleted) = match get(b, top, "NewImage") {
        Some(n) => (n, false),
        None => (
            get(b, top, "OldImage")
                .or_else(|| get(b, top, "Keys"))
                .ok_or_else(|| missing("Keys"))?,
            true,
        ),
    };
    Ok(Change {
        image_at: image.start,
        image_end: image.end,
        version,
        deleted,
        kinesis: false,
    })
}

fn timestamp(b: &[u8], f: Field, scale: i32, what: &'static str) -> Result<u64> {
    let mut text = &b[f.start..f.end];
    // Some serialisers quote it.
    if text.len() >= 2 && text[0] == b'"' && text[text.len() - 1] == b'"' {
        text = &text[1..text.len() - 1];
    }
    scaled_u64(text, scale).ok_or_else(|| Error::new(ErrorKind::BadTimestamp(what), f.start))
}

fn string_at<'b>(b: &'b [u8], f: Field, what: &'static str) -> Result<&'b [u8]> {
    let mut c = Cursor::at(b, f.start);
    match c.string(what) {
        Ok(s) if !s.escaped => Ok(s.content(b)),
        _ => Err(Error::new(
            ErrorKind::WrongValue {
                tag: what,
                expected: "a plain string",
            },
            f.start,
        )),
    }
}

#[cold]
fn missing(what: &'static str) -> Error {
    Error::new(ErrorKind::MissingField(what), 0)
}
