//! The flatten core: one document of DynamoDB JSON in, one plain JSON object
//! out. No I/O, and no knowledge of ClickHouse or AWS services beyond the
//! shapes of the documents.
//!
//! Accepted documents, detected from the document itself:
//!
//! | shape | example | version | delete flag |
//! |---|---|---|---|
//! | bare item | `{"id":{"S":"a"}}` | `snapshot_version` | 0 |
//! | full-export line | `{"Item":{…}}` | `snapshot_version` | 0 |
//! | incremental-export line | `{"Metadata":{"WriteTimestampMicros":{"N":…}},"Keys":…,"NewImage":…}` | µs as given | 1 without `NewImage` |
//! | Kinesis Data Streams record | `{"eventName":…,"dynamodb":{"ApproximateCreationDateTime":…}}` | µs (ms × 1000 without a precision field) | 1 for `REMOVE` |
//! | DynamoDB Streams record | as above, with `eventVersion` / `SequenceNumber` | seconds × 10⁶ | 1 for `REMOVE` |
//!
//! The output holds the item's attributes at the top level (the new image
//! for INSERT/MODIFY, the old image or the keys for REMOVE), then the two
//! metadata fields. `M` becomes an object, `L` an array, sets arrays, `NULL`
//! null, `B`/`BS` their base64 text, `N` a JSON number (or a JSON string with
//! [`NumberFormat::String`]) whose text is never changed.
//!
//! An item attribute named like a metadata field is written as
//! `item_<name>` (see [`RENAMED_PREFIX`]); if the item also has an attribute
//! with that renamed name, the row is an error, so no value is ever lost.

mod convert;
mod datetime;
mod decimal;
#[doc(hidden)]
pub mod differential;
mod envelope;
mod error;
mod fast;
mod item;
mod number;
mod plan;
mod scan;

pub use error::{Error, ErrorKind};
pub use fast::Kernel;
pub use item::RENAMED_PREFIX;
pub use plan::{unquote_sql, Column, ColumnPlan, PlanError, EXTRA_FIELD};
pub use scan::MAX_JSON_DEPTH;

use std::sync::Arc;

use convert::{ColumnWriter, Lookup};
use envelope::{Field, Kind};
use item::{json_string, Reserved, Style, Transcoder};
use scan::Cursor;

/// How `N` values are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NumberFormat {
    /// JSON numbers: `26`, `1E+2`. Exact into integer, Float64 and String
    /// columns; ClickHouse reads Decimal from a JSON number through Float64.
    #[default]
    Number,
    /// JSON strings: `"26"`. Exact into every numeric type, Decimal included.
    String,
}

/// Which document shape to expect.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ShapeHint {
    /// Detect it from the document.
    #[default]
    Auto,
    /// A bare item: every top-level key is an attribute.
    Item,
    /// A full-export line `{"Item":{…}}`.
    Export,
    /// An incremental-export line.
    Incremental,
    /// A Kinesis Data Streams or DynamoDB Streams record.
    Change,
}

/// How `B` values in Kinesis Data Streams records are read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KinesisBinary {
    /// They are base64 of the base64 text: remove one layer, so that they
    /// equal the export's values.
    #[default]
    Unwrap,
    /// Write them as they are.
    AsIs,
}

/// Settings of a [`Flattener`].
#[derive(Clone, Debug)]
pub struct Options {
    pub numbers: NumberFormat,
    /// Write the version and delete-flag fields.
    pub metadata: bool,
    pub version_field: String,
    pub deleted_field: String,
    /// The version of items from bare items and full-export lines.
    pub snapshot_version: u64,
    pub shape: ShapeHint,
    pub kinesis_binary: KinesisBinary,
    /// The destination's columns: each attribute is converted to its column's type, and
    /// what has no column or does not fit goes to `_extra` (see [`ColumnPlan`]).
    pub columns: Option<Arc<ColumnPlan>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            numbers: NumberFormat::Number,
            metadata: true,
            version_field: "version".into(),
            deleted_field: "is_deleted".into(),
            snapshot_version: 0,
            shape: ShapeHint::Auto,
            kinesis_binary: KinesisBinary::Unwrap,
            columns: None,
        }
    }
}

