//! Column types inferred from sample items (typed DynamoDB JSON).

use serde_json::{Map, Value};

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
    /// ClickHouse's `JSON` type.
    Json,
}

/// Inference settings.
#[derive(Clone, Copy, Debug, Default)]
pub struct InferOptions {
    pub missing: Missing,
    pub documents: Documents,
    /// Non-integer numbers as `Float64` instead of `Decimal(38, S)`.
    pub floats: bool,
}

/// What was seen of the numbers of one attribute.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Numbers {
    min: i128,
    max: i128,
    /// Largest count of digits after the point (trailing zeros dropped).
    scale: u32,
    /// Largest count of digits before the point.
    int_digits: u32,
    /// A value beyond 38 significant digits in Decimal(38, S) terms.
    too_wide: bool,
    seen: bool,
}

impl Numbers {
    fn add(&mut self, text: &str) -> bool {
        let Some(n) = parse_decimal(text) else {
            return false;
        };
        self.scale = self.scale.max(n.scale);
        self.int_digits = self.int_digits.max(n.int_digits);
        self.too_wide |= n.int_digits + n.scale > 38;
        if n.scale == 0 {
            if let Some(v) = n.int_value {
                if self.seen {
                    self.min = self.min.min(v);
                    self.max = self.max.max(v);
                } else {
                    (self.min, self.max) = (v, v);
                }
            } else {
                self.too_wide = true;
            }
        }
        self.seen = true;
        true
    }

    fn merge(&mut self, o: Numbers) {
        if !o.seen {
            return;
        }
        if self.seen {
            self.min = self.min.min(o.min);
            self.max = self.max.max(o.max);
        } else {
            (self.min, self.max) = (o.min, o.max);
        }
        self.scale = self.scale.max(o.scale);
        self.int_digits = self.int_digits.max(o.int_digits);
        self.too_wide |= o.too_wide;
        self.seen = true;
    }

    /// The narrowest exact ClickHouse type for every value seen.
    fn column_type(&self, floats: bool) -> String {
        if self.scale > 0 {
            if floats {
                return "Float64".into();
            }
            if self.too_wide || self.int_digits + self.scale > 38 {
                return "String".into();
            }
            return format!("Decimal(38, {})", self.scale);
        }
        if self.too_wide {
            return if floats { "Float64" } else { "String" }.into();
        }
        let (lo, hi) = (self.min, self.max);
        let fits = |min: i128, max: i128| lo >= min && hi <= max;
        let t = if lo >= 0 {
            if fits(0, u8::MAX.into()) {
                "UInt8"
            } else if fits(0, u16::MAX.into()) {
                "UInt16"
            } else if fits(0, u32::MAX.into()) {
                "UInt32"
            } else if fits(0, u64::MAX.into()) {
                "UInt64"
            } else {
                "Decimal(38, 0)"
            }
        } else if fits(i8::MIN.into(), i8::MAX.into()) {
            "Int8"
        } else if fits(i16::MIN.into(), i16::MAX.into()) {
            "Int16"
        } else if fits(i32::MIN.into(), i32::MAX.into()) {
            "Int32"
        } else if fits(i64::MIN.into(), i64::MAX.into()) {
            "Int64"
        } else {
            "Decimal(38, 0)"
        };
        t.into()
    }
}

struct Decimal {
    int_digits: u32,
    scale: u32,
    int_value: Option<i128>,
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
    let int_value = if scale == 0 && int_digits <= 38 {
        let mut v: i128 = digits.parse().ok()?;
        for _ in 0..(point - len) {
            v = v.checked_mul(10)?;
        }
        Some(if neg { -v } else { v })
    } else {
        None
    };
    Some(Decimal {
        int_digits,
        scale,
        int_value,
    })
}

/// The kinds of value one attribute has shown.
#[derive(Clone, Debug, Default, PartialEq)]
enum Kind {
    /// Only NULL so far.
    #[default]
    Unknown,
    Str,
    Bool,
    Num(Numbers),
    Document,
    StrSet,
    NumSet(Numbers),
    /// Values of different types: kept as text.
    Mixed,
}

/// One attribute: its name and what was seen of it.
#[derive(Clone, Debug)]
pub struct Column {
    pub name: String,
    kind: Kind,
    /// Items that had it.
    present: u64,
    nulls: u64,
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
    pub ty: String,
    /// Numbers are read from text (`dynamo_flatten_exact`) for this column.
    pub exact_numbers: bool,
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
            let kind = kind_of(value);
            let idx = match self.columns.iter().position(|c| &c.name == name) {
                Some(i) => i,
                None => {
                    self.columns.push(Column {
                        name: name.clone(),
                        kind: Kind::Unknown,
                        present: 0,
                        nulls: 0,
                    });
                    self.columns.len() - 1
                }
            };
            let col = &mut self.columns[idx];
            col.present += 1;
            match kind {
                None => col.nulls += 1,
                Some(k) => col.kind = merge(std::mem::take(&mut col.kind), k),
            }
        }
    }

    /// Attribute names, in the order first seen (within an item, by name).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().map(|c| c.name.as_str())
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
            .map(|c| {
                let mut note = None;
                let (base, exact, nullable_ok) = match &c.kind {
                    Kind::Unknown => {
                        note = Some("only NULL seen".to_string());
                        ("String".to_string(), false, true)
                    }
                    Kind::Str => ("String".into(), false, true),
                    Kind::Bool => ("Bool".into(), false, true),
                    Kind::Num(n) => {
                        let t = n.column_type(opts.floats);
                        if t == "String" {
                            note = Some("numbers beyond Decimal(38, S): kept as text".into());
                        }
                        let exact = t.starts_with("Decimal") || t == "String";
                        (t, exact, true)
                    }
                    Kind::Document => match opts.documents {
                        Documents::String => ("String".into(), false, true),
                        Documents::Json => ("JSON".into(), false, false),
                    },
                    Kind::StrSet => ("Array(String)".into(), false, false),
                    Kind::NumSet(n) => {
                        let t = n.column_type(opts.floats);
                        let exact = t.starts_with("Decimal") || t == "String";
                        (format!("Array({t})"), exact, false)
                    }
                    Kind::Mixed => {
                        note = Some("values of different types: kept as text".into());
                        ("String".into(), true, true)
                    }
                };
                let sometimes_missing = c.present < self.items || c.nulls > 0;
                let ty = if sometimes_missing && nullable_ok && opts.missing == Missing::Nullable {
                    format!("Nullable({base})")
                } else {
                    base
                };
                ColumnType {
                    name: c.name.clone(),
                    ty,
                    exact_numbers: exact,
                    note,
                }
            })
            .collect()
    }
}

