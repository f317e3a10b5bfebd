//! Column-aware flattening against a reference written from the contract
//! (spec: "Where each attribute goes" and "Which values fit which column
//! type").
//!
//! Random DynamoDB items (every type, nested `M`/`L`, 38-digit numbers,
//! exponents, trailing zeros, escapes in strings and names, names like
//! `version` and `_extra`) are flattened with random column lists, as a bare
//! item, a full-export line or a Kinesis record. For every attribute, either
//! the row has it under its (renamed) name with exactly the converted value
//! and `_extra` does not, or `_extra` has it under its original name with
//! exactly its DynamoDB JSON and the column key is absent.
//!
//! Nothing here is shared with the crate: numbers are compared as exact
//! decimals computed from their text (digits and an exponent, no floating
//! point in any fit decision), base64 and the JSON reader of the output are
//! this file's own. Every output must also parse with serde_json.

use std::cmp::Ordering;
use std::fmt::Write as _;
use std::sync::Arc;

use dynamo_flatten::flatten::{ColumnPlan, Flattener, Options, EXTRA_FIELD};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

mod common;
use common::{b64, dedup, encode_str, Av, Bin, JStr};

// ---------------------------------------------------------------------------
// Exact decimals: value = (-1)^neg × digits × 10^exp, digits without leading
// or trailing zeros (empty for zero, which is never negative).

#[derive(Clone, Debug, PartialEq, Eq)]
struct Dec {
    neg: bool,
    digits: Vec<u8>,
    exp: i64,
}

impl Dec {
    /// Reads JSON number text (RFC 8259 grammar); None if it is not one.
    fn parse(t: &str) -> Option<Dec> {
        let b = t.as_bytes();
        let mut i = 0;
        let neg = b.first() == Some(&b'-');
        if neg {
            i += 1;
        }
        let s = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let int = &b[s..i];
        if int.is_empty() || int.len() > 1 && int[0] == b'0' {
            return None;
        }
        let mut frac: &[u8] = &[];
        if b.get(i) == Some(&b'.') {
            i += 1;
            let s = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            frac = &b[s..i];
            if frac.is_empty() {
                return None;
            }
        }
        let mut exp: i64 = 0;
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            let mut eneg = false;
            if let Some(&c @ (b'+' | b'-')) = b.get(i) {
                eneg = c == b'-';
                i += 1;
            }
            let s = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if s == i || i - s > 12 {
                return None;
            }
            let e: i64 = t[s..i].parse().ok()?;
            exp = if eneg { -e } else { e };
        }
        if i != b.len() {
            return None;
        }
        let digits: Vec<u8> = int.iter().chain(frac).map(|c| c - b'0').collect();
        Some(Dec::new(neg, digits, exp - frac.len() as i64))
    }

    fn new(neg: bool, mut digits: Vec<u8>, mut exp: i64) -> Dec {
        let lead = digits.iter().take_while(|&&d| d == 0).count();
        digits.drain(..lead);
        while digits.last() == Some(&0) {
            digits.pop();
            exp += 1;
        }
        if digits.is_empty() {
            exp = 0;
        }
        Dec {
            neg: neg && !digits.is_empty(),
            digits,
            exp,
        }
    }

    /// A non-negative integer from its decimal digits.
    fn from_digits(d: &[u8]) -> Dec {
        Dec::new(false, d.to_vec(), 0)
    }

    fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    fn is_integer(&self) -> bool {
        self.is_zero() || self.exp >= 0
    }

    /// |x| is in [10^(top-1), 10^top).
    fn top(&self) -> i64 {
        self.digits.len() as i64 + self.exp
    }

    /// Digits before the point, leading zeros not counted (0 for |x| < 1).
    fn int_digits(&self) -> i64 {
        if self.is_zero() {
            0
        } else {
            self.top().max(0)
        }
    }

    /// Digits after the point, trailing zeros not counted.
    fn frac_digits(&self) -> i64 {
        if self.is_zero() {
            0
        } else {
            (-self.exp).max(0)
        }
    }

    fn cmp_abs(&self, o: &Dec) -> Ordering {
        match (self.is_zero(), o.is_zero()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            _ => {}
        }
        self.top().cmp(&o.top()).then_with(|| {
            let n = self.digits.len().max(o.digits.len());
            for i in 0..n {
                let a = self.digits.get(i).copied().unwrap_or(0);
                let b = o.digits.get(i).copied().unwrap_or(0);
                if a != b {
                    return a.cmp(&b);
                }
            }
            Ordering::Equal
        })
    }

    /// Plain notation, canonical: `100`, `12.5`, `-0.05`, `0`.
    fn plain(&self) -> String {
        if self.is_zero() {
            return "0".into();
        }
        let mut s = String::new();
        if self.neg {
            s.push('-');
        }
        let ds: String = self.digits.iter().map(|d| char::from(b'0' + d)).collect();
        if self.exp >= 0 {
            s.push_str(&ds);
            s.push_str(&"0".repeat(self.exp as usize));
        } else {
            let f = (-self.exp) as usize;
            if ds.len() > f {
                s.push_str(&ds[..ds.len() - f]);
                s.push('.');
                s.push_str(&ds[ds.len() - f..]);
            } else {
                s.push_str("0.");
                s.push_str(&"0".repeat(f - ds.len()));
                s.push_str(&ds);
            }
        }
        s
    }
}

/// `x × m` on big-endian decimal digits.
fn mul_small(x: &[u8], m: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(x.len() + 20);
    let mut carry: u64 = 0;
    for &d in x.iter().rev() {
        let v = u64::from(d) * m + carry;
        out.push((v % 10) as u8);
        carry = v / 10;
    }
    while carry > 0 {
        out.push((carry % 10) as u8);
        carry /= 10;
    }
    out.reverse();
    out
}

fn pow2(n: u32) -> Vec<u8> {
    let mut x = vec![1u8];
    for _ in 0..n {
        x = mul_small(&x, 2);
    }
    x
}

/// The smallest magnitude whose nearest f32 is infinite: the midpoint
/// between f32::MAX and 2^128, i.e. 2^103 × (2^25 − 1); ties go to even,
/// which is 2^128.
fn f32_overflow() -> Dec {
    Dec::from_digits(&mul_small(&pow2(103), (1 << 25) - 1))
}

#[test]
fn exact_decimal_reference() {
    let d = |t: &str| Dec::parse(t).unwrap();
    assert_eq!(d("1E+2"), d("100"));
    assert_eq!(d("12.50"), d("12.5"));
    assert_eq!(d("-0"), d("0"));
    assert_eq!(d("0.0e7"), d("0"));
    assert_eq!(d("15E-1").plain(), "1.5");
    assert_eq!(d("1E+2").plain(), "100");
    assert_eq!(d("-0.050").plain(), "-0.05");
    assert_eq!(d("12.505").frac_digits(), 3);
    assert_eq!(d("12.50").frac_digits(), 1);
    assert_eq!(d("0.5").int_digits(), 0);
    assert_eq!(d("1E+2").int_digits(), 3);
    assert!(d("1.0").is_integer() && !d("1.5").is_integer());
    assert_eq!(d("9").cmp_abs(&d("10")), Ordering::Less);
    assert_eq!(d("-10").cmp_abs(&d("9.99")), Ordering::Greater);
    assert_eq!(d("1.25").cmp_abs(&d("1.3")), Ordering::Less);
    for bad in ["", "-", "01", "1.", ".5", "+1", "1e", "1e+", "0x1", "1 "] {
        assert!(Dec::parse(bad).is_none(), "{bad}");
    }
    assert_eq!(Dec::from_digits(&pow2(64)).plain(), "18446744073709551616");
    assert_eq!(
        f32_overflow().plain(),
        "340282356779733661637539395458142568448"
    );
    // The exact threshold agrees with the standard library's correctly
    // rounded parser on both sides.
    assert!("340282356779733661637539395458142568447"
        .parse::<f32>()
        .unwrap()
        .is_finite());
    assert!("340282356779733661637539395458142568448"
        .parse::<f32>()
        .unwrap()
        .is_infinite());
}

// ---------------------------------------------------------------------------
// DynamoDB's number range (spec, "Always"): at most 38 significant digits,
// magnitude 0 or in [1E-130, 9.99…(38 nines)E+125]. The generator writes at
// most 38 digits in a mantissa, so the digit rule is about written digits.

fn written_sig_digits(t: &str) -> usize {
    let m = t.split(['e', 'E']).next().unwrap_or("");
    let ds: String = m.chars().filter(char::is_ascii_digit).collect();
    ds.trim_start_matches('0').len()
}

fn in_dynamo_range(t: &str) -> bool {
    let Some(v) = Dec::parse(t) else {
        return false;
    };
    if written_sig_digits(t) > 38 {
        return false;
    }
    // |x| >= 1E-130 means its first digit is at 10^-130 or above.
    v.is_zero() || v.top() > -130 && v.top() <= 126
}

// ---------------------------------------------------------------------------
// Small deterministic generator for column lists and whitespace.

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

// ---------------------------------------------------------------------------
// Strings: the decoded value and the literal chosen for it.

fn any_char() -> impl Strategy<Value = char> {
    prop_oneof![
        6 => proptest::char::range('a', 'z'),
        1 => Just('"'),
        1 => Just('\\'),
        1 => Just('/'),
        1 => Just('.'),
        1 => Just('`'),
        1 => Just('\''),
        1 => proptest::char::range('\u{0}', '\u{1f}'),
        2 => select(vec!['é', 'ß', '中', '\u{7f}', '\u{2028}', '\u{feff}', '\u{ffff}', ' ']),
        1 => proptest::char::range('\u{10000}', '\u{10ffff}'),
    ]
}

fn jstr() -> impl Strategy<Value = JStr> {
    let len = prop_oneof![4 => 0usize..8, 1 => 8usize..40];
    len.prop_flat_map(|n| vec((any_char(), any::<u8>()), n))
        .prop_map(|cs| encode_str(&cs))
}

/// `name` with some characters escaped.
fn spelled(name: &'static str) -> impl Strategy<Value = JStr> {
    vec(
        prop_oneof![4 => Just(1u8), 1 => Just(0u8), 1 => Just(0x10u8)],
        name.chars().count(),
    )
    .prop_map(move |styles| {
        let cs: Vec<(char, u8)> = name.chars().zip(styles).collect();
        encode_str(&cs)
    })
}

/// Names the contract treats specially, and the usual column names.
const SPECIAL: &[&str] = &[
    "version",
    "is_deleted",
    "item_version",
    "item_is_deleted",
    "_extra",
    "id",
    "qty",
    "price",
    "a.b",
];

/// Attribute names at the top level (no envelope keys, so that a bare item
/// is always read as one).
fn top_name() -> impl Strategy<Value = JStr> {
    prop_oneof![
        5 => "[a-z][a-z0-9_]{0,6}".prop_map(|s| JStr::plain(&s)),
        3 => select(SPECIAL).prop_map(JStr::plain),
        2 => select(SPECIAL).prop_flat_map(spelled),
        1 => "[a-z]{1,3}[.][a-z]{1,3}".prop_map(|s| JStr::plain(&s)),
        2 => jstr().prop_filter("non-empty", |j| !j.value.is_empty()),
    ]
}

/// Keys inside maps: anything.
fn inner_name() -> impl Strategy<Value = JStr> {
    prop_oneof![
        4 => "[a-z][a-z0-9_]{0,5}".prop_map(|s| JStr::plain(&s)),
        1 => select(vec!["Item", "S", "N", "M", "version", "_extra"]).prop_map(JStr::plain),
        1 => "[a-z]{1,3}[.][a-z]{1,3}".prop_map(|s| JStr::plain(&s)),
        1 => spelled("x.y"),
        2 => jstr(),
    ]
}

// ---------------------------------------------------------------------------
// Numbers: valid DynamoDB numbers, most of the time.

