//! Column types inferred from sample items (typed DynamoDB JSON).
//!
//! The types are chosen for `dynamo_flatten_columns`: a value that does not fit its column is
//! not lost but lands in `_extra`, so the defaults leave room to grow (`Int64` for integers,
//! `Decimal(38, S)` with at least [`MIN_SCALE`] decimals) and `--narrow` gives the narrowest
//! exact type seen.

use serde_json::{Map, Value};

/// The fewest decimals a default `Decimal` column gets: values seen with 2 decimals
/// (prices) often show more later (unit prices, rates); 6 still leaves 32 integer digits
/// in `Decimal(38, 6)`.
pub const MIN_SCALE: u32 = 6;

/// The fewest fraction digits a `DateTime64` column gets (milliseconds).
pub const MIN_DATETIME_PRECISION: u32 = 3;

/// How attributes absent from some items are typed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Missing {
    /// `Nullable(T)` (where ClickHouse allows it): a missing value reads as NULL.
    #[default]
    Nullable,
    /// `T`: a missing value reads as the type's default (0, '', []).
    Default,
}

/// How `M` and `L` attributes are typed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Documents {
    /// `String` holding the JSON text.
    #[default]
    String,
    /// ClickHouse's `JSON` type for `M` (an `L` stays `String`: a JSON column holds objects).
    Json,
}

/// Inference settings.
#[derive(Clone, Copy, Debug, Default)]
pub struct InferOptions {
    pub missing: Missing,
    pub documents: Documents,
    /// Non-integer numbers (and numbers beyond `Decimal(76)`) as `Float64`.
    pub floats: bool,
    /// The narrowest exact type seen (`UInt8`…, `Decimal(38, S)` with S as seen) instead of
    /// the defaults with room to grow.
    pub narrow: bool,
    /// `S` values in ISO 8601 as `DateTime64(p, 'UTC')` instead of `String`.
    pub datetimes: bool,
}

/// What was seen of the numbers of one attribute (values within `Decimal(76)` only).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Numbers {
    /// Smallest and largest integer within Int128 (when `ints`).
    min: i128,
    max: i128,
    /// Some integer was seen.
    ints: bool,
    /// An integer beyond Int128.
    big_int: bool,
    /// Largest count of digits after the point (trailing zeros dropped).
    scale: u32,
    /// Largest count of digits before the point.
    int_digits: u32,
}

impl Numbers {
    fn add(&mut self, n: &Decimal) {
        self.scale = self.scale.max(n.scale);
        self.int_digits = self.int_digits.max(n.int_digits);
        if n.scale == 0 {
            match n.int_value {
                Some(v) if self.ints => {
                    self.min = self.min.min(v);
                    self.max = self.max.max(v);
                }
                Some(v) => {
                    (self.min, self.max) = (v, v);
                    self.ints = true;
                }
                None => self.big_int = true,
            }
        }
    }

    /// The column type for every value seen, and a note when some values will not fit it.
    fn column_type(&self, opts: InferOptions) -> (String, Option<String>) {
        if self.scale > 0 {
            if opts.floats {
                return ("Float64".into(), None);
            }
            let s = if opts.narrow {
                self.scale
            } else {
                self.scale.max(MIN_SCALE)
            };
            return if self.int_digits + s <= 38 {
                (format!("Decimal(38, {s})"), None)
            } else if self.int_digits + s <= 76 {
                (format!("Decimal(76, {s})"), None)
            } else {
                // Each value fits Decimal(76) alone, but not all in one scale.
                let s = 76 - self.int_digits.min(76);
                (
                    format!("Decimal(76, {s})"),
                    Some(format!(
                        "numbers with more than {s} decimals do not fit and land in _extra"
                    )),
                )
            };
        }
        let (lo, hi) = (self.min, self.max);
        let fits = |min: i128, max: i128| !self.big_int && lo >= min && hi <= max;
        let t = if !opts.narrow {
            if fits(i64::MIN.into(), i64::MAX.into()) {
                "Int64"
            } else if fits(0, u64::MAX.into()) {
                "UInt64"
            } else if fits(i128::MIN, i128::MAX) {
                "Int128"
            } else {
                "Int256"
            }
        } else if fits(0, u8::MAX.into()) {
            "UInt8"
        } else if fits(0, u16::MAX.into()) {
            "UInt16"
        } else if fits(0, u32::MAX.into()) {
            "UInt32"
        } else if fits(0, u64::MAX.into()) {
            "UInt64"
        } else if fits(i8::MIN.into(), i8::MAX.into()) {
            "Int8"
        } else if fits(i16::MIN.into(), i16::MAX.into()) {
            "Int16"
        } else if fits(i32::MIN.into(), i32::MAX.into()) {
            "Int32"
        } else if fits(i64::MIN.into(), i64::MAX.into()) {
            "Int64"
        } else if self.int_digits <= 38 {
            "Decimal(38, 0)"
        } else {
            "Decimal(76, 0)"
        };
        (t.into(), None)
    }
}

