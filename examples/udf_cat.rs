//! A pass-through executable UDF: the ceiling for `dynamo-flatten` in the engine.
//!
//! Speaks the framing of the shipped function (`executable_pool`, `RowBinary`,
//! `send_chunk_header=1`): reads blocks of `"<rows>\n"` followed by that many
//! RowBinary Strings (LEB128 length, bytes) and writes every String back
//! unchanged, buffered, flushing once per block. It does no work on the rows, so
//! a query through it measures what the engine and the pipes cost alone.
//!
//! ```text
//! <command>udf_cat</command>   (next to the other programs in user_scripts_path)
//! ```
//!
//! Used by `scripts/bench-engine`. Exits 0 at end of input; exits 1 with a
//! message on stderr when the framing is broken.

use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let stdin = io::stdin().lock();
    let stdout = io::stdout().lock();
    let mut input = BufReader::with_capacity(1 << 20, stdin);
    let mut output = BufWriter::with_capacity(1 << 20, stdout);
    match run(&mut input, &mut output) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed stdout ends the program quietly.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("udf_cat: {e}");
            ExitCode::FAILURE
        }
    }
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

fn run(input: &mut impl BufRead, output: &mut impl Write) -> io::Result<()> {
    let mut header = Vec::new();
    let mut row = Vec::new();
    let mut block = 0u64;
    loop {
        header.clear();
        if input.read_until(b'\n', &mut header)? == 0 {
            return Ok(());
        }
        block += 1;
        let text = header.strip_suffix(b"\n").unwrap_or(&header);
        let rows: u64 = std::str::from_utf8(text)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .ok_or_else(|| bad(format!("block {block}: bad chunk header {header:?}")))?;
        for _ in 0..rows {
            let len = read_leb128(input)
                .map_err(|e| bad(format!("block {block}: reading a row length: {e}")))?;
            row.resize(len as usize, 0);
            input
                .read_exact(&mut row)
                .map_err(|e| bad(format!("block {block}: reading a row of {len} bytes: {e}")))?;
            write_leb128(output, len)?;
            output.write_all(&row)?;
        }
        output.flush()?;
    }
}

fn read_leb128(input: &mut impl Read) -> io::Result<u64> {
    let mut value = 0u64;
    let mut byte = [0u8; 1];
    for shift in (0..64).step_by(7) {
        input.read_exact(&mut byte)?;
        value |= u64::from(byte[0] & 0x7f) << shift;
        if byte[0] & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(bad("LEB128 length longer than 10 bytes".to_string()))
}

fn write_leb128(output: &mut impl Write, mut value: u64) -> io::Result<()> {
    let mut buf = [0u8; 10];
    let mut n = 0;
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            buf[n] = byte;
            n += 1;
            break;
        }
        buf[n] = byte | 0x80;
        n += 1;
    }
    output.write_all(&buf[..n])
}
