//! Property tests of the flatten core against an independent reference.
//!
//! Plain documents are generated, marshalled into DynamoDB JSON by the code
//! in this file (which shares nothing with the crate), wrapped in one of the
//! accepted document shapes (bare item, full-export line, incremental-export
//! line, Kinesis Data Streams record, DynamoDB Streams record) and written
//! either by a writer with random escapes and whitespace or by serde_json.
//! The flattened row must equal the plain document: as text (the flattener
//! copies strings and numbers verbatim and writes no whitespace) and as
//! parsed JSON.
//!
//! Further properties: arbitrary and mutated input never panics, an `Err`
//! leaves the output buffer as it was, an `Ok` row is valid JSON; metadata
//! name collisions; nesting limits.

use std::fmt::Write as _;

use dynamo_flatten::flatten::{
    write_error_row, ErrorKind, Flattener, KinesisBinary, NumberFormat, Options, Shape, ShapeHint,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Value};

mod common;
use common::{b64, dedup, encode_str, mutate, mutation, push_u_escape, Av, Bin, JStr};

// ---------------------------------------------------------------------------
// A small deterministic generator for choices that need not shrink
// (whitespace, member order).

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

// ---------------------------------------------------------------------------
// Strings: the decoded value and the JSON literal chosen for it.

fn any_char() -> impl Strategy<Value = char> {
    prop_oneof![
        6 => proptest::char::range('a', 'z'),
        1 => Just('"'),
        1 => Just('\\'),
        1 => Just('/'),
        2 => proptest::char::range('\u{0}', '\u{1f}'),
        2 => select(vec![
            'é', 'ü', 'ß', 'Ω', '中', '文', '\u{7f}', '\u{80}', '\u{2028}', '\u{2029}', '\u{feff}',
            '\u{fffd}', '\u{ffff}', '\u{d7ff}', '\u{e000}', ' ',
        ]),
        2 => proptest::char::range('\u{10000}', '\u{10ffff}'),
        1 => any::<char>(),
    ]
}

fn jstr() -> impl Strategy<Value = JStr> {
    // Long strings cross the scanner's 8- and 16-byte chunks.
    let len = prop_oneof![4 => 0usize..10, 1 => 10usize..80];
    len.prop_flat_map(|n| vec((any_char(), any::<u8>()), n))
        .prop_map(|cs| encode_str(&cs))
}

/// `name` with random escapes.
fn spelled(name: &'static str) -> impl Strategy<Value = JStr> {
    vec(
        prop_oneof![6 => Just(1u8), 1 => Just(0u8), 1 => Just(0x10u8)],
        name.chars().count(),
    )
    .prop_map(move |styles| {
        let cs: Vec<(char, u8)> = name.chars().zip(styles).collect();
        encode_str(&cs)
    })
}

/// Names that the flattener treats specially somewhere.
const SPECIAL_NAMES: &[&str] = &[
    "version",
    "is_deleted",
    "item_version",
    "item_is_deleted",
    "_version",
    "item__version",
    "Item",
    "Keys",
    "NewImage",
    "OldImage",
    "Metadata",
    "Records",
    "dynamodb",
    "eventName",
    "S",
    "N",
    "M",
    "L",
    "NULL",
];

fn attr_name() -> impl Strategy<Value = JStr> {
    prop_oneof![
        4 => jstr(),
        3 => "[a-zA-Z_][a-zA-Z0-9_.-]{0,8}".prop_map(|s| JStr::plain(&s)),
        2 => select(SPECIAL_NAMES).prop_map(JStr::plain),
        1 => select(SPECIAL_NAMES).prop_flat_map(spelled),
    ]
}

// ---------------------------------------------------------------------------
// Numbers: text of valid DynamoDB numbers (up to 38 significant digits).

fn number() -> impl Strategy<Value = String> {
    let int = prop_oneof![Just("0".to_string()), "[1-9][0-9]{0,20}"];
    let frac = proptest::option::of("[0-9]{1,17}");
    // At most 21 integer digits (first one at 10^20) and 17 fraction digits:
    // these exponents keep the number within 1E-130 ..= 9.99…E+125.
    let exp = proptest::option::of((
        "[eE]",
        prop_oneof![(select(vec!["", "+"]), 0u32..106), (Just("-"), 0u32..114)],
    ));
    let generated = (any::<bool>(), int, frac, exp).prop_map(|(neg, int, frac, exp)| {
        let mut s = String::new();
        if neg {
            s.push('-');
        }
        s.push_str(&int);
        if let Some(f) = frac {
            s.push('.');
            s.push_str(&f);
        }
        if let Some((e, (sign, n))) = exp {
            write!(s, "{e}{sign}{n}").unwrap();
        }
        s
    });
    prop_oneof![
        8 => generated,
        1 => "-?[1-9][0-9]{37}",
        1 => select(vec![
            "0",
            "-0",
            "99999999999999999999999999999999999999",
            "-99999999999999999999999999999999999999",
            "9.9999999999999999999999999999999999999E+125",
            "-9.9999999999999999999999999999999999999E+125",
            "1E-130",
            "-1E-130",
            "1E+125",
            "0.00000000000000000000000000000000000001",
            "12345678901234567890123456789.123456789",
            "1e0",
            "1E-0",
            "0.0",
        ])
        .prop_map(String::from),
    ]
}

// ---------------------------------------------------------------------------
// Binary: own base64, so that nothing is shared with the crate.

#[test]
fn own_base64_matches_rfc4648_vectors() {
    let cases = [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ];
    for (plain, enc) in cases {
        assert_eq!(b64(plain.as_bytes()), enc);
    }
    assert_eq!(b64(&[0xff, 0xef]), "/+8=");
}

fn bin() -> impl Strategy<Value = Bin> {
    (vec(any::<u8>(), 0..16), any::<bool>()).prop_map(|(bytes, escape_slash)| Bin {
        bytes,
        escape_slash,
    })
}

/// The `B` string in the input document.
fn bin_input(b: &Bin, kinesis: bool) -> JStr {
    if kinesis {
        JStr::plain(&b64(b64(&b.bytes).as_bytes()))
    } else {
        let text = b64(&b.bytes);
        let raw = if b.escape_slash {
            format!("\"{}\"", text.replace('/', "\\/"))
        } else {
            format!("\"{text}\"")
        };
        JStr { value: text, raw }
    }
}

// ---------------------------------------------------------------------------
// Attribute values.

fn av() -> impl Strategy<Value = Av> {
    let leaf = prop_oneof![
        3 => jstr().prop_map(Av::S),
        3 => number().prop_map(Av::N),
        1 => bin().prop_map(Av::B),
        1 => any::<bool>().prop_map(Av::Bool),
        1 => Just(Av::Null),
        1 => vec(jstr(), 1..4).prop_map(Av::Ss),
        1 => vec(number(), 1..4).prop_map(Av::Ns),
        1 => vec(bin(), 1..4).prop_map(Av::Bs),
    ];
    leaf.prop_recursive(6, 40, 5, |inner| {
        prop_oneof![
            vec((attr_name(), inner.clone()), 0..5).prop_map(|kv| Av::M(dedup(kv))),
            vec(inner, 0..5).prop_map(Av::L),
        ]
    })
}

fn item() -> impl Strategy<Value = Vec<(JStr, Av)>> {
    vec((attr_name(), av()), 1..6).prop_map(dedup)
}

// ---------------------------------------------------------------------------
// JSON documents as written: a tree whose strings keep their literals.