#[derive(Debug)]
struct Decimal {
    int_digits: u32,
    scale: u32,
    /// The value, for an integer within Int128.
    int_value: Option<i128>,
}

impl Decimal {
    /// Beyond any `Decimal(76, S)`: no ClickHouse column holds it exactly.
    fn wide(&self) -> bool {
        u64::from(self.int_digits) + u64::from(self.scale) > 76
    }
}

/// Reads a DynamoDB number (`-12.50`, `1E+2`) into its digit counts.
fn parse_decimal(text: &str) -> Option<Decimal> {
    let (neg, rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text),
    };
    let (mantissa, exp) = match rest.find(['e', 'E']) {
        Some(p) => (&rest[..p], rest[p + 1..].parse::<i32>().ok()?),
        None => (rest, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() || !int.bytes().chain(frac.bytes()).all(|c| c.is_ascii_digit()) {
        return None;
    }
    // All digits, and where the point falls among them.
    let digits: String = int.chars().chain(frac.chars()).collect();
    let point = int.len() as i64 + i64::from(exp);
    let digits = digits.trim_start_matches('0');
    let lead_zeros = (int.len() + frac.len() - digits.len()) as i64;
    let point = point - lead_zeros;
    let digits = digits.trim_end_matches('0');
    if digits.is_empty() {
        return Some(Decimal {
            int_digits: 1,
            scale: 0,
            int_value: Some(0),
        });
    }
    let len = digits.len() as i64;
    let int_digits = point.clamp(0, i64::from(u32::MAX)) as u32;
    let scale = (len - point).clamp(0, i64::from(u32::MAX)) as u32;
    let int_value = if scale == 0 && int_digits <= 39 {
        digits.parse::<i128>().ok().and_then(|mut v| {
            for _ in 0..(point - len) {
                v = v.checked_mul(10)?;
            }
            Some(if neg { -v } else { v })
        })
    } else {
        None
    };
    Some(Decimal {
        int_digits,
        scale,
        int_value,
    })
}

/// The fraction digits (trailing zeros dropped) of an ISO 8601 date and time as
/// `dynamo_flatten_columns` reads it into `DateTime64` (`2024-01-02T03:04:05.123Z`,
/// `…+09:00`, `+0900`, `+09`, a space instead of `T`, no offset, a date alone), with a real
/// calendar date in DateTime64's years (1900-2299); None otherwise.
fn iso_datetime(s: &str) -> Option<u32> {
    let b = s.as_bytes();
    let digits = |at: usize, n: usize| -> Option<u32> {
        b.get(at..at + n)?.iter().try_fold(0u32, |v, &c| {
            c.is_ascii_digit().then(|| v * 10 + u32::from(c - b'0'))
        })
    };
    let (year, month, day) = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if !(1900..=2299).contains(&year) || day == 0 || day > month_days {
        return None;
    }
    if b.len() == 10 {
        return Some(0);
    }
    if !matches!(b[10], b'T' | b' ') || b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
        return None;
    }
    let (hour, minute, second) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut i = 19;
    let mut frac = 0u32;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
        let significant = b[start..i]
            .iter()
            .rposition(|&c| c != b'0')
            .map_or(0, |p| p + 1);
        frac = u32::try_from(significant).ok()?;
        if frac > 9 {
            return None;
        }
    }
    let offset_ok = match &b[i..] {
        [] | [b'Z'] => true,
        [b'+' | b'-', rest @ ..] => {
            let (h, m) = match rest {
                [_, _] => (digits(i + 1, 2), Some(0)),
                [_, _, _, _] => (digits(i + 1, 2), digits(i + 3, 2)),
                [_, _, b':', _, _] => (digits(i + 1, 2), digits(i + 4, 2)),
                _ => (None, None),
            };
            h.is_some_and(|h| h <= 23) && m.is_some_and(|m| m <= 59)
        }
        _ => false,
    };
    offset_ok.then_some(frac)
}

