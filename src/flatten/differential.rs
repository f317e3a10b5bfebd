//! Every kernel against the scalar path, as the property test (`tests/prop_kernels.rs`) and
//! the fuzz target (`fuzz/fuzz_targets/kernels.rs`) check it: the same result (the row, or
//! the error with its kind and offset) and the same bytes written after what the output
//! held, error rows included. Not part of the crate's interface.

use std::sync::Arc;

use super::{
    write_error_row, ColumnPlan, Flattener, KinesisBinary, NumberFormat, Options, ShapeHint,
};

/// The option sets that change what plain flattening writes, and one with columns.
pub fn option_sets() -> Vec<Options> {
    let d = Options::default;
    let with = |f: fn(&mut Options)| {
        let mut o = d();
        f(&mut o);
        o
    };
    vec![
        d(),
        with(|o| o.numbers = NumberFormat::String),
        with(|o| {
            o.metadata = false;
            o.kinesis_binary = KinesisBinary::AsIs;
        }),
        with(|o| {
            o.version_field = "v\"\\é".into();
            o.deleted_field = "version".into();
        }),
        with(|o| {
            o.version_field = "v\"\\é".into();
            o.deleted_field = "item_x".into();
        }),
        with(|o| o.shape = ShapeHint::Item),
        with(|o| o.shape = ShapeHint::Export),
        with(|o| o.shape = ShapeHint::Change),
        // The column-aware mode: the fast path finds where each attribute stands, and
        // the column writer copies, quotes or converts its values.
        with(|o| {
            let list = "pk String, n Int64, m String, l Array(String), b Bool, \
                        d Decimal(38, 2), z Nullable(String), mp Map(String, Int64), \
                        a_column_name_of_20 UInt8";
            o.columns = ColumnPlan::parse(list).ok().map(Arc::new);
        }),
    ]
}

const PREFIX: &[u8] = b"{\"previous\":\"row\"}\n";

/// The result and the bytes written after [`PREFIX`] (the row, or the error row); an error
/// that left the output changed is a failure of its own.
fn run(f: &mut Flattener, input: &[u8]) -> Result<(Result<String, String>, Vec<u8>), String> {
    let mut out = PREFIX.to_vec();
    let r = match f.flatten(input, &mut out) {
        Ok(fl) => Ok(format!("{fl:?}")),
        Err(e) => {
            if out != PREFIX {
                return Err(format!("{:?} changed the output on an error", f.kernel()));
            }
            write_error_row(&e, input, &mut out);
            Err(format!("{:?} at {}: {e}", e.kind(), e.offset()))
        }
    };
    Ok((r, out))
}

/// Flattens `input` with `scalar` and with `other`: `Err` says how `other` differs.
pub fn compare(scalar: &mut Flattener, other: &mut Flattener, input: &[u8]) -> Result<(), String> {
    let want = run(scalar, input)?;
    let got = run(other, input)?;
    if got == want {
        return Ok(());
    }
    Err(format!(
        "{:?} differs from the scalar path on {:?}:\n  got  {:?}\n  want {:?}",
        other.kernel(),
        String::from_utf8_lossy(input),
        (&got.0, String::from_utf8_lossy(&got.1)),
        (&want.0, String::from_utf8_lossy(&want.1)),
    ))
}