/// Edges of every integer type, of Float32, of DynamoDB's range, and the
/// examples of the contract.
const EDGE_NUMBERS: &[&str] = &[
    "0",
    "-0",
    "0.0",
    "1",
    "-1",
    "127",
    "128",
    "-128",
    "-129",
    "255",
    "256",
    "300",
    "-5",
    "32767",
    "32768",
    "-32769",
    "65535",
    "65536",
    "2147483647",
    "2147483648",
    "-2147483648",
    "-2147483649",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999999999999999",
    "-99999999999999999999999999999999999999",
    "1.7014118346046923173168730371588410572E+38",
    "1.7014118346046923173168730371588410573E+38",
    "-1.7014118346046923173168730371588410572E+38",
    "3.4028236692093846346337460743176821145E+38",
    "3.4028236692093846346337460743176821146E+38",
    "5.7896044618658097711785492504343953926E+76",
    "5.7896044618658097711785492504343953927E+76",
    "-5.7896044618658097711785492504343953926E+76",
    "1.1579208923731619542357098500868790785E+77",
    "1.1579208923731619542357098500868790786E+77",
    "3.4028235E38",
    "3.4028236E38",
    "3.40282356779733661637539395458142568E+38",
    "3.40282356779733661637539395458142569E+38",
    "1E-45",
    "1E-46",
    "-1E-46",
    "1E+2",
    "1e2",
    "1E+02",
    "100E-2",
    "1.50E1",
    "1.0",
    "1.000",
    "12.50",
    "12.505",
    "12.5",
    "0.001",
    "-0.5",
    "0.1",
    "123456789012345",
    "123456789012345.6",
    "1234567890123456",
    "0.1000000000000000000",
    "1e100",
    "1E+76",
    "1E+77",
    "1E+125",
    "9.9999999999999999999999999999999999999E+125",
    "-9.9999999999999999999999999999999999999E+125",
    "1E-130",
    "-1E-130",
    "12345678901234567890123456789.123456789",
    "0.00000000000000000000000000000000000001",
];

fn number() -> impl Strategy<Value = String> {
    let sign = |neg: bool| if neg { "-" } else { "" };
    let small = (any::<bool>(), 0u32..1000).prop_map(move |(n, v)| format!("{}{v}", sign(n)));
    let trailing = (any::<bool>(), 0u32..100_000, "[0-9]{1,5}", 0usize..3)
        .prop_map(move |(n, i, f, zeros)| format!("{}{i}.{f}{}", sign(n), "0".repeat(zeros)));
    let sci = (
        any::<bool>(),
        "[1-9]([.][0-9]{1,6})?",
        select(vec!["e", "E", "e+", "E+", "e-", "E-"]),
        0i64..136,
    )
        .prop_map(move |(n, m, e, x)| format!("{}{m}{e}{x}", sign(n)));
    let long = prop_oneof![
        "-?[1-9][0-9]{37}",
        "-?[1-9][0-9]{0,18}[.][0-9]{18}",
        "0[.]0{0,20}[1-9][0-9]{0,16}",
    ];
    let generic = (
        any::<bool>(),
        "(0|[1-9][0-9]{0,19})",
        proptest::option::of("[0-9]{1,17}"),
        proptest::option::of((select(vec!["e", "E+", "e-"]), 0u32..40)),
    )
        .prop_map(move |(n, i, f, e)| {
            let mut s = format!("{}{i}", sign(n));
            if let Some(f) = f {
                write!(s, ".{f}").unwrap();
            }
            if let Some((e, x)) = e {
                write!(s, "{e}{x}").unwrap();
            }
            s
        });
    prop_oneof![
        3 => small,
        4 => select(EDGE_NUMBERS).prop_map(String::from),
        2 => trailing,
        2 => sci,
        1 => long,
        1 => generic,
    ]
    .prop_filter("outside DynamoDB's range", |t| in_dynamo_range(t))
}

/// Numbers DynamoDB cannot hold (see `in_dynamo_range`).
fn bad_number() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec![
            "1E+126",
            "-1E+126",
            "1E-131",
            "-1E-131",
            "1e400",
            "123456789012345678901234567890123456789",
            "-9.99999999999999999999999999999999999999E+125",
        ])
        .prop_map(String::from),
        (1u32..10, 126i64..400).prop_map(|(m, e)| format!("{m}E+{e}")),
        (1u32..10, 131i64..400).prop_map(|(m, e)| format!("-{m}e-{e}")),
    ]
}

/// ISO 8601 date-times (and near misses) for DateTime columns.
fn datetime_text() -> impl Strategy<Value = String> {
    (
        select(vec![
            1850u32, 1905, 1960, 1975, 2000, 2024, 2099, 2150, 2250, 2350,
        ]),
        1u32..13,
        1u32..29,
        0u32..24,
        0u32..60,
        0u32..60,
        select(vec!["T", " "]),
        proptest::option::of("[0-9]{0,8}[1-9]"),
        select(vec!["", "Z", "+09:00", "-05:30", "+00:00"]),
        0u8..12,
    )
        .prop_map(|(y, mo, d, h, mi, s, sep, frac, zone, bad)| {
            let mut t = format!("{y:04}-{mo:02}-{d:02}{sep}{h:02}:{mi:02}:{s:02}");
            if let Some(f) = frac {
                write!(t, ".{f}").unwrap();
            }
            t.push_str(zone);
            match bad {
                0 => t.replace('-', "/"),
                // (A date alone is ISO 8601 too, but not among the contract's
                // forms: not generated.)
                1 => t.replacen(['T', ' '], "", 1),
                2 => format!("x{t}"),
                _ => t,
            }
        })
}

/// Parses the date-times the contract lists: `YYYY-MM-DD[T ]HH:MM:SS[.f]`
/// then `Z`, `±HH:MM` or nothing. Returns (year, fraction digits).
fn iso_datetime(s: &str) -> Option<(u32, usize)> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let t = s.get(r)?;
        if t.bytes().all(|c| c.is_ascii_digit()) {
            t.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&mo) || d < 1 || d > days[mo as usize - 1] || h > 23 || mi > 59 || se > 59
    {
        return None;
    }
    let mut i = 19;
    let mut frac = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
            frac += 1;
        }
        if frac == 0 {
            return None;
        }
    }
    match &s[i..] {
        "" | "Z" => {}
        z if z.len() == 6 && matches!(z.as_bytes()[0], b'+' | b'-') && z.as_bytes()[3] == b':' => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 14 || om > 59 {
                return None;
            }
        }
        _ => return None,
    }
    Some((y, frac))
}

// ---------------------------------------------------------------------------
// Binary, with this file's own base64.

#[test]
fn own_base64() {
    for (plain, enc) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(b64(plain.as_bytes()), enc);
    }
    assert_eq!(b64(&[0xff, 0xef]), "/+8=");
}

fn bin() -> impl Strategy<Value = Bin> {
    (vec(any::<u8>(), 0..12), any::<bool>()).prop_map(|(bytes, escape_slash)| Bin {
        bytes,
        escape_slash,
    })
}

/// The `B` literal in the input.
fn bin_input(b: &Bin, kinesis: bool) -> String {
    if kinesis {
        format!("\"{}\"", b64(b64(&b.bytes).as_bytes()))
    } else if b.escape_slash {
        format!("\"{}\"", b64(&b.bytes).replace('/', "\\/"))
    } else {
        format!("\"{}\"", b64(&b.bytes))
    }
}

/// The `B` literal in the output: one base64 layer removed in Kinesis
/// records, else the input's literal.
fn bin_output(b: &Bin, kinesis: bool) -> String {
    if kinesis {
        format!("\"{}\"", b64(&b.bytes))
    } else {
        bin_input(b, false)
    }
}

// ---------------------------------------------------------------------------
// Attribute values.

fn string_value() -> impl Strategy<Value = JStr> {
    prop_oneof![
        3 => jstr(),
        1 => datetime_text().prop_map(|t| JStr::plain(&t)),
    ]
}

fn av() -> impl Strategy<Value = Av> {
    let leaf = prop_oneof![
        3 => string_value().prop_map(Av::S),
        5 => number().prop_map(Av::N),
        1 => bin().prop_map(Av::B),
        1 => any::<bool>().prop_map(Av::Bool),
        1 => Just(Av::Null),
        1 => vec(string_value(), 1..4).prop_map(Av::Ss),
        1 => vec(number(), 1..4).prop_map(Av::Ns),
        1 => vec(bin(), 1..3).prop_map(Av::Bs),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            vec((inner_name(), inner.clone()), 0..4).prop_map(|kv| Av::M(dedup(kv))),
            vec(inner, 0..4).prop_map(Av::L),
        ]
    })
}

const METADATA: [&str; 2] = ["version", "is_deleted"];

/// The name an attribute is looked up and written under.
fn output_name(name: &str) -> String {
    if METADATA.contains(&name) {
        format!("item_{name}")
    } else {
        name.to_string()
    }
}

/// Items whose attributes have distinct names and distinct output names (an
/// attribute `version` next to one named `item_version` is an error row; see
/// `metadata_collision`).
fn item() -> impl Strategy<Value = Vec<(JStr, Av)>> {
    vec((top_name(), av()), 1..8).prop_map(|attrs| {
        let mut out: Vec<(JStr, Av)> = Vec::new();
        for (k, v) in attrs {
            let o = output_name(&k.value);
            if !out
                .iter()
                .any(|(p, _)| p.value == k.value || output_name(&p.value) == o)
            {
                out.push((k, v));
            }
        }
        out
    })
}

fn numbers_of(a: &Av, out: &mut Vec<String>) {
    match a {
        Av::N(t) => out.push(t.clone()),
        Av::Ns(v) => out.extend(v.iter().cloned()),
        Av::M(kv) => kv.iter().for_each(|(_, v)| numbers_of(v, out)),
        Av::L(l) => l.iter().for_each(|v| numbers_of(v, out)),
        _ => {}
    }
}

// ---------------------------------------------------------------------------
// Writing documents, with optional random whitespace between tokens.

struct Writer {
    s: String,
    ws: Option<Rng>,
}

impl Writer {
    fn ws(&mut self) {
        if let Some(r) = &mut self.ws {
            while r.chance(4) {
                self.s.push([' ', '\t', '\n', '\r'][r.below(4) as usize]);
            }
        }
    }

    fn tok(&mut self, t: &str) {
        self.ws();
        self.s.push_str(t);
    }

    fn tagged(&mut self, tag: &str, f: impl FnOnce(&mut Writer)) {
        self.tok("{");
        self.tok(&format!("\"{tag}\""));
        self.tok(":");
        f(self);
        self.tok("}");
    }

    fn list<T>(&mut self, xs: &[T], mut f: impl FnMut(&mut Writer, &T)) {
        self.tok("[");
        for (i, x) in xs.iter().enumerate() {
            if i > 0 {
                self.tok(",");
            }
            f(self, x);
        }
        self.tok("]");
    }

    fn av(&mut self, a: &Av, kinesis: bool) {
        match a {
            Av::S(j) => self.tagged("S", |w| w.tok(&j.raw)),
            Av::N(t) => self.tagged("N", |w| w.tok(&format!("\"{t}\""))),
            Av::B(b) => self.tagged("B", |w| w.tok(&bin_input(b, kinesis))),
            Av::Bool(b) => self.tagged("BOOL", |w| w.tok(if *b { "true" } else { "false" })),
            Av::Null => self.tagged("NULL", |w| w.tok("true")),
            Av::M(kv) => self.tagged("M", |w| w.item(kv, kinesis)),
            Av::L(l) => self.tagged("L", |w| w.list(l, |w, v| w.av(v, kinesis))),
            Av::Ss(v) => self.tagged("SS", |w| w.list(v, |w, j| w.tok(&j.raw))),
            Av::Ns(v) => self.tagged("NS", |w| w.list(v, |w, t| w.tok(&format!("\"{t}\"")))),
            Av::Bs(v) => self.tagged("BS", |w| w.list(v, |w, b| w.tok(&bin_input(b, kinesis)))),
        }
    }

    fn item(&mut self, kv: &[(JStr, Av)], kinesis: bool) {
        self.tok("{");
        for (i, (k, v)) in kv.iter().enumerate() {
            if i > 0 {
                self.tok(",");
            }
            self.tok(&k.raw);
            self.tok(":");
            self.av(v, kinesis);
        }
        self.tok("}");
    }
}

#[derive(Clone, Copy, Debug)]
enum Wrap {
    Bare,
    Export,
    /// A Kinesis Data Streams MODIFY record (B values base64 twice).
    KinesisModify,
}

const KINESIS_MS: u64 = 1_732_406_501_000;