/// What one attribute value is, for choosing its column type. Each kind has one column type
/// (for given options); values of a kind whose type is not chosen land in `_extra`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Str,
    DateTime,
    Num,
    WideNum,
    Bool,
    Map,
    DottedMap,
    List,
    StrSet,
    NumSet,
    WideNumSet,
    /// Not a DynamoDB value (unknown tag, malformed): the function rejects the row.
    Other,
}

const KINDS: [Kind; 12] = [
    Kind::Str,
    Kind::DateTime,
    Kind::Num,
    Kind::WideNum,
    Kind::Bool,
    Kind::Map,
    Kind::DottedMap,
    Kind::List,
    Kind::StrSet,
    Kind::NumSet,
    Kind::WideNumSet,
    Kind::Other,
];

impl Kind {
    fn describe(self) -> &'static str {
        match self {
            Kind::Str => "S/B",
            Kind::DateTime => "S in ISO 8601",
            Kind::Num => "N",
            Kind::WideNum => "N beyond Decimal(76)",
            Kind::Bool => "BOOL",
            Kind::Map => "M",
            Kind::DottedMap => "M with '.' in a key",
            Kind::List => "L",
            Kind::StrSet => "SS/BS",
            Kind::NumSet => "NS",
            Kind::WideNumSet => "NS beyond Decimal(76)",
            Kind::Other => "unreadable",
        }
    }
}

/// One attribute: its name and what was seen of it.
#[derive(Clone, Debug)]
struct Column {
    name: String,
    /// Items that had it.
    present: u64,
    nulls: u64,
    /// Values of each kind (indexed like KINDS), and the kinds in the order first seen.
    counts: [u64; KINDS.len()],
    order: Vec<Kind>,
    nums: Numbers,
    set_nums: Numbers,
    /// Most fraction digits of a DateTime value.
    frac: u32,
}

impl Column {
    fn count(&self, k: Kind) -> u64 {
        self.counts[k as usize]
    }

    fn add(&mut self, k: Kind) {
        if self.count(k) == 0 {
            self.order.push(k);
        }
        self.counts[k as usize] += 1;
    }
}

/// Collects attribute types over sample items.
#[derive(Debug, Default)]
pub struct Inferrer {
    columns: Vec<Column>,
    items: u64,
}

/// The inferred type of one column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnType {
    pub name: String,
    /// None: no ClickHouse type holds the values exactly; the attribute stays in `_extra`.
    pub ty: Option<String>,
    pub note: Option<String>,
}

