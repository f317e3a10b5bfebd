//! Writes a deterministic, realistic DynamoDB export: one document per line,
//! full-export lines `{"Item":{…}}` (as in an S3 export's `data/*.json.gz`)
//! or Kinesis Data Streams for DynamoDB records. The documents come from
//! `benches/support/gen.rs`; the same seed always gives the same file.
//!
//! ```text
//! cargo run --release --example gen_export -- --items 100000 --out export.json
//! cargo run --release --example gen_export -- --size-mb 64 --out export.json
//! cargo run --release --example gen_export -- --items 100000 --gzip --out export.json.gz
//! cargo run --release --example gen_export -- --format kinesis --items 1000 > kinesis.json
//! cargo run --release --example gen_export -- --line-bytes 400 --size-mb 64 --out small.json
//! ```

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use flate2::write::GzEncoder;
use flate2::Compression;

#[path = "../benches/support/gen.rs"]
mod gen;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    /// Full-export lines {"Item":{…}}.
    Export,
    /// Kinesis Data Streams for DynamoDB records (INSERT/MODIFY/REMOVE).
    Kinesis,
}

/// Generate a DynamoDB export file of JSON lines.
#[derive(Parser, Debug)]
struct Args {
    /// Number of documents to write.
    #[arg(long, default_value_t = 100_000, conflicts_with = "size_mb")]
    items: u64,
    /// Instead of --items: write documents until the (uncompressed) output
    /// has at least this many MiB.
    #[arg(long)]
    size_mb: Option<u64>,
    /// Output file; standard output when absent.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Compress the output with gzip.
    #[arg(long)]
    gzip: bool,
    /// Seed of the generator.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, value_enum, default_value_t = Format::Export)]
    format: Format,
    /// Full-export lines of about this many bytes each (attributes of several items, or
    /// the first ones of one), instead of one generated item per line.
    #[arg(long, conflicts_with = "format")]
    line_bytes: Option<usize>,
}

fn main() -> io::Result<()> {
    let args = Args::parse();
    let sink: Box<dyn Write> = match &args.out {
        Some(p) => Box::new(File::create(p)?),
        None => Box::new(io::stdout().lock()),
    };
    let (n, bytes) = if args.gzip {
        let (z, n, bytes) = generate(GzEncoder::new(sink, Compression::default()), &args)?;
        z.finish()?.flush()?;
        (n, bytes)
    } else {
        let (mut w, n, bytes) = generate(sink, &args)?;
        w.flush()?;
        (n, bytes)
    };
    let to = args
        .out
        .as_ref()
        .map_or_else(|| "stdout".to_string(), |p| p.display().to_string());
    eprintln!(
        "gen_export: {n} documents, {bytes} bytes ({:.1} MiB) uncompressed, to {to}",
        bytes as f64 / (1u64 << 20) as f64
    );
    Ok(())
}

/// Writes the documents to `sink`; returns it with the number of documents
/// and of uncompressed bytes.
fn generate<W: Write>(sink: W, args: &Args) -> io::Result<(W, u64, u64)> {
    let mut w = BufWriter::with_capacity(1 << 20, sink);
    let mut g = gen::Generator::new(args.seed);
    let limit = args.size_mb.map(|mb| mb << 20);
    let mut doc = Vec::with_capacity(64 * 1024);
    let (mut n, mut bytes) = (0u64, 0u64);
    loop {
        let done = match limit {
            Some(l) => bytes >= l,
            None => n >= args.items,
        };
        if done {
            break;
        }
        doc.clear();
        match (args.line_bytes, args.format) {
            (Some(target), _) => g.sized_line(n, target, &mut doc),
            (None, Format::Export) => g.export_line(n, &mut doc),
            (None, Format::Kinesis) => g.kinesis_record(n, &mut doc),
        }
        doc.push(b'\n');
        w.write_all(&doc)?;
        n += 1;
        bytes += doc.len() as u64;
    }
    let sink = w.into_inner().map_err(|e| e.into_error())?;
    Ok((sink, n, bytes))
}
