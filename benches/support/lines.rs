//! The stdin loop of the reference programs: one call per line, without
//! its line ending, in a reused buffer (which the callee may modify, as
//! simd-json does).

use std::io::{self, BufRead, BufReader};

pub fn for_each_stdin_line(mut f: impl FnMut(&mut Vec<u8>) -> io::Result<()>) -> io::Result<()> {
    let mut input = BufReader::with_capacity(1 << 20, io::stdin().lock());
    let mut line = Vec::with_capacity(64 * 1024);
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        f(&mut line)?;
    }
}