#[derive(Clone, Debug)]
enum Doc {
    Obj(Vec<(JStr, Doc)>),
    Arr(Vec<Doc>),
    Str(JStr),
    Num(String),
    Bool(bool),
    Null,
}

fn tagged(tag: &str, d: Doc) -> Doc {
    Doc::Obj(vec![(JStr::plain(tag), d)])
}

fn obj(members: Vec<(&str, Doc)>) -> Doc {
    Doc::Obj(
        members
            .into_iter()
            .map(|(k, v)| (JStr::plain(k), v))
            .collect(),
    )
}

fn s(text: &str) -> Doc {
    Doc::Str(JStr::plain(text))
}

/// Marshals an attribute value into DynamoDB JSON. Kinesis records carry
/// `B` values base64-encoded twice.
fn marshal(a: &Av, kinesis: bool) -> Doc {
    match a {
        Av::S(j) => tagged("S", Doc::Str(j.clone())),
        Av::N(t) => tagged("N", s(t)),
        Av::B(b) => tagged("B", Doc::Str(bin_input(b, kinesis))),
        Av::Bool(b) => tagged("BOOL", Doc::Bool(*b)),
        Av::Null => tagged("NULL", Doc::Bool(true)),
        Av::M(kv) => tagged("M", marshal_item(kv, kinesis)),
        Av::L(l) => tagged(
            "L",
            Doc::Arr(l.iter().map(|v| marshal(v, kinesis)).collect()),
        ),
        Av::Ss(v) => tagged("SS", Doc::Arr(v.iter().cloned().map(Doc::Str).collect())),
        Av::Ns(v) => tagged("NS", Doc::Arr(v.iter().map(|t| s(t)).collect())),
        Av::Bs(v) => tagged(
            "BS",
            Doc::Arr(v.iter().map(|b| Doc::Str(bin_input(b, kinesis))).collect()),
        ),
    }
}

fn marshal_item(attrs: &[(JStr, Av)], kinesis: bool) -> Doc {
    Doc::Obj(
        attrs
            .iter()
            .map(|(k, v)| (k.clone(), marshal(v, kinesis)))
            .collect(),
    )
}

fn doc_value(d: &Doc) -> Value {
    match d {
        Doc::Obj(kv) => {
            let mut m = Map::new();
            for (k, v) in kv {
                m.insert(k.value.clone(), doc_value(v));
            }
            Value::Object(m)
        }
        Doc::Arr(v) => Value::Array(v.iter().map(doc_value).collect()),
        Doc::Str(j) => Value::String(j.value.clone()),
        Doc::Num(t) => serde_json::from_str(t).unwrap(),
        Doc::Bool(b) => Value::Bool(*b),
        Doc::Null => Value::Null,
    }
}

/// Writes a document with the chosen literals, and random whitespace
/// between tokens when `ws` is given.
struct Writer {
    s: String,
    ws: Option<Rng>,
}

impl Writer {
    fn ws(&mut self) {
        if let Some(r) = &mut self.ws {
            while r.below(3) == 0 {
                self.s.push([' ', '\t', '\n', '\r'][r.below(4)]);
            }
        }
    }

    fn write(&mut self, d: &Doc) {
        self.ws();
        match d {
            Doc::Obj(kv) => {
                self.s.push('{');
                for (i, (k, v)) in kv.iter().enumerate() {
                    if i > 0 {
                        self.ws();
                        self.s.push(',');
                    }
                    self.ws();
                    self.s.push_str(&k.raw);
                    self.ws();
                    self.s.push(':');
                    self.write(v);
                }
                self.ws();
                self.s.push('}');
            }
            Doc::Arr(v) => {
                self.s.push('[');
                for (i, x) in v.iter().enumerate() {
                    if i > 0 {
                        self.ws();
                        self.s.push(',');
                    }
                    self.write(x);
                }
                self.ws();
                self.s.push(']');
            }
            Doc::Str(j) => self.s.push_str(&j.raw),
            Doc::Num(t) => self.s.push_str(t),
            Doc::Bool(b) => self.s.push_str(if *b { "true" } else { "false" }),
            Doc::Null => self.s.push_str("null"),
        }
        self.ws();
    }
}

// ---------------------------------------------------------------------------
// The expected flat row.

#[derive(Clone, Copy)]
struct OutStyle {
    strings: bool,
    /// The values come from a Kinesis record (B base64 twice).
    kinesis: bool,
    /// ...and one layer is removed.
    unwrap: bool,
}

fn bin_output(b: &Bin, st: OutStyle) -> JStr {
    if st.kinesis && st.unwrap {
        JStr::plain(&b64(&b.bytes))
    } else {
        bin_input(b, st.kinesis)
    }
}

fn number_text(t: &str, st: OutStyle) -> String {
    if st.strings {
        format!("\"{t}\"")
    } else {
        t.to_string()
    }
}

fn number_value(t: &str, st: OutStyle) -> Value {
    if st.strings {
        Value::String(t.to_string())
    } else {
        serde_json::from_str(t).unwrap()
    }
}

fn plain_text(a: &Av, st: OutStyle, o: &mut String) {
    match a {
        Av::S(j) => o.push_str(&j.raw),
        Av::N(t) => o.push_str(&number_text(t, st)),
        Av::B(b) => o.push_str(&bin_output(b, st).raw),
        Av::Bool(b) => o.push_str(if *b { "true" } else { "false" }),
        Av::Null => o.push_str("null"),
        Av::M(kv) => {
            o.push('{');
            for (i, (k, v)) in kv.iter().enumerate() {
                if i > 0 {
                    o.push(',');
                }
                o.push_str(&k.raw);
                o.push(':');
                plain_text(v, st, o);
            }
            o.push('}');
        }
        Av::L(l) => {
            o.push('[');
            for (i, v) in l.iter().enumerate() {
                if i > 0 {
                    o.push(',');
                }
                plain_text(v, st, o);
            }
            o.push(']');
        }
        Av::Ss(v) => {
            let parts: Vec<&str> = v.iter().map(|j| j.raw.as_str()).collect();
            write!(o, "[{}]", parts.join(",")).unwrap();
        }
        Av::Ns(v) => {
            let parts: Vec<String> = v.iter().map(|t| number_text(t, st)).collect();
            write!(o, "[{}]", parts.join(",")).unwrap();
        }
        Av::Bs(v) => {
            let parts: Vec<String> = v.iter().map(|b| bin_output(b, st).raw).collect();
            write!(o, "[{}]", parts.join(",")).unwrap();
        }
    }
}

fn plain_value(a: &Av, st: OutStyle) -> Value {
    match a {
        Av::S(j) => Value::String(j.value.clone()),
        Av::N(t) => number_value(t, st),
        Av::B(b) => Value::String(bin_output(b, st).value),
        Av::Bool(b) => Value::Bool(*b),
        Av::Null => Value::Null,
        Av::M(kv) => Value::Object(
            kv.iter()
                .map(|(k, v)| (k.value.clone(), plain_value(v, st)))
                .collect(),
        ),
        Av::L(l) => Value::Array(l.iter().map(|v| plain_value(v, st)).collect()),
        Av::Ss(v) => Value::Array(v.iter().map(|j| Value::String(j.value.clone())).collect()),
        Av::Ns(v) => Value::Array(v.iter().map(|t| number_value(t, st)).collect()),
        Av::Bs(v) => Value::Array(
            v.iter()
                .map(|b| Value::String(bin_output(b, st).value))
                .collect(),
        ),
    }
}

// ---------------------------------------------------------------------------
// Document shapes.

