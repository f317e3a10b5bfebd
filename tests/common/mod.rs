//! The model of DynamoDB JSON the property tests build documents from: attribute
//! values, string literals with their escapes, base64. Shared by `prop_flatten` and
//! `prop_columns`; each has its own generators and reference.

#![allow(dead_code)]

use std::fmt::Write as _;

use proptest::prelude::*;

#[derive(Clone, Debug, PartialEq)]
pub struct JStr {
    pub value: String,
    /// The JSON string literal, quotes included.
    pub raw: String,
}

impl JStr {
    /// A string that needs no escaping, written as it is.
    pub fn plain(s: &str) -> JStr {
        assert!(s.chars().all(|c| c >= ' ' && c != '"' && c != '\\'));
        JStr {
            value: s.to_string(),
            raw: format!("\"{s}\""),
        }
    }
}

pub fn push_u_escape(raw: &mut String, unit: u16, upper: bool) {
    if upper {
        write!(raw, "\\u{unit:04X}").unwrap();
    } else {
        write!(raw, "\\u{unit:04x}").unwrap();
    }
}

/// Encodes `chars` as a JSON literal; each char's style byte picks a raw or
/// an escaped form.
pub fn encode_str(chars: &[(char, u8)]) -> JStr {
    let mut value = String::new();
    let mut raw = String::from("\"");
    for &(c, style) in chars {
        value.push(c);
        let u_escape = style % 4 == 0;
        let upper = style & 0x10 != 0;
        let short = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '/' if style % 4 == 1 => Some("\\/"),
            '\u{8}' => Some("\\b"),
            '\u{c}' => Some("\\f"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            _ => None,
        };
        if u_escape || (c as u32) < 0x20 && short.is_none() {
            let mut buf = [0u16; 2];
            for &unit in c.encode_utf16(&mut buf).iter() {
                push_u_escape(&mut raw, unit, upper);
            }
        } else if let Some(s) = short {
            raw.push_str(s);
        } else {
            raw.push(c);
        }
    }
    raw.push('"');
    JStr { value, raw }
}

pub fn b64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
    for ch in data.chunks(3) {
        let n = u32::from(ch[0]) << 16
            | u32::from(*ch.get(1).unwrap_or(&0)) << 8
            | u32::from(*ch.get(2).unwrap_or(&0));
        s.push(A[(n >> 18 & 63) as usize] as char);
        s.push(A[(n >> 12 & 63) as usize] as char);
        s.push(if ch.len() > 1 {
            A[(n >> 6 & 63) as usize] as char
        } else {
            '='
        });
        s.push(if ch.len() > 2 {
            A[(n & 63) as usize] as char
        } else {
            '='
        });
    }
    s
}

#[derive(Clone, Debug)]
pub struct Bin {
    pub bytes: Vec<u8>,
    /// Write `/` as `\/` (outside Kinesis records).
    pub escape_slash: bool,
}

#[derive(Clone, Debug)]
pub enum Av {
    S(JStr),
    N(String),
    B(Bin),
    Bool(bool),
    Null,
    M(Vec<(JStr, Av)>),
    L(Vec<Av>),
    Ss(Vec<JStr>),
    Ns(Vec<String>),
    Bs(Vec<Bin>),
}

/// Keeps the first of attributes with equal (decoded) names.
pub fn dedup(attrs: Vec<(JStr, Av)>) -> Vec<(JStr, Av)> {
    let mut out: Vec<(JStr, Av)> = Vec::new();
    for (k, v) in attrs {
        if !out.iter().any(|(o, _)| o.value == k.value) {
            out.push((k, v));
        }
    }
    out
}

/// A change to a document's bytes, for inputs near valid ones.
#[derive(Clone, Debug)]
pub enum Mutation {
    Truncate(usize),
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
}

pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 1u8..=255).prop_map(|(i, x)| Mutation::Flip(i, x)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Delete),
    ]
}

/// `b` changed by `muts` in order (positions taken modulo the length at that point), and
/// the shortest length a truncation left, if any.
pub fn mutate(mut b: Vec<u8>, muts: &[Mutation]) -> (Vec<u8>, Option<usize>) {
    let mut cut: Option<usize> = None;
    for m in muts {
        match *m {
            Mutation::Truncate(i) => {
                let i = i % (b.len() + 1);
                cut = Some(cut.map_or(i, |c| c.min(i)));
                b.truncate(i);
            }
            Mutation::Flip(i, x) if !b.is_empty() => {
                let i = i % b.len();
                b[i] ^= x;
            }
            Mutation::Insert(i, x) => {
                let i = i % (b.len() + 1);
                b.insert(i, x);
            }
            Mutation::Delete(i) if !b.is_empty() => {
                let i = i % b.len();
                b.remove(i);
            }
            _ => {}
        }
    }
    (b, cut)
}
