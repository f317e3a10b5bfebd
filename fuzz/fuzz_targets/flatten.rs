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
//! - a reused flattener gives the same row as a fresh one.
//!
//! Run from the repository root:
//!
//! ```text
//! RUSTC_BOOTSTRAP=1 cargo fuzz run flatten fuzz/corpus/flatten fuzz/seeds \
//!     -- -dict=fuzz/flatten.dict -max_total_time=120
//! ```

#![no_main]

use std::cell::RefCell;

use dynamo_flatten::flatten::{
    write_error_row, Error, Flattened, Flattener, KinesisBinary, NumberFormat, Options, ShapeHint,
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

thread_local! {
    static FLATTENERS: RefCell<Vec<Flattener>> =
        RefCell::new(option_sets().into_iter().map(Flattener::new).collect());
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

fuzz_target!(|input: &[u8]| {
    FLATTENERS.with_borrow_mut(|fs| {
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
        })
    })
});
