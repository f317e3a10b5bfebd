//! Parse-only baseline for comparison: JSON lines on stdin, each parsed by
//! simd-json with reused buffers, nothing written but the counts at the end.
//!
//! By default each line is parsed into a tape (simd-json's cheapest full
//! parse and validation); with `--value`, into a borrowed `Value` tree.
//!
//! ```text
//! cargo run --release --example ref_simd_parse < export.json
//! cargo run --release --example ref_simd_parse -- --value < export.json
//! ```

use std::io;

#[path = "../benches/support/lines.rs"]
mod lines;

// The allocator of the `dynamo-flatten` binary, for a like-for-like comparison.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> io::Result<()> {
    let mut value = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--value" => value = true,
            "--tape" => value = false,
            _ => {
                eprintln!("usage: ref_simd_parse [--tape | --value] < lines.json");
                std::process::exit(2);
            }
        }
    }
    let mut buffers = simd_json::Buffers::new(64 * 1024);
    let mut tape: simd_json::Tape<'static> = simd_json::Tape(Vec::new());
    let (mut lines, mut nodes, mut errors) = (0u64, 0u64, 0u64);
    lines::for_each_stdin_line(|line| {
        lines += 1;
        if value {
            match simd_json::to_borrowed_value_with_buffers(line, &mut buffers) {
                Ok(v) => {
                    std::hint::black_box(&v);
                    nodes += 1;
                }
                Err(_) => errors += 1,
            }
        } else {
            let mut t = std::mem::replace(&mut tape, simd_json::Tape(Vec::new())).reset();
            match simd_json::fill_tape(line, &mut buffers, &mut t) {
                Ok(()) => nodes += t.0.len() as u64,
                Err(_) => errors += 1,
            }
            tape = t.reset();
        }
        Ok(())
    })?;
    let what = if value { "documents" } else { "tape nodes" };
    println!("{lines} lines, {nodes} {what}, {errors} errors");
    Ok(())
}