/// The document, and the version its row must carry.
fn document(item: &[(JStr, Av)], wrap: Wrap, ws: Option<u64>) -> (String, u64) {
    let mut w = Writer {
        s: String::new(),
        ws: ws.map(Rng),
    };
    match wrap {
        Wrap::Bare => {
            w.item(item, false);
            (w.s, 0)
        }
        Wrap::Export => {
            w.tok("{");
            w.tok("\"Item\"");
            w.tok(":");
            w.item(item, false);
            w.tok("}");
            (w.s, 0)
        }
        Wrap::KinesisModify => {
            w.tok(r#"{"awsRegion":"us-east-1","eventID":"e1","eventName":"MODIFY","userIdentity":null,"recordFormat":"application/json","tableName":"t","dynamodb":{"ApproximateCreationDateTime":"#);
            w.tok(&KINESIS_MS.to_string());
            w.tok(r#","Keys":"#);
            w.item(&item[..1], true);
            w.tok(r#","NewImage":"#);
            w.item(item, true);
            w.tok(r#","SizeBytes":99},"eventSource":"aws:dynamodb"}"#);
            (w.s, KINESIS_MS * 1000)
        }
    }
}

// ---------------------------------------------------------------------------
// Column types.

#[derive(Clone, Debug)]
enum Ty {
    Str {
        low_cardinality: bool,
    },
    Int {
        bits: u32,
        signed: bool,
    },
    Dec {
        p: u32,
        s: u32,
        /// Written as Decimal32/64/128/256(S) when P allows.
        alias: bool,
    },
    F32,
    F64,
    Bool,
    Nullable(Box<Ty>),
    Array(Box<Ty>),
    Map {
        low_cardinality_key: bool,
        value: Box<Ty>,
    },
    Json(&'static str),
    DateTime {
        /// None: DateTime, Some(p): DateTime64(p).
        precision: Option<u32>,
        tz: Option<&'static str>,
    },
}

impl Ty {
    fn render(&self, comma: &str) -> String {
        match self {
            Ty::Str {
                low_cardinality: false,
            } => "String".into(),
            Ty::Str {
                low_cardinality: true,
            } => "LowCardinality(String)".into(),
            Ty::Int { bits, signed } => format!("{}Int{bits}", if *signed { "" } else { "U" }),
            Ty::Dec { p, s, alias } => match (alias, p) {
                (true, 9 | 18 | 38 | 76) => {
                    let bits = match p {
                        9 => 32,
                        18 => 64,
                        38 => 128,
                        _ => 256,
                    };
                    format!("Decimal{bits}({s})")
                }
                _ => format!("Decimal({p}{comma}{s})"),
            },
            Ty::F32 => "Float32".into(),
            Ty::F64 => "Float64".into(),
            Ty::Bool => "Bool".into(),
            Ty::Nullable(t) => format!("Nullable({})", t.render(comma)),
            Ty::Array(t) => format!("Array({})", t.render(comma)),
            Ty::Map {
                low_cardinality_key,
                value,
            } => format!(
                "Map({}{comma}{})",
                if *low_cardinality_key {
                    "LowCardinality(String)"
                } else {
                    "String"
                },
                value.render(comma)
            ),
            Ty::Json(t) => (*t).into(),
            Ty::DateTime { precision, tz } => match (precision, tz) {
                (None, None) => "DateTime".into(),
                (None, Some(z)) => format!("DateTime('{z}')"),
                (Some(p), None) => format!("DateTime64({p})"),
                (Some(p), Some(z)) => format!("DateTime64({p}{comma}'{z}')"),
            },
        }
    }
}

const JSON_TYPES: &[&str] = &[
    "JSON",
    "JSON(max_dynamic_paths=64)",
    "JSON(max_dynamic_paths = 16, max_dynamic_types = 4)",
    "JSON(SKIP skipped.path)",
];

fn random_datetime(r: &mut Rng) -> Ty {
    Ty::DateTime {
        precision: if r.chance(3) {
            None
        } else {
            Some(r.below(10) as u32)
        },
        tz: r.pick(&[None, None, Some("UTC"), Some("Asia/Tokyo")]),
    }
}

fn random_decimal(r: &mut Rng) -> Ty {
    let p = 1 + r.below(76) as u32;
    let s = r.below(u64::from(p) + 1) as u32;
    Ty::Dec {
        p,
        s,
        alias: r.chance(2),
    }
}

fn random_int(r: &mut Rng) -> Ty {
    Ty::Int {
        bits: r.pick(&[8, 16, 32, 64, 128, 256]),
        signed: r.chance(2),
    }
}

fn random_scalar(r: &mut Rng) -> Ty {
    match r.below(9) {
        0 => Ty::Str {
            low_cardinality: r.chance(3),
        },
        1 | 2 => random_int(r),
        3 | 4 => random_decimal(r),
        5 => Ty::F32,
        6 => Ty::F64,
        7 => Ty::Bool,
        _ => random_datetime(r),
    }
}

fn maybe_nullable(t: Ty, r: &mut Rng) -> Ty {
    if r.chance(5) {
        Ty::Nullable(Box::new(t))
    } else {
        t
    }
}

fn random_ty(r: &mut Rng, depth: u32) -> Ty {
    match r.below(if depth < 2 { 8 } else { 5 }) {
        0..=3 => maybe_nullable(random_scalar(r), r),
        4 => Ty::Json(r.pick(JSON_TYPES)),
        5 | 6 => Ty::Array(Box::new(random_ty(r, depth + 1))),
        _ => Ty::Map {
            low_cardinality_key: r.chance(3),
            value: Box::new(random_ty(r, depth + 1)),
        },
    }
}

/// A type for the number `t`: one it fits most of the time, sometimes a
/// little too narrow.
fn number_type(t: &str, r: &mut Rng) -> Ty {
    let Some(v) = Dec::parse(t) else {
        return random_scalar(r);
    };
    match r.below(8) {
        0 => Ty::F64,
        1 => Ty::F32,
        2..=4 if v.is_integer() => {
            let signed = v.neg || r.chance(2);
            let need = v.int_digits() as f64 * std::f64::consts::LOG2_10 + 1.0;
            let mut bits = [8, 16, 32, 64, 128, 256]
                .into_iter()
                .find(|&b| f64::from(b) >= need)
                .unwrap_or(256);
            if r.chance(4) && bits > 8 {
                bits /= 2;
            }
            Ty::Int {
                bits,
                signed: if r.chance(8) { !signed } else { signed },
            }
        }
        _ => {
            let mut s = v.frac_digits();
            let mut int = v.int_digits();
            match r.below(6) {
                0 => s -= 1,
                1 => int -= 1,
                2 => s += 1,
                3 => int += 2,
                _ => {}
            }
            let s = s.clamp(0, 76) as u32;
            let p = (int.max(0) as u32 + s).clamp(1, 76);
            Ty::Dec {
                p,
                s: s.min(p),
                alias: r.chance(3),
            }
        }
    }
}

/// A type that `a` fits most of the time.
fn guess_type(a: &Av, r: &mut Rng, depth: u32) -> Ty {
    if r.chance(5) || depth > 3 {
        return random_ty(r, depth);
    }
    let t = match a {
        Av::S(j) if iso_datetime(&j.value).is_some() && r.chance(2) => random_datetime(r),
        Av::S(_) | Av::B(_) => Ty::Str {
            low_cardinality: r.chance(3),
        },
        Av::N(t) => number_type(t, r),
        Av::Bool(_) => Ty::Bool,
        Av::Null => return Ty::Nullable(Box::new(random_scalar(r))),
        Av::M(kv) => match r.below(3) {
            0 => Ty::Json(r.pick(JSON_TYPES)),
            1 => Ty::Str {
                low_cardinality: false,
            },
            _ => Ty::Map {
                low_cardinality_key: r.chance(3),
                value: Box::new(match kv.first() {
                    Some((_, v)) => guess_type(v, r, depth + 1),
                    None => random_ty(r, depth + 1),
                }),
            },
        },
        Av::L(l) => {
            if r.chance(3) {
                Ty::Str {
                    low_cardinality: false,
                }
            } else {
                Ty::Array(Box::new(match l.first() {
                    Some(v) => guess_type(v, r, depth + 1),
                    None => random_ty(r, depth + 1),
                }))
            }
        }
        Av::Ss(v) => Ty::Array(Box::new(guess_type(&Av::S(v[0].clone()), r, depth + 1))),
        Av::Ns(v) => Ty::Array(Box::new(number_type(&v[0], r))),
        Av::Bs(_) => Ty::Array(Box::new(Ty::Str {
            low_cardinality: r.chance(3),
        })),
    };
    match t {
        Ty::Array(_) | Ty::Map { .. } | Ty::Json(_) => t,
        Ty::Str {
            low_cardinality: true,
        } => t,
        t => maybe_nullable(t, r),
    }
}

// ---------------------------------------------------------------------------
// Column lists.

#[derive(Clone, Debug)]
struct Column {
    name: String,
    ty: Option<Ty>,
    /// The text in the list (name and type).
    text: String,
}

fn is_identifier(s: &str) -> bool {
    let mut cs = s.chars();
    cs.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The name as written in a column list: bare, `backquoted` or
/// "double-quoted", with backslash escapes.
fn quote_name(name: &str, r: &mut Rng) -> String {
    let style = if is_identifier(name) {
        r.below(3)
    } else {
        1 + r.below(2)
    };
    let esc = |q: char| {
        let mut s = String::new();
        s.push(q);
        for c in name.chars() {
            if c == q || c == '\\' {
                s.push('\\');
            }
            s.push(c);
        }
        s.push(q);
        s
    };
    match style {
        0 => name.to_string(),
        1 => esc('`'),
        _ => esc('"'),
    }
}

/// Names a column list can carry here (no control characters).
fn nameable(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c >= ' ' && c != '\u{7f}')
}

fn column_list(item: &[(JStr, Av)], seed: u64) -> (Vec<Column>, String) {
    let mut r = Rng(seed);
    let mut cols: Vec<Column> = Vec::new();
    let comma = if r.chance(2) { ", " } else { "," };
    let add = |cols: &mut Vec<Column>, name: String, ty: Option<Ty>, text: String| {
        if !cols.iter().any(|c| c.name == name) {
            cols.push(Column { name, ty, text });
        }
    };
    for (k, v) in item {
        let o = output_name(&k.value);
        if o == EXTRA_FIELD || !nameable(&o) || r.chance(5) {
            continue;
        }
        let ty = guess_type(v, &mut r, 0);
        let text = format!("{} {}", quote_name(&o, &mut r), ty.render(comma));
        add(&mut cols, o, Some(ty), text);
    }
    for i in 0..r.below(3) {
        let ty = random_ty(&mut r, 0);
        let name = format!("absent_{i}");
        let text = format!("{name} {}", ty.render(comma));
        add(&mut cols, name, Some(ty), text);
    }
    // The destination's own columns, which the plan ignores.
    for (name, ty) in [
        (EXTRA_FIELD, "String"),
        ("version", "UInt64"),
        ("is_deleted", "UInt8"),
    ] {
        if r.chance(2) {
            let text = format!("{} {ty}", quote_name(name, &mut r));
            add(&mut cols, name.to_string(), None, text);
        }
    }
    if cols.is_empty() {
        // An empty list is refused (as it may be: it names no column).
        add(
            &mut cols,
            "absent".into(),
            Some(Ty::Bool),
            "absent Bool".into(),
        );
    }
    // Shuffle.
    for i in (1..cols.len()).rev() {
        let j = r.below(i as u64 + 1) as usize;
        cols.swap(i, j);
    }
    let sep = r.pick(&[", ", ",", " , ", ",\n  "]);
    let list = cols
        .iter()
        .map(|c| c.text.as_str())
        .collect::<Vec<_>>()
        .join(sep);
    (cols, list)
}

// ---------------------------------------------------------------------------
// The reference: what an attribute becomes in a column, if it fits.

#[derive(Clone, Debug)]
enum Exp {
    /// Exactly this text.
    Raw(String),
    /// A nested document (M or L) in a String column: this plain JSON text,
    /// nested as the contract writes it, or as a JSON string holding exactly
    /// this text (which the engine reads back unchanged; see
    /// `contract_forms_of_extra_and_nested_documents`).
    Doc(String),
    /// A JSON string with this content.
    Str(String),
    /// An integer in plain digits: a JSON number, or a JSON string (128
    /// and 256 bits).
    Int {
        v: Dec,
        quoted: bool,
    },
    /// A JSON string in plain notation with at most `s` decimals.
    Decimal {
        v: Dec,
        s: u32,
    },
    /// A JSON number for this f32 (bits).
    F32(u32),
    Null,
    Arr(Vec<Exp>),
    Obj(Vec<(String, Exp)>),
    /// Inside JSON columns: a JSON number of exactly this value...
    JNum(Dec),
    /// ...or, where the contract's wording allows both, either.
    JNumOrStr(Dec, String),
    /// A date-time: its encoding is left to the implementation notes; the
    /// engine test checks the value.
    Temporal,
}

fn plain_text(a: &Av, kinesis: bool, o: &mut String) {
    let list = |o: &mut String, parts: Vec<String>| {
        o.push('[');
        o.push_str(&parts.join(","));
        o.push(']');
    };
    match a {
        Av::S(j) => o.push_str(&j.raw),
        Av::N(t) => o.push_str(t),
        Av::B(b) => o.push_str(&bin_output(b, kinesis)),
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
                plain_text(v, kinesis, o);
            }
            o.push('}');
        }
        Av::L(l) => list(
            o,
            l.iter()
                .map(|v| {
                    let mut s = String::new();
                    plain_text(v, kinesis, &mut s);
                    s
                })
                .collect(),
        ),
        Av::Ss(v) => list(o, v.iter().map(|j| j.raw.clone()).collect()),
        Av::Ns(v) => list(o, v.clone()),
        Av::Bs(v) => list(o, v.iter().map(|b| bin_output(b, kinesis)).collect()),
    }
}

/// Compact DynamoDB JSON of a value, with the input's literals: what
/// `_extra` holds for it.
fn dynamo_text(a: &Av, kinesis: bool, o: &mut String) {
    let strs = |o: &mut String, tag: &str, parts: Vec<String>| {
        write!(o, "{{\"{tag}\":[{}]}}", parts.join(",")).unwrap();
    };
    match a {
        Av::S(j) => write!(o, "{{\"S\":{}}}", j.raw).unwrap(),
        Av::N(t) => write!(o, "{{\"N\":\"{t}\"}}").unwrap(),
        Av::B(b) => write!(o, "{{\"B\":{}}}", bin_output(b, kinesis)).unwrap(),
        Av::Bool(b) => write!(o, "{{\"BOOL\":{b}}}").unwrap(),
        Av::Null => o.push_str("{\"NULL\":true}"),
        Av::M(kv) => {
            o.push_str("{\"M\":{");
            for (i, (k, v)) in kv.iter().enumerate() {
                if i > 0 {
                    o.push(',');
                }
                o.push_str(&k.raw);
                o.push(':');
                dynamo_text(v, kinesis, o);
            }
            o.push_str("}}");
        }
        Av::L(l) => {
            o.push_str("{\"L\":[");
            for (i, v) in l.iter().enumerate() {
                if i > 0 {
                    o.push(',');
                }
                dynamo_text(v, kinesis, o);
            }
            o.push_str("]}");
        }
        Av::Ss(v) => strs(o, "SS", v.iter().map(|j| j.raw.clone()).collect()),
        Av::Ns(v) => strs(o, "NS", v.iter().map(|t| format!("\"{t}\"")).collect()),
        Av::Bs(v) => strs(o, "BS", v.iter().map(|b| bin_output(b, kinesis)).collect()),
    }
}

fn int_fits(v: &Dec, bits: u32, signed: bool) -> bool {
    if !v.is_integer() {
        return false;
    }
    if v.is_zero() {
        return true;
    }
    if v.neg {
        signed && v.cmp_abs(&Dec::from_digits(&pow2(bits - 1))) != Ordering::Greater
    } else {
        let lim = Dec::from_digits(&pow2(if signed { bits - 1 } else { bits }));
        v.cmp_abs(&lim) == Ordering::Less
    }
}

fn keys_have_dot(a: &Av) -> bool {
    match a {
        Av::M(kv) => kv
            .iter()
            .any(|(k, v)| k.value.contains('.') || keys_have_dot(v)),
        Av::L(l) => l.iter().any(keys_have_dot),
        _ => false,
    }
}

/// A number inside a JSON column (contract: integers within Int64/UInt64
/// and numbers of at most 15 significant digits are numbers, other N are
/// strings of their exact text).
fn json_number(t: &str) -> Exp {
    let v = Dec::parse(t).expect("generated numbers are valid");
    let integer = v.is_integer() && (int_fits(&v, 64, true) || int_fits(&v, 64, false));
    if integer || written_sig_digits(t) <= 15 {
        Exp::JNum(v)
    } else if v.digits.len() > 15 {
        Exp::Str(t.to_string())
    } else {
        // "12.50000000000000000": 19 digits as written, 3 without the
        // trailing zeros; the wording allows both readings.
        Exp::JNumOrStr(v, t.to_string())
    }
}

/// A JSON column's content (B values are the same base64 text in every shape).
fn json_value(a: &Av) -> Exp {
    match a {
        Av::S(j) => Exp::Str(j.value.clone()),
        Av::N(t) => json_number(t),
        Av::B(b) => Exp::Str(b64_text(b)),
        Av::Bool(b) => Exp::Raw(b.to_string()),
        Av::Null => Exp::Null,
        Av::M(kv) => Exp::Obj(
            kv.iter()
                .map(|(k, v)| (k.value.clone(), json_value(v)))
                .collect(),
        ),
        Av::L(l) => Exp::Arr(l.iter().map(json_value).collect()),
        Av::Ss(v) => Exp::Arr(v.iter().map(|j| Exp::Str(j.value.clone())).collect()),
        Av::Ns(v) => Exp::Arr(v.iter().map(|t| json_number(t)).collect()),
        Av::Bs(v) => Exp::Arr(v.iter().map(|b| Exp::Str(b64_text(b))).collect()),
    }
}

/// What `a` becomes in a column of type `ty`, or None for a misfit.
fn fit(ty: &Ty, a: &Av, kinesis: bool) -> Option<Exp> {
    let all = |items: Vec<Option<Exp>>| items.into_iter().collect::<Option<Vec<_>>>();
    match (ty, a) {
        (Ty::Str { .. }, Av::S(j)) => Some(Exp::Str(j.value.clone())),
        (Ty::Str { .. }, Av::B(b)) => Some(Exp::Str(b64_text(b))),
        (Ty::Str { .. }, Av::M(_) | Av::L(_)) => {
            let mut s = String::new();
            plain_text(a, kinesis, &mut s);
            Some(Exp::Doc(s))
        }
        (Ty::Int { bits, signed }, Av::N(t)) => {
            let v = Dec::parse(t)?;
            int_fits(&v, *bits, *signed).then_some(Exp::Int {
                v,
                quoted: *bits > 64,
            })
        }
        (Ty::Dec { p, s, .. }, Av::N(t)) => {
            let v = Dec::parse(t)?;
            (v.frac_digits() <= i64::from(*s) && v.int_digits() <= i64::from(p - s))
                .then_some(Exp::Decimal { v, s: *s })
        }
        (Ty::F64, Av::N(t)) => Some(Exp::Raw(t.clone())),
        (Ty::F32, Av::N(t)) => {
            let v = Dec::parse(t)?;
            let finite = v.cmp_abs(&f32_overflow()) == Ordering::Less;
            let nearest: f32 = t.parse().expect("a JSON number parses as f32");
            assert_eq!(finite, nearest.is_finite(), "reference: f32 range of {t}");
            finite.then_some(Exp::F32(nearest.to_bits()))
        }
        (Ty::Bool, Av::Bool(b)) => Some(Exp::Raw(b.to_string())),
        (Ty::Nullable(_), Av::Null) => Some(Exp::Null),
        (Ty::Nullable(t), a) => fit(t, a, kinesis),
        (Ty::Array(t), Av::L(l)) => {
            all(l.iter().map(|v| fit(t, v, kinesis)).collect()).map(Exp::Arr)
        }
        (Ty::Array(t), Av::Ss(v)) => all(v
            .iter()
            .map(|j| fit(t, &Av::S(j.clone()), kinesis))
            .collect())
        .map(Exp::Arr),
        (Ty::Array(t), Av::Bs(v)) => all(v
            .iter()
            .map(|b| fit(t, &Av::B(b.clone()), kinesis))
            .collect())
        .map(Exp::Arr),
        (Ty::Array(t), Av::Ns(v)) => all(v
            .iter()
            .map(|n| fit(t, &Av::N(n.clone()), kinesis))
            .collect())
        .map(Exp::Arr),
        (Ty::Map { value, .. }, Av::M(kv)) => {
            let vals = all(kv.iter().map(|(_, v)| fit(value, v, kinesis)).collect())?;
            Some(Exp::Obj(
                kv.iter().map(|(k, _)| k.value.clone()).zip(vals).collect(),
            ))
        }
        (Ty::Json(_), Av::M(_)) if !keys_have_dot(a) => Some(json_value(a)),
        (Ty::DateTime { precision, .. }, Av::S(j)) => {
            let (year, frac) = iso_datetime(&j.value)?;
            let p = precision.unwrap_or(0) as usize;
            let range = if precision.is_some() {
                1900..=2299
            } else {
                1970..=2105
            };
            (frac <= p && range.contains(&year)).then_some(Exp::Temporal)
        }
        _ => None,
    }
}

/// The base64 text of a `B` value (decoded from its literal): the same in
/// exports and, one layer removed, in Kinesis records.
fn b64_text(b: &Bin) -> String {
    b64(&b.bytes)
}

// ---------------------------------------------------------------------------
// Reading the output: a JSON tree that keeps every value's text.

#[derive(Debug)]
struct Node<'a> {
    raw: &'a str,
    kind: Kind<'a>,
}

#[derive(Debug)]
enum Kind<'a> {
    Obj(Vec<(String, Node<'a>)>),
    Arr(Vec<Node<'a>>),
    Str(String),
    Num,
    Bool,
    Null,
}

struct Reader<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Reader<'a> {
    fn parse(s: &'a str) -> Result<Node<'a>, String> {
        let mut r = Reader { s, i: 0 };
        let v = r.value()?;
        if r.i != s.len() {
            return Err(format!("trailing text at {}", r.i));
        }
        Ok(v)
    }

    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.i).copied()
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected '{}' at {}", c as char, self.i))
        }
    }

    fn string(&mut self) -> Result<String, String> {
        let start = self.i;
        self.expect(b'"')?;
        loop {
            match self.peek() {
                Some(b'\\') => self.i += 2,
                Some(b'"') => {
                    self.i += 1;
                    break;
                }
                Some(_) => self.i += 1,
                None => return Err("unterminated string".into()),
            }
        }
        serde_json::from_str(&self.s[start..self.i]).map_err(|e| e.to_string())
    }

    fn value(&mut self) -> Result<Node<'a>, String> {
        let start = self.i;
        let kind = match self.peek() {
            Some(b'{') => {
                self.i += 1;
                let mut m = Vec::new();
                if self.peek() == Some(b'}') {
                    self.i += 1;
                } else {
                    loop {
                        let k = self.string()?;
                        self.expect(b':')?;
                        m.push((k, self.value()?));
                        match self.peek() {
                            Some(b',') => self.i += 1,
                            _ => {
                                self.expect(b'}')?;
                                break;
                            }
                        }
                    }
                }
                Kind::Obj(m)
            }
            Some(b'[') => {
                self.i += 1;
                let mut v = Vec::new();
                if self.peek() == Some(b']') {
                    self.i += 1;
                } else {
                    loop {
                        v.push(self.value()?);
                        match self.peek() {
                            Some(b',') => self.i += 1,
                            _ => {
                                self.expect(b']')?;
                                break;
                            }
                        }
                    }
                }
                Kind::Arr(v)
            }
            Some(b'"') => Kind::Str(self.string()?),
            Some(b't') | Some(b'f') | Some(b'n') => {
                let rest = &self.s[self.i..];
                let (lit, kind) = if rest.starts_with("true") {
                    ("true", Kind::Bool)
                } else if rest.starts_with("false") {
                    ("false", Kind::Bool)
                } else if rest.starts_with("null") {
                    ("null", Kind::Null)
                } else {
                    return Err(format!("bad literal at {}", self.i));
                };
                self.i += lit.len();
                kind
            }
            Some(c) if c == b'-' || c.is_ascii_digit() => {
                while matches!(
                    self.peek(),
                    Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                ) {
                    self.i += 1;
                }
                Kind::Num
            }
            _ => return Err(format!("unexpected byte at {} (whitespace?)", self.i)),
        };
        Ok(Node {
            raw: &self.s[start..self.i],
            kind,
        })
    }
}