impl Inferrer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn items(&self) -> u64 {
        self.items
    }

    /// Adds one item: its attribute map in DynamoDB JSON.
    pub fn add_item(&mut self, item: &Map<String, Value>) {
        self.items += 1;
        for (name, value) in item {
            let idx = match self.columns.iter().position(|c| &c.name == name) {
                Some(i) => i,
                None => {
                    self.columns.push(Column {
                        name: name.clone(),
                        present: 0,
                        nulls: 0,
                        counts: [0; KINDS.len()],
                        order: Vec::new(),
                        nums: Numbers::default(),
                        set_nums: Numbers::default(),
                        frac: 0,
                    });
                    self.columns.len() - 1
                }
            };
            let col = &mut self.columns[idx];
            col.present += 1;
            match classify(value, col) {
                None => col.nulls += 1,
                Some(k) => col.add(k),
            }
        }
    }

    /// Attribute names, in the order first seen (within an item, by name).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().map(|c| c.name.as_str())
    }

    /// How many items had the attribute.
    pub fn present(&self, name: &str) -> u64 {
        self.columns
            .iter()
            .find(|c| c.name == name)
            .map_or(0, |c| c.present)
    }

    /// True if every item had the attribute, never NULL.
    pub fn always_present(&self, name: &str) -> bool {
        self.columns
            .iter()
            .any(|c| c.name == name && c.present == self.items && c.nulls == 0)
    }

    /// The column types, in the order first seen (within an item, by name).
    pub fn column_types(&self, opts: InferOptions) -> Vec<ColumnType> {
        self.columns
            .iter()
            .map(|c| self.type_of(c, opts, false))
            .collect()
    }

    /// The type of a column added to a table that already has rows (they read it as
    /// missing), from the values of attribute `name`; None when it was not seen.
    pub fn new_column_type(&self, name: &str, opts: InferOptions) -> Option<ColumnType> {
        self.columns
            .iter()
            .find(|c| c.name == name)
            .map(|c| self.type_of(c, opts, true))
    }

    fn type_of(&self, c: &Column, opts: InferOptions, assume_missing: bool) -> ColumnType {
        let floats_take_wide = opts.floats;
        let kind_type = |k: Kind| -> Option<(String, Option<String>)> {
            Some(match k {
                Kind::Str | Kind::List | Kind::DottedMap => ("String".into(), None),
                Kind::DateTime if opts.datetimes => (
                    format!("DateTime64({}, 'UTC')", c.frac.max(MIN_DATETIME_PRECISION)),
                    None,
                ),
                Kind::DateTime => ("String".into(), None),
                Kind::Bool => ("Bool".into(), None),
                Kind::Map => match opts.documents {
                    Documents::String => ("String".into(), None),
                    Documents::Json => ("JSON".into(), None),
                },
                Kind::Num if floats_take_wide && c.count(Kind::WideNum) > 0 => {
                    ("Float64".into(), None)
                }
                Kind::Num => c.nums.column_type(opts),
                Kind::WideNum if floats_take_wide => ("Float64".into(), None),
                Kind::NumSet if floats_take_wide && c.count(Kind::WideNumSet) > 0 => {
                    ("Array(Float64)".into(), None)
                }
                Kind::NumSet => {
                    let (t, note) = c.set_nums.column_type(opts);
                    (format!("Array({t})"), note)
                }
                Kind::WideNumSet if floats_take_wide => ("Array(Float64)".into(), None),
                Kind::StrSet => ("Array(String)".into(), None),
                Kind::WideNum | Kind::WideNumSet | Kind::Other => return None,
            })
        };

        // Group the kinds seen by their column type; the group with the most values wins
        // (ties: the one seen first).
        let seen: Vec<Kind> = c
            .order
            .iter()
            .copied()
            .filter(|k| *k != Kind::Other)
            .collect();
        let mut groups: Vec<(Option<String>, u64, Option<String>)> = Vec::new();
        for k in &seen {
            let (ty, note) = match kind_type(*k) {
                Some((t, n)) => (Some(t), n),
                None => (None, None),
            };
            match groups.iter_mut().find(|g| g.0 == ty) {
                Some(g) => {
                    g.1 += c.count(*k);
                    g.2 = g.2.take().or(note);
                }
                None => groups.push((ty, c.count(*k), note)),
            }
        }
        let best = groups
            .iter()
            .enumerate()
            .max_by_key(|(i, g)| (g.1, std::cmp::Reverse(*i)))
            .map(|(_, g)| g.clone());
        let (base, mut notes) = match best {
            None if c.count(Kind::Other) > 0 => (
                Some("String".to_string()),
                vec!["no readable value seen".to_string()],
            ),
            None => (
                Some("String".to_string()),
                vec!["only NULL seen".to_string()],
            ),
            Some((ty, _, note)) => (ty, note.into_iter().collect()),
        };
        let Some(base) = base else {
            return ColumnType {
                name: c.name.clone(),
                ty: None,
                note: Some(
                    "numbers beyond Decimal(76, S): no column type holds them exactly; \
                     the attribute stays in _extra"
                        .into(),
                ),
            };
        };
        let total: u64 = seen.iter().map(|k| c.count(*k)).sum();
        // In a fixed order, whatever the order of the sample.
        let mut in_order = seen.clone();
        in_order.sort_by_key(|k| *k as usize);
        let misfits: Vec<Kind> = in_order
            .into_iter()
            .filter(|k| {
                // String takes S, B, M and L as text.
                let as_text = base == "String"
                    && matches!(
                        k,
                        Kind::Str | Kind::DateTime | Kind::Map | Kind::DottedMap | Kind::List
                    );
                !as_text && kind_type(*k).map(|t| t.0).as_deref() != Some(base.as_str())
            })
            .collect();
        if !misfits.is_empty() {
            let n: u64 = misfits.iter().map(|k| c.count(*k)).sum();
            let kinds: Vec<&str> = misfits.iter().map(|k| k.describe()).collect();
            notes.insert(
                0,
                format!(
                    "mixed types: {n} of {total} values ({}) land in _extra",
                    kinds.join(", ")
                ),
            );
        }
        let nullable_ok = !(base.starts_with("Array(") || base == "JSON");
        let sometimes_missing = assume_missing || c.present < self.items || c.nulls > 0;
        let ty = if sometimes_missing && nullable_ok && opts.missing == Missing::Nullable {
            format!("Nullable({base})")
        } else {
            if c.nulls > 0 {
                notes.push("NULL values land in _extra".into());
            }
            base
        };
        ColumnType {
            name: c.name.clone(),
            ty: Some(ty),
            note: (!notes.is_empty()).then(|| notes.join("; ")),
        }
    }
}

