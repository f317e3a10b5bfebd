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

use dynamo_flatten::flatten::differential::{compare, option_sets};
use dynamo_flatten::flatten::{Flattener, Kernel};
use libfuzzer_sys::fuzz_target;

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

fuzz_target!(|input: &[u8]| {
    FLATTENERS.with_borrow_mut(|sets| {
        for set in sets.iter_mut() {
            let (scalar, kernels) = set.split_first_mut().expect("the scalar flattener");
            for f in kernels {
                if let Err(e) = compare(scalar, f, input) {
                    panic!("{e}");
                }
            }
        }
    });
});
