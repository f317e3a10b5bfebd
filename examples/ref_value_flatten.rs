//! Reference flattener for comparison: JSON lines on stdin, each parsed into
//! a `serde_json::Value`, rebuilt as a plain `Value` and serialised, one line
//! out per line in. The flattening itself is in
//! `benches/support/value_flatten.rs`, shared with the criterion bench.
//!
//! A line that cannot be flattened gives `{"_error":"…"}`, so the output
//! always has one line per input line.
//!
//! ```text
//! cargo run --release --example ref_value_flatten < export.json > flat.json
//! ```

use std::io::{self, BufWriter, Write};

#[path = "../benches/support/lines.rs"]
mod lines;

#[path = "../benches/support/value_flatten.rs"]
mod value_flatten;

// The allocator of the `dynamo-flatten` binary, for a like-for-like comparison.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 20, io::stdout().lock());
    let mut errors = 0u64;
    lines::for_each_stdin_line(|line| {
        match value_flatten::flatten_line(line) {
            Ok(v) => serde_json::to_writer(&mut out, &v)?,
            Err(e) => {
                errors += 1;
                serde_json::to_writer(&mut out, &serde_json::json!({ "_error": e }))?;
            }
        }
        out.write_all(b"\n")
    })?;
    out.flush()?;
    if errors > 0 {
        eprintln!("ref_value_flatten: {errors} lines could not be flattened");
    }
    Ok(())
}
