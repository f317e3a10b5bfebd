//! Every kernel against the scalar path: for any input and every option set that
//! changes what plain flattening writes, the same result (row, or error with its kind
//! and offset) and the same bytes, error rows included, from a fresh flattener and from
//! a reused one.
//!
//! Run from the repository root:
//!
//! ```text
//! RUSTC_BOOTSTRAP=1 cargo fuzz run kernels fuzz/corpus/kernels fuzz/seeds \
//!     -- -dict=fuzz/flatten.dict -max_total_time=120
//! ```

#![no_main]

use std::cell::RefCell;

use dynamo_flatten::flatten::{
    write_error_row, Flattener, Kernel, KinesisBinary, NumberFormat, Options, ShapeHint,
};
use libfuzzer_sys::fuzz_target;

fn option_sets() -> Vec<Options> {
    let d = Options::default;
    vec![
        d(),
        Options {
            numbers: NumberFormat::String,
            ..d()
        },
        Options {
            metadata: false,
            kinesis_binary: KinesisBinary::AsIs,
            ..d()
        },
        Options {
            version_field: "v\"\\é".into(),
            deleted_field: "version".into(),
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
            shape: ShapeHint::Change,
            ..d()
        },
    ]
}

/// Per option set: the scalar flattener, then one per kernel this CPU runs.
fn flatteners() -> Vec<Vec<Flattener>> {
    option_sets()
        .into_iter()
        .map(|o| {
            Kernel::ALL
                .into_iter()
                .filter(|k| k.is_available())
                .map(|k| {
                    let mut f = Flattener::new(o.clone());
                    assert!(f.set_kernel(k));
                    f
                })
                .collect()
        })
        .collect()
}

thread_local! {
    static FLATTENERS: RefCell<Vec<Vec<Flattener>>> = RefCell::new(flatteners());
}

const PREFIX: &[u8] = b"{\"previous\":\"row\"}\n";

/// The result and the bytes written (the row, or the error row).
fn run(f: &mut Flattener, input: &[u8]) -> (Result<String, String>, Vec<u8>) {
    let mut out = PREFIX.to_vec();
    let r = f.flatten(input, &mut out);
    let r = match r {
        Ok(fl) => Ok(format!("{fl:?}")),
        Err(e) => {
            assert_eq!(out, PREFIX, "output changed on error");
            write_error_row(&e, input, &mut out);
            Err(format!("{:?} at {}: {e}", e.kind(), e.offset()))
        }
    };
    (r, out)
}

fuzz_target!(|input: &[u8]| {
    FLATTENERS.with_borrow_mut(|sets| {
        for set in sets.iter_mut() {
            let (scalar, kernels) = set.split_first_mut().expect("the scalar flattener");
            let want = run(scalar, input);
            for f in kernels {
                let got = run(f, input);
                assert_eq!(
                    got,
                    want,
                    "{:?} differs from the scalar path on {:?}",
                    f.kernel(),
                    String::from_utf8_lossy(input)
                );
            }
        }
    });
});