#[derive(Clone, Copy, Debug)]
enum Event {
    Insert,
    Modify,
    Remove,
}

impl Event {
    fn name(self) -> &'static str {
        match self {
            Event::Insert => "INSERT",
            Event::Modify => "MODIFY",
            Event::Remove => "REMOVE",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Precision {
    Micro,
    Milli,
    Absent,
}

/// A DynamoDB Streams timestamp in seconds: `int.frac`, maybe written in
/// scientific notation.
#[derive(Clone, Debug)]
struct Secs {
    int: u64,
    frac: String,
    sci: bool,
    upper: bool,
}

impl Secs {
    fn text(&self) -> String {
        let int = self.int.to_string();
        if self.sci && self.int > 0 {
            let rest = format!("{}{}", &int[1..], self.frac);
            let mut t = int[..1].to_string();
            if !rest.is_empty() {
                t.push('.');
                t.push_str(&rest);
            }
            let e = if self.upper { "E+" } else { "e" };
            write!(t, "{e}{}", int.len() - 1).unwrap();
            t
        } else if self.frac.is_empty() {
            int
        } else {
            format!("{int}.{}", self.frac)
        }
    }

    /// Microseconds, truncated.
    fn micros(&self) -> u64 {
        let mut f: String = self.frac.chars().take(6).collect();
        while f.len() < 6 {
            f.push('0');
        }
        self.int * 1_000_000 + f.parse::<u64>().unwrap()
    }
}

#[derive(Clone, Debug)]
enum Wrap {
    Bare,
    Export,
    Incremental {
        micros: u64,
        deleted: bool,
        old: bool,
        nkeys: usize,
    },
    Kinesis {
        event: Event,
        precision: Precision,
        ts: u64,
        quoted: bool,
        old: bool,
        nkeys: usize,
        identity: bool,
    },
    Streams {
        event: Event,
        secs: Secs,
        quoted: bool,
        /// Which of eventVersion, eventSourceARN, SequenceNumber,
        /// StreamViewType are present (at least one).
        markers: u8,
        old: bool,
        nkeys: usize,
    },
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        Just(Event::Insert),
        Just(Event::Modify),
        Just(Event::Remove)
    ]
}

fn wrap() -> impl Strategy<Value = Wrap> {
    let micros = prop_oneof![
        3 => 1_500_000_000_000_000u64..1_900_000_000_000_000,
        1 => any::<u64>(),
        1 => Just(0u64),
        1 => Just(u64::MAX),
    ];
    let incremental = (micros.clone(), any::<bool>(), any::<bool>(), 0usize..8).prop_map(
        |(micros, deleted, old, nkeys)| Wrap::Incremental {
            micros,
            deleted,
            old,
            nkeys,
        },
    );
    let precision = prop_oneof![
        Just(Precision::Micro),
        Just(Precision::Milli),
        Just(Precision::Absent)
    ];
    let kinesis = (
        event(),
        precision,
        micros,
        any::<bool>(),
        any::<bool>(),
        0usize..8,
        any::<bool>(),
    )
        .prop_map(|(event, precision, ts, quoted, old, nkeys, identity)| {
            let ts = if precision == Precision::Micro {
                ts
            } else if ts > 1_000_000_000_000_000 {
                // a realistic millisecond timestamp
                ts / 1000
            } else {
                ts % (u64::MAX / 1000 + 1)
            };
            Wrap::Kinesis {
                event,
                precision,
                ts,
                quoted,
                old,
                nkeys,
                identity,
            }
        });
    let secs = (
        prop_oneof![
            3 => 1_500_000_000u64..1_900_000_000,
            1 => 0u64..18_446_744_073_709,
        ],
        "[0-9]{0,9}",
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(int, frac, sci, upper)| Secs {
            int,
            frac,
            sci,
            upper,
        });
    let streams = (
        event(),
        secs,
        any::<bool>(),
        1u8..16,
        any::<bool>(),
        0usize..8,
    )
        .prop_map(|(event, secs, quoted, markers, old, nkeys)| Wrap::Streams {
            event,
            secs,
            quoted,
            markers,
            old,
            nkeys,
        });
    prop_oneof![
        2 => Just(Wrap::Bare),
        2 => Just(Wrap::Export),
        2 => incremental,
        3 => kinesis,
        2 => streams,
    ]
}

/// The (unescaped) key literal is exactly `"name"`.
fn named(k: &JStr, name: &str, serde_written: bool) -> bool {
    if serde_written {
        k.value == name
    } else {
        k.raw == format!("\"{name}\"")
    }
}

/// The documented detection rules, for a bare item: is it read as an item?
/// Envelopes are marked by values no attribute can have (a `Records` array,
/// a string `eventName`, …), so only `{"Item":…}` alone is not.
fn detected_as_item(attrs: &[(JStr, Av)], serde_written: bool) -> bool {
    let has = |n: &str| attrs.iter().any(|(k, _)| named(k, n, serde_written));
    !(attrs.len() == 1 && has("Item"))
}

struct Expect {
    shape: Shape,
    version: u64,
    deleted: bool,
    /// The attributes of the row.
    image: Vec<(JStr, Av)>,
    kinesis: bool,
    hint: ShapeHint,
}

/// Members of a JSON object being built, in order.
type Members = Vec<(&'static str, Doc)>;

/// The members of a change record's `dynamodb` object for `item` (timestamp,
/// keys, and the images its event carries), whether it is a delete, and the
/// image its row must hold: a delete without an old image holds only the keys.
fn change_members(
    item: &[(JStr, Av)],
    nkeys: usize,
    event: &Event,
    old: bool,
    ts_doc: Doc,
    kinesis: bool,
) -> (Members, bool, Vec<(JStr, Av)>) {
    let keys = keys_of(item, nkeys);
    let mut d = vec![
        ("ApproximateCreationDateTime", ts_doc),
        ("Keys", marshal_item(&keys, kinesis)),
    ];
    let deleted = matches!(event, Event::Remove);
    if !deleted {
        d.push(("NewImage", marshal_item(item, kinesis)));
    }
    let old = old && !matches!(event, Event::Insert);
    if old {
        d.push(("OldImage", marshal_item(item, kinesis)));
    }
    let image = if deleted && !old { keys } else { item.to_vec() };
    (d, deleted, image)
}

fn keys_of(item: &[(JStr, Av)], nkeys: usize) -> Vec<(JStr, Av)> {
    item[..1 + nkeys % item.len()].to_vec()
}

fn shuffled(mut v: Vec<(&str, Doc)>, rng: &mut Rng) -> Doc {
    rng.shuffle(&mut v);
    obj(v)
}

/// Builds the document and what flattening it must give.
fn build(
    item: &[(JStr, Av)],
    wrap: &Wrap,
    explicit_hint: bool,
    serde_written: bool,
    opts: &Options,
    rng: &mut Rng,
) -> (Doc, Expect) {
    let snapshot = opts.snapshot_version;
    let hint = |h: ShapeHint| if explicit_hint { h } else { ShapeHint::Auto };
    match wrap {
        Wrap::Bare => {
            let as_item = detected_as_item(item, serde_written);
            let e = Expect {
                shape: Shape::Item,
                version: snapshot,
                deleted: false,
                image: item.to_vec(),
                kinesis: false,
                hint: if as_item {
                    hint(ShapeHint::Item)
                } else {
                    ShapeHint::Item
                },
            };
            (marshal_item(item, false), e)
        }
        Wrap::Export => {
            let e = Expect {
                shape: Shape::Export,
                version: snapshot,
                deleted: false,
                image: item.to_vec(),
                kinesis: false,
                hint: hint(ShapeHint::Export),
            };
            (obj(vec![("Item", marshal_item(item, false))]), e)
        }
        Wrap::Incremental {
            micros,
            deleted,
            old,
            nkeys,
        } => {
            let keys = keys_of(item, *nkeys);
            let mut top = vec![
                (
                    "Metadata",
                    obj(vec![(
                        "WriteTimestampMicros",
                        tagged("N", s(&micros.to_string())),
                    )]),
                ),
                ("Keys", marshal_item(&keys, false)),
            ];
            if !deleted {
                top.push(("NewImage", marshal_item(item, false)));
            }
            if *old {
                top.push(("OldImage", marshal_item(item, false)));
            }
            let image = if !deleted || *old {
                item.to_vec()
            } else {
                keys
            };
            let e = Expect {
                shape: Shape::Incremental,
                version: *micros,
                deleted: *deleted,
                image,
                kinesis: false,
                hint: hint(ShapeHint::Incremental),
            };
            (shuffled(top, rng), e)
        }
        Wrap::Kinesis {
            event,
            precision,
            ts,
            quoted,
            old,
            nkeys,
            identity,
        } => {
            let ts_doc = if *quoted {
                s(&ts.to_string())
            } else {
                Doc::Num(ts.to_string())
            };
            let (mut d, deleted, image) = change_members(item, *nkeys, event, *old, ts_doc, true);
            d.push(("SizeBytes", Doc::Num("123".into())));
            match precision {
                Precision::Micro => {
                    d.push(("ApproximateCreationDateTimePrecision", s("MICROSECOND")))
                }
                Precision::Milli => {
                    d.push(("ApproximateCreationDateTimePrecision", s("MILLISECOND")))
                }
                Precision::Absent => {}
            }
            let user = if *identity {
                obj(vec![
                    ("type", s("Service")),
                    ("principalId", s("dynamodb.amazonaws.com")),
                ])
            } else {
                Doc::Null
            };
            let top = vec![
                ("awsRegion", s("us-east-1")),
                ("eventID", s("b015b5f0-c095-4b50-8ad0-4279aa3d88c6")),
                ("eventName", s(event.name())),
                ("userIdentity", user),
                ("recordFormat", s("application/json")),
                ("tableName", s("people")),
                ("dynamodb", shuffled(d, rng)),
                ("eventSource", s("aws:dynamodb")),
            ];
            let version = if *precision == Precision::Micro {
                *ts
            } else {
                ts * 1000
            };
            let e = Expect {
                shape: Shape::Kinesis,
                version,
                deleted,
                image,
                kinesis: true,
                hint: hint(ShapeHint::Change),
            };
            (shuffled(top, rng), e)
        }
        Wrap::Streams {
            event,
            secs,
            quoted,
            markers,
            old,
            nkeys,
        } => {
            // serde_json would round non-integer seconds through f64.
            let text = if serde_written {
                secs.int.to_string()
            } else {
                secs.text()
            };
            let version = if serde_written {
                secs.int * 1_000_000
            } else {
                secs.micros()
            };
            let ts_doc = if *quoted { s(&text) } else { Doc::Num(text) };
            let (mut d, deleted, image) = change_members(item, *nkeys, event, *old, ts_doc, false);
            if markers & 4 != 0 {
                d.push(("SequenceNumber", s("1100000000000136137170")));
            }
            d.push(("SizeBytes", Doc::Num("60".into())));
            if markers & 8 != 0 {
                d.push(("StreamViewType", s("NEW_AND_OLD_IMAGES")));
            }
            let mut top = vec![
                ("eventID", s("9818bc3a1f2d4e5b")),
                ("eventName", s(event.name())),
                ("eventSource", s("aws:dynamodb")),
                ("awsRegion", s("us-east-1")),
                ("dynamodb", shuffled(d, rng)),
            ];
            if markers & 1 != 0 {
                top.push(("eventVersion", s("1.1")));
            }
            if markers & 2 != 0 {
                top.push((
                    "eventSourceARN",
                    s("arn:aws:dynamodb:us-east-1:123456789012:table/people/stream/2024-11-24T00:00:00.000"),
                ));
            }
            let e = Expect {
                shape: Shape::Streams,
                version,
                deleted,
                image,
                kinesis: false,
                hint: hint(ShapeHint::Change),
            };
            (shuffled(top, rng), e)
        }
    }
}

/// The output key of a top-level attribute, or `None` when metadata names
/// collide.
fn row_key(k: &JStr, opts: &Options) -> String {
    if opts.metadata && (k.value == opts.version_field || k.value == opts.deleted_field) {
        format!("\"item_{}\"", k.value)
    } else {
        k.raw.clone()
    }
}

fn collides(image: &[(JStr, Av)], opts: &Options) -> bool {
    opts.metadata
        && [&opts.version_field, &opts.deleted_field].iter().any(|f| {
            let renamed = format!("item_{f}");
            image.iter().any(|(k, _)| &&k.value == f)
                && image.iter().any(|(k, _)| k.value == renamed)
        })
}

fn expected_row(e: &Expect, opts: &Options) -> (String, Value) {
    let st = OutStyle {
        strings: opts.numbers == NumberFormat::String,
        kinesis: e.kinesis,
        unwrap: opts.kinesis_binary == KinesisBinary::Unwrap,
    };
    let mut text = String::from("{");
    let mut map = Map::new();
    for (i, (k, v)) in e.image.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        let key = row_key(k, opts);
        text.push_str(&key);
        text.push(':');
        plain_text(v, st, &mut text);
        let key: String = serde_json::from_str(&key).unwrap();
        map.insert(key, plain_value(v, st));
    }
    if opts.metadata {
        let d = u8::from(e.deleted);
        write!(
            text,
            ",\"{}\":{},\"{}\":{d}",
            opts.version_field, e.version, opts.deleted_field
        )
        .unwrap();
        map.insert(opts.version_field.clone(), Value::from(e.version));
        map.insert(opts.deleted_field.clone(), Value::from(d));
    }
    text.push('}');
    (text, Value::Object(map))
}

// ---------------------------------------------------------------------------
// Options.

#[derive(Clone, Debug)]
struct Knobs {
    strings: bool,
    metadata: bool,
    version_field: &'static str,
    deleted_field: &'static str,
    snapshot: u64,
    as_is: bool,
    explicit_hint: bool,
}

fn knobs() -> impl Strategy<Value = Knobs> {
    (
        any::<bool>(),
        prop_oneof![5 => Just(true), 1 => Just(false)],
        select(vec!["version", "_version", "v"]),
        select(vec!["is_deleted", "_deleted", "d"]),
        prop_oneof![Just(0u64), any::<u64>()],
        prop_oneof![4 => Just(false), 1 => Just(true)],
        any::<bool>(),
    )
        .prop_map(
            |(strings, metadata, version_field, deleted_field, snapshot, as_is, explicit_hint)| {
                Knobs {
                    strings,
                    metadata,
                    version_field,
                    deleted_field,
                    snapshot,
                    as_is,
                    explicit_hint,
                }
            },
        )
}

impl Knobs {
    fn options(&self) -> Options {
        Options {
            numbers: if self.strings {
                NumberFormat::String
            } else {
                NumberFormat::Number
            },
            metadata: self.metadata,
            version_field: self.version_field.into(),
            deleted_field: self.deleted_field.into(),
            snapshot_version: self.snapshot,
            shape: ShapeHint::Auto,
            kinesis_binary: if self.as_is {
                KinesisBinary::AsIs
            } else {
                KinesisBinary::Unwrap
            },
            columns: None,
        }
    }
}

/// How the input document is written.
#[derive(Clone, Copy, Debug)]
enum Render {
    /// Own writer, compact.
    Compact,
    /// Own writer, random whitespace.
    Spaced,
    /// serde_json, compact (keys sorted, serde_json's escapes).
    Serde,
    /// serde_json, pretty.
    SerdePretty,
}

fn render() -> impl Strategy<Value = Render> {
    prop_oneof![
        2 => Just(Render::Compact),
        2 => Just(Render::Spaced),
        1 => Just(Render::Serde),
        1 => Just(Render::SerdePretty),
    ]
}

// ---------------------------------------------------------------------------
// Invariants that hold for any input.

/// JSON syntax check without serde_json's number-range and surrogate checks
/// (the flattener copies number text and escapes verbatim).
fn is_json_syntax(b: &[u8]) -> bool {
    match serde_json::from_slice::<serde::de::IgnoredAny>(b) {
        Ok(_) => true,
        // serde_json stops at 128 levels; the flattener allows more.
        Err(e) => e.to_string().contains("recursion limit exceeded"),
    }
}

/// JSON that serde_json parses into a `Value`: no lone surrogates, no
/// number beyond a double's range (what ClickHouse's isValidJSON rejects).
fn is_strict_json(b: &[u8]) -> bool {
    match serde_json::from_slice::<Value>(b) {
        Ok(_) => true,
        Err(e) => e.to_string().contains("recursion limit exceeded"),
    }
}

/// Flattens `input` after a non-empty prefix and checks what must hold for
/// every input. Returns the row on success.
fn check_any(opts: &Options, input: &[u8]) -> Option<Vec<u8>> {
    const PREFIX: &[u8] = b"{\"previous\":1}\n";
    let mut f = Flattener::new(opts.clone());
    let mut out = PREFIX.to_vec();
    let r = f.flatten(input, &mut out);
    assert!(out.starts_with(PREFIX), "prefix changed");
    match r {
        Ok(fl) => {
            let row = out[PREFIX.len()..].to_vec();
            assert!(std::str::from_utf8(&row).is_ok(), "row is not UTF-8");
            assert!(
                is_strict_json(&row),
                "row is not JSON a strict parser takes: {}",
                String::from_utf8_lossy(&row)
            );
            assert!(
                is_json_syntax(input),
                "accepted input that is not JSON: {}",
                String::from_utf8_lossy(input)
            );
            assert_eq!(row.first(), Some(&b'{'));
            if opts.metadata {
                let tail = format!(
                    ",\"{}\":{},\"{}\":{}}}",
                    opts.version_field,
                    fl.version,
                    opts.deleted_field,
                    u8::from(fl.deleted)
                );
                assert!(
                    row.ends_with(tail.as_bytes()),
                    "row {} does not end with {tail}",
                    String::from_utf8_lossy(&row)
                );
            }
            // The same flattener gives the same row again.
            let mut again = Vec::new();
            assert_eq!(f.flatten(input, &mut again), Ok(fl));
            assert_eq!(again, row);
            Some(row)
        }
        Err(e) => {
            assert_eq!(out, PREFIX, "output changed on error {e}");
            assert!(
                e.offset() <= input.len(),
                "offset {} past the end",
                e.offset()
            );
            let mut er = Vec::new();
            write_error_row(&e, input, &mut er);
            let v: Value = serde_json::from_slice(&er).expect("error row is JSON");
            assert!(er.starts_with(b"{\"_error\":"));
            assert!(v["_error"].is_string() && v["_input"].is_string());
            // The flattener is still usable after an error.
            if matches!(opts.shape, ShapeHint::Auto | ShapeHint::Item) {
                let mut next = Vec::new();
                f.flatten(br#"{"a":{"S":"b"}}"#, &mut next).unwrap();
            }
            None
        }
    }
}

fn all_option_sets() -> Vec<Options> {
    let mut v = vec![Options::default()];
    v.push(Options {
        numbers: NumberFormat::String,
        kinesis_binary: KinesisBinary::AsIs,
        snapshot_version: 42,
        ..Options::default()
    });
    v.push(Options {
        metadata: false,
        ..Options::default()
    });
    for shape in [
        ShapeHint::Item,
        ShapeHint::Export,
        ShapeHint::Incremental,
        ShapeHint::Change,
    ] {
        v.push(Options {
            shape,
            ..Options::default()
        });
    }
    v
}

// ---------------------------------------------------------------------------
// The main property.

fn roundtrip_case() -> impl Strategy<Value = (Vec<(JStr, Av)>, Wrap, Knobs, Render, u64)> {
    (item(), wrap(), knobs(), render(), any::<u64>())
}

/// Builds the input text and expectation of a case.
fn materialise(
    item: &[(JStr, Av)],
    wrap: &Wrap,
    knobs: &Knobs,
    render: Render,
    seed: u64,
) -> (String, Options, Expect) {
    let serde_written = matches!(render, Render::Serde | Render::SerdePretty);
    let mut opts = knobs.options();
    let mut rng = Rng(seed);
    let (doc, e) = build(
        item,
        wrap,
        knobs.explicit_hint,
        serde_written,
        &opts,
        &mut rng,
    );
    opts.shape = e.hint;
    let value = doc_value(&doc);
    let input = match render {
        Render::Compact | Render::Spaced => {
            let mut w = Writer {
                s: String::new(),
                ws: matches!(render, Render::Spaced).then(|| Rng(seed ^ 0x5555)),
            };
            w.write(&doc);
            // The writer is a faithful JSON writer.
            let parsed: Value = serde_json::from_str(&w.s).unwrap();
            assert_eq!(parsed, value, "test writer disagrees with serde_json");
            w.s
        }
        Render::Serde => serde_json::to_string(&value).unwrap(),
        Render::SerdePretty => serde_json::to_string_pretty(&value).unwrap(),
    };
    (input, opts, e)
}

fn check_roundtrip(
    item: &[(JStr, Av)],
    wrap: &Wrap,
    knobs: &Knobs,
    render: Render,
    seed: u64,
) -> Result<(), TestCaseError> {
    let (input, opts, e) = materialise(item, wrap, knobs, render, seed);
    let mut f = Flattener::new(opts.clone());
    let mut out = Vec::new();
    let r = f.flatten(input.as_bytes(), &mut out);
    if collides(&e.image, &opts) {
        let err = r.expect_err("a metadata collision must be an error");
        prop_assert!(
            matches!(err.kind(), ErrorKind::MetadataCollision(_)),
            "{err} for {input}"
        );
        prop_assert!(out.is_empty());
        return Ok(());
    }
    let fl = match r {
        Ok(fl) => fl,
        Err(err) => {
            return Err(TestCaseError::fail(format!(
                "{err}\ninput: {input}\noptions: {opts:?}"
            )))
        }
    };
    prop_assert_eq!(fl.shape, e.shape, "input: {}", input);
    prop_assert_eq!(fl.version, e.version, "input: {}", input);
    prop_assert_eq!(fl.deleted, e.deleted, "input: {}", input);
    let (text, value) = expected_row(&e, &opts);
    let row = std::str::from_utf8(&out).expect("row is UTF-8");
    let parsed: Value = serde_json::from_str(row)
        .map_err(|er| TestCaseError::fail(format!("row is not JSON ({er}): {row}")))?;
    prop_assert_eq!(&parsed, &value, "input: {}", input);
    if !matches!(render, Render::Serde | Render::SerdePretty) {
        prop_assert_eq!(row, text.as_str(), "input: {}", input);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn flattens_like_the_reference((item, wrap, knobs, render, seed) in roundtrip_case()) {
        check_roundtrip(&item, &wrap, &knobs, render, seed)?;
    }
}

// ---------------------------------------------------------------------------
// (a) any bytes, (b) mutated documents.

/// Byte strings that look a bit like the documents.
fn jsonish_bytes() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        4 => select(vec![
            "{", "}", "[", "]", ":", ",", "\"", " ", "\n", "\\", "\\u", "\\ud83d", "\\ude80", "\\ud800", "\\udc00",
            "\"S\"", "\"N\"", "\"B\"", "\"M\"", "\"L\"", "\"SS\"", "\"NS\"", "\"BS\"", "\"BOOL\"",
            "\"NULL\"", "true", "false", "null", "0", "-1.5e3", "1e400", "\"1\"", "\"QUFF\"",
            "\"QUFFPQ==\"", "\"\"", "\"1e400\"", "\"1e-131\"", "\"Item\"", "\"Keys\"", "\"NewImage\"", "\"OldImage\"",
            "\"Metadata\"", "\"WriteTimestampMicros\"", "\"eventName\"", "\"INSERT\"",
            "\"REMOVE\"", "\"MODIFY\"", "\"dynamodb\"", "\"ApproximateCreationDateTime\"",
            "\"ApproximateCreationDateTimePrecision\"", "\"MICROSECOND\"", "\"MILLISECOND\"",
            "\"eventVersion\"", "\"SequenceNumber\"", "\"Records\"", "\"version\"",
            "\"item_version\"", "\"is_deleted\"", "\"a\"", "\"é\"", "\u{1f680}", "\u{0}",
        ])
        .prop_map(|t| t.as_bytes().to_vec()),
        1 => vec(any::<u8>(), 1..3),
    ];
    prop_oneof![
        4 => vec(token, 0..48).prop_map(|ts| ts.concat()),
        1 => vec(any::<u8>(), 0..64),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_never_panic(input in jsonish_bytes()) {
        for opts in all_option_sets() {
            check_any(&opts, &input);
        }
    }

    #[test]
    fn mutated_documents_never_panic(
        (item, wrap, knobs, render, seed) in roundtrip_case(),
        muts in vec(mutation(), 1..4),
    ) {
        let (input, opts, _) = materialise(&item, &wrap, &knobs, render, seed);
        let b = input.into_bytes();
        let last_brace = b.iter().rposition(|&c| c == b'}').unwrap();
        let (b, cut) = mutate(b, &muts);
        let cut_brace = cut.is_some_and(|i| i <= last_brace);
        let row = check_any(&opts, &b);
        if muts.len() == 1 && cut_brace {
            prop_assert!(row.is_none(), "a truncated document was accepted");
        }
        for o in all_option_sets() {
            check_any(&o, &b);
        }
    }
}

// ---------------------------------------------------------------------------
// What DynamoDB cannot store is an error row: strings whose escapes are not
// Unicode, numbers outside DynamoDB's range. Every other row parses strictly.

/// UTF-16 code units, lone surrogates included, each written as `\uXXXX`
/// or (outside the surrogates) as the character itself.
fn utf16_units() -> impl Strategy<Value = Vec<(u16, bool)>> {
    let unit = prop_oneof![
        4 => 0x61u16..0x7b,
        2 => 0xd800u16..0xdc00,
        2 => 0xdc00u16..0xe000,
        1 => 0x20u16..0xd800,
        1 => 0xe000u16..=0xffff,
    ];
    vec((unit, any::<bool>()), 0..8)
}

fn utf16_literal(units: &[(u16, bool)]) -> String {
    let mut raw = String::new();
    for &(u, escape) in units {
        match char::from_u32(u32::from(u)) {
            Some(c) if !escape && c != '"' && c != '\\' => raw.push(c),
            _ => push_u_escape(&mut raw, u, false),
        }
    }
    raw
}

/// Number text of any size: digits, fractions and exponents beyond DynamoDB's.
fn any_number() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "-?(0|[1-9][0-9]{0,44})(\\.[0-9]{1,44})?([eE][+-]?[0-9]{1,3})?",
        2 => "-?(0|[1-9]0{0,44})(\\.0{0,44}[1-9])?([eE][+-]?1[23][0-9])?",
        1 => "-?[1-9](\\.[0-9]{1,3})?[eE][+-]?[0-9]{19,25}",
        1 => number(),
    ]
}

