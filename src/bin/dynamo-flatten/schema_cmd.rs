//! `dynamo-flatten schema`: reads sample documents and prints the SQL;
//! `dynamo-flatten schema evolve`: prints the SQL that adds columns.

use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal, Read, Write};
use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use dynamo_flatten::flatten::{Flattener, Options};
use dynamo_flatten::schema::evolve::{self, AddSpec, Evolution, NewColumn, ViewChange};
use dynamo_flatten::schema::{
    self, ClusterName, Col, Documents, InferOptions, Inferrer, Missing, S3Auth, Spec,
};
use serde_json::{Map, Value};

const AFTER_HELP: &str = "\
Examples:
  zcat export/AWSDynamoDB/*/data/*.json.gz | head -10000 | dynamo-flatten schema --table people --partition-key id
  dynamo-flatten schema --table orders --partition-key pk --sort-key sk part-0001.json.gz changes.jsonl
  dynamo-flatten schema --table people --partition-key id --cluster prod part-0001.json.gz
  dynamo-flatten schema evolve --help      (new columns for attributes that land in _extra)";

const EVOLVE_AFTER_HELP: &str = "\
Examples:
  # What lands in _extra (attribute, rows, DynamoDB types, examples):
  clickhouse-client --multiquery < sql/11_drift_report.sql

  # A column qty, its type inferred from the _extra values that hold it:
  clickhouse-client --query \"SELECT _extra FROM people FINAL
      WHERE JSONHas(_extra, 'qty') FORMAT TSVRaw\" |
    dynamo-flatten schema evolve --table people \\
      --columns 'id String, first_name String, age UInt8, PRIMARY KEY (id)' --add qty > evolve.sql
  clickhouse-client --multiquery < evolve.sql

  # Types given, nothing read:
  dynamo-flatten schema evolve --table people --columns \"$COLUMNS\" \\
      --add 'qty Int64' --add 'price Decimal(38, 2)'

The current list is the literal in the table's dynamo_flatten_columns calls (the generated SQL
prints it at the top), or the table's own columns: sql/11_drift_report.sql shows a query for
them. Run the output as it is: its comments say what each step does and why in that order.";

/// Infers ClickHouse column types from sample documents (export lines,
/// .json.gz files, bare items, change records) and prints the SQL: the
/// destination table, the flatten/errors views, the stream landing table and
/// the snapshot load. Every load calls dynamo_flatten_columns(line, '<column list>');
/// attributes without a column, or whose value does not fit it, land in the
/// _extra column as DynamoDB JSON.
#[derive(Args, Debug)]
#[command(
    after_help = AFTER_HELP,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct SchemaArgs {
    #[command(subcommand)]
    command: Option<SchemaCommand>,

    /// Destination table name.
    #[arg(long, required = true)]
    table: Option<String>,

    /// The table's partition key attribute (first in ORDER BY).
    #[arg(long, required = true)]
    partition_key: Option<String>,

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

    /// Generate for the ClickHouse cluster NAME (as the servers' remote_servers names it;
    /// letters, digits, '_' and '-'): every statement ON CLUSTER NAME; the destination
    /// ReplicatedReplacingMergeTree, one per shard, as <table>_local, and <table> a
    /// Distributed table over it sharded by cityHash64(<partition key>), so that FINAL, which
    /// runs per shard, sees every version of an item; dynamo_errors and kinesis_checkpoints
    /// likewise; the snapshot loaded through s3Cluster(NAME, ...), each node flattening its
    /// share of the files. See sql/README.md, "On a cluster".
    #[arg(long, value_name = "NAME")]
    cluster: Option<ClusterName>,

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

#[derive(Subcommand, Debug)]
enum SchemaCommand {
    /// Print the SQL that adds columns to a destination for attributes that land in _extra.
    Evolve(EvolveArgs),
}

/// Prints the SQL that adds columns to a destination made by `dynamo-flatten schema` (or
/// the sql/ scripts) for attributes that land in its _extra column: ALTER TABLE ... ADD
/// COLUMN, the views with the new column list (no row lost), and a backfill that moves the
/// values already stored out of _extra into the new columns, exactly, with the same
/// conversion as new rows; values that still do not fit stay in _extra.
///
/// The type of a column given by name only is inferred from _extra values read from the
/// files or standard input, one JSON object per line (SELECT _extra ... FORMAT TSVRaw).
#[derive(Args, Debug)]
#[command(after_help = EVOLVE_AFTER_HELP)]
pub struct EvolveArgs {
    /// Destination table name (its views are <table>_flat_mv and <table>_stream_mv).
    #[arg(long)]
    table: String,

    /// The table's current column list: the literal of its dynamo_flatten_columns calls
    /// ('id String, age Int64'; SQL quotes are removed), or the destination's whole list
    /// (_extra and the version and delete-flag columns are skipped).
    #[arg(long, value_name = "LIST")]
    columns: String,

    /// A column to add, named like the attribute: NAME (the type is inferred from the
    /// _extra values read), or 'NAME TYPE'. Backquote names that are not identifiers
    /// ('`unit price` Decimal(38, 2)'). Repeat for more.
    #[arg(long = "add", value_name = "COLUMN", required = true)]
    add: Vec<String>,

    /// How the views get the new list: ALTER TABLE ... MODIFY QUERY (atomic, loads keep
    /// running), or DROP VIEW + CREATE MATERIALIZED VIEW (loads must be stopped meanwhile;
    /// the output says how).
    #[arg(long, value_enum, default_value_t = ViewsArg::ModifyQuery)]
    views: ViewsArg,

    #[command(flatten)]
    types: TypeArgs,

    /// Name of the version column (as given to the function).
    #[arg(long, default_value = "version", value_name = "NAME")]
    version_field: String,

    /// Name of the delete-flag column (as given to the function).
    #[arg(long, default_value = "is_deleted", value_name = "NAME")]
    deleted_field: String,

    /// The table is on the ClickHouse cluster NAME, made by `schema --cluster NAME`: every
    /// statement ON CLUSTER NAME, the columns added to <table>_local and then to the
    /// Distributed <table>, the backfill through the Distributed table.
    #[arg(long, value_name = "NAME")]
    cluster: Option<ClusterName>,

    /// Files of _extra values, one JSON object per line (gzip-compressed if they end in
    /// .gz); standard input if none. Read only when a column is given without its type.
    files: Vec<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ViewsArg {
    ModifyQuery,
    Recreate,
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

/// Calls `each(source, line number, line)` for every non-blank line of `files` (standard
/// input if none; `.gz` files are decompressed).
fn for_each_line(files: &[PathBuf], mut each: impl FnMut(&str, u64, &[u8])) -> Result<(), String> {
    let mut read = |name: &str, input: Box<dyn Read>| -> Result<(), String> {
        let mut reader = BufReader::new(input);
        let mut line = Vec::new();
        for n in 1u64.. {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => return Err(format!("{name}: {e}")),
            }
            if !line.iter().all(u8::is_ascii_whitespace) {
                each(name, n, &line);
            }
        }
        Ok(())
    };
    if files.is_empty() {
        read("<stdin>", Box::new(io::stdin()))?;
    }
    for path in files {
        let name = path.display().to_string();
        let file = File::open(path).map_err(|e| format!("{name}: {e}"))?;
        let input: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
            Box::new(flate2::read::MultiGzDecoder::new(file))
        } else {
            Box::new(file)
        };
        read(&name, input)?;
    }
    Ok(())
}

fn print(sql: &str) -> Result<(), String> {
    let mut out = io::stdout().lock();
    match out.write_all(sql.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e.to_string()),
        _ => Ok(()),
    }
}

pub fn run(args: &SchemaArgs) -> Result<(), String> {
    if let Some(SchemaCommand::Evolve(e)) = &args.command {
        return run_evolve(e);
    }
    let (Some(table), Some(partition_key)) = (&args.table, &args.partition_key) else {
        return Err("--table and --partition-key are required".into());
    };
    let mut flattener = Flattener::new(Options::default());
    let mut inf = Inferrer::new();
    let mut skipped = 0u64;
    for_each_line(&args.files, |name, n, line| {
        let item = flattener
            .locate(line)
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
    })?;
    let spec = Spec {
        table: table.clone(),
        partition_key: partition_key.clone(),
        sort_key: args.sort_key.clone(),
        version_field: args.version_field.clone(),
        deleted_field: args.deleted_field.clone(),
        s3_url: args.s3_url.clone(),
        s3_auth: match args.s3_auth {
            S3AuthArg::Keys => S3Auth::Keys,
            S3AuthArg::Nosign => S3Auth::NoSign,
            S3AuthArg::Server => S3Auth::Server,
        },
        cluster: args.cluster.clone(),
    };
    let sql = schema::render(&spec, &inf, args.types.options()).map_err(|e| e.to_string())?;
    if skipped > 0 {
        eprintln!("dynamo-flatten schema: {skipped} documents skipped");
    }
    print(&sql)
}

fn run_evolve(args: &EvolveArgs) -> Result<(), String> {
    let (vf, df) = (&args.version_field, &args.deleted_field);
    let columns = evolve::current_columns(&args.columns, vf, df).map_err(|e| e.to_string())?;
    let mut specs = Vec::new();
    for a in &args.add {
        specs.extend(evolve::parse_add(a).map_err(|e| e.to_string())?);
    }
    // Names first: no reason to read the values for a column that cannot be added.
    for s in &specs {
        let attr = match s {
            AddSpec::Name(n) => n,
            AddSpec::Typed(c) => &c.name,
        };
        evolve::check_free(&columns, &evolve::column_name(attr, vf, df), vf, df)
            .map_err(|e| e.to_string())?;
    }
    let mut inf = Inferrer::new();
    if specs.iter().any(|s| matches!(s, AddSpec::Name(_))) {
        if args.files.is_empty() && io::stdin().is_terminal() {
            return Err(
                "a column without a type needs the _extra values on standard input \
                 (SELECT _extra ... FORMAT TSVRaw, see --help), or give its type: \
                 --add 'NAME TYPE'"
                    .into(),
            );
        }
        let mut skipped = 0u64;
        for_each_line(&args.files, |name, n, line| {
            match serde_json::from_slice::<Map<String, Value>>(line) {
                Ok(item) => inf.add_item(&item),
                Err(e) => {
                    skipped += 1;
                    eprintln!("dynamo-flatten schema evolve: {name}:{n}: skipped (not a JSON object): {e}");
                }
            }
        })?;
        if skipped > 0 {
            eprintln!("dynamo-flatten schema evolve: {skipped} lines skipped");
        }
    }
    let opts = args.types.options();
    let add = specs
        .into_iter()
        .map(|s| match s {
            AddSpec::Typed(c) => Ok(NewColumn {
                col: Col::new(evolve::column_name(&c.name, vf, df), c.ty),
                attribute: c.name,
                note: None,
            }),
            AddSpec::Name(attr) => {
                let Some(ct) = inf.new_column_type(&attr, opts) else {
                    return Err(format!(
                        "{attr}: not in the {} _extra values read; give its type: --add '{attr} TYPE'",
                        inf.items()
                    ));
                };
                let n = inf.present(&attr);
                let seen = format!("type inferred from {n} value{}", if n == 1 { "" } else { "s" });
                let note = match ct.note {
                    Some(n) => format!("{seen}; {n}"),
                    None => seen,
                };
                let Some(ty) = ct.ty else {
                    return Err(format!("{attr}: {note}"));
                };
                Ok(NewColumn {
                    col: Col::new(evolve::column_name(&attr, vf, df), ty),
                    attribute: attr,
                    note: Some(note),
                })
            }
        })
        .collect::<Result<Vec<_>, String>>()?;
    let evolution = Evolution {
        table: args.table.clone(),
        keys: evolve::current_keys(&args.columns).map_err(|e| e.to_string())?,
        columns,
        add,
        version_field: vf.clone(),
        deleted_field: df.clone(),
        views: match args.views {
            ViewsArg::ModifyQuery => ViewChange::ModifyQuery,
            ViewsArg::Recreate => ViewChange::Recreate,
        },
        cluster: args.cluster.clone(),
    };
    print(&evolution.render().map_err(|e| e.to_string())?)
}