/// The text of `_extra`: an object as the contract writes it, or a JSON
/// string holding the object's text (the implementation's form, which the
/// engine reads back unchanged; see `contract_forms_of_extra_and_nested_documents`).
fn extra_text(n: &Node<'_>) -> Option<String> {
    match &n.kind {
        Kind::Obj(_) => Some(n.raw.to_string()),
        Kind::Str(s) => Some(s.clone()),
        _ => None,
    }
}

/// A row with a string-encoded `_extra` rewritten as the object it holds,
/// so that examples compare whole rows in the contract's form.
fn extra_as_object(row: &str) -> String {
    let Ok(tree) = Reader::parse(row) else {
        return row.to_string();
    };
    let Kind::Obj(members) = &tree.kind else {
        return row.to_string();
    };
    match members.iter().find(|(k, _)| k == EXTRA_FIELD) {
        Some((
            _,
            n @ Node {
                kind: Kind::Str(s), ..
            },
        )) => {
            let at = n.raw.as_ptr() as usize - row.as_ptr() as usize;
            format!("{}{s}{}", &row[..at], &row[at + n.raw.len()..])
        }
        _ => row.to_string(),
    }
}

fn is_plain_integer(t: &str) -> bool {
    let d = t.strip_prefix('-').unwrap_or(t);
    !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit()) && (d == "0" || !d.starts_with('0'))
}