/// The kind of one attribute value; `None` for NULL.
fn kind_of(v: &Value) -> Option<Kind> {
    let Some((tag, inner)) = v.as_object().and_then(|o| o.iter().next()) else {
        return Some(Kind::Mixed);
    };
    Some(match tag.as_str() {
        "S" | "B" => Kind::Str,
        "BS" | "SS" => Kind::StrSet,
        "BOOL" => Kind::Bool,
        "NULL" => return None,
        "M" | "L" => Kind::Document,
        "N" => {
            let mut n = Numbers::default();
            match inner.as_str() {
                Some(t) if n.add(t) => Kind::Num(n),
                _ => Kind::Mixed,
            }
        }
        "NS" => {
            let mut n = Numbers::default();
            let all = inner
                .as_array()
                .is_some_and(|a| a.iter().all(|e| e.as_str().is_some_and(|t| n.add(t))));
            if all {
                Kind::NumSet(n)
            } else {
                Kind::Mixed
            }
        }
        _ => Kind::Mixed,
    })
}

fn merge(a: Kind, b: Kind) -> Kind {
    match (a, b) {
        (Kind::Unknown, k) => k,
        (Kind::Num(mut x), Kind::Num(y)) => {
            x.merge(y);
            Kind::Num(x)
        }
        (Kind::NumSet(mut x), Kind::NumSet(y)) => {
            x.merge(y);
            Kind::NumSet(x)
        }
        (a, b) if a == b => a,
        _ => Kind::Mixed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types(items: &[&str], opts: InferOptions) -> Vec<(String, String)> {
        let mut inf = Inferrer::new();
        for i in items {
            let m: Map<String, Value> = serde_json::from_str(i).unwrap();
            inf.add_item(&m);
        }
        inf.column_types(opts)
            .into_iter()
            .map(|c| (c.name, c.ty))
            .collect()
    }

    #[test]
    fn narrowest_exact_number_types() {
        let cases = [
            (vec!["26", "0", "255"], "UInt8"),
            (vec!["256"], "UInt16"),
            (vec!["-1", "127"], "Int8"),
            (vec!["-129"], "Int16"),
            (vec!["4294967296"], "UInt64"),
            (vec!["-9223372036854775809"], "Decimal(38, 0)"),
            (vec!["18446744073709551616"], "Decimal(38, 0)"),
            (vec!["1.5", "-7"], "Decimal(38, 1)"),
            (
                vec!["12345678901234567890123456789.123456789"],
                "Decimal(38, 9)",
            ),
            (vec!["1E+2"], "UInt8"),
            (vec!["1.50"], "Decimal(38, 1)"),
            (vec!["-0.000001"], "Decimal(38, 6)"),
            (vec!["1e100"], "String"),
        ];
        for (nums, want) in cases {
            let items: Vec<String> = nums
                .iter()
                .map(|n| format!(r#"{{"n":{{"N":"{n}"}}}}"#))
                .collect();
            let refs: Vec<&str> = items.iter().map(String::as_str).collect();
            assert_eq!(types(&refs, InferOptions::default())[0].1, want, "{nums:?}");
        }
        let floats = InferOptions {
            floats: true,
            ..InferOptions::default()
        };
        assert_eq!(types(&[r#"{"n":{"N":"1.5"}}"#], floats)[0].1, "Float64");
    }

    #[test]
    fn types_sets_documents_and_missing() {
        let items = [
            r#"{"id":{"S":"a"},"ok":{"BOOL":true},"tags":{"SS":["x"]},"ns":{"NS":["1","2.5"]},"m":{"M":{}},"b":{"B":"AA=="}}"#,
            r#"{"id":{"S":"b"},"x":{"N":"1"},"m":{"L":[]},"nul":{"NULL":true}}"#,
            r#"{"id":{"S":"c"},"x":{"S":"one"}}"#,
        ];
        let t = types(&items, InferOptions::default());
        let want = [
            ("b", "Nullable(String)"),
            ("id", "String"),
            ("m", "Nullable(String)"),
            ("ns", "Array(Decimal(38, 1))"),
            ("ok", "Nullable(Bool)"),
            ("tags", "Array(String)"),
            ("nul", "Nullable(String)"),
            ("x", "Nullable(String)"),
        ];
        let got: Vec<(&str, &str)> = t.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        assert_eq!(got, want);
        let json_default = InferOptions {
            missing: Missing::Default,
            documents: Documents::Json,
            floats: false,
        };
        let t = types(&items, json_default);
        assert_eq!(t[4], ("ok".to_string(), "Bool".to_string()));
        assert_eq!(t[2], ("m".to_string(), "JSON".to_string()));
    }
}
