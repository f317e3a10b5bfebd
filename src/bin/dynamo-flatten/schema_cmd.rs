//! `dynamo-flatten schema`: reads sample documents and prints the SQL.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use dynamo_flatten::flatten::{Flattener, Options};
use dynamo_flatten::schema::{self, Documents, InferOptions, Inferrer, Missing, S3Auth, Spec};

const AFTER_HELP: &str = "\
Examples:
  zcat export/AWSDynamoDB/*/data/*.json.gz | head -10000 | dynamo-flatten schema --table people --partition-key id
  dynamo-flatten schema --table orders --partition-key pk --sort-key sk part-0001.json.gz changes.jsonl";

/// Infers ClickHouse column types from sample documents (export lines,
/// .json.gz files, bare items, change records) and prints the SQL: the
/// destination table, the flatten/errors views, the stream landing table and
/// the snapshot load. Every load calls dynamo_flatten_columns(line, '<column list>');
/// attributes without a column, or whose value does not fit it, land in the
/// _extra column as DynamoDB JSON.
#[derive(Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub struct SchemaArgs {
    /// Destination table name.
    #[arg(long)]
    table: String,

    /// The table's partition key attribute (first in ORDER BY).
    #[arg(long)]
    partition_key: String,

    /// The table's sort key attribute, if it has one (second in ORDER BY).
    #[arg(long)]
    sort_key: Option<String>,

    #[command(flatten)]
    types: TypeArgs,

    /// The export's data files in S3, for the snapshot load.
    #[arg(
        long,
        default_value = "https://BUCKET.s3.amazonaws.com/PREFIX/AWSDynamoDB/EXPORT_ID/data/*.json.gz"
    )]
    s3_url: String,

    /// How the snapshot load signs its S3 requests: keys as query parameters,
    /// NOSIGN, or the server's own credentials.
    #[arg(long, value_enum, default_value_t = S3AuthArg::Keys)]
    s3_auth: S3AuthArg,

    /// Name of the version column (as given to the function).
    #[arg(long, default_value = "version", value_name = "NAME")]
    version_field: String,

    /// Name of the delete-flag column (as given to the function).
    #[arg(long, default_value = "is_deleted", value_name = "NAME")]
    deleted_field: String,

    /// Sample files (gzip-compressed if they end in .gz); standard input if none.
    files: Vec<PathBuf>,
}

/// How column types are chosen (shared by `schema` and `schema evolve`).
#[derive(Args, Debug)]
struct TypeArgs {
    /// Type of attributes missing from some items: Nullable(T), or T with its default.
    #[arg(long, value_enum, default_value_t = MissingArg::Nullable)]
    missing: MissingArg,

    /// Column type of M attributes: String (JSON text) or ClickHouse's JSON (L attributes
    /// stay String: a JSON column holds objects only).
    #[arg(long, value_enum, default_value_t = DocumentsArg::String)]
    documents: DocumentsArg,

    /// Type non-integer numbers (and numbers beyond Decimal(76)) as Float64 instead of an
    /// exact Decimal.
    #[arg(long)]
    floats: bool,

    /// The narrowest exact type of the values seen (UInt8, Int16, ..., Decimal(38, S) with S
    /// as seen) instead of the defaults with room to grow (Int64, or UInt64/Int128/Int256
    /// for larger integers; Decimal(38, S) with S at least 6). A later value that does not
    /// fit its column lands in _extra. Key columns always get the defaults.
    #[arg(long)]
    narrow: bool,

    /// Type S attributes whose values are ISO 8601 dates and times (2024-01-02T03:04:05.123Z,
    /// +09:00 offsets, a space for T) as DateTime64(p, 'UTC'), p the most fraction digits
    /// seen (at least 3), instead of String. Key columns stay String.
    #[arg(long)]
    datetimes: bool,
}

impl TypeArgs {
    fn options(&self) -> InferOptions {
        InferOptions {
            missing: match self.missing {
                MissingArg::Nullable => Missing::Nullable,
                MissingArg::Default => Missing::Default,
            },
            documents: match self.documents {
                DocumentsArg::String => Documents::String,
                DocumentsArg::Json => Documents::Json,
            },
            floats: self.floats,
            narrow: self.narrow,
            datetimes: self.datetimes,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum S3AuthArg {
    Keys,
    Nosign,
    Server,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum MissingArg {
    Nullable,
    Default,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum DocumentsArg {
    String,
    Json,
}

pub fn run(args: &SchemaArgs) -> Result<(), String> {
    let mut flattener = Flattener::new(Options::default());
    let mut inf = Inferrer::new();
    let mut skipped = 0u64;
    let mut sample = |name: &str, input: Box<dyn Read>| -> Result<(), String> {
        let mut reader = BufReader::new(input);
        let mut line = Vec::new();
        for n in 1u64.. {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => return Err(format!("{name}: {e}")),
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let item = flattener
                .locate(&line)
                .map_err(|e| e.to_string())
                .and_then(|at| {
                    // A delete carries the old image or only the keys: it says
                    // nothing about which attributes items have.
                    if at.deleted {
                        return Ok(None);
                    }
                    serde_json::from_slice(&line[at.item]).map_err(|e| e.to_string())
                });
            match item {
                Ok(Some(item)) => inf.add_item(&item),
                Ok(None) => {}
                Err(e) => {
                    skipped += 1;
                    eprintln!("dynamo-flatten schema: {name}:{n}: skipped: {e}");
                }
            }
        }
        Ok(())
    };
    if args.files.is_empty() {
        sample("<stdin>", Box::new(io::stdin()))?;
    }
    for path in &args.files {
        let name = path.display().to_string();
        let file = File::open(path).map_err(|e| format!("{name}: {e}"))?;
        let input: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
            Box::new(flate2::read::MultiGzDecoder::new(file))
        } else {
            Box::new(file)
        };
        sample(&name, input)?;
    }
    let spec = Spec {
        table: args.table.clone(),
        partition_key: args.partition_key.clone(),
        sort_key: args.sort_key.clone(),
        version_field: args.version_field.clone(),
        deleted_field: args.deleted_field.clone(),
        s3_url: args.s3_url.clone(),
        s3_auth: match args.s3_auth {
            S3AuthArg::Keys => S3Auth::Keys,
            S3AuthArg::Nosign => S3Auth::NoSign,
            S3AuthArg::Server => S3Auth::Server,
        },
    };
    let opts = args.types.options();
    let sql = schema::render(&spec, &inf, opts).map_err(|e| e.to_string())?;
    if skipped > 0 {
        eprintln!("dynamo-flatten schema: {skipped} documents skipped");
    }
    let mut out = io::stdout().lock();
    match out.write_all(sql.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e.to_string()),
        _ => Ok(()),
    }
}
