//! Why a row could not be flattened.

use std::fmt;

/// A row that could not be flattened: the reason and the byte offset in the
/// row where it was found.
///
/// Boxed, so that the `Result`s returned for every token stay one word wide.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error(Box<Inner>);

#[derive(Clone, Debug, PartialEq, Eq)]
struct Inner {
    kind: ErrorKind,
    offset: usize,
}

/// The reasons a row can be rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The row is empty or only whitespace.
    Empty,
    /// The row is not valid UTF-8.
    InvalidUtf8,
    /// The row ends in the middle of a JSON value.
    UnexpectedEnd,
    /// A byte that does not fit the JSON grammar at this place.
    Expected { what: &'static str, found: String },
    /// Something follows the JSON document.
    TrailingCharacters,
    /// A raw control character (below U+0020) inside a string.
    ControlCharacter,
    /// A backslash escape that JSON does not define.
    InvalidEscape,
    /// A `\u` escape that is not valid Unicode: a lone surrogate (`\ud800`
    /// not followed by `\udc00`-`\udfff`, or `\udc00` alone).
    InvalidUnicodeEscape,
    /// A malformed JSON number (outside an `N` value).
    InvalidJsonNumber,
    /// Nesting deeper than the limit.
    TooDeep,
    /// The top-level value is not an object.
    NotAnObject,
    /// An item without attributes.
    EmptyItem,
    /// An attribute value object without a type tag: `{}`.
    MissingTypeTag,
    /// A type tag other than the ten DynamoDB types.
    UnknownTypeTag(String),
    /// An attribute value object with more than one type tag.
    TwoTypeTags,
    /// A type tag whose value has the wrong JSON type, e.g. `{"N":5}`.
    WrongValue {
        tag: &'static str,
        expected: &'static str,
    },
    /// An `N` value that is not a number.
    InvalidNumber(String),
    /// An `N` value outside DynamoDB's range: more than 38 significant
    /// digits, or a magnitude neither 0 nor from 1E-130 to
    /// 9.9999999999999999999999999999999999999E+125.
    NumberOutOfRange(String),
    /// `{"NULL": false}`.
    NullNotTrue,
    /// A `B` value in a Kinesis record that is not base64 of base64 text.
    BinaryNotDoubleEncoded,
    /// An attribute is named like a metadata field, and so is its renamed form.
    MetadataCollision(String),
    /// A key column of the column plan (`PRIMARY KEY`) that the item has no fitting
    /// value for.
    KeyNotFitting(String),
    /// A Lambda event (`{"Records":[…]}`) holding several records.
    LambdaEvent,
    /// A change record whose `eventName` is not INSERT, MODIFY or REMOVE.
    UnknownEventName(String),
    /// A required field is missing from a change record.
    MissingField(&'static str),
    /// A timestamp that is not a non-negative number of the expected unit.
    BadTimestamp(&'static str),
    /// An `ApproximateCreationDateTimePrecision` other than MILLISECOND or MICROSECOND.
    BadPrecision(String),
    /// An INSERT or MODIFY record without `NewImage`.
    NoNewImage(&'static str),
    /// The document does not have the shape that was asked for.
    WrongShape(&'static str),
}

impl Error {
    #[cold]
    pub(crate) fn new(kind: ErrorKind, offset: usize) -> Error {
        Error(Box::new(Inner { kind, offset }))
    }

    /// The reason.
    pub fn kind(&self) -> &ErrorKind {
        &self.0.kind
    }

    /// Byte offset in the row where the problem was found.
    pub fn offset(&self) -> usize {
        self.0.offset
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ErrorKind::*;
        match self {
            Empty => f.write_str("empty input"),
            InvalidUtf8 => f.write_str("invalid UTF-8"),
            UnexpectedEnd => f.write_str("unexpected end of input (truncated JSON?)"),
            Expected { what, found } => write!(f, "expected {what}, found {found}"),
            TrailingCharacters => f.write_str("trailing characters after the JSON document"),
            ControlCharacter => f.write_str("raw control character inside a string"),
            InvalidEscape => f.write_str("invalid escape sequence in a string"),
            InvalidUnicodeEscape => f.write_str(
                "string has a \\u escape that is not valid Unicode (a lone surrogate); \
                 DynamoDB cannot store such a string",
            ),
            InvalidJsonNumber => f.write_str("malformed JSON number"),
            TooDeep => f.write_str("nesting too deep"),
            NotAnObject => f.write_str("expected a JSON object"),
            EmptyItem => f.write_str("item has no attributes"),
            MissingTypeTag => f.write_str("attribute value has no type tag: {}"),
            UnknownTypeTag(t) => write!(
                f,
                "unknown type tag \"{t}\" (expected S, N, B, BOOL, NULL, M, L, SS, NS or BS)"
            ),
            TwoTypeTags => f.write_str("attribute value has more than one type tag"),
            WrongValue { tag, expected } => write!(f, "{tag} value must be {expected}"),
            InvalidNumber(n) => write!(f, "N value \"{n}\" is not a number"),
            NumberOutOfRange(n) => write!(
                f,
                "N value \"{n}\" is outside DynamoDB's range (at most 38 significant digits, \
                 magnitude 0 or 1E-130 to 9.9999999999999999999999999999999999999E+125)"
            ),
            NullNotTrue => f.write_str("NULL value must be true"),
            BinaryNotDoubleEncoded => f.write_str(
                "B value in a Kinesis record is not base64 of base64 text \
                 (run with --kinesis-binary as-is if the stream carries single-encoded binary)",
            ),
            MetadataCollision(n) => write!(
                f,
                "attribute \"{n}\" collides with a metadata field and its renamed form \
                 is taken too; choose other metadata names (--version-field, --deleted-field)"
            ),
            KeyNotFitting(n) => write!(
                f,
                "key attribute \"{n}\" is missing or does not fit its column's type, so the \
                 item has no place in the table"
            ),
            LambdaEvent => f.write_str(
                "a Lambda event with a Records array; pass one record per row, e.g. \
                 arrayJoin(JSONExtractArrayRaw(line, 'Records'))",
            ),
            UnknownEventName(n) => {
                write!(f, "eventName \"{n}\" is not INSERT, MODIFY or REMOVE")
            }
            MissingField(n) => write!(f, "change record has no {n}"),
            BadTimestamp(n) => write!(f, "{n} is not a valid timestamp"),
            BadPrecision(p) => write!(
                f,
                "ApproximateCreationDateTimePrecision \"{p}\" is not MILLISECOND or MICROSECOND"
            ),
            NoNewImage(e) => write!(
                f,
                "{e} record has no NewImage (the stream must carry new images: \
                 NEW_IMAGE or NEW_AND_OLD_IMAGES)"
            ),
            WrongShape(s) => write!(f, "document is not {s}"),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.0.kind, self.0.offset)
    }
}

impl std::error::Error for Error {}