/// DynamoDB's rule, by another route: the significant digits as a string.
fn dynamo_accepts(n: &str) -> bool {
    let t = n.strip_prefix('-').unwrap_or(n);
    let (mantissa, exp) = match t.find(['e', 'E']) {
        Some(p) => (&t[..p], &t[p + 1..]),
        None => (t, "0"),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{int}{frac}");
    let significant = digits.trim_matches('0');
    if significant.is_empty() {
        return true;
    }
    let leading = digits.len() - digits.trim_start_matches('0').len();
    let exp_digits = exp.trim_start_matches(['+', '-']);
    let exp: i128 = if exp_digits.len() > 30 {
        let huge = 10i128.pow(30);
        if exp.starts_with('-') {
            -huge
        } else {
            huge
        }
    } else {
        exp.parse().unwrap()
    };
    // The first significant digit's power of ten.
    let top = int.len() as i128 - 1 - leading as i128 + exp;
    significant.len() <= 38 && (-130..=125).contains(&top)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn unstorable_values_are_error_rows_and_other_rows_parse_strictly(
        units in utf16_units(),
        n in any_number(),
        as_key in any::<bool>(),
        export in any::<bool>(),
        strings in any::<bool>(),
    ) {
        let lit = utf16_literal(&units);
        let item = if as_key {
            format!(r#"{{"k{lit}":{{"S":"x"}},"n":{{"NS":["1","{n}"]}}}}"#)
        } else {
            format!(r#"{{"s":{{"S":"{lit}"}},"n":{{"N":"{n}"}}}}"#)
        };
        let doc = if export { format!(r#"{{"Item":{item}}}"#) } else { item };
        let opts = Options {
            numbers: if strings { NumberFormat::String } else { NumberFormat::Number },
            ..Options::default()
        };
        let text = String::from_utf16(&units.iter().map(|u| u.0).collect::<Vec<_>>());
        let mut out = Vec::new();
        match Flattener::new(opts).flatten(doc.as_bytes(), &mut out) {
            Ok(_) => {
                prop_assert!(text.is_ok(), "lone surrogate accepted: {}", doc);
                prop_assert!(dynamo_accepts(&n), "number out of range accepted: {}", doc);
                let v: Value = serde_json::from_slice(&out).map_err(|e| {
                    TestCaseError::fail(format!("{e}: {}", String::from_utf8_lossy(&out)))
                })?;
                let text = text.unwrap();
                if as_key {
                    prop_assert!(v.get(format!("k{text}")).is_some(), "{}", v);
                } else {
                    prop_assert_eq!(&v["s"], &Value::from(text));
                }
            }
            Err(e) => {
                if text.is_err() {
                    prop_assert_eq!(e.kind(), &ErrorKind::InvalidUnicodeEscape, "{}", doc);
                } else {
                    prop_assert!(!dynamo_accepts(&n), "{e}: {doc}");
                    prop_assert!(matches!(e.kind(), ErrorKind::NumberOutOfRange(_)), "{e}: {doc}");
                }
            }
        }
    }
}

#[test]
fn number_reference_agrees_on_the_limits() {
    for (n, ok) in [
        ("9.9999999999999999999999999999999999999E+125", true),
        ("1E+126", false),
        ("1E-130", true),
        ("0.1E-130", false),
        ("-0.000", true),
        ("1e99999999999999999999999999999999999", false),
    ] {
        assert_eq!(dynamo_accepts(n), ok, "{n}");
    }
}

// ---------------------------------------------------------------------------
// (c) metadata name collisions.

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn metadata_names_are_renamed_or_rejected(
        base in item(),
        extra in vec(
            (
                prop_oneof![
                    spelled("version"),
                    spelled("item_version"),
                    spelled("is_deleted"),
                    spelled("item_is_deleted"),
                ],
                av(),
            ),
            1..4,
        ),
        positions in vec(any::<usize>(), 4),
        metadata in prop_oneof![4 => Just(true), 1 => Just(false)],
        wrap in prop_oneof![Just(Wrap::Bare), Just(Wrap::Export)],
    ) {
        let mut attrs = base;
        for (i, (k, v)) in extra.into_iter().enumerate() {
            attrs.retain(|(o, _)| o.value != k.value);
            let at = positions[i] % (attrs.len() + 1);
            attrs.insert(at, (k, v));
        }
        let knobs = Knobs {
            strings: true,
            metadata,
            version_field: "version",
            deleted_field: "is_deleted",
            snapshot: 7,
            as_is: false,
            explicit_hint: false,
        };
        let has = |n: &str| attrs.iter().any(|(k, _)| k.value == n);
        let both = has("version") && has("item_version") || has("is_deleted") && has("item_is_deleted");
        let (input, opts, _) = materialise(&attrs, &wrap, &knobs, Render::Compact, 1);
        let mut out = Vec::new();
        match Flattener::new(opts).flatten(input.as_bytes(), &mut out) {
            Err(e) => {
                prop_assert!(metadata && both, "{e}: {input}");
                prop_assert!(matches!(e.kind(), ErrorKind::MetadataCollision(_)));
                prop_assert!(out.is_empty());
            }
            Ok(_) => {
                prop_assert!(!(metadata && both), "collision accepted: {input}");
                let v: Value = serde_json::from_slice(&out).unwrap();
                let m = v.as_object().unwrap();
                if metadata {
                    prop_assert_eq!(&m["version"], &Value::from(7));
                    prop_assert_eq!(&m["is_deleted"], &Value::from(0));
                    for f in ["version", "is_deleted"] {
                        if has(f) {
                            let renamed = format!("item_{f}");
                            prop_assert!(m.contains_key(&renamed));
                        }
                    }
                    prop_assert_eq!(m.len(), attrs.len() + 2);
                } else {
                    prop_assert_eq!(m.len(), attrs.len());
                    for (k, _) in &attrs {
                        prop_assert!(m.contains_key(&k.value));
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Fixed examples.

fn flat(opts: Options, input: &str) -> Result<String, dynamo_flatten::flatten::Error> {
    let mut out = Vec::new();
    Flattener::new(opts).flatten(input.as_bytes(), &mut out)?;
    Ok(String::from_utf8(out).unwrap())
}

#[test]
fn basic_examples() {
    let d = Options::default;
    assert_eq!(
        flat(d(), r#"{"a":{"N":"1"}}"#).unwrap(),
        r#"{"a":1,"version":0,"is_deleted":0}"#
    );
    let strings = Options {
        numbers: NumberFormat::String,
        ..d()
    };
    assert_eq!(
        flat(strings, r#"{"a":{"N":"1"}}"#).unwrap(),
        r#"{"a":"1","version":0,"is_deleted":0}"#
    );
    assert_eq!(
        flat(d(), r#"{"version":{"N":"1"}}"#).unwrap(),
        r#"{"item_version":1,"version":0,"is_deleted":0}"#
    );
    assert_eq!(
        flat(d(), r#"{"vers\u0069on":{"N":"1"}}"#).unwrap(),
        r#"{"item_version":1,"version":0,"is_deleted":0}"#
    );
    let e = flat(d(), r#"{"version":{"N":"1"},"item_version":{"N":"2"}}"#).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::MetadataCollision(_)), "{e}");
    let e = flat(d(), r#"{"Records":[]}"#).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::LambdaEvent), "{e}");
}

/// Every special byte at every offset of a string, across the scanner's
/// chunk boundaries: escapes and multi-byte characters are copied, raw
/// control characters are rejected where they are.
#[test]
fn string_scanner_at_every_offset() {
    let ok: &[&str] = &[
        "\\\"",
        "\\\\",
        "\\n",
        "\\u00e9",
        "\\ud83d\\ude80",
        "é",
        "\u{7f}",
        "\u{1f680}",
        "/",
    ];
    let bad: &[u8] = &[0x00, 0x09, 0x0a, 0x1f];
    for before in 0..40 {
        for after in [0, 1, 7, 8, 15, 16, 17, 33] {
            let pre = "x".repeat(before);
            let post = "y".repeat(after);
            for special in ok {
                let lit = format!("\"{pre}{special}{post}\"");
                let input = format!(r#"{{"k{pre}":{{"S":{lit}}},"n":{{"SS":[{lit},"z"]}}}}"#);
                let row = flat(Options::default(), &input).unwrap();
                assert_eq!(
                    row,
                    format!(r#"{{"k{pre}":{lit},"n":[{lit},"z"],"version":0,"is_deleted":0}}"#)
                );
            }
            for &c in bad {
                let mut input = format!(r#"{{"a":{{"S":"{pre}"#).into_bytes();
                let at = input.len();
                input.push(c);
                input.extend_from_slice(format!(r#"{post}"}}}}"#).as_bytes());
                let mut out = Vec::new();
                let e = Flattener::new(Options::default())
                    .flatten(&input, &mut out)
                    .unwrap_err();
                assert!(matches!(e.kind(), ErrorKind::ControlCharacter), "{e}");
                assert_eq!(e.offset(), at, "{e}");
                assert!(out.is_empty());
            }
        }
    }
}

/// A renamed attribute must not take the name of a metadata field either:
/// with `deleted_field = "item_version"`, an attribute `version` (renamed to
/// `item_version`) would otherwise be written next to the delete flag under
/// the same key, and one of the two values would be lost.
#[test]
fn renamed_attribute_never_takes_a_metadata_name() {
    let opts = Options {
        deleted_field: "item_version".into(),
        ..Options::default()
    };
    let input = r#"{"version":{"N":"1"},"x":{"S":"y"}}"#;
    match flat(opts, input) {
        Err(e) => assert!(matches!(e.kind(), ErrorKind::MetadataCollision(_)), "{e}"),
        Ok(row) => {
            let m: Map<String, Value> = serde_json::from_str(&row).unwrap();
            assert_eq!(m.len(), 4, "a key is written twice: {row}");
        }
    }
}

/// An item whose first attribute is named `Item`, followed by others, is a
/// bare item by the detection rules (only `{"Item":{…}}` alone is an export
/// line), whatever the type of the `Item` attribute.
#[test]
fn item_attribute_named_item_first() {
    let d = Options::default;
    assert_eq!(
        flat(d(), r#"{"b":{"N":"1"},"Item":{"S":"x"}}"#).unwrap(),
        r#"{"b":1,"Item":"x","version":0,"is_deleted":0}"#
    );
    assert_eq!(
        flat(d(), r#"{"Item":{"M":{"a":{"S":"x"}}},"b":{"N":"1"}}"#).unwrap(),
        r#"{"Item":{"a":"x"},"b":1,"version":0,"is_deleted":0}"#
    );
    assert_eq!(
        flat(d(), r#"{"Item":{"S":"x"},"b":{"N":"1"}}"#).map_err(|e| e.to_string()),
        Ok(r#"{"Item":"x","b":1,"version":0,"is_deleted":0}"#.to_string())
    );
}

#[test]
fn timestamps() {
    let d = Options::default;
    let kds = |ts: &str, p: &str| {
        format!(
            r#"{{"eventName":"INSERT","dynamodb":{{"ApproximateCreationDateTime":{ts},{p}"NewImage":{{"a":{{"S":"x"}}}}}}}}"#
        )
    };
    let v = |s: &str| {
        Flattener::new(d())
            .flatten(s.as_bytes(), &mut Vec::new())
            .map(|f| f.version)
    };
    assert_eq!(v(&kds("1732406501000", "")), Ok(1_732_406_501_000_000));
    assert_eq!(
        v(&kds(
            "1732406500123456",
            r#""ApproximateCreationDateTimePrecision":"MICROSECOND","#
        )),
        Ok(1_732_406_500_123_456)
    );
    assert_eq!(
        v(&kds(
            "1732406501000",
            r#""ApproximateCreationDateTimePrecision":"MILLISECOND","#
        )),
        Ok(1_732_406_501_000_000)
    );
    assert_eq!(v(&kds("\"1732406501000\"", "")), Ok(1_732_406_501_000_000));
    // Overflow of u64 microseconds is an error, not a wrapped value.
    let e = v(&kds("18446744073709552", "")).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::BadTimestamp(_)), "{e}");
    let e = v(&kds("-1", "")).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::BadTimestamp(_)), "{e}");

    let streams = |ts: &str| {
        format!(
            r#"{{"eventName":"REMOVE","eventVersion":"1.1","dynamodb":{{"ApproximateCreationDateTime":{ts},"Keys":{{"a":{{"S":"x"}}}}}}}}"#
        )
    };
    assert_eq!(v(&streams("1732406510")), Ok(1_732_406_510_000_000));
    assert_eq!(v(&streams("1.73240651E9")), Ok(1_732_406_510_000_000));
    assert_eq!(v(&streams("1732406510.1234567")), Ok(1_732_406_510_123_456));
    let mut out = Vec::new();
    let f = Flattener::new(d())
        .flatten(streams("1").as_bytes(), &mut out)
        .unwrap();
    assert!(f.deleted && f.shape == Shape::Streams);
    assert_eq!(out, br#"{"a":"x","version":1000000,"is_deleted":1}"#);
}

// ---------------------------------------------------------------------------
// (d) nesting.

/// `levels` nested DynamoDB containers (alternating M and L) around a string.
fn nested_av(levels: usize) -> Av {
    let mut v = Av::S(JStr::plain("deep"));
    for i in 0..levels {
        v = if i % 2 == 0 {
            Av::M(vec![(JStr::plain("k"), v)])
        } else {
            Av::L(vec![v])
        };
    }
    v
}

#[test]
fn thirty_two_levels_work_in_every_shape() {
    let item = vec![
        (JStr::plain("id"), Av::S(JStr::plain("x"))),
        (JStr::plain("deep"), nested_av(32)),
    ];
    let knobs = Knobs {
        strings: false,
        metadata: true,
        version_field: "version",
        deleted_field: "is_deleted",
        snapshot: 3,
        as_is: false,
        explicit_hint: false,
    };
    let wraps = [
        Wrap::Bare,
        Wrap::Export,
        Wrap::Incremental {
            micros: 5,
            deleted: false,
            old: true,
            nkeys: 0,
        },
        Wrap::Kinesis {
            event: Event::Modify,
            precision: Precision::Micro,
            ts: 9,
            quoted: false,
            old: true,
            nkeys: 0,
            identity: true,
        },
        Wrap::Streams {
            event: Event::Insert,
            secs: Secs {
                int: 1,
                frac: String::new(),
                sci: false,
                upper: false,
            },
            quoted: false,
            markers: 15,
            old: false,
            nkeys: 0,
        },
    ];
    for w in &wraps {
        for render in [Render::Compact, Render::Spaced, Render::SerdePretty] {
            check_roundtrip(&item, w, &knobs, render, 11).unwrap();
        }
    }
}

#[test]
fn ten_thousand_levels_are_an_error_not_a_crash() {
    const N: usize = 10_000;
    let d = Options::default;
    let mut docs = Vec::new();
    // DynamoDB nesting: M and L.
    docs.push(format!(
        "{{\"a\":{}{{\"S\":\"x\"}}{}}}",
        "{\"L\":[".repeat(N),
        "]}".repeat(N)
    ));
    docs.push(format!(
        "{{\"Item\":{{\"a\":{}{{\"S\":\"x\"}}{}}}}}",
        "{\"M\":{\"k\":".repeat(N),
        "}}".repeat(N)
    ));
    // Raw JSON nesting in places the flattener skips over.
    docs.push(format!(
        "{{\"eventName\":\"INSERT\",\"dynamodb\":{{\"x\":{}{}}}}}",
        "[".repeat(N),
        "]".repeat(N)
    ));
    docs.push(format!(
        "{{\"Metadata\":{}1{}}}",
        "{\"a\":".repeat(N),
        "}".repeat(N)
    ));
    docs.push(format!(
        "{{\"Records\":{}{}}}",
        "[".repeat(N),
        "]".repeat(N)
    ));
    docs.push(format!("{{\"Item\":{}", "{\"a\":".repeat(N)));
    docs.push(format!("{}{}", "[".repeat(N), "]".repeat(N)));
    docs.push("{\"a\":{\"L\":[".repeat(N));
    for doc in &docs {
        for opts in all_option_sets() {
            let mut out = b"x".to_vec();
            let r = Flattener::new(opts).flatten(doc.as_bytes(), &mut out);
            assert!(r.is_err(), "accepted {}…", &doc[..60]);
            assert_eq!(out, b"x");
        }
    }
    // The documents that are well formed up to their depth fail on depth.
    for doc in &docs[..5] {
        let e = flat(d(), doc).unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::TooDeep), "{e}");
    }
}

/// The reference samples, when present, flatten without error.
#[test]
fn reference_samples_flatten() {
    let dir = std::path::Path::new("/work/shared/reference");
    let files = [
        "export-incremental/lines.jsonl",
        "kinesis/records.jsonl",
        "streams/lambda-event.json",
    ];
    for f in files {
        let Ok(text) = std::fs::read_to_string(dir.join(f)) else {
            continue;
        };
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: Value = serde_json::from_str(line).unwrap();
            let records = match v.get("Records") {
                Some(Value::Array(r)) => r.iter().map(|r| r.to_string()).collect(),
                _ => vec![line.to_string()],
            };
            for r in records {
                for opts in all_option_sets() {
                    let shape = opts.shape;
                    let got = flat(opts, &r);
                    if matches!(shape, ShapeHint::Auto | ShapeHint::Change)
                        && r.contains("eventName")
                        || matches!(shape, ShapeHint::Auto | ShapeHint::Incremental)
                            && r.contains("Metadata")
                    {
                        let row = got.unwrap_or_else(|e| panic!("{e}: {r}"));
                        serde_json::from_str::<Value>(&row).unwrap();
                    }
                }
            }
        }
    }
}
