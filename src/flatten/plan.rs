//! Column plans: a ClickHouse column list (`id String, qty Int64, price Decimal(38, 2)`)
//! parsed into the types the column-aware flattening converts attribute values to.

use std::collections::HashMap;
use std::fmt;

/// The name of the field that holds the attributes without a column that takes them.
pub const EXTRA_FIELD: &str = "_extra";

/// A column type, as far as conversion is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Ty {
    /// `String`, `LowCardinality(String)`.
    String,
    /// `Int8` … `Int256`, `UInt8` … `UInt256`.
    Int {
        signed: bool,
        bits: u16,
    },
    /// `Decimal(P, S)` and its aliases.
    Decimal {
        precision: u8,
        scale: u8,
    },
    Float32,
    Float64,
    Bool,
    Nullable(Box<Ty>),
    Array(Box<Ty>),
    /// `Map(String, T)`.
    Map(Box<Ty>),
    /// ClickHouse's `JSON` (parameters ignored).
    Json,
    /// `DateTime64(p[, tz])` (`DateTime([tz])` is precision 0).
    DateTime {
        precision: u8,
        wide: bool,
    },
}

impl Ty {
    /// The type without `Nullable`.
    pub(crate) fn base(&self) -> &Ty {
        match self {
            Ty::Nullable(t) => t,
            t => t,
        }
    }
}

/// One column of a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    /// The column name, unquoted.
    pub name: String,
    /// The type as written in the list.
    pub type_text: String,
    pub(crate) ty: Ty,
}

/// A parsed column list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnPlan {
    columns: Vec<Column>,
    /// The columns of `PRIMARY KEY (…)`, if the list has one: the DynamoDB key
    /// attributes, which every item must have in a form that fits.
    keys: Vec<String>,
}

/// Why a column list could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanError {
    /// The column the problem is in, when known.
    pub column: Option<String>,
    /// Character offset in the list.
    pub at: usize,
    pub reason: String,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("column list: ")?;
        if let Some(c) = &self.column {
            write!(f, "column `{c}`: ")?;
        }
        write!(f, "{} (at character {})", self.reason, self.at)
    }
}

impl std::error::Error for PlanError {}

const SUPPORTED: &str = "String, LowCardinality(String), Int8…Int256, UInt8…UInt256, \
    Decimal(P, S), Decimal32/64/128/256(S), Float32, Float64, Bool, Nullable(T), Array(T), \
    Map(String, T), JSON, DateTime, DateTime64";

impl ColumnPlan {
    /// Parses a column list: `name Type, name Type, …`. Names may be plain identifiers,
    /// `backquoted` or "double-quoted"; types are ClickHouse type names.
    pub fn parse(list: &str) -> Result<ColumnPlan, PlanError> {
        let mut p = Parser {
            s: list.as_bytes(),
            i: 0,
            column: None,
        };
        let mut columns: Vec<Column> = Vec::new();
        let mut seen: HashMap<String, ()> = HashMap::new();
        p.ws();
        if p.i == p.s.len() {
            return Err(p.err("the list is empty"));
        }
        let mut keys: Vec<String> = Vec::new();
        loop {
            p.ws();
            p.column = None;
            let save = p.i;
            let primary_key = p.keyword("PRIMARY") && {
                p.ws();
                p.keyword("KEY")
            };
            if !primary_key {
                p.i = save;
            } else {
                if !keys.is_empty() {
                    return Err(p.err("PRIMARY KEY is given twice"));
                }
                p.ws();
                let parens = p.s.get(p.i) == Some(&b'(');
                if parens {
                    p.i += 1;
                }
                loop {
                    p.ws();
                    keys.push(p.name()?);
                    p.ws();
                    if !parens || p.s.get(p.i) != Some(&b',') {
                        break;
                    }
                    p.i += 1;
                }
                if parens {
                    p.close()?;
                }
                p.ws();
                match p.s.get(p.i) {
                    None => break,
                    Some(b',') => {
                        p.i += 1;
                        continue;
                    }
                    Some(_) => {
                        return Err(p.err("expected ',' or the end of the list after PRIMARY KEY"))
                    }
                }
            }
            let name = p.name()?;
            p.column = Some(name.clone());
            if seen.insert(name.clone(), ()).is_some() {
                return Err(p.err("the column is listed twice"));
            }
            p.ws();
            let start = p.i;
            let ty = p.ty()?;
            let type_text = String::from_utf8_lossy(&p.s[start..p.i]).into_owned();
            columns.push(Column {
                name,
                type_text,
                ty,
            });
            p.ws();
            match p.s.get(p.i) {
                None => break,
                Some(b',') => p.i += 1,
                Some(_) => return Err(p.err("expected ',' or the end of the list after the type")),
            }
        }
        if columns.is_empty() {
            return Err(p.err("the list has no columns"));
        }
        if let Some(k) = keys.iter().find(|k| !columns.iter().any(|c| &c.name == *k)) {
            p.column = Some(k.clone());
            return Err(p.err("PRIMARY KEY names a column that is not in the list"));
        }
        Ok(ColumnPlan { columns, keys })
    }