/// The kind of one attribute value, its numbers and fraction digits recorded in `col`;
/// `None` for NULL.
fn classify(v: &Value, col: &mut Column) -> Option<Kind> {
    let Some((tag, inner)) = v
        .as_object()
        .filter(|o| o.len() == 1)
        .and_then(|o| o.iter().next())
    else {
        return Some(Kind::Other);
    };
    Some(match tag.as_str() {
        "S" => match inner.as_str().and_then(iso_datetime) {
            Some(frac) => {
                col.frac = col.frac.max(frac);
                Kind::DateTime
            }
            None => Kind::Str,
        },
        "B" => Kind::Str,
        "BS" | "SS" => Kind::StrSet,
        "BOOL" => Kind::Bool,
        "NULL" => return None,
        "M" if has_dotted_key(v) => Kind::DottedMap,
        "M" => Kind::Map,
        "L" => Kind::List,
        "N" => match inner.as_str().and_then(parse_decimal) {
            Some(d) if d.wide() => Kind::WideNum,
            Some(d) => {
                col.nums.add(&d);
                Kind::Num
            }
            None => Kind::Other,
        },
        "NS" => {
            let Some(nums) = inner.as_array().and_then(|a| {
                a.iter()
                    .map(|e| e.as_str().and_then(parse_decimal))
                    .collect::<Option<Vec<Decimal>>>()
            }) else {
                return Some(Kind::Other);
            };
            if nums.iter().any(Decimal::wide) {
                Kind::WideNumSet
            } else {
                nums.iter().for_each(|d| col.set_nums.add(d));
                Kind::NumSet
            }
        }
        _ => Kind::Other,
    })
}

