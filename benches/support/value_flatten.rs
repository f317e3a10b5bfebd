//! The reference flattener: the obvious way to do it with `serde_json::Value`.
//! Parse the whole document into a tree, rebuild a plain tree from it, and
//! serialise that.
//!
//! Written for comparison, not for use: it handles bare items and full-export
//! lines `{"Item":{…}}` only, keeps `N` values as strings (a `Value` number
//! cannot hold 38 digits exactly), and writes keys in sorted order.
//!
//! Shared by the criterion bench and the `ref_value_flatten` example through
//! `#[path]`.
#![allow(dead_code)]

use serde_json::{Map, Value};

/// Version written into every row, as the flattener does for snapshots.
pub const VERSION: u64 = 0;

/// Parses one document and returns its flattened form.
pub fn flatten_line(line: &[u8]) -> Result<Value, String> {
    let doc: Value = serde_json::from_slice(line).map_err(|e| e.to_string())?;
    flatten_document(doc)
}

/// Parses, flattens and serialises one document into `out` (no newline).
pub fn flatten_line_to(line: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let v = flatten_line(line)?;
    serde_json::to_writer(out, &v).map_err(|e| e.to_string())
}

/// `{"Item":{…}}` or a bare item → the attributes at the top level, plus
/// `version` and `is_deleted`.
pub fn flatten_document(doc: Value) -> Result<Value, String> {
    let Value::Object(mut top) = doc else {
        return Err("the document is not an object".into());
    };
    let attrs = if top.len() == 1 && top.contains_key("Item") {
        match top.remove("Item") {
            Some(Value::Object(m)) => m,
            _ => return Err("Item is not an object".into()),
        }
    } else {
        top
    };
    if attrs.is_empty() {
        return Err("the item has no attributes".into());
    }
    let mut out = Map::new();
    for (name, v) in attrs {
        let name = match name.as_str() {
            "version" | "is_deleted" => format!("item_{name}"),
            _ => name,
        };
        if out.contains_key(&name) {
            return Err(format!("two attributes are named {name}"));
        }
        out.insert(name, attribute(v)?);
    }
    out.insert("version".into(), Value::from(VERSION));
    out.insert("is_deleted".into(), Value::from(0u8));
    Ok(Value::Object(out))
}

/// One attribute value `{"T": v}` → its plain value.
pub fn attribute(v: Value) -> Result<Value, String> {
    let Value::Object(m) = v else {
        return Err("an attribute value is not an object".into());
    };
    if m.len() != 1 {
        return Err(format!("an attribute value has {} type tags", m.len()));
    }
    let Some((tag, v)) = m.into_iter().next() else {
        return Err("an attribute value has no type tag".into());
    };
    match (tag.as_str(), v) {
        ("S" | "N" | "B", v @ Value::String(_)) => Ok(v),
        ("BOOL", v @ Value::Bool(_)) => Ok(v),
        ("NULL", Value::Bool(true)) => Ok(Value::Null),
        ("M", Value::Object(m)) => {
            let mut out = Map::new();
            for (k, v) in m {
                out.insert(k, attribute(v)?);
            }
            Ok(Value::Object(out))
        }
        ("L", Value::Array(a)) => a
            .into_iter()
            .map(attribute)
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        ("SS" | "NS" | "BS", Value::Array(a)) => {
            if a.iter().all(Value::is_string) {
                Ok(Value::Array(a))
            } else {
                Err(format!("a {tag} member is not a string"))
            }
        }
        (tag, _) => Err(format!("bad value for type tag {tag}")),
    }
}
