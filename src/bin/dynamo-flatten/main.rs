//! `dynamo-flatten`: the ClickHouse executable UDF, and a line filter for the shell.

mod schema_cmd;

use std::io;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use dynamo_flatten::flatten::{
    self, ColumnPlan, Flattener, KinesisBinary, NumberFormat, ShapeHint,
};
use dynamo_flatten::udf::{self, Format, OnError};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ABOUT: &str = "Turns DynamoDB JSON into plain JSON, one row per row.";

const LONG_ABOUT: &str = "\
Turns DynamoDB JSON into plain JSON, one row per row: a ClickHouse executable UDF
(RowBinary or TabSeparated on stdin/stdout) and a line filter for the shell.

Each input row is one document: a bare item {\"id\":{\"S\":\"a\"},...}, a full-export
line {\"Item\":{...}}, an incremental-export line, a Kinesis Data Streams for DynamoDB
record or a DynamoDB Streams record. The shape is detected from the document.

Each output row is one JSON object: the item's attributes (the new image, or for a
delete the old image or the keys) plus a version (microseconds since the epoch;
--snapshot-version for export lines) and a delete flag. A row that cannot be read
gives an error row {\"_error\":\"<reason> at byte N\",\"_input\":\"<first bytes>\"},
or with --on-error fail stops the query.";

const AFTER_HELP: &str = "\
Examples:
  zcat export/data/*.json.gz | dynamo-flatten --lines
  dynamo-flatten --lines --numbers string < changes.jsonl

  In ClickHouse, after registering clickhouse-config/dynamo_flatten_function.xml:
    SELECT dynamo_flatten(line) FROM file('data/*.json.gz', 'LineAsString')";

#[derive(Parser, Debug)]
#[command(name = "dynamo-flatten", version, about = ABOUT, long_about = LONG_ABOUT, after_help = AFTER_HELP)]
#[command(args_conflicts_with_subcommands = true)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,

    /// Row format on stdin and stdout: RowBinary and TabSeparated as ClickHouse
    /// sends them, or plain lines (one document per line).
    #[arg(long, value_enum, default_value_t = FormatArg::RowBinary, ignore_case = true)]
    format: FormatArg,

    /// Same as --format lines: read JSON lines, write JSON lines.
    #[arg(long, conflicts_with = "format")]
    lines: bool,

    /// Each block starts with its row count and a newline (send_chunk_header=1
    /// in the function config).
    #[arg(long)]
    chunk_header: bool,

    /// What a bad row gives: an error row, or a failed query.
    #[arg(long, value_enum, default_value_t = OnErrorArg::Row)]
    on_error: OnErrorArg,

    /// How N values are written: JSON numbers (26), or JSON strings ("26"),
    /// which ClickHouse reads exactly into Decimal columns.
    #[arg(long, value_enum, default_value_t = NumbersArg::Number)]
    numbers: NumbersArg,

    /// Name of the version field (UInt64 microseconds since the epoch).
    #[arg(long, default_value = "version", value_name = "NAME")]
    version_field: String,

    /// Name of the delete-flag field (1 for deletes, else 0).
    #[arg(long, default_value = "is_deleted", value_name = "NAME")]
    deleted_field: String,

    /// Version given to bare items and full-export lines.
    #[arg(long, default_value_t = 0, value_name = "N")]
    snapshot_version: u64,

    /// Write the attributes only, without the version and delete-flag fields.
    #[arg(long)]
    no_metadata: bool,

    /// Expect this document shape instead of detecting it (e.g. a bare item
    /// whose only attribute is named Item).
    #[arg(long, value_enum, default_value_t = ShapeArg::Auto)]
    shape: ShapeArg,

    /// B values in Kinesis Data Streams records are base64 of the base64 text:
    /// unwrap removes one layer so they match the export, as-is keeps them.
    #[arg(long, value_enum, default_value_t = KinesisBinaryArg::Unwrap)]
    kinesis_binary: KinesisBinaryArg,

    /// The destination's columns, e.g. 'id String, qty Int64, price Decimal(38, 2)':
    /// each attribute is converted exactly to its column's type, and every attribute
    /// without a column, or whose value does not fit it, is kept as DynamoDB JSON in
    /// "_extra". Columns named _extra or like the metadata fields are skipped, so the
    /// destination's whole list may be given. A value in SQL quotes ('…') is unquoted.
    #[arg(long, value_name = "LIST", conflicts_with = "columns_arg")]
    columns: Option<String>,

    /// Each row has a second value, the column list (as for --columns): for a function
    /// called as dynamo_flatten_columns(line, 'id String, …'). The list is parsed again
    /// only when it changes.
    #[arg(long)]
    columns_arg: bool,

    /// The code that flattens plain rows: scalar, swar, sse2, avx2 or avx512. All write
    /// the same bytes; the default is the fastest this CPU runs.
    #[arg(
        long,
        value_name = "NAME",
        env = "DYNAMO_FLATTEN_KERNEL",
        hide_env_values = true
    )]
    kernel: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the ClickHouse tables and views for a DynamoDB table, with column
    /// types inferred from sample documents.
    Schema(schema_cmd::SchemaArgs),
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum FormatArg {
    #[value(name = "RowBinary")]
    RowBinary,
    #[value(name = "TabSeparated", alias = "TSV")]
    TabSeparated,
    #[value(name = "lines")]
    Lines,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum OnErrorArg {
    Row,
    Fail,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum NumbersArg {
    Number,
    String,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ShapeArg {
    Auto,
    Item,
    Export,
    Incremental,
    Change,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum KinesisBinaryArg {
    Unwrap,
    AsIs,
}

impl Args {
    fn flatten_options(&self) -> flatten::Options {
        flatten::Options {
            numbers: match self.numbers {
                NumbersArg::Number => NumberFormat::Number,
                NumbersArg::String => NumberFormat::String,
            },
            metadata: !self.no_metadata,
            version_field: self.version_field.clone(),
            deleted_field: self.deleted_field.clone(),
            snapshot_version: self.snapshot_version,
            shape: match self.shape {
                ShapeArg::Auto => ShapeHint::Auto,
                ShapeArg::Item => ShapeHint::Item,
                ShapeArg::Export => ShapeHint::Export,
                ShapeArg::Incremental => ShapeHint::Incremental,
                ShapeArg::Change => ShapeHint::Change,
            },
            kinesis_binary: match self.kinesis_binary {
                KinesisBinaryArg::Unwrap => KinesisBinary::Unwrap,
                KinesisBinaryArg::AsIs => KinesisBinary::AsIs,
            },
            columns: None,
        }
    }

    fn udf_config(&self) -> udf::Config {
        udf::Config {
            format: if self.lines {
                Format::Lines
            } else {
                match self.format {
                    FormatArg::RowBinary => Format::RowBinary,
                    FormatArg::TabSeparated => Format::TabSeparated,
                    FormatArg::Lines => Format::Lines,
                }
            },
            chunk_header: self.chunk_header,
            on_error: match self.on_error {
                OnErrorArg::Row => OnError::Row,
                OnErrorArg::Fail => OnError::Fail,
            },
            columns_arg: self.columns_arg,
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(Command::Schema(schema)) = &args.command {
        return match schema_cmd::run(schema) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("dynamo-flatten schema: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if let Err(e) = flatten::check_field_names(&args.version_field, &args.deleted_field) {
        eprintln!("dynamo-flatten: {e}");
        return ExitCode::from(2);
    }
    let mut options = args.flatten_options();
    if let Some(list) = &args.columns {
        match ColumnPlan::parse(&flatten::unquote_sql(list)) {
            Ok(plan) => options.columns = Some(Arc::new(plan)),
            Err(e) => {
                eprintln!("dynamo-flatten: --columns: {e}");
                return ExitCode::from(2);
            }
        }
    }
    if args.columns_arg && args.udf_config().format == Format::Lines {
        eprintln!(
            "dynamo-flatten: --columns-arg needs two values per row: RowBinary or TabSeparated"
        );
        return ExitCode::from(2);
    }
    let mut flattener = Flattener::new(options);
    if let Some(name) = &args.kernel {
        let chosen = flatten::Kernel::from_name(name).is_some_and(|k| flattener.set_kernel(k));
        if !chosen {
            eprintln!("dynamo-flatten: --kernel {name}: not a kernel this CPU runs");
            return ExitCode::from(2);
        }
    }
    // Unbuffered handles: the framing writes whole batches and flushes them itself.
    let (input, output) = match raw_stdio() {
        Ok(io) => io,
        Err(e) => {
            eprintln!("dynamo-flatten: {e}");
            return ExitCode::FAILURE;
        }
    };
    match udf::run(args.udf_config(), &mut flattener, input, output) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dynamo-flatten: {e}");
            ExitCode::FAILURE
        }
    }
}

/// stdin and stdout as plain files, without the standard library's line
/// buffering on stdout.
fn raw_stdio() -> io::Result<(std::fs::File, std::fs::File)> {
    use std::os::fd::AsFd;
    let input = io::stdin().as_fd().try_clone_to_owned()?;
    let output = io::stdout().as_fd().try_clone_to_owned()?;
    Ok((input.into(), output.into()))
}
