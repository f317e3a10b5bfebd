//! Flattens arbitrary bytes with several option sets and checks what must
//! hold for every input:
//!
//! - no panic;
//! - `Ok`: the bytes already in the output buffer are untouched, the row is
//!   UTF-8 and JSON, starts with `{` and ends with the metadata the result
//!   reports, and the input itself was JSON;
//! - `Err`: the output buffer is exactly as it was, the offset is within
//!   the input, and the error row is valid JSON;
//! - the number format does not change whether a row is accepted, nor its
//!   version, delete flag and shape;
//! - a reused flattener gives the same row as a fresh one;
//! - with a column plan (column-aware flattening), a document is accepted
//!   exactly when it is without one, and a row is strict JSON (serde_json)
//!   ending with `_extra` (an object, or a string holding one), the version
//!   and the delete flag.
//!
//! The input's first byte chooses the column plan: 0xFF means that the plan
//! is the text up to the first newline (a list that does not parse must be
//! refused without a panic), any other value picks one of `PLANS`. The
//! remaining bytes are the document. Every document is also flattened
//! without a plan, with every option set above.
//!
//! Run from the repository root:
//!
//! ```text
//! RUSTC_BOOTSTRAP=1 cargo fuzz run flatten fuzz/corpus/flatten fuzz/seeds \
//!     -- -dict=fuzz/flatten.dict -max_total_time=120
//! ```

#![no_main]

use std::cell::RefCell;

use std::sync::Arc;

use dynamo_flatten::flatten::{
    write_error_row, ColumnPlan, Error, Flattened, Flattener, KinesisBinary, NumberFormat, Options,
    ShapeHint, EXTRA_FIELD,
};
use libfuzzer_sys::fuzz_target;

const PREFIX: &[u8] = b"{\"previous\":\"row\"}\n";

fn option_sets() -> Vec<Options> {
    let d = Options::default;
    vec![
        d(),
        Options {
            numbers: NumberFormat::String,
            ..d()
        },
        Options {
            numbers: NumberFormat::String,
            kinesis_binary: KinesisBinary::AsIs,
            metadata: false,
            ..d()
        },
        Options {
            version_field: "v\"\\é".into(),
            deleted_field: "version".into(),
            snapshot_version: u64::MAX,
            ..d()
        },
        Options {
            shape: ShapeHint::Item,
            ..d()
        },
        Options {
            shape: ShapeHint::Export,
            ..d()
        },
        Options {
            shape: ShapeHint::Incremental,
            ..d()
        },
        Options {
            shape: ShapeHint::Change,
            ..d()
        },
    ]
}

/// Column lists, from the destination's whole list to every type of the
/// contract, names that need quoting, and names like the metadata fields.
const PLANS: &[&str] = &[
    "id String, _extra String, version UInt64, is_deleted UInt8",
    "id String, qty UInt8, price Decimal(38, 2), tags Array(String), doc JSON",
    "a Int8, b Int16, c Int32, d Int64, e Int128, f Int256, g UInt8, h UInt64, i UInt256",
    "a Decimal(1, 0), b Decimal(76, 76), c Decimal32(2), d Decimal256(10), e Float32, f Float64",
    "a Bool, b Nullable(Int8), c LowCardinality(String), d Array(Nullable(Decimal(10, 2)))",
    "a Map(String, Int64), b Map(LowCardinality(String), Array(String)), c JSON(max_dynamic_paths=8)",
    "a DateTime64(3), b DateTime64(9, 'UTC'), c DateTime, d Nullable(DateTime('Asia/Tokyo'))",
    "item_version UInt64, item_is_deleted Bool, `a b` String, \"c\\\"d\" Int8, `x.y` JSON",
    "S String, N Float64, M Map(String, String), L Array(String), Item String, Keys JSON",
];

fn plan_options(plan: ColumnPlan) -> Options {
    Options {
        columns: Some(Arc::new(plan)),
        ..Options::default()
    }
}

thread_local! {
    static FLATTENERS: RefCell<Vec<Flattener>> =
        RefCell::new(option_sets().into_iter().map(Flattener::new).collect());
    static PLANNED: RefCell<Vec<Flattener>> = RefCell::new(
        PLANS
            .iter()
            .map(|p| {
                let plan = ColumnPlan::parse(p).unwrap_or_else(|e| panic!("{p}: {e}"));
                Flattener::new(plan_options(plan))
            })
            .collect(),
    );
    static OUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// JSON syntax, without serde_json's number-range and surrogate checks: the
/// flattener copies number text and escapes verbatim.
fn is_json_syntax(b: &[u8]) -> bool {
    match serde_json::from_slice::<serde::de::IgnoredAny>(b) {
        Ok(_) => true,
        // serde_json stops at 128 levels; the flattener allows more.
        Err(e) => e.to_string().contains("recursion limit exceeded"),
    }
}

fn check(f: &mut Flattener, input: &[u8], out: &mut Vec<u8>) -> Result<Flattened, Error> {
    out.clear();
    out.extend_from_slice(PREFIX);
    let r = f.flatten(input, out);
    assert!(out.starts_with(PREFIX), "bytes before the row changed");
    let row = &out[PREFIX.len()..];
    match &r {
        Ok(fl) => {
            let text = std::str::from_utf8(row).expect("row is not UTF-8");
            assert!(is_json_syntax(row), "row is not JSON: {text}");
            assert!(is_json_syntax(input), "accepted input that is not JSON");
            assert_eq!(row.first(), Some(&b'{'));
            let o = f.options();
            if o.metadata {
                let mut tail = Vec::new();
                tail.push(b',');
                tail.extend_from_slice(serde_json::to_string(&o.version_field).unwrap().as_bytes());
                tail.extend_from_slice(format!(":{},", fl.version).as_bytes());
                tail.extend_from_slice(serde_json::to_string(&o.deleted_field).unwrap().as_bytes());
                tail.extend_from_slice(format!(":{}}}", u8::from(fl.deleted)).as_bytes());
                assert!(
                    row.ends_with(&tail),
                    "row does not end with its metadata: {text}"
                );
            } else {
                assert_eq!(row.last(), Some(&b'}'));
            }
        }
        Err(e) => {
            assert!(row.is_empty(), "output changed on error: {e}");
            assert!(e.offset() <= input.len(), "error offset past the end: {e}");
            let mut er = Vec::new();
            write_error_row(e, input, &mut er);
            let v: serde_json::Value = serde_json::from_slice(&er).expect("error row is not JSON");
            assert!(er.starts_with(b"{\"_error\":"));
            assert!(v["_error"].is_string() && v["_input"].is_string());
        }
    }
    r
}

/// `_extra`: an object (the contract's form) or a JSON string holding an
/// object's text (which the engine reads back unchanged).
fn is_extra(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Object(_) => true,
        serde_json::Value::String(s) => {
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(s).is_ok()
        }
        _ => false,
    }
}