    /// The key columns (`PRIMARY KEY (…)`), in order.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// The columns, in list order.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    column: Option<String>,
}

impl Parser<'_> {
    fn err(&self, reason: impl Into<String>) -> PlanError {
        PlanError {
            column: self.column.clone(),
            at: self.i,
            reason: reason.into(),
        }
    }

    /// Consumes `word` (any case) when it is the next whole word.
    fn keyword(&mut self, word: &str) -> bool {
        let end = self.i + word.len();
        let matches = self
            .s
            .get(self.i..end)
            .is_some_and(|w| w.eq_ignore_ascii_case(word.as_bytes()))
            && !self
                .s
                .get(end)
                .is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'_');
        if matches {
            self.i = end;
        }
        matches
    }

    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    fn word(&mut self) -> &str {
        let start = self.i;
        while self
            .s
            .get(self.i)
            .is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'_')
        {
            self.i += 1;
        }
        // Only ASCII was taken.
        std::str::from_utf8(&self.s[start..self.i]).unwrap_or_default()
    }

    /// A column name: an identifier, `backquoted` or "double-quoted" (backslash escapes
    /// and doubled quotes inside).
    fn name(&mut self) -> Result<String, PlanError> {
        match self.s.get(self.i) {
            Some(&q @ (b'`' | b'"')) => {
                self.i += 1;
                let mut out = Vec::new();
                loop {
                    match self.s.get(self.i) {
                        None => return Err(self.err("unterminated quoted name")),
                        Some(b'\\') => {
                            let Some(&c) = self.s.get(self.i + 1) else {
                                return Err(self.err("unterminated quoted name"));
                            };
                            out.push(unescape(c));
                            self.i += 2;
                        }
                        Some(&c) if c == q => {
                            if self.s.get(self.i + 1) == Some(&q) {
                                out.push(q);
                                self.i += 2;
                            } else {
                                self.i += 1;
                                break;
                            }
                        }
                        Some(&c) => {
                            out.push(c);
                            self.i += 1;
                        }
                    }
                }
                String::from_utf8(out).map_err(|_| self.err("the name is not UTF-8"))
            }
            Some(c) if c.is_ascii_alphabetic() || *c == b'_' => Ok(self.word().to_string()),
            Some(_) => Err(self.err("expected a column name")),
            None => Err(self.err("expected a column name after ','")),
        }
    }

    fn open(&mut self) -> Result<(), PlanError> {
        self.ws();
        if self.s.get(self.i) == Some(&b'(') {
            self.i += 1;
            self.ws();
            Ok(())
        } else {
            Err(self.err("expected '('"))
        }
    }

    fn close(&mut self) -> Result<(), PlanError> {
        self.ws();
        if self.s.get(self.i) == Some(&b')') {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err("expected ')'"))
        }
    }

    fn comma(&mut self) -> Result<bool, PlanError> {
        self.ws();
        match self.s.get(self.i) {
            Some(b',') => {
                self.i += 1;
                self.ws();
                Ok(true)
            }
            Some(b')') => Ok(false),
            _ => Err(self.err("expected ',' or ')'")),
        }
    }

    fn number(&mut self, what: &str, max: u32) -> Result<u8, PlanError> {
        self.ws();
        let start = self.i;
        while self.s.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        std::str::from_utf8(&self.s[start..self.i])
            .ok()
            .and_then(|d| d.parse::<u32>().ok())
            .filter(|&n| n <= max)
            .map(|n| n as u8)
            .ok_or_else(|| self.err(format!("expected {what} (0 to {max})")))
    }

    /// A string literal `'…'` (a time zone); skipped.
    fn string_literal(&mut self) -> Result<(), PlanError> {
        self.ws();
        if self.s.get(self.i) != Some(&b'\'') {
            return Err(self.err("expected a quoted time zone"));
        }
        self.i += 1;
        loop {
            match self.s.get(self.i) {
                None => return Err(self.err("unterminated string")),
                Some(b'\\') => self.i += 2,
                Some(b'\'') if self.s.get(self.i + 1) == Some(&b'\'') => self.i += 2,
                Some(b'\'') => {
                    self.i += 1;
                    return Ok(());
                }
                Some(_) => self.i += 1,
            }
        }
    }

    /// Skips `(…)` with nested parentheses and quoted text inside, if present.
    fn skip_parens(&mut self) -> Result<(), PlanError> {
        self.ws();
        if self.s.get(self.i) != Some(&b'(') {
            return Ok(());
        }
        let mut depth = 0usize;
        while let Some(&c) = self.s.get(self.i) {
            match c {
                b'(' => depth += 1,
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        self.i += 1;
                        return Ok(());
                    }
                }
                b'\'' => {
                    self.string_literal()?;
                    continue;
                }
                b'`' | b'"' => {
                    self.name()?;
                    continue;
                }
                _ => {}
            }
            self.i += 1;
        }
        Err(self.err("unbalanced parentheses"))
    }

    fn ty(&mut self) -> Result<Ty, PlanError> {
        let at = self.i;
        let word = self.word().to_string();
        let int = |signed: bool, bits: u16| Ok(Ty::Int { signed, bits });
        let decimal = |p: &mut Self, precision: u8| -> Result<Ty, PlanError> {
            p.open()?;
            let scale = p.number("a scale", u32::from(precision))?;
            p.close()?;
            Ok(Ty::Decimal { precision, scale })
        };
        match word.as_str() {
            "String" => Ok(Ty::String),
            "Int8" => int(true, 8),
            "Int16" => int(true, 16),
            "Int32" => int(true, 32),
            "Int64" => int(true, 64),
            "Int128" => int(true, 128),
            "Int256" => int(true, 256),
            "UInt8" => int(false, 8),
            "UInt16" => int(false, 16),
            "UInt32" => int(false, 32),
            "UInt64" => int(false, 64),
            "UInt128" => int(false, 128),
            "UInt256" => int(false, 256),
            "Float32" => Ok(Ty::Float32),
            "Float64" => Ok(Ty::Float64),
            "Bool" | "Boolean" => Ok(Ty::Bool),
            "Decimal" => {
                self.open()?;
                let precision = self.number("a precision", 76)?;
                if precision == 0 {
                    return Err(self.err("the precision must be 1 to 76"));
                }
                let scale = if self.comma()? {
                    self.number("a scale", u32::from(precision))?
                } else {
                    0
                };
                self.close()?;
                Ok(Ty::Decimal { precision, scale })
            }
            "Decimal32" => decimal(self, 9),
            "Decimal64" => decimal(self, 18),
            "Decimal128" => decimal(self, 38),
            "Decimal256" => decimal(self, 76),
            "LowCardinality" => {
                self.open()?;
                let inner = self.ty()?;
                self.close()?;
                match inner.base() {
                    Ty::String => Ok(inner),
                    _ => Err(self.err(
                        "LowCardinality is supported around String and Nullable(String) only",
                    )),
                }
            }
            "Nullable" => {
                self.open()?;
                let inner = self.ty()?;
                self.close()?;
                match inner {
                    Ty::Nullable(_) | Ty::Array(_) | Ty::Map(_) | Ty::Json => {
                        Err(self.err("ClickHouse does not allow this type inside Nullable"))
                    }
                    t => Ok(Ty::Nullable(Box::new(t))),
                }
            }
            "Array" => {
                self.open()?;
                let inner = self.ty()?;
                self.close()?;
                Ok(Ty::Array(Box::new(inner)))
            }
            "Map" => {
                self.open()?;
                let key = self.ty()?;
                if key != Ty::String {
                    return Err(self.err("Map keys must be String or LowCardinality(String)"));
                }
                if !self.comma()? {
                    return Err(self.err("expected the Map's value type"));
                }
                let value = self.ty()?;
                self.close()?;
                Ok(Ty::Map(Box::new(value)))
            }
            "JSON" => {
                self.skip_parens()?;
                Ok(Ty::Json)
            }
            "DateTime" => {
                self.ws();
                if self.s.get(self.i) == Some(&b'(') {
                    self.open()?;
                    self.string_literal()?;
                    self.close()?;
                }
                Ok(Ty::DateTime {
                    precision: 0,
                    wide: false,
                })
            }
            "DateTime64" => {
                self.open()?;
                let precision = self.number("a precision", 9)?;
                if self.comma()? {
                    self.string_literal()?;
                }
                self.close()?;
                Ok(Ty::DateTime {
                    precision,
                    wide: true,
                })
            }
            "" => Err(self.err("expected a type")),
            other => {
                self.i = at;
                Err(self.err(format!(
                    "type {other} is not supported (supported: {SUPPORTED})"
                )))
            }
        }
    }
}