fn is_plain_decimal(t: &str) -> bool {
    match t.split_once('.') {
        Some((i, f)) => {
            is_plain_integer(i) && !f.is_empty() && f.bytes().all(|c| c.is_ascii_digit())
        }
        None => is_plain_integer(t),
    }
}

/// Checks a value of the output against what the reference expects.
fn check_exp(e: &Exp, n: &Node<'_>, at: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("{at}: {why}: got {}, expected {e:?}", n.raw));
    match (e, &n.kind) {
        (Exp::Raw(t), _) if n.raw == t => Ok(()),
        (Exp::Doc(t), _) if n.raw == t => Ok(()),
        (Exp::Doc(t), Kind::Str(got)) if got == t => Ok(()),
        (Exp::Raw(t), _) => bad(&format!("text differs from {t}")),
        (Exp::Str(s), Kind::Str(got)) if got == s => Ok(()),
        (Exp::Int { v, quoted: true }, Kind::Str(got)) => {
            if !is_plain_integer(got) {
                return bad("not an integer in plain digits");
            }
            if Dec::parse(got).as_ref() != Some(v) {
                return bad("value differs");
            }
            Ok(())
        }
        (Exp::Int { v, quoted: false }, Kind::Num) => {
            if !is_plain_integer(n.raw) {
                return bad("not an integer in plain digits");
            }
            if Dec::parse(n.raw).as_ref() != Some(v) {
                return bad("value differs");
            }
            Ok(())
        }
        (Exp::Decimal { v, s }, Kind::Str(got)) => {
            if !is_plain_decimal(got) {
                return bad("not in plain notation");
            }
            let g = Dec::parse(got);
            if g.as_ref() != Some(v) {
                return bad("value differs");
            }
            let written = got.split_once('.').map_or(0, |(_, f)| f.len());
            if written > *s as usize {
                return bad("more decimals than the column's scale");
            }
            Ok(())
        }
        // The value only: whether the text is the shortest one is checked by
        // `float_columns`, so that this property goes on to other findings.
        (Exp::F32(bits), Kind::Num) => match n.raw.parse::<f32>() {
            Ok(got) if got.to_bits() == *bits => Ok(()),
            _ => bad("another float"),
        },
        (Exp::Null, Kind::Null) => Ok(()),
        (Exp::Arr(es), Kind::Arr(ns)) => {
            if es.len() != ns.len() {
                return bad("length differs");
            }
            for (i, (e, n)) in es.iter().zip(ns).enumerate() {
                check_exp(e, n, &format!("{at}[{i}]"))?;
            }
            Ok(())
        }
        (Exp::Obj(es), Kind::Obj(ns)) => {
            let ek: Vec<&str> = es.iter().map(|(k, _)| k.as_str()).collect();
            let nk: Vec<&str> = ns.iter().map(|(k, _)| k.as_str()).collect();
            if ek != nk {
                return bad(&format!("keys {nk:?}, expected {ek:?}"));
            }
            for ((k, e), (_, n)) in es.iter().zip(ns) {
                check_exp(e, n, &format!("{at}.{k}"))?;
            }
            Ok(())
        }
        (Exp::JNum(v), Kind::Num) | (Exp::JNumOrStr(v, _), Kind::Num) => {
            if Dec::parse(n.raw).as_ref() == Some(v) {
                Ok(())
            } else {
                bad("value differs")
            }
        }
        (Exp::JNumOrStr(_, t), Kind::Str(got)) if got == t => Ok(()),
        (Exp::Temporal, Kind::Str(_) | Kind::Num) => Ok(()),
        _ => bad("wrong JSON type or value"),
    }
}

// ---------------------------------------------------------------------------
// The property.

struct Case {
    item: Vec<(JStr, Av)>,
    wrap: Wrap,
    seed: u64,
    ws: bool,
}

fn options(list: &str) -> Options {
    let plan = ColumnPlan::parse(list).unwrap_or_else(|e| panic!("plan {list:?}: {e}"));
    Options {
        columns: Some(Arc::new(plan)),
        ..Options::default()
    }
}

fn check_case(c: &Case) -> Result<(), String> {
    let kinesis = matches!(c.wrap, Wrap::KinesisModify);
    let (cols, list) = column_list(&c.item, c.seed);
    let (input, version) = document(&c.item, c.wrap, c.ws.then_some(c.seed));
    let mut out = b"prev|".to_vec();
    let got = Flattener::new(options(&list)).flatten(input.as_bytes(), &mut out);
    let ctx = || {
        format!(
            "\ncolumns: {list}\ninput: {input}\noutput: {}",
            String::from_utf8_lossy(&out)
        )
    };

    let mut numbers = Vec::new();
    for (_, v) in &c.item {
        numbers_of(v, &mut numbers);
    }
    let out_of_range: Vec<&String> = numbers.iter().filter(|t| !in_dynamo_range(t)).collect();
    if !out_of_range.is_empty() {
        return match got {
            Err(_) if out == b"prev|" => Ok(()),
            Err(e) => Err(format!("{e}: output changed{}", ctx())),
            Ok(_) => Err(format!(
                "accepted N outside DynamoDB's range {out_of_range:?}{}",
                ctx()
            )),
        };
    }
    if let Err(e) = got {
        return Err(format!("error row for a valid item: {e}{}", ctx()));
    }
    if !out.starts_with(b"prev|") {
        return Err(format!("bytes before the row changed{}", ctx()));
    }
    let row = std::str::from_utf8(&out[5..]).map_err(|e| format!("{e}{}", ctx()))?;
    serde_json::from_str::<serde_json::Value>(row)
        .map_err(|e| format!("not JSON for serde_json: {e}{}", ctx()))?;
    let tree = Reader::parse(row).map_err(|e| format!("{e}{}", ctx()))?;
    let Kind::Obj(members) = &tree.kind else {
        return Err(format!("not an object{}", ctx()));
    };

    // Where each attribute must go.
    let mut fits: Vec<(String, Exp)> = Vec::new();
    let mut misfits: Vec<(String, String)> = Vec::new();
    for (k, v) in &c.item {
        let o = output_name(&k.value);
        let col = cols
            .iter()
            .find(|col| col.name == o && col.ty.is_some() && k.value != EXTRA_FIELD);
        match col.and_then(|col| fit(col.ty.as_ref()?, v, kinesis)) {
            Some(e) => fits.push((o, e)),
            None => {
                let mut t = String::new();
                dynamo_text(v, kinesis, &mut t);
                misfits.push((k.value.clone(), t));
            }
        }
    }

    let mut want_keys: Vec<&str> = fits.iter().map(|(k, _)| k.as_str()).collect();
    want_keys.extend([EXTRA_FIELD, "version", "is_deleted"]);
    let got_keys: Vec<&str> = members.iter().map(|(k, _)| k.as_str()).collect();
    if got_keys != want_keys {
        return Err(format!(
            "keys {got_keys:?}, expected {want_keys:?}{}",
            ctx()
        ));
    }
    for ((k, e), (_, n)) in fits.iter().zip(members) {
        check_exp(e, n, k).map_err(|m| format!("{m}{}", ctx()))?;
    }
    let extra_str = extra_text(&members[fits.len()].1)
        .ok_or_else(|| format!("_extra is not an object{}", ctx()))?;
    let extra = Reader::parse(&extra_str).map_err(|e| format!("_extra: {e}{}", ctx()))?;
    let Kind::Obj(extra_members) = &extra.kind else {
        return Err(format!("_extra is not an object{}", ctx()));
    };
    let mut got_extra: Vec<(&str, &str)> = extra_members
        .iter()
        .map(|(k, n)| (k.as_str(), n.raw))
        .collect();
    let mut want_extra: Vec<(&str, &str)> = misfits
        .iter()
        .map(|(k, t)| (k.as_str(), t.as_str()))
        .collect();
    got_extra.sort();
    want_extra.sort();
    if got_extra != want_extra {
        return Err(format!(
            "_extra {got_extra:?}, expected {want_extra:?}{}",
            ctx()
        ));
    }
    let meta = &members[fits.len() + 1..];
    if meta[0].1.raw != version.to_string() || meta[1].1.raw != "0" {
        return Err(format!(
            "metadata {} {}{}",
            meta[0].1.raw,
            meta[1].1.raw,
            ctx()
        ));
    }
    Ok(())
}