/// The shape a document was read as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Item,
    Export,
    Incremental,
    Kinesis,
    Streams,
}

/// What a flattened row carried besides its attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flattened {
    pub shape: Shape,
    /// Microseconds since the epoch, or the snapshot version.
    pub version: u64,
    pub deleted: bool,
}

/// Where an item is in a document; see [`Flattener::locate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    pub shape: Shape,
    /// Byte range of the item's attribute map `{…}` in the document.
    pub item: std::ops::Range<usize>,
    pub version: u64,
    pub deleted: bool,
}

/// Flattens documents one at a time, reusing its buffers.
pub struct Flattener {
    opts: Options,
    /// `,"version":` with the configured name.
    version_key: Vec<u8>,
    /// `,"is_deleted":` with the configured name.
    deleted_key: Vec<u8>,
    reserved: Option<Reserved>,
    /// The column plan by name, when there is one.
    lookup: Option<Lookup>,
    top: Vec<Field>,
    inner: Vec<Field>,
    scratch: Vec<u8>,
    /// `_extra` of the row being written.
    extra: Vec<u8>,
    /// A nested document of the row being written, before it is quoted.
    doc: Vec<u8>,
    /// What flattens plain rows.
    kernel: Kernel,
    /// The input of the fast path, padded, and the index of its special bytes.
    pad: Vec<u8>,
    bits: Vec<u64>,
    /// The column-aware mode's fast pass over an item: the plain row it writes, and
    /// where each attribute stands in the item and in that row.
    fast_out: Vec<u8>,
    attrs: Vec<fast::Attr>,
}

impl Flattener {
    pub fn new(opts: Options) -> Flattener {
        let key = |name: &str| {
            let mut k = vec![b','];
            k.extend_from_slice(&json_string(name));
            k.push(b':');
            k
        };
        let reserved = opts
            .metadata
            .then(|| Reserved::new(&[&opts.version_field, &opts.deleted_field]));
        let mut f = Flattener {
            version_key: key(&opts.version_field),
            deleted_key: key(&opts.deleted_field),
            reserved,
            lookup: None,
            opts,
            top: Vec::new(),
            inner: Vec::new(),
            scratch: Vec::new(),
            extra: Vec::new(),
            doc: Vec::new(),
            kernel: Kernel::detected(),
            pad: Vec::new(),
            bits: Vec::new(),
            fast_out: Vec::new(),
            attrs: Vec::new(),
        };
        f.set_columns(f.opts.columns.clone());
        f
    }

    /// Changes the column plan (`None`: plain flattening).
    pub fn set_columns(&mut self, columns: Option<Arc<ColumnPlan>>) {
        let skip: &[&str] = if self.opts.metadata {
            &[&self.opts.version_field, &self.opts.deleted_field]
        } else {
            &[]
        };
        self.lookup = columns.as_deref().map(|p| Lookup::new(p, skip));
        self.opts.columns = columns;
    }

    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// Chooses the kernel that flattens plain rows (all write the same bytes); returns
    /// false, changing nothing, for one this CPU does not run.
    pub fn set_kernel(&mut self, kernel: Kernel) -> bool {
        if !kernel.is_available() {
            return false;
        }
        self.kernel = kernel;
        true
    }