/// True if a map nested anywhere in the DynamoDB JSON value `v` has a key with a `.`.
fn has_dotted_key(v: &Value) -> bool {
    match v {
        Value::Object(o) => o.iter().any(|(k, inner)| match k.as_str() {
            "M" => inner.as_object().is_some_and(|m| {
                m.iter()
                    .any(|(name, val)| name.contains('.') || has_dotted_key(val))
            }),
            "L" => inner
                .as_array()
                .is_some_and(|a| a.iter().any(has_dotted_key)),
            _ => false,
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inferrer(items: &[&str]) -> Inferrer {
        let mut inf = Inferrer::new();
        for i in items {
            let m: Map<String, Value> = serde_json::from_str(i).unwrap();
            inf.add_item(&m);
        }
        inf
    }

    fn types(items: &[&str], opts: InferOptions) -> Vec<(String, String)> {
        inferrer(items)
            .column_types(opts)
            .into_iter()
            .map(|c| (c.name, c.ty.unwrap_or_else(|| "-".into())))
            .collect()
    }

    fn number_type(nums: &[&str], opts: InferOptions) -> String {
        let items: Vec<String> = nums
            .iter()
            .map(|n| format!(r#"{{"n":{{"N":"{n}"}}}}"#))
            .collect();
        let refs: Vec<&str> = items.iter().map(String::as_str).collect();
        types(&refs, opts).remove(0).1
    }

    const NARROW: InferOptions = InferOptions {
        missing: Missing::Nullable,
        documents: Documents::String,
        floats: false,
        narrow: true,
        datetimes: false,
    };

    #[test]
    fn default_number_types_leave_room() {
        let cases = [
            (vec!["26", "0", "255"], "Int64"),
            (vec!["-1", "127"], "Int64"),
            (vec!["9223372036854775807"], "Int64"),
            (vec!["9223372036854775808"], "UInt64"),
            (vec!["18446744073709551615"], "UInt64"),
            (vec!["-1", "9223372036854775808"], "Int128"),
            (vec!["18446744073709551616"], "Int128"),
            (vec!["-9223372036854775809"], "Int128"),
            (vec!["1.2E+38"], "Int128"),
            (vec!["1E+39"], "Int256"),
            (vec!["1E+75"], "Int256"),
            (vec!["1E+76"], "-"),
            (vec!["1.5", "-7"], "Decimal(38, 6)"),
            (vec!["1.50"], "Decimal(38, 6)"),
            (vec!["-0.000001"], "Decimal(38, 6)"),
            (vec!["0.1234567"], "Decimal(38, 7)"),
            (
                vec!["12345678901234567890123456789.123456789"],
                "Decimal(38, 9)",
            ),
            (
                vec!["123456789012345678901234567890123.5"],
                "Decimal(76, 6)",
            ),
            (vec!["1E-70"], "Decimal(76, 70)"),
            (vec!["1E-100"], "-"),
            (vec!["1e100"], "-"),
            (vec!["1E+2"], "Int64"),
        ];
        for (nums, want) in cases {
            assert_eq!(
                number_type(&nums, InferOptions::default()),
                want,
                "{nums:?}"
            );
        }
    }

    #[test]
    fn narrow_number_types() {
        let cases = [
            (vec!["26", "0", "255"], "UInt8"),
            (vec!["256"], "UInt16"),
            (vec!["-1", "127"], "Int8"),
            (vec!["-129"], "Int16"),
            (vec!["4294967296"], "UInt64"),
            (vec!["-9223372036854775809"], "Decimal(38, 0)"),
            (vec!["18446744073709551616"], "Decimal(38, 0)"),
            (vec!["1E+40"], "Decimal(76, 0)"),
            (vec!["1.5", "-7"], "Decimal(38, 1)"),
            (vec!["1E+2"], "UInt8"),
            (vec!["1.50"], "Decimal(38, 1)"),
            (vec!["-0.000001"], "Decimal(38, 6)"),
            (vec!["1e100"], "-"),
        ];
        for (nums, want) in cases {
            assert_eq!(number_type(&nums, NARROW), want, "{nums:?}");
        }
    }

    #[test]
    fn floats() {
        let floats = InferOptions {
            floats: true,
            ..InferOptions::default()
        };
        assert_eq!(number_type(&["1.5"], floats), "Float64");
        assert_eq!(number_type(&["1", "1e100"], floats), "Float64");
        assert_eq!(number_type(&["7"], floats), "Int64");
    }

    #[test]
    fn wide_numbers_have_no_column() {
        let inf = inferrer(&[r#"{"n":{"N":"1e100"}}"#]);
        let c = &inf.column_types(InferOptions::default())[0];
        assert_eq!(c.ty, None);
        assert!(c.note.as_deref().unwrap().contains("stays in _extra"));
        // A minority of wide values: typed over the others, the rest to _extra.
        let inf = inferrer(&[
            r#"{"n":{"N":"1"}}"#,
            r#"{"n":{"N":"2"}}"#,
            r#"{"n":{"N":"1e100"}}"#,
        ]);
        let c = &inf.column_types(InferOptions::default())[0];
        assert_eq!(c.ty.as_deref(), Some("Int64"));
        assert_eq!(
            c.note.as_deref(),
            Some("mixed types: 1 of 3 values (N beyond Decimal(76)) land in _extra")
        );
    }

    #[test]
    fn mixed_types_take_the_majority() {
        let inf = inferrer(&[
            r#"{"x":{"N":"1"}}"#,
            r#"{"x":{"N":"2"}}"#,
            r#"{"x":{"S":"three"}}"#,
        ]);
        let c = &inf.column_types(InferOptions::default())[0];
        assert_eq!(c.ty.as_deref(), Some("Int64"));
        assert_eq!(
            c.note.as_deref(),
            Some("mixed types: 1 of 3 values (S/B) land in _extra")
        );
        // A tie: the kind seen first. S, B, M and L all fit String.
        let inf = inferrer(&[
            r#"{"x":{"S":"a"}}"#,
            r#"{"x":{"N":"2"}}"#,
            r#"{"x":{"B":"AA=="}}"#,
            r#"{"x":{"M":{}}}"#,
            r#"{"x":{"BOOL":true}}"#,
        ]);
        let c = &inf.column_types(InferOptions::default())[0];
        assert_eq!(c.ty.as_deref(), Some("String"));
        assert_eq!(
            c.note.as_deref(),
            Some("mixed types: 2 of 5 values (N, BOOL) land in _extra")
        );
        let inf = inferrer(&[r#"{"x":{"N":"1"}}"#, r#"{"x":{"BOOL":true}}"#]);
        assert_eq!(
            inf.column_types(InferOptions::default())[0].ty.as_deref(),
            Some("Int64")
        );
    }

    #[test]
    fn datetimes_only_when_asked() {
        let items = [
            r#"{"at":{"S":"2024-01-02T03:04:05Z"},"t2":{"S":"2024-01-02 03:04:05.123456+09:00"}}"#,
            r#"{"at":{"S":"2024-01-02T03:04:05.1Z"},"t2":{"S":"not a time"}}"#,
            r#"{"at":{"S":"2024-01-02T03:04:05"},"t2":{"S":"2024-13-02T03:04:05"}}"#,
        ];
        let t = types(&items, InferOptions::default());
        assert_eq!(t[0].1, "String");
        let dt = InferOptions {
            datetimes: true,
            ..InferOptions::default()
        };
        let cols = inferrer(&items).column_types(dt);
        assert_eq!(cols[0].ty.as_deref(), Some("DateTime64(3, 'UTC')"));
        assert_eq!(cols[0].note, None);
        // 1 datetime (6 fraction digits) against 2 other strings: String, which takes both.
        assert_eq!(cols[1].ty.as_deref(), Some("String"));
        assert_eq!(cols[1].note, None);
        let cols = inferrer(&[
            r#"{"t":{"S":"2024-01-02T03:04:05.123456789Z"}}"#,
            r#"{"t":{"S":"2024-01-02T03:04:05.5-05:00"}}"#,
            r#"{"t":{"S":"soon"}}"#,
        ])
        .column_types(dt);
        assert_eq!(cols[0].ty.as_deref(), Some("DateTime64(9, 'UTC')"));
        assert_eq!(
            cols[0].note.as_deref(),
            Some("mixed types: 1 of 3 values (S/B) land in _extra")
        );
        for bad in [
            "2024-01-0",
            "2024-01-02T03:04",
            "2024-01-02T03:04:05.",
            "2024-01-02T03:04:05.1234567891Z",
            "1899-01-02T03:04:05Z",
            "2023-02-29",
            "2024-01-02T03:04:05+090",
            "2024-01-02T03:04:05Z ",
            "2024-01-02t03:04:05",
        ] {
            assert_eq!(iso_datetime(bad), None, "{bad}");
        }
        for (good, frac) in [
            ("2024-01-02 03:04:05.12", 2),
            ("2024-01-02T03:04:05.1200000000Z", 2),
            ("2024-02-29", 0),
            ("2024-01-02T03:04:05+0900", 0),
            ("2024-01-02T03:04:05-09", 0),
        ] {
            assert_eq!(iso_datetime(good), Some(frac), "{good}");
        }
    }

    #[test]
    fn types_sets_documents_and_missing() {
        let items = [
            r#"{"id":{"S":"a"},"ok":{"BOOL":true},"tags":{"SS":["x"]},"ns":{"NS":["1","2.5"]},"m":{"M":{}},"b":{"B":"AA=="}}"#,
            r#"{"id":{"S":"b"},"x":{"N":"1"},"m":{"L":[]},"nul":{"NULL":true}}"#,
            r#"{"id":{"S":"c"},"x":{"S":"one"},"m":{"M":{"a.b":{"N":"1"}}}}"#,
        ];
        let t = types(&items, InferOptions::default());
        let want = [
            ("b", "Nullable(String)"),
            ("id", "String"),
            ("m", "String"),
            ("ns", "Array(Decimal(38, 6))"),
            ("ok", "Nullable(Bool)"),
            ("tags", "Array(String)"),
            ("nul", "Nullable(String)"),
            ("x", "Nullable(Int64)"),
        ];
        let got: Vec<(&str, &str)> = t.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        assert_eq!(got, want);
        let json_default = InferOptions {
            missing: Missing::Default,
            documents: Documents::Json,
            ..InferOptions::default()
        };
        let cols = inferrer(&items).column_types(json_default);
        assert_eq!(cols[4].ty.as_deref(), Some("Bool"));
        // M (JSON) 1, L and an M with a dotted key (String) 2: String wins, and takes M too.
        assert_eq!(cols[2].ty.as_deref(), Some("String"));
        assert_eq!(cols[2].note, None);
        let cols = inferrer(&[r#"{"m":{"M":{"a":{"L":[{"M":{"b":{"S":"x"}}}]}}}}"#])
            .column_types(json_default);
        assert_eq!(cols[0].ty.as_deref(), Some("JSON"));
        let cols = inferrer(&[r#"{"m":{"M":{"a":{"L":[{"M":{"b.c":{"S":"x"}}}]}}}}"#])
            .column_types(json_default);
        assert_eq!(cols[0].ty.as_deref(), Some("String"));
        // Not Nullable: a NULL does not fit and lands in _extra.
        let cols = inferrer(&[r#"{"s":{"SS":["a"]}}"#, r#"{"s":{"NULL":true}}"#])
            .column_types(InferOptions::default());
        assert_eq!(cols[0].ty.as_deref(), Some("Array(String)"));
        assert_eq!(cols[0].note.as_deref(), Some("NULL values land in _extra"));
    }

    #[test]
    fn new_columns_are_missing_in_existing_rows() {
        let inf = inferrer(&[r#"{"qty":{"N":"3"}}"#, r#"{"qty":{"N":"300"}}"#]);
        assert_eq!(
            inf.new_column_type("qty", InferOptions::default())
                .and_then(|c| c.ty),
            Some("Nullable(Int64)".into())
        );
        assert_eq!(inf.new_column_type("other", InferOptions::default()), None);
        let opts = InferOptions {
            missing: Missing::Default,
            ..NARROW
        };
        assert_eq!(
            inf.new_column_type("qty", opts).and_then(|c| c.ty),
            Some("UInt16".into())
        );
    }
}