fn unescape(c: u8) -> u8 {
    match c {
        b'n' => b'\n',
        b't' => b'\t',
        b'r' => b'\r',
        b'0' => 0,
        c => c,
    }
}

/// Undoes SQL single quoting (`'it\'s'`, `'it''s'`) when `s` is a quoted literal; returns
/// `s` otherwise. A parameterised function receives its parameter in this form.
pub fn unquote_sql(s: &str) -> String {
    let b = s.as_bytes();
    if b.len() < 2 || b[0] != b'\'' || b[b.len() - 1] != b'\'' {
        return s.to_string();
    }
    let inner = &b[1..b.len() - 1];
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        match inner[i] {
            b'\\' if i + 1 < inner.len() => {
                out.push(unescape(inner[i + 1]));
                i += 2;
            }
            b'\'' if inner.get(i + 1) == Some(&b'\'') => {
                out.push(b'\'');
                i += 2;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types(list: &str) -> Vec<(String, Ty)> {
        ColumnPlan::parse(list)
            .unwrap()
            .columns()
            .iter()
            .map(|c| (c.name.clone(), c.ty.clone()))
            .collect()
    }

    #[test]
    fn parses_the_supported_types() {
        let t = types(
            "id String, `odd name` LowCardinality(Nullable(String)), \"q\" UInt8, \
             big Int256, price Decimal(38, 2), d9 Decimal32(3), f Float32, ok Bool, \
             tags Array(Nullable(Int64)), m Map(LowCardinality(String), Decimal(10,0)), \
             doc JSON(max_dynamic_paths = 10, a.b UInt32, SKIP c), ts DateTime64(3, 'UTC'), \
             t0 DateTime, t1 DateTime('Asia/Tokyo'), dd Decimal(5)",
        );
        let want = vec![
            ("id", Ty::String),
            ("odd name", Ty::Nullable(Box::new(Ty::String))),
            (
                "q",
                Ty::Int {
                    signed: false,
                    bits: 8,
                },
            ),
            (
                "big",
                Ty::Int {
                    signed: true,
                    bits: 256,
                },
            ),
            (
                "price",
                Ty::Decimal {
                    precision: 38,
                    scale: 2,
                },
            ),
            (
                "d9",
                Ty::Decimal {
                    precision: 9,
                    scale: 3,
                },
            ),
            ("f", Ty::Float32),
            ("ok", Ty::Bool),
            (
                "tags",
                Ty::Array(Box::new(Ty::Nullable(Box::new(Ty::Int {
                    signed: true,
                    bits: 64,
                })))),
            ),
            (
                "m",
                Ty::Map(Box::new(Ty::Decimal {
                    precision: 10,
                    scale: 0,
                })),
            ),
            ("doc", Ty::Json),
            (
                "ts",
                Ty::DateTime {
                    precision: 3,
                    wide: true,
                },
            ),
            (
                "t0",
                Ty::DateTime {
                    precision: 0,
                    wide: false,
                },
            ),
            (
                "t1",
                Ty::DateTime {
                    precision: 0,
                    wide: false,
                },
            ),
            (
                "dd",
                Ty::Decimal {
                    precision: 5,
                    scale: 0,
                },
            ),
        ];
        let want: Vec<(String, Ty)> = want.into_iter().map(|(n, t)| (n.into(), t)).collect();
        assert_eq!(t, want);
    }

    #[test]
    fn errors_name_the_column() {
        let cases = [
            ("", "column list: the list is empty (at character 0)"),
            (
                "id String, qty UUID",
                "column list: column `qty`: type UUID is not supported",
            ),
            (
                "id String qty Int64",
                "column list: column `id`: expected ',' or the end of the list after the type",
            ),
            (
                "a Decimal(38, 39)",
                "column list: column `a`: expected a scale (0 to 38)",
            ),
            (
                "a String, a Int64",
                "column list: column `a`: the column is listed twice",
            ),
            (
                "a Nullable(Array(String))",
                "column list: column `a`: ClickHouse does not allow this type inside Nullable",
            ),
            ("a String,", "column list: expected a column name after ','"),
        ];
        for (list, want) in cases {
            let e = ColumnPlan::parse(list).unwrap_err().to_string();
            assert!(e.starts_with(want), "{list:?}: {e}");
        }
    }

    #[test]
    fn primary_key() {
        let p = ColumnPlan::parse("pk String, sk Int64, x String, PRIMARY KEY (pk, sk)").unwrap();
        assert_eq!(p.keys(), ["pk", "sk"]);
        assert_eq!(p.columns().len(), 3);
        let p = ColumnPlan::parse("primary key `id`, `id` String").unwrap();
        assert_eq!(p.keys(), ["id"]);
        let e = ColumnPlan::parse("a String, PRIMARY KEY (b)").unwrap_err();
        assert!(
            e.to_string()
                .contains("column `b`: PRIMARY KEY names a column"),
            "{e}"
        );
        // A column may be named like the keyword.
        let p = ColumnPlan::parse("primary String").unwrap();
        assert_eq!(p.columns()[0].name, "primary");
    }

    #[test]
    fn unquotes_sql_literals() {
        assert_eq!(unquote_sql("'a String'"), "a String");
        assert_eq!(unquote_sql(r"'`it\'s` String'"), "`it's` String");
        assert_eq!(unquote_sql("'`it''s` String'"), "`it's` String");
        assert_eq!(unquote_sql("a String"), "a String");
    }
}