    /// The kernel in use: [`Kernel::detected`] unless [`Flattener::set_kernel`] chose
    /// another.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// Appends the flat JSON object for `input` to `out`. On error `out` is
    /// left as it was.
    pub fn flatten(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<Flattened, Error> {
        let mark = out.len();
        out.reserve(input.len() + 48);
        let r = self.flatten_inner(input, out);
        if r.is_err() {
            out.truncate(mark);
        }
        r
    }

    fn flatten_inner(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<Flattened, Error> {
        if let Some(f) = self.early_export(input, out) {
            return Ok(f);
        }
        if simdutf8::basic::from_utf8(input).is_err() {
            let at = std::str::from_utf8(input)
                .err()
                .map_or(0, |e| e.valid_up_to());
            return Err(Error::new(ErrorKind::InvalidUtf8, at));
        }
        let mut c = Cursor::new(input);
        c.skip_ws();
        match input.get(c.i) {
            None => return Err(Error::new(ErrorKind::Empty, 0)),
            Some(b'{') => {}
            Some(_) => return Err(c.err(ErrorKind::NotAnObject)),
        }
        let snapshot = self.opts.snapshot_version;
        match self.opts.shape {
            ShapeHint::Item => {
                self.item_at(input, c.i, 0, Shape::Item, snapshot, false, false, out)
            }
            ShapeHint::Export => self.envelope(input, Some(Kind::Export), out),
            ShapeHint::Incremental => self.envelope(input, Some(Kind::Incremental), out),
            ShapeHint::Change => self.envelope(input, Some(Kind::Change), out),
            ShapeHint::Auto => {
                let start = c.i;
                c.i += 1;
                if c.peek()? == b'}' {
                    return Err(c.err(ErrorKind::EmptyItem));
                }
                let key = c.string("an attribute name")?;
                let k = key.content(input);
                if key.escaped {
                    self.item_fast(input, start, out)
                } else if k == b"Item" {
                    self.export_fast(input, c, out)
                } else if envelope::is_envelope_key(k) {
                    self.envelope(input, None, out)
                } else {
                    self.item_fast(input, start, out)
                }
            }
        }
    }

    /// The common line, `{"Item":{…}}` as DynamoDB exports write it, read before the
    /// UTF-8 check: when the fast path wrote the item and its window pass found the bytes
    /// from the item on to be UTF-8 (all ASCII, or checked there by the AVX-512 kernel),
    /// the line needs no check (the bytes before the item are the parsed `{"Item":`);
    /// otherwise it is checked after (neither path, nor the column writer, relies on the
    /// bytes being UTF-8). `None`, with `out` unchanged, for anything else (another
    /// shape, invalid UTF-8, a key after `Item`, any error): the general path then reads
    /// the line from the start, and finds the same row or error it always did.
    #[inline]
    fn early_export(&mut self, input: &[u8], out: &mut Vec<u8>) -> Option<Flattened> {
        const PREFIX: &[u8] = br#"{"Item":"#;
        if self.opts.shape != ShapeHint::Auto
            || self.kernel == Kernel::Scalar
            || !input.starts_with(PREFIX)
        {
            return None;
        }
        let mark = out.len();
        let Ok((end, utf8)) = self.transcode(input, PREFIX.len(), 1, false, out) else {
            out.truncate(mark);
            return None;
        };
        let mut c = Cursor::at(input, end);
        let whole = c.peek().is_ok_and(|b| b == b'}') && {
            c.i += 1;
            c.finish().is_ok()
        };
        if !whole || !(utf8 || simdutf8::basic::from_utf8(input).is_ok()) {
            out.truncate(mark);
            return None;
        }
        Some(self.export_row(out))
    }

    /// The metadata of an export line's row, and what its flattening found.
    fn export_row(&self, out: &mut Vec<u8>) -> Flattened {
        let v = self.opts.snapshot_version;
        self.metadata(out, v, false);
        Flattened {
            shape: Shape::Export,
            version: v,
            deleted: false,
        }
    }

    /// A document whose first key is an ordinary attribute name, read as a
    /// bare item in one pass. If that fails, a later key may still make it an
    /// envelope (`{"id":…,"eventName":"INSERT",…}`): then the full scan
    /// decides, so that the shape never depends on the key order. A real
    /// item read here is what [`envelope::classify`] calls an item too.
    fn item_fast(
        &mut self,
        input: &[u8],
        start: usize,
        out: &mut Vec<u8>,
    ) -> Result<Flattened, Error> {
        let mark = out.len();
        let snapshot = self.opts.snapshot_version;
        match self.item_at(input, start, 0, Shape::Item, snapshot, false, false, out) {
            Ok(f) => Ok(f),
            Err(e) => {
                out.truncate(mark);
                if self.is_envelope(input) {
                    self.envelope(input, None, out)
                } else {
                    Err(e)
                }
            }
        }
    }

    /// True when `input` is valid JSON that [`envelope::classify`] does not
    /// call a bare item.
    #[cold]
    fn is_envelope(&mut self, input: &[u8]) -> bool {
        let mut top = std::mem::take(&mut self.top);
        top.clear();
        let mut c = Cursor::new(input);
        let scanned = envelope::scan_object(&mut c, 0, &mut top).and_then(|()| c.finish());
        let envelope = scanned.is_ok() && envelope::classify(input, &top) != Kind::Item;
        self.top = top;
        envelope
    }

    /// `{"Item":{…}}` read in one pass; falls back to a full scan when
    /// another key follows `Item`.
    fn export_fast(
        &mut self,
        input: &[u8],
        mut c: Cursor<'_>,
        out: &mut Vec<u8>,
    ) -> Result<Flattened, Error> {
        c.expect(b':', "':'")?;
        let mark = out.len();
        // A bare item may have an attribute named Item: if this is not an
        // export line after all, the full scan decides.
        let end = match self.transcode(input, c.i, 1, false, out) {
            Ok((end, _)) => end,
            Err(_) => {
                out.truncate(mark);
                return self.envelope(input, None, out);
            }
        };
        let mut c = Cursor::at(input, end);
        if c.peek()? == b',' {
            out.truncate(mark);
            return self.envelope(input, None, out);
        }
        c.expect(b'}', "',' or '}'")?;
        c.finish()?;
        Ok(self.export_row(out))
    }

    /// Scans the top-level object and handles it by its keys.
    fn envelope(
        &mut self,
        input: &[u8],
        want: Option<Kind>,
        out: &mut Vec<u8>,
    ) -> Result<Flattened, Error> {
        let mut top = std::mem::take(&mut self.top);
        let mut inner = std::mem::take(&mut self.inner);
        let r = self.envelope_with(input, want, &mut top, &mut inner, out);
        self.top = top;
        self.inner = inner;
        r
    }

    fn envelope_with(
        &mut self,
        input: &[u8],
        want: Option<Kind>,
        top: &mut Vec<Field>,
        inner: &mut Vec<Field>,
        out: &mut Vec<u8>,
    ) -> Result<Flattened, Error> {
        let loc = self.locate_with(input, want, top, inner)?;
        let (depth, unwrap) = match loc.shape {
            Shape::Item => (0, false),
            Shape::Export | Shape::Incremental => (1, false),
            Shape::Streams => (2, false),
            Shape::Kinesis => (2, self.opts.kinesis_binary == KinesisBinary::Unwrap),
        };
        let (v, d) = (loc.version, loc.deleted);
        self.item_at(input, loc.item.start, depth, loc.shape, v, d, unwrap, out)
    }

    /// Finds the item in `input` without writing anything: the shape, the
    /// byte range of the item's attribute map (the image to write, for change
    /// records), the version and the delete flag, by the same rules as
    /// [`Flattener::flatten`]. The attribute map itself is not checked here.
    pub fn locate(&mut self, input: &[u8]) -> Result<Located, Error> {
        if simdutf8::basic::from_utf8(input).is_err() {
            let at = std::str::from_utf8(input)
                .err()
                .map_or(0, |e| e.valid_up_to());
            return Err(Error::new(ErrorKind::InvalidUtf8, at));
        }
        let mut top = std::mem::take(&mut self.top);
        let mut inner = std::mem::take(&mut self.inner);
        let want = match self.opts.shape {
            ShapeHint::Auto => None,
            ShapeHint::Item => Some(Kind::Item),
            ShapeHint::Export => Some(Kind::Export),
            ShapeHint::Incremental => Some(Kind::Incremental),
            ShapeHint::Change => Some(Kind::Change),
        };
        let r = self.locate_with(input, want, &mut top, &mut inner);
        self.top = top;
        self.inner = inner;
        r
    }

    /// Scans the top-level object and finds the item by the document's keys
    /// (or as `want` says).
    fn locate_with(
        &self,
        input: &[u8],
        want: Option<Kind>,
        top: &mut Vec<Field>,
        inner: &mut Vec<Field>,
    ) -> Result<Located, Error> {
        top.clear();
        let mut c = Cursor::new(input);
        c.skip_ws();
        if c.i == input.len() {
            return Err(Error::new(ErrorKind::Empty, 0));
        }
        let start = c.i;
        envelope::scan_object(&mut c, 0, top)?;
        c.finish()?;
        let kind = match want {
            // Any object can be read as a bare item.
            Some(Kind::Item) => Kind::Item,
            Some(w) if w != envelope::classify(input, top) => {
                return Err(Error::new(ErrorKind::WrongShape(kind_name(w)), 0));
            }
            Some(w) => w,
            None => envelope::classify(input, top),
        };
        let snapshot = self.opts.snapshot_version;
        let located = |shape, item, version, deleted| Located {
            shape,
            item,
            version,
            deleted,
        };
        match kind {
            Kind::Lambda => Err(Error::new(ErrorKind::LambdaEvent, 0)),
            Kind::Item => Ok(located(Shape::Item, start..c.i, snapshot, false)),
            Kind::Export => match envelope::get(input, top, "Item") {
                Some(f) => Ok(located(Shape::Export, f.start..f.end, snapshot, false)),
                None => Err(Error::new(
                    ErrorKind::WrongShape(kind_name(Kind::Export)),
                    0,
                )),
            },
            Kind::Incremental => {
                let ch = envelope::incremental(input, top, inner)?;
                let item = ch.image_at..ch.image_end;
                Ok(located(Shape::Incremental, item, ch.version, ch.deleted))
            }
            Kind::Change => {
                let ch = envelope::change_record(input, top, inner)?;
                let shape = if ch.kinesis {
                    Shape::Kinesis
                } else {
                    Shape::Streams
                };
                let item = ch.image_at..ch.image_end;
                Ok(located(shape, item, ch.version, ch.deleted))
            }
        }
    }

    /// Writes the item whose attribute map starts at `at`, then the metadata.
    #[allow(clippy::too_many_arguments)]
    fn item_at(
        &mut self,
        input: &[u8],
        at: usize,
        depth: usize,
        shape: Shape,
        version: u64,
        deleted: bool,
        unwrap_binary: bool,
        out: &mut Vec<u8>,
    ) -> Result<Flattened, Error> {
        let (end, _) = self.transcode(input, at, depth, unwrap_binary, out)?;
        if shape == Shape::Item {
            Cursor::at(input, end).finish()?;
        }
        self.metadata(out, version, deleted);
        Ok(Flattened {
            shape,
            version,
            deleted,
        })
    }

    /// Transcodes the attribute map at `at` (without its closing brace); returns the
    /// offset just after it, and whether the fast path's window pass (which runs in the
    /// column-aware mode too) found the document from `at` on to be UTF-8 (false when
    /// it did not run, gave up, or could not tell).
    fn transcode(
        &mut self,
        input: &[u8],
        at: usize,
        depth: usize,
        unwrap_binary: bool,
        out: &mut Vec<u8>,
    ) -> Result<(usize, bool), Error> {
        if let Some(lookup) = &self.lookup {
            // The fast path over the whole item, for where its attributes stand and their
            // plain values: when it takes the item, each value kept in `_extra` is copied
            // as it stands (what the transcoder would write of it), and a value whose
            // column takes it as it is (String from S, Bool, Array(String) from SS, and
            // quoted, String from M or L) is copied from the plain row, neither read
            // again; and its window pass's UTF-8 finding holds for what the column
            // writer reads.
            let mut utf8 = false;
            let fast = (self.kernel != Kernel::Scalar && !unwrap_binary && {
                self.fast_out.clear();
                fast::transcode(
                    self.kernel,
                    &input[at..],
                    self.reserved.as_ref(),
                    false,
                    &mut self.pad,
                    &mut self.bits,
                    &mut self.fast_out,
                    Some(&mut self.attrs),
                )
                .map(|scan| utf8 = scan.utf8)
                .is_ok()
            })
            .then_some((&self.attrs[..], &self.fast_out[..]));
            let mut w = ColumnWriter {
                c: Cursor::at(input, at),
                out,
                extra: &mut self.extra,
                scratch: &mut self.scratch,
                doc: &mut self.doc,
                unwrap_binary,
                fast,
            };
            w.top_item(depth, self.reserved.as_ref(), lookup)?;
            return Ok((w.c.i, utf8));
        }
        let numbers_as_strings = self.opts.numbers == NumberFormat::String;
        if self.kernel != Kernel::Scalar && !unwrap_binary {
            let fast = fast::transcode(
                self.kernel,
                &input[at..],
                self.reserved.as_ref(),
                numbers_as_strings,
                &mut self.pad,
                &mut self.bits,
                out,
                None,
            );
            if let Ok(scan) = fast {
                return Ok((at + scan.read, scan.utf8));
            }
        }
        let mut t = Transcoder {
            c: Cursor::at(input, at),
            out,
            style: Style {
                numbers_as_strings,
                unwrap_binary,
                typed: false,
            },
            scratch: &mut self.scratch,
        };
        t.top_item(depth, self.reserved.as_ref())?;
        Ok((t.c.i, false))
    }

    #[inline]
    fn metadata(&self, out: &mut Vec<u8>, version: u64, deleted: bool) {
        if self.opts.metadata {
            out.extend_from_slice(&self.version_key);
            out.extend_from_slice(itoa::Buffer::new().format(version).as_bytes());
            out.extend_from_slice(&self.deleted_key);
            out.push(if deleted { b'1' } else { b'0' });
        }
        out.push(b'}');
    }
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Export => "a full-export line {\"Item\":{…}}",
        Kind::Incremental => "an incremental-export line",
        Kind::Change => "a Kinesis or DynamoDB Streams change record",
        Kind::Lambda => "a Lambda event",
        Kind::Item => "a bare item",
    }
}

/// Checks the metadata field names (`--version-field`, `--deleted-field`): not empty,
/// different, also after the renaming of colliding attributes (`version` →
/// `item_version`), and not `_extra`.
pub fn check_field_names(version: &str, deleted: &str) -> Result<(), String> {
    let renamed = |n: &str| format!("{}{n}", RENAMED_PREFIX);
    if version.is_empty() || deleted.is_empty() {
        return Err("--version-field and --deleted-field must not be empty".into());
    }
    if version == deleted {
        return Err("--version-field and --deleted-field must differ".into());
    }
    if renamed(version) == deleted || renamed(deleted) == version {
        return Err(format!(
            "--version-field {version:?} and --deleted-field {deleted:?}: one is the other's \
             renamed form ({}NAME), so a colliding attribute could not be kept",
            RENAMED_PREFIX
        ));
    }
    if version == EXTRA_FIELD || deleted == EXTRA_FIELD {
        return Err(format!(
            "--version-field and --deleted-field cannot be {}: that column holds the attributes \
             without a column",
            EXTRA_FIELD
        ));
    }
    Ok(())
}

/// How many bytes of a bad row an error row quotes.
pub const ERROR_INPUT_PREFIX: usize = 256;

/// Appends the error row for `input`: `{"_error":"<reason> at byte N","_input":"<first bytes>"}`.
///
/// An error row always starts with `{"_error":`, so SQL can route it with
/// `startsWith(j, '{"_error"')`.
pub fn write_error_row(err: &Error, input: &[u8], out: &mut Vec<u8>) {
    let cut = input.len().min(ERROR_INPUT_PREFIX);
    let prefix = String::from_utf8_lossy(&input[..cut]);
    out.extend_from_slice(b"{\"_error\":");
    out.extend_from_slice(&json_string(&err.to_string()));
    out.extend_from_slice(b",\"_input\":");
    out.extend_from_slice(&json_string(&prefix));
    out.push(b'}');
}