fn wrap() -> impl Strategy<Value = Wrap> {
    prop_oneof![
        Just(Wrap::Bare),
        Just(Wrap::Export),
        Just(Wrap::KinesisModify)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn every_attribute_is_in_its_column_or_in_extra(
        item in item(),
        wrap in wrap(),
        seed in any::<u64>(),
        ws in any::<bool>(),
    ) {
        let c = Case { item, wrap, seed, ws };
        if let Err(m) = check_case(&c) {
            prop_assert!(false, "{}", m);
        }
    }

    /// Every value on its own, against a column of every kind.
    #[test]
    fn one_value_many_types(value in av(), seed in any::<u64>()) {
        let mut r = Rng(seed);
        for _ in 0..8 {
            let ty = if r.chance(2) { guess_type(&value, &mut r, 0) } else { random_ty(&mut r, 0) };
            let item = vec![(JStr::plain("v"), value.clone())];
            let list = format!("v {}", ty.render(", "));
            let (input, _) = document(&item, Wrap::Bare, None);
            let mut out = Vec::new();
            let got = Flattener::new(options(&list)).flatten(input.as_bytes(), &mut out);
            let mut numbers = Vec::new();
            numbers_of(&value, &mut numbers);
            if numbers.iter().any(|t| !in_dynamo_range(t)) {
                prop_assert!(got.is_err(), "accepted {input}");
                continue;
            }
            prop_assert!(got.is_ok(), "{list} / {input}: {:?}", got.err().map(|e| e.to_string()));
            let row = String::from_utf8(out).unwrap();
            serde_json::from_str::<serde_json::Value>(&row)
                .map_err(|e| TestCaseError::fail(format!("{e}: {row}")))?;
            let tree = Reader::parse(&row).map_err(TestCaseError::fail)?;
            let Kind::Obj(m) = &tree.kind else { unreachable!() };
            match fit(&ty, &value, false) {
                Some(e) => {
                    prop_assert_eq!(&m[0].0, "v", "{} / {} -> {}", list, input, row);
                    check_exp(&e, &m[0].1, "v").map_err(|s| TestCaseError::fail(format!("{s}\n{list}\n{input}\n{row}")))?;
                    prop_assert_eq!(extra_text(&m[1].1), Some("{}".to_string()), "{} / {}", list, input);
                }
                None => {
                    let mut t = String::new();
                    dynamo_text(&value, false, &mut t);
                    prop_assert_eq!(&m[0].0, EXTRA_FIELD, "{} / {} -> {}", list, input, row);
                    prop_assert_eq!(extra_text(&m[0].1), Some(format!("{{\"v\":{t}}}")), "{} / {}", list, input);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// One N outside DynamoDB's range anywhere (nested, in a set) makes the
    /// row an error row, with and without a column plan ("Always").
    #[test]
    fn a_number_outside_dynamodb_range_anywhere_is_an_error_row(
        item in item(),
        bad in bad_number(),
        depth in 0usize..4,
        at in any::<usize>(),
        in_set in any::<bool>(),
        wrap in wrap(),
        seed in any::<u64>(),
    ) {
        let mut v = if in_set { Av::Ns(vec!["1".into(), bad.clone()]) } else { Av::N(bad.clone()) };
        for i in 0..depth {
            v = if i % 2 == 0 { Av::M(vec![(JStr::plain("k"), v)]) } else { Av::L(vec![v]) };
        }
        let mut item = item;
        item.retain(|(k, _)| k.value != "zz_bad");
        let at = at % (item.len() + 1);
        item.insert(at, (JStr::plain("zz_bad"), v));
        let (_, list) = column_list(&item, seed);
        let (input, _) = document(&item, wrap, None);
        for opts in [Options::default(), options(&list)] {
            let mut out = b"prev|".to_vec();
            let r = Flattener::new(opts).flatten(input.as_bytes(), &mut out);
            prop_assert!(
                r.is_err(),
                "accepted {}\ncolumns: {}\ninput: {}\noutput: {}",
                bad, list, input, String::from_utf8_lossy(&out)
            );
            prop_assert_eq!(&out, b"prev|");
        }
    }
}

// ---------------------------------------------------------------------------
// Fixed examples, one or more per row of the contract's table.

/// The row for `input` (a bare item) with `list`, or the error's text.
fn row(list: &str, input: &str) -> Result<String, String> {
    let mut out = Vec::new();
    Flattener::new(options(list))
        .flatten(input.as_bytes(), &mut out)
        .map_err(|e| e.to_string())?;
    Ok(extra_as_object(
        &String::from_utf8(out).expect("rows are UTF-8"),
    ))
}

/// `{"v":<value>}` flattened with the column `v <ty>`.
fn one(ty: &str, value: &str) -> String {
    let list = format!("v {ty}");
    let input = format!("{{\"v\":{value}}}");
    let r = row(&list, &input).unwrap_or_else(|e| panic!("{list} / {input}: {e}"));
    serde_json::from_str::<serde_json::Value>(&r).unwrap_or_else(|e| panic!("{e}: {r}"));
    r
}

// The example tests report every disagreement of a test at once, not just
// the first: checks record them, `finish` fails the test with the list.
thread_local! {
    static DISAGREEMENTS: std::cell::RefCell<Vec<String>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

#[track_caller]
fn disagree(what: String) {
    let line = std::panic::Location::caller().line();
    DISAGREEMENTS.with_borrow_mut(|d| d.push(format!("line {line}: {what}")));
}

#[track_caller]
fn expect(ok: bool, what: impl FnOnce() -> String) {
    if !ok {
        disagree(what());
    }
}

fn finish() {
    let d = DISAGREEMENTS.take();
    assert!(
        d.is_empty(),
        "{} disagreement(s):\n{}",
        d.len(),
        d.join("\n")
    );
}

/// Checks that `value` gives exactly `want` with the column `v <ty>`.
#[track_caller]
fn gives(ty: &str, value: &str, want: String) {
    gives_one_of(ty, value, &[want]);
}

/// Checks that `value` gives one of `wants` with the column `v <ty>`.
#[track_caller]
fn gives_one_of(ty: &str, value: &str, wants: &[String]) {
    let list = format!("v {ty}");
    let input = format!("{{\"v\":{value}}}");
    match row(&list, &input) {
        Ok(got) => {
            let json = serde_json::from_str::<serde_json::Value>(&got);
            expect(json.is_ok(), || format!("{value} in {ty}: not JSON: {got}"));
            expect(wants.contains(&got), || {
                format!(
                    "{value} in {ty}:\n    got  {got}\n    want {}",
                    wants.join("\n      or ")
                )
            });
        }
        Err(e) => disagree(format!("{value} in {ty}: error row: {e}")),
    }
}

/// Checks that the document `value` fits the String column `ty` as the
/// plain JSON text `text`: nested (the contract) or as a JSON string of it.
#[track_caller]
fn fits_doc(ty: &str, value: &str, text: &str) {
    let row = |v: &str| format!("{{\"v\":{v},\"_extra\":{{}},\"version\":0,\"is_deleted\":0}}");
    let quoted = serde_json::to_string(text).expect("a string");
    gives_one_of(ty, value, &[row(text), row(&quoted)]);
}

/// Checks that `value` fits `ty` and is written as `written`.
#[track_caller]
fn fits(ty: &str, value: &str, written: &str) {
    gives(
        ty,
        value,
        format!("{{\"v\":{written},\"_extra\":{{}},\"version\":0,\"is_deleted\":0}}"),
    );
}

/// Checks that `value` does not fit `ty`: it is kept in `_extra` as it was.
#[track_caller]
fn misfits(ty: &str, value: &str) {
    gives(
        ty,
        value,
        format!("{{\"_extra\":{{\"v\":{value}}},\"version\":0,\"is_deleted\":0}}"),
    );
}

#[test]
fn string_columns() {
    for ty in ["String", "LowCardinality(String)"] {
        fits(ty, r#"{"S":"a\"b\u00e9"}"#, r#""a\"b\u00e9""#);
        fits(ty, r#"{"S":""}"#, r#""""#);
        fits(ty, r#"{"B":"AAEC"}"#, r#""AAEC""#);
        fits_doc(
            ty,
            r#"{"M":{"a":{"N":"1E+2"},"b":{"L":[{"S":"x\/\u00e9"},{"NULL":true}]}}}"#,
            r#"{"a":1E+2,"b":["x\/\u00e9",null]}"#,
        );
        fits_doc(ty, r#"{"L":[{"N":"1"},{"BOOL":true}]}"#, "[1,true]");
        fits_doc(ty, r#"{"L":[]}"#, "[]");
        misfits(ty, r#"{"N":"5"}"#);
        misfits(ty, r#"{"BOOL":true}"#);
        misfits(ty, r#"{"NULL":true}"#);
        misfits(ty, r#"{"SS":["a"]}"#);
    }
    finish();
}

#[test]
fn integer_columns() {
    fits("Int8", r#"{"N":"1E+2"}"#, "100");
    fits("Int8", r#"{"N":"127"}"#, "127");
    fits("Int8", r#"{"N":"-128"}"#, "-128");
    fits("Int8", r#"{"N":"1.0"}"#, "1");
    fits("Int8", r#"{"N":"1.50E1"}"#, "15");
    fits("Int8", r#"{"N":"100E-2"}"#, "1");
    misfits("Int8", r#"{"N":"128"}"#);
    misfits("Int8", r#"{"N":"-129"}"#);
    misfits("Int8", r#"{"N":"1.5"}"#);
    misfits("Int8", r#"{"N":"1e100"}"#);
    fits("UInt8", r#"{"N":"255"}"#, "255");
    misfits("UInt8", r#"{"N":"300"}"#);
    misfits("UInt8", r#"{"N":"-5"}"#);
    misfits("UInt8", r#"{"S":"5"}"#);
    misfits("UInt8", r#"{"BOOL":true}"#);
    misfits("UInt8", r#"{"NULL":true}"#);
    fits("Int16", r#"{"N":"-32768"}"#, "-32768");
    misfits("Int16", r#"{"N":"32768"}"#);
    fits("UInt16", r#"{"N":"65535"}"#, "65535");
    fits("Int32", r#"{"N":"-2147483648"}"#, "-2147483648");
    misfits("UInt32", r#"{"N":"4294967296"}"#);
    fits(
        "Int64",
        r#"{"N":"9223372036854775807"}"#,
        "9223372036854775807",
    );
    fits(
        "Int64",
        r#"{"N":"-9223372036854775808"}"#,
        "-9223372036854775808",
    );
    misfits("Int64", r#"{"N":"9223372036854775808"}"#);
    fits(
        "UInt64",
        r#"{"N":"18446744073709551615"}"#,
        "18446744073709551615",
    );
    misfits("UInt64", r#"{"N":"18446744073709551616"}"#);
    fits(
        "Int128",
        r#"{"N":"-99999999999999999999999999999999999999"}"#,
        r#""-99999999999999999999999999999999999999""#,
    );
    fits(
        "UInt128",
        r#"{"N":"3.4028236692093846346337460743176821145E+38"}"#,
        r#""340282366920938463463374607431768211450""#,
    );
    misfits(
        "UInt128",
        r#"{"N":"3.4028236692093846346337460743176821146E+38"}"#,
    );
    misfits("UInt128", r#"{"N":"-1"}"#);
    fits(
        "Int256",
        r#"{"N":"1E+76"}"#,
        &format!("\"1{}\"", "0".repeat(76)),
    );
    misfits("Int256", r#"{"N":"1E+77"}"#);
    fits(
        "UInt256",
        r#"{"N":"1.1579208923731619542357098500868790785E+77"}"#,
        r#""115792089237316195423570985008687907850000000000000000000000000000000000000000""#,
    );
    misfits(
        "UInt256",
        r#"{"N":"1.1579208923731619542357098500868790786E+77"}"#,
    );
    misfits(
        "UInt256",
        r#"{"N":"9.9999999999999999999999999999999999999E+125"}"#,
    );
    finish();
}

#[test]
fn zero_is_an_integer_whatever_its_sign() {
    // -0, 0.0 and 0E+5 are the integer 0: in range of every integer type.
    for t in ["0", "-0", "0.0", "0E+5", "-0.000"] {
        let r = one("UInt8", &format!("{{\"N\":\"{t}\"}}"));
        let v: serde_json::Value = serde_json::from_str(&r).unwrap();
        let ok = v["_extra"] == serde_json::json!({}) && v["v"].as_f64() == Some(0.0);
        expect(ok, || format!("{t} in UInt8: {r}"));
    }
    finish();
}

#[test]
fn decimal_columns() {
    fits("Decimal(38, 1)", r#"{"N":"12.50"}"#, r#""12.5""#);
    fits("Decimal(38, 2)", r#"{"N":"12.5"}"#, r#""12.5""#);
    misfits("Decimal(38, 2)", r#"{"N":"12.505"}"#);
    misfits("Decimal(38, 2)", r#"{"N":"1e100"}"#);
    fits("Decimal(38, 2)", r#"{"N":"1E+2"}"#, r#""100""#);
    fits("Decimal(5, 2)", r#"{"N":"999.99"}"#, r#""999.99""#);
    misfits("Decimal(5, 2)", r#"{"N":"1E+3"}"#);
    fits("Decimal(2, 2)", r#"{"N":"-0.99"}"#, r#""-0.99""#);
    misfits("Decimal(2, 2)", r#"{"N":"1"}"#);
    fits("Decimal(1, 0)", r#"{"N":"9"}"#, r#""9""#);
    misfits("Decimal(1, 0)", r#"{"N":"10"}"#);
    misfits("Decimal(1, 0)", r#"{"N":"0.5"}"#);
    fits(
        "Decimal(38,9)",
        r#"{"N":"12345678901234567890123456789.123456789"}"#,
        r#""12345678901234567890123456789.123456789""#,
    );
    fits("Decimal32(2)", r#"{"N":"1234567.89"}"#, r#""1234567.89""#);
    misfits("Decimal32(2)", r#"{"N":"12345678.9"}"#);
    fits("Decimal64(4)", r#"{"N":"-1.5E-3"}"#, r#""-0.0015""#);
    fits(
        "Decimal128(0)",
        r#"{"N":"99999999999999999999999999999999999999"}"#,
        r#""99999999999999999999999999999999999999""#,
    );
    fits(
        "Decimal256(76)",
        r#"{"N":"1E-76"}"#,
        &format!("\"0.{}1\"", "0".repeat(75)),
    );
    misfits("Decimal256(76)", r#"{"N":"1E-77"}"#);
    fits(
        "Decimal(76, 0)",
        r#"{"N":"1E+75"}"#,
        &format!("\"1{}\"", "0".repeat(75)),
    );
    misfits("Decimal(76, 0)", r#"{"N":"1E+76"}"#);
    misfits("Decimal(76, 76)", r#"{"N":"1E-130"}"#);
    misfits("Decimal(38, 2)", r#"{"S":"12.5"}"#);
    finish();
}

#[test]
fn float_columns() {
    fits("Float64", r#"{"N":"1E+2"}"#, "1E+2");
    fits(
        "Float64",
        r#"{"N":"12345678901234567890123456789.123456789"}"#,
        "12345678901234567890123456789.123456789",
    );
    fits("Float64", r#"{"N":"-1E-130"}"#, "-1E-130");
    fits(
        "Float64",
        r#"{"N":"9.9999999999999999999999999999999999999E+125"}"#,
        "9.9999999999999999999999999999999999999E+125",
    );
    misfits("Float64", r#"{"S":"1.5"}"#);
    for (t, nearest) in [
        ("1.5", 1.5f32),
        ("0.1", 0.1),
        ("3.4028235E38", f32::MAX),
        ("16777217", 16_777_216.0),
        ("1E-46", 0.0),
    ] {
        let r = one("Float32", &format!("{{\"N\":\"{t}\"}}"));
        let tree = Reader::parse(&r).expect("JSON");
        let Kind::Obj(m) = &tree.kind else {
            panic!("{r}")
        };
        expect(m[0].0 == "v" && m[1].1.raw == "{}", || {
            format!("{t} in Float32: {r}")
        });
        let text = m[0].1.raw;
        expect(text.parse::<f32>().ok() == Some(nearest), || {
            format!("{t} in Float32: {text} is not {nearest:e}")
        });
        let digits = |t: &str| Dec::parse(t).map(|d| d.digits.len());
        expect(digits(text) == digits(&format!("{nearest:e}")), || {
            format!("{t} in Float32: {text} is not the shortest text of {nearest:e}")
        });
    }
    misfits("Float32", r#"{"N":"1e100"}"#);
    misfits("Float32", r#"{"N":"3.4028236E38"}"#);
    misfits("Float32", r#"{"N":"-3.4028236E38"}"#);
    finish();
}

#[test]
fn bool_columns() {
    fits("Bool", r#"{"BOOL":true}"#, "true");
    fits("Bool", r#"{"BOOL":false}"#, "false");
    misfits("Bool", r#"{"N":"1"}"#);
    misfits("Bool", r#"{"S":"true"}"#);
    misfits("Bool", r#"{"NULL":true}"#);
    finish();
}

#[test]
fn nullable_columns() {
    fits("Nullable(Int8)", r#"{"NULL":true}"#, "null");
    fits("Nullable(Int8)", r#"{"N":"5"}"#, "5");
    misfits("Nullable(Int8)", r#"{"N":"300"}"#);
    misfits("Nullable(Int8)", r#"{"S":"x"}"#);
    fits("Nullable(String)", r#"{"NULL":true}"#, "null");
    fits("Nullable(Decimal(38, 2))", r#"{"N":"1.10"}"#, r#""1.1""#);
    misfits("Int8", r#"{"NULL":true}"#);
    misfits("String", r#"{"NULL":true}"#);
    finish();
}

#[test]
fn array_columns() {
    fits(
        "Array(String)",
        r#"{"L":[{"S":"a"},{"B":"AA=="}]}"#,
        r#"["a","AA=="]"#,
    );
    fits("Array(String)", r#"{"SS":["a","b"]}"#, r#"["a","b"]"#);
    fits("Array(String)", r#"{"BS":["AAEC"]}"#, r#"["AAEC"]"#);
    fits("Array(String)", r#"{"L":[]}"#, "[]");
    misfits("Array(String)", r#"{"L":[{"S":"a"},{"N":"1"}]}"#);
    misfits("Array(String)", r#"{"NS":["1"]}"#);
    misfits("Array(String)", r#"{"S":"a"}"#);
    fits("Array(Int8)", r#"{"NS":["1","-2","1E+2"]}"#, "[1,-2,100]");
    misfits("Array(Int8)", r#"{"NS":["1","300"]}"#);
    misfits("Array(Int8)", r#"{"SS":["1"]}"#);
    fits(
        "Array(Nullable(Int8))",
        r#"{"L":[{"NULL":true},{"N":"1"}]}"#,
        "[null,1]",
    );
    misfits("Array(Int8)", r#"{"L":[{"NULL":true}]}"#);
    fits(
        "Array(Decimal(10, 2))",
        r#"{"NS":["1.50","2"]}"#,
        r#"["1.5","2"]"#,
    );
    fits(
        "Array(Array(UInt8))",
        r#"{"L":[{"L":[{"N":"1"}]},{"NS":["2"]}]}"#,
        "[[1],[2]]",
    );
    fits(
        "Array(Map(String, Bool))",
        r#"{"L":[{"M":{"k":{"BOOL":true}}}]}"#,
        r#"[{"k":true}]"#,
    );
    finish();
}

#[test]
fn map_columns() {
    fits(
        "Map(String, Int64)",
        r#"{"M":{"a":{"N":"1"},"b\n":{"N":"-2"}}}"#,
        r#"{"a":1,"b\n":-2}"#,
    );
    fits(
        "Map(LowCardinality(String), String)",
        r#"{"M":{"a":{"S":"x"}}}"#,
        r#"{"a":"x"}"#,
    );
    fits("Map(String, UInt8)", r#"{"M":{}}"#, "{}");
    misfits("Map(String, Int64)", r#"{"M":{"a":{"S":"1"}}}"#);
    misfits("Map(String, UInt8)", r#"{"M":{"a":{"N":"300"}}}"#);
    misfits("Map(String, String)", r#"{"L":[]}"#);
    finish();
}

#[test]
fn json_columns() {
    for ty in JSON_TYPES {
        let r = one(
            ty,
            r#"{"M":{"i":{"N":"123"},"f":{"N":"1.5"},"big":{"N":"123456789012345678901"},"d":{"N":"12345678901234567.5"},"s":{"S":"x"},"ns":{"NS":["1","2"]},"ss":{"SS":["a"]},"n":{"M":{"b":{"BOOL":true},"z":{"NULL":true},"l":{"L":[{"N":"-7"}]}}}}}"#,
        );
        let v: serde_json::Value = serde_json::from_str(&r).unwrap();
        assert_eq!(v["_extra"], serde_json::json!({}), "{ty}: {r}");
        let d = &v["v"];
        assert_eq!(d["i"], serde_json::json!(123), "{r}");
        assert_eq!(d["f"], serde_json::json!(1.5), "{r}");
        assert_eq!(d["big"], serde_json::json!("123456789012345678901"), "{r}");
        assert_eq!(d["d"], serde_json::json!("12345678901234567.5"), "{r}");
        assert_eq!(d["s"], serde_json::json!("x"), "{r}");
        assert_eq!(d["ns"], serde_json::json!([1, 2]), "{r}");
        assert_eq!(d["ss"], serde_json::json!(["a"]), "{r}");
        assert_eq!(
            d["n"],
            serde_json::json!({"b": true, "z": null, "l": [-7]}),
            "{r}"
        );
    }
    // Int64 and UInt64 integers are numbers, past that they are strings.
    let r = one(
        "JSON",
        r#"{"M":{"a":{"N":"18446744073709551615"},"b":{"N":"-9223372036854775808"},"c":{"N":"18446744073709551616"}}}"#,
    );
    assert!(r.contains(r#""a":18446744073709551615"#), "{r}");
    assert!(r.contains(r#""b":-9223372036854775808"#), "{r}");
    assert!(r.contains(r#""c":"18446744073709551616""#), "{r}");
    misfits("JSON", r#"{"L":[{"M":{}}]}"#);
    misfits("JSON", r#"{"M":{"a.b":{"S":"x"}}}"#);
    misfits("JSON", r#"{"M":{"a":{"L":[{"M":{"x.y":{"N":"1"}}}]}}}"#);
    misfits("JSON", r#"{"M":{"a\u002eb":{"S":"x"}}}"#);
    misfits("JSON", r#"{"S":"{}"}"#);
    finish();
}

#[test]
fn datetime_columns() {
    for (ty, s) in [
        ("DateTime64(3)", "2024-01-02T03:04:05.123Z"),
        ("DateTime64(3)", "2024-01-02T03:04:05.1Z"),
        ("DateTime64(3)", "2024-01-02 03:04:05"),
        ("DateTime64(6, 'UTC')", "2024-01-02T03:04:05.123456+09:00"),
        ("DateTime64(0)", "1960-01-01T00:00:00Z"),
        ("DateTime", "2024-01-02T03:04:05Z"),
        ("DateTime('UTC')", "2024-01-02 03:04:05"),
        ("Nullable(DateTime64(3))", "2024-01-02T03:04:05-05:30"),
    ] {
        let r = one(ty, &format!("{{\"S\":\"{s}\"}}"));
        let v: serde_json::Value = serde_json::from_str(&r).unwrap();
        let ok = v["_extra"] == serde_json::json!({}) && (v["v"].is_string() || v["v"].is_number());
        expect(ok, || format!("{s} in {ty}: {r}"));
    }
    fits("Nullable(DateTime64(3))", r#"{"NULL":true}"#, "null");
    for (ty, s) in [
        ("DateTime64(3)", "2024-01-02T03:04:05.1234Z"),
        ("DateTime64(3)", "2024-13-02T03:04:05Z"),
        ("DateTime64(3)", "2023-02-29T03:04:05Z"),
        ("DateTime64(3)", "yesterday"),
        ("DateTime64(3)", "2350-01-01T00:00:00Z"),
        ("DateTime", "1960-01-01T00:00:00Z"),
        ("DateTime", "2024-01-02T03:04:05.5Z"),
    ] {
        misfits(ty, &format!("{{\"S\":\"{s}\"}}"));
    }
    misfits("DateTime64(3)", r#"{"N":"1704164645"}"#);
    // Arrays: an L of such strings, and an SS ("SS when T takes S").
    for list in [
        r#"{"L":[{"S":"2024-01-02T03:04:05Z"}]}"#,
        r#"{"SS":["2024-01-02T03:04:05Z","2024-01-03 00:00:00.5"]}"#,
    ] {
        let r = one("Array(DateTime64(3, 'UTC'))", list);
        let v: serde_json::Value = serde_json::from_str(&r).unwrap();
        let ok = v["_extra"] == serde_json::json!({}) && v["v"].is_array();
        expect(ok, || format!("{list} in Array(DateTime64(3, 'UTC')): {r}"));
    }
    misfits(
        "Array(DateTime64(3))",
        r#"{"SS":["2024-01-02T03:04:05.1234Z"]}"#,
    );
    finish();
}

// ---------------------------------------------------------------------------
// Names, metadata and `_extra`.

#[test]
fn extra_is_always_present_and_keeps_dynamodb_json() {
    assert_eq!(
        row("id String", r#"{"id":{"S":"a"}}"#).unwrap(),
        r#"{"id":"a","_extra":{},"version":0,"is_deleted":0}"#
    );
    // Unknown attributes, whitespace dropped, escapes and number text kept.
    assert_eq!(
        row(
            "id String, qty UInt8",
            "{ \"id\" : {\"S\":\"a\"}, \"n\\u00e9\": { \"N\" : \"1E+2\" } ,\"qty\":{\"N\":\"300\"},\"s\":{\"S\":\"x\\/y\\u00e9\\\"\"},\"b\":{\"B\":\"a\\/8=\"}}"
        )
        .unwrap(),
        r#"{"id":"a","_extra":{"n\u00e9":{"N":"1E+2"},"qty":{"N":"300"},"s":{"S":"x\/y\u00e9\""},"b":{"B":"a\/8="}},"version":0,"is_deleted":0}"#
    );
    // Every type, nested, kept with its tags.
    let nested = r#"{"M":{"l":{"L":[{"NS":["1","2.50"]},{"SS":["x"]},{"BS":["AA=="]},{"NULL":true},{"BOOL":false}]}}}"#;
    assert_eq!(
        row(
            "id String",
            &format!(r#"{{"id":{{"S":"a"}},"m":{nested}}}"#)
        )
        .unwrap(),
        format!(r#"{{"id":"a","_extra":{{"m":{nested}}},"version":0,"is_deleted":0}}"#)
    );
}

/// The forms written: `_extra`, and an M or L in a String column, are JSON strings
/// holding the text. (As nested JSON the engine would re-serialise what it reads into a
/// String, so 1E+2 would come back as 100 and a 29-digit decimal as a Float64: the engine
/// test `test_maps_in_string_columns_keep_the_number_text` shows what that costs.)
#[test]
fn extra_and_nested_documents_are_strings_of_their_text() {
    let mut out = Vec::new();
    Flattener::new(options("id String, m String"))
        .flatten(
            br#"{"id":{"S":"a"},"m":{"M":{"n":{"N":"1E+2"}}},"x":{"BOOL":true}}"#,
            &mut out,
        )
        .unwrap();
    let row = String::from_utf8(out).unwrap();
    expect(
        row.contains(r#","_extra":"{\"x\":{\"BOOL\":true}}","#),
        || format!("_extra is not a string of its text: {row}"),
    );
    expect(row.contains(r#""m":"{\"n\":1E+2}""#), || {
        format!("the M in a String column is not a string of its JSON text: {row}")
    });
    finish();
}

#[test]
fn attribute_named_extra_always_goes_to_extra() {
    for list in [
        "id String, _extra String",
        "id String",
        "_extra String, id String",
    ] {
        assert_eq!(
            row(list, r#"{"id":{"S":"a"},"_extra":{"S":"x"}}"#).unwrap(),
            r#"{"id":"a","_extra":{"_extra":{"S":"x"}},"version":0,"is_deleted":0}"#,
            "{list}"
        );
    }
    assert_eq!(
        row("id String", r#"{"_e\u0078tra":{"M":{}}}"#).unwrap(),
        r#"{"_extra":{"_e\u0078tra":{"M":{}}},"version":0,"is_deleted":0}"#
    );
}

#[test]
fn metadata_names_are_renamed_for_columns_and_kept_in_extra() {
    let list = "item_version UInt64, item_is_deleted Bool, version UInt64, is_deleted UInt8, _extra String";
    assert_eq!(
        row(list, r#"{"version":{"N":"7"},"is_deleted":{"BOOL":true}}"#).unwrap(),
        r#"{"item_version":7,"item_is_deleted":true,"_extra":{},"version":0,"is_deleted":0}"#
    );
    assert_eq!(
        row(list, r#"{"version":{"S":"seven"},"is_deleted":{"N":"1"}}"#).unwrap(),
        r#"{"_extra":{"version":{"S":"seven"},"is_deleted":{"N":"1"}},"version":0,"is_deleted":0}"#
    );
    // The metadata columns themselves are ignored: no attribute lands in them.
    assert_eq!(
        row(
            "version UInt64, is_deleted UInt8",
            r#"{"version":{"N":"7"}}"#
        )
        .unwrap(),
        r#"{"_extra":{"version":{"N":"7"}},"version":0,"is_deleted":0}"#
    );
}

#[test]
fn custom_metadata_field_names() {
    let opts = Options {
        version_field: "v".into(),
        deleted_field: "gone".into(),
        ..options("item_v Int8, v UInt64, gone UInt8, x String")
    };
    let mut out = Vec::new();
    Flattener::new(opts)
        .flatten(
            br#"{"v":{"N":"1"},"gone":{"N":"2"},"x":{"S":"y"}}"#,
            &mut out,
        )
        .unwrap();
    assert_eq!(
        extra_as_object(&String::from_utf8(out).unwrap()),
        r#"{"item_v":1,"x":"y","_extra":{"gone":{"N":"2"}},"v":0,"gone":0}"#
    );
}

#[test]
fn metadata_collision() {
    // As dynamo_flatten does: an attribute named like the renamed one is an
    // error row, so that nothing is dropped or written twice.
    let doc = r#"{"version":{"N":"1"},"item_version":{"N":"2"}}"#;
    let r = row("item_version UInt64", doc);
    assert!(r.is_err(), "{r:?}");
    // With no column for either, keeping both in _extra loses nothing either.
    match row("x String", doc) {
        Err(_) => {}
        Ok(r) => assert_eq!(
            r,
            r#"{"_extra":{"version":{"N":"1"},"item_version":{"N":"2"}},"version":0,"is_deleted":0}"#
        ),
    }
}

#[test]
fn quoted_column_names() {
    let list = "`a b` Int8, \"c\\\"d\" String, `e\\`f` Bool, `é中` UInt8, `x.y` String";
    assert_eq!(
        row(
            list,
            r#"{"a b":{"N":"1"},"c\"d":{"S":"x"},"e`f":{"BOOL":true},"é中":{"N":"2"},"x.y":{"S":"z"}}"#
        )
        .unwrap(),
        r#"{"a b":1,"c\"d":"x","e`f":true,"é中":2,"x.y":"z","_extra":{},"version":0,"is_deleted":0}"#
    );
    // Names are matched by their decoded text.
    let r = row("ab Int8", r#"{"\u0061b":{"N":"1"}}"#).unwrap();
    let v: serde_json::Value = serde_json::from_str(&r).unwrap();
    assert_eq!(v["ab"], serde_json::json!(1), "{r}");
    assert_eq!(v["_extra"], serde_json::json!({}), "{r}");
}

#[test]
fn item_order_is_kept() {
    assert_eq!(
        row(
            "c Int8, a Int8, b Int8",
            r#"{"b":{"N":"2"},"x":{"S":"-"},"a":{"N":"1"},"c":{"N":"3"}}"#
        )
        .unwrap(),
        r#"{"b":2,"a":1,"c":3,"_extra":{"x":{"S":"-"}},"version":0,"is_deleted":0}"#
    );
}

#[test]
fn every_shape() {
    let list = "id String, qty UInt8, blob String, blobs Array(String)";
    let item = r#"{"id":{"S":"a"},"qty":{"N":"300"},"blob":{"B":"QUFFQw=="},"blobs":{"BS":["QUFFQw=="]},"b2":{"B":"QUFFQw=="}}"#;
    let expected_export = r#"{"id":"a","blob":"QUFFQw==","blobs":["QUFFQw=="],"_extra":{"qty":{"N":"300"},"b2":{"B":"QUFFQw=="}},"version":0,"is_deleted":0}"#;
    assert_eq!(row(list, item).unwrap(), expected_export);
    assert_eq!(
        row(list, &format!(r#"{{"Item":{item}}}"#)).unwrap(),
        expected_export
    );
    // Kinesis: one base64 layer removed, in the columns and in _extra.
    let kinesis = format!(
        r#"{{"eventName":"MODIFY","dynamodb":{{"ApproximateCreationDateTime":1732406501000,"Keys":{{"id":{{"S":"a"}}}},"NewImage":{item}}}}}"#
    );
    assert_eq!(
        row(list, &kinesis).unwrap(),
        r#"{"id":"a","blob":"AAEC","blobs":["AAEC"],"_extra":{"qty":{"N":"300"},"b2":{"B":"AAEC"}},"version":1732406501000000,"is_deleted":0}"#
    );
    let remove = r#"{"eventName":"REMOVE","dynamodb":{"ApproximateCreationDateTime":1732406502345678,"ApproximateCreationDateTimePrecision":"MICROSECOND","Keys":{"id":{"S":"a"}},"OldImage":{"id":{"S":"a"},"qty":{"N":"-5"}}}}"#;
    assert_eq!(
        row(list, remove).unwrap(),
        r#"{"id":"a","_extra":{"qty":{"N":"-5"}},"version":1732406502345678,"is_deleted":1}"#
    );
}

#[test]
fn error_rows_are_unchanged() {
    for bad in [
        r#"{"id":{"Q":"x"}}"#,
        r#"{"Item":{"id":{"S":"tr"#,
        r#"{"n":{"N":"12abc"}}"#,
        "",
        "[]",
    ] {
        let mut plain = Vec::new();
        let e1 = Flattener::new(Options::default())
            .flatten(bad.as_bytes(), &mut plain)
            .expect_err(bad);
        let mut cols = Vec::new();
        let e2 = Flattener::new(options("id String, n Float64"))
            .flatten(bad.as_bytes(), &mut cols)
            .expect_err(bad);
        assert_eq!(e1.to_string(), e2.to_string(), "{bad}");
        assert!(cols.is_empty());
    }
}

// ---------------------------------------------------------------------------
// Column lists.

#[test]
fn column_lists_that_parse() {
    for list in [
        "id String",
        "id String, qty Int64, price Decimal(38, 2), tags Array(String), doc JSON",
        "`id` String,\"qty\" Int64",
        " id  String ,\n qty\tUInt8 ",
        "a Decimal(76, 76), b Decimal(1, 0), c Decimal32(9), d Decimal256(0)",
        "a Int8, b Int16, c Int32, d Int64, e Int128, f Int256",
        "a UInt8, b UInt16, c UInt32, d UInt64, e UInt128, f UInt256",
        "a Float32, b Float64, c Bool, d LowCardinality(String)",
        "a Nullable(Int8), b Array(Nullable(String)), c Map(String, Array(Int8))",
        "a Map(LowCardinality(String), Map(String, Decimal(10,2)))",
        "a JSON(max_dynamic_paths=10), b JSON",
        "a DateTime64(3), b DateTime64(6, 'Asia/Tokyo'), c DateTime, d DateTime('UTC')",
        "id String, _extra String, version UInt64, is_deleted UInt8",
    ] {
        if let Err(e) = ColumnPlan::parse(list) {
            panic!("{list:?}: {e}");
        }
    }
}

#[test]
fn column_lists_that_do_not_parse_name_the_column() {
    for (list, column) in [
        ("id String, qty Int65", "qty"),
        ("id String, qty", "qty"),
        ("id String, price Decimal(77, 2)", "price"),
        ("id String, price Decimal(5, 6)", "price"),
        ("id String, t Tuple(a Int8)", "t"),
        ("id String, u UUID", "u"),
        ("id String, m Map(Int8, String)", "m"),
        ("id String, a Array(String", "a"),
        ("id String, `weird name` Strin", "weird name"),
    ] {
        match ColumnPlan::parse(list) {
            Ok(_) => panic!("{list:?} parsed"),
            Err(e) => assert!(
                e.to_string().contains(column),
                "{list:?}: {e} does not name {column}"
            ),
        }
    }
    for list in ["id String,", ",", "id String id2 String"] {
        assert!(ColumnPlan::parse(list).is_err(), "{list:?} parsed");
    }
}

// ---------------------------------------------------------------------------
// "Always": every mode, plain flattening too.

fn plain_and_columns() -> Vec<(&'static str, Options)> {
    vec![
        ("plain", Options::default()),
        ("columns", options("a String, n Float64, id String")),
    ]
}

fn accepts(opts: &Options, doc: &str) -> Result<String, String> {
    let mut out = Vec::new();
    match Flattener::new(opts.clone()).flatten(doc.as_bytes(), &mut out) {
        Ok(_) => Ok(String::from_utf8_lossy(&out).into_owned()),
        Err(e) => Err(e.to_string()),
    }
}

#[test]
fn lone_surrogates_are_error_rows() {
    for s in [
        r#"\ud800"#,
        r#"\udc00"#,
        r#"x\ud83dy"#,
        r#"\ud83d\u0041"#,
        r#"\ud83d"#,
        r#"\udfff\ud800"#,
    ] {
        for doc in [
            format!(r#"{{"a":{{"S":"{s}"}}}}"#),
            format!(r#"{{"{s}":{{"S":"x"}}}}"#),
            format!(r#"{{"a":{{"M":{{"k":{{"SS":["{s}"]}}}}}}}}"#),
            format!(r#"{{"Item":{{"id":{{"S":"x"}},"a":{{"L":[{{"S":"{s}"}}]}}}}}}"#),
        ] {
            for (mode, opts) in plain_and_columns() {
                if let Ok(row) = accepts(&opts, &doc) {
                    disagree(format!("{mode}: accepted {doc}: {row}"));
                }
            }
        }
    }
    // A pair is fine.
    for (mode, opts) in plain_and_columns() {
        let doc = r#"{"a":{"S":"\ud83d\ude80"}}"#;
        if let Err(e) = accepts(&opts, doc) {
            disagree(format!("{mode}: {doc}: {e}"));
        }
    }
    finish();
}

#[test]
fn numbers_outside_dynamodb_range_are_error_rows() {
    for t in [
        "1E+126",
        "-1E+126",
        "1E-131",
        "-1E-131",
        "123456789012345678901234567890123456789",
        "1.23456789012345678901234567890123456789",
        "1e400",
        "99999999999999999999999999999999999999.9",
    ] {
        assert!(!in_dynamo_range(t), "reference: {t}");
        for doc in [
            format!(r#"{{"n":{{"N":"{t}"}}}}"#),
            format!(r#"{{"a":{{"NS":["1","{t}"]}}}}"#),
            format!(r#"{{"a":{{"M":{{"k":{{"L":[{{"N":"{t}"}}]}}}}}}}}"#),
        ] {
            for (mode, opts) in plain_and_columns() {
                if let Ok(row) = accepts(&opts, &doc) {
                    disagree(format!("{mode}: accepted {doc}: {row}"));
                }
            }
        }
    }
    for t in [
        "9.9999999999999999999999999999999999999E+125",
        "1E-130",
        "-1E-130",
        "0",
        "-0",
        "99999999999999999999999999999999999999",
        "0.00000000000000000000000000000000000001",
    ] {
        assert!(in_dynamo_range(t), "reference: {t}");
        for (mode, opts) in plain_and_columns() {
            let doc = format!(r#"{{"n":{{"N":"{t}"}}}}"#);
            if let Err(e) = accepts(&opts, &doc) {
                disagree(format!("{mode}: {doc}: {e}"));
            }
        }
    }
    finish();
}

#[test]
fn shape_does_not_depend_on_key_order() {
    let pairs = [
        (
            r#"{"id":{"S":"a"},"Records":{"N":"1"}}"#,
            r#"{"Records":{"N":"1"},"id":{"S":"a"}}"#,
        ),
        (
            r#"{"id":{"S":"a"},"Item":{"N":"1"}}"#,
            r#"{"Item":{"N":"1"},"id":{"S":"a"}}"#,
        ),
        (
            r#"{"id":{"S":"a"},"Keys":{"N":"1"},"Metadata":{"S":"m"}}"#,
            r#"{"Metadata":{"S":"m"},"Keys":{"N":"1"},"id":{"S":"a"}}"#,
        ),
        (
            r#"{"dynamodb":{"S":"x"},"eventName":{"S":"y"}}"#,
            r#"{"eventName":{"S":"y"},"dynamodb":{"S":"x"}}"#,
        ),
    ];
    let shape = |opts: &Options, doc: &str| {
        let mut out = Vec::new();
        let r = Flattener::new(opts.clone()).flatten(doc.as_bytes(), &mut out);
        // (Key order is not compared: `_extra`'s text, when it is a string,
        // keeps the item's order.)
        let row = extra_as_object(&String::from_utf8_lossy(&out));
        let v: Option<serde_json::Value> = serde_json::from_str(&row).ok();
        (r.map(|x| x.shape).map_err(|e| e.to_string()), v)
    };
    for (mode, opts) in plain_and_columns() {
        for (a, b) in pairs {
            let (ra, va) = shape(&opts, a);
            let (rb, vb) = shape(&opts, b);
            expect(ra.is_ok() == rb.is_ok() && va == vb, || {
                format!("{mode}: {a} -> {ra:?}\n    but {b} -> {rb:?}")
            });
        }
        // The contract's example: both are bare items.
        for doc in [pairs[0].0, pairs[0].1] {
            let (r, _) = shape(&opts, doc);
            expect(r == Ok(dynamo_flatten::flatten::Shape::Item), || {
                format!("{mode}: {doc} is a bare item, got {r:?}")
            });
        }
    }
    finish();
}