/// A row of column-aware flattening is strict JSON: an object whose last
/// members are `_extra`, the version and the delete flag.
fn check_columns_row(row: &[u8], fl: &Flattened) {
    let text = std::str::from_utf8(row).expect("row is not UTF-8");
    let v: serde_json::Value = match serde_json::from_slice(row) {
        Ok(v) => v,
        Err(e) if e.to_string().contains("recursion limit exceeded") => return,
        Err(e) => panic!("row is not strict JSON ({e}): {text}"),
    };
    let m = v.as_object().expect("row is not an object");
    assert!(is_extra(&m[EXTRA_FIELD]), "_extra is not an object: {text}");
    let tail = format!(
        ",\"version\":{},\"is_deleted\":{}}}",
        fl.version,
        u8::from(fl.deleted)
    );
    assert!(
        text.ends_with(&tail),
        "row does not end with its metadata: {text}"
    );
    // `_extra` is the member just before the metadata: some top-level
    // `"_extra":` starts the value that ends there.
    let end = text.len() - tail.len();
    let key = "\"_extra\":";
    let extra_last = text
        .match_indices(key)
        .filter(|&(i, _)| i == 1 || text.as_bytes()[i - 1] == b',')
        .any(|(i, _)| {
            serde_json::from_str::<serde_json::Value>(&text[i + key.len()..end])
                .is_ok_and(|v| is_extra(&v))
        });
    assert!(extra_last, "_extra is not just before the metadata: {text}");
}

/// Flattens `doc` with a column plan and checks the row.
fn check_columns(f: &mut Flattener, doc: &[u8], plain_ok: bool, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(PREFIX);
    let r = f.flatten(doc, out);
    assert!(out.starts_with(PREFIX), "bytes before the row changed");
    match &r {
        Ok(fl) => check_columns_row(&out[PREFIX.len()..], fl),
        Err(e) => assert_eq!(out.len(), PREFIX.len(), "output changed on error: {e}"),
    }
    assert_eq!(
        r.is_ok(),
        plain_ok,
        "a column plan changed whether the document is accepted: {:?}",
        r.map_err(|e| e.to_string())
    );
}

/// Splits the input into a plan and a document: `0xFF <list> \n <doc>`, a
/// document that starts with `{` (the seeds; the plan then follows from its
/// length), or `<plan index byte> <doc>`.
enum Plan<'a> {
    Fixed(usize),
    Text(&'a [u8]),
}

fn split(input: &[u8]) -> (Plan<'_>, &[u8]) {
    match input.split_first() {
        None => (Plan::Fixed(0), input),
        Some((b'{', _)) => (Plan::Fixed(input.len() % PLANS.len()), input),
        Some((0xFF, rest)) => match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (Plan::Text(&rest[..i]), &rest[i + 1..]),
            None => (Plan::Text(rest), &[]),
        },
        Some((&b, rest)) => (Plan::Fixed(usize::from(b) % PLANS.len()), rest),
    }
}

fuzz_target!(|raw: &[u8]| {
    let (plan, input) = split(raw);
    let plain_ok = FLATTENERS.with_borrow_mut(|fs| {
        OUT.with_borrow_mut(|out| {
            let results: Vec<_> = fs.iter_mut().map(|f| check(f, input, out)).collect();
            // Default options and numbers as strings agree on everything but
            // the quoting of numbers.
            assert_eq!(results[0], results[1], "number format changed the outcome");

            // A fresh flattener gives what the reused one gave.
            let _ = check(&mut fs[0], input, out);
            let reused = out.clone();
            let mut fresh = Flattener::new(Options::default());
            let r = check(&mut fresh, input, out);
            assert_eq!(r, results[0]);
            assert_eq!(*out, reused, "a reused flattener gave another row");
            r.is_ok()
        })
    });
    OUT.with_borrow_mut(|out| match plan {
        Plan::Fixed(i) => {
            PLANNED.with_borrow_mut(|fs| check_columns(&mut fs[i], input, plain_ok, out))
        }
        Plan::Text(list) => {
            let Ok(list) = std::str::from_utf8(list) else {
                return;
            };
            match ColumnPlan::parse(list) {
                Ok(p) => check_columns(&mut Flattener::new(plan_options(p)), input, plain_ok, out),
                Err(e) => assert!(!e.to_string().is_empty(), "a plan error without a message"),
            }
        }
    });
});
