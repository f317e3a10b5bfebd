//! `kinesis-forwarder`: the change stream of a DynamoDB table (its Kinesis data stream or
//! its DynamoDB stream) into ClickHouse.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgGroup, Parser, ValueEnum};
use dynamo_flatten::flatten::Options;
use dynamo_flatten::forwarder::config::{
    BatchLimits, ClickHouse, Config, ExpiredCheckpoint, FlattenMode, Secret, SourceKind,
    StartPosition,
};
use dynamo_flatten::forwarder::health;
use dynamo_flatten::forwarder::service::Stop;
use dynamo_flatten::forwarder::stats::{self, Stats};
use dynamo_flatten::forwarder::{self, Error};
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ABOUT: &str = "Keeps a ClickHouse copy of a DynamoDB table in sync from its Kinesis data \
                     stream or its DynamoDB stream.";

const LONG_ABOUT: &str = "\
Keeps a ClickHouse copy of a DynamoDB table in sync from its Kinesis data stream
(--stream) or its DynamoDB stream (--dynamodb-stream ARN, or --dynamodb-table NAME for
the table's latest stream). A DynamoDB stream must carry new images (NEW_AND_OLD_IMAGES
or NEW_IMAGE); its records are written as DynamoDB Streams JSON (the record of a Lambda
event), which dynamo_flatten reads like the Kinesis records.

Reads every shard of the stream (following splits and merges: a child shard is read
after its parents are finished) and inserts every record into ClickHouse in batches.
By default the raw records go into the stream landing table (<table>_stream, from
sql/05_stream.sql), whose materialized view flattens them on the server. With
--flatten local the records are flattened here, with the same code and the same column
plan as dynamo_flatten_columns: the destination's columns, read with DESCRIBE TABLE at
start-up. Each attribute goes into its column, converted exactly to the column's type,
or else into the row's _extra column (which the table must have), and the flat rows go
straight into <table>; records that cannot be read go to the errors table.

After each batch is inserted, the last sequence number of each shard in it is written
to the checkpoint table (sql/10_kinesis_checkpoints.sql); a restart goes on from there.
Each insert carries a deduplication token, the same on every retry: with the shipped
tables (non_replicated_deduplication_window) a retried insert lands once. Across a crash
delivery is at least once, and the destination's ReplacingMergeTree(version, is_deleted)
makes a repeated record harmless.

Only errors that can come from the rows alone (parse and type errors, a view's throwIf,
…) send a record to the errors table; every other fault is retried without end, and
when record after record is refused the dead-letter breaker stops dead-lettering.

AWS credentials and region come from the usual places (environment, profile, instance
role). Secrets are never logged; give the ClickHouse password with CLICKHOUSE_PASSWORD
or --clickhouse-password-file rather than on the command line.";

const AFTER_HELP: &str = "\
Examples:
  # Follow the stream, raw records into people_stream (its view flattens them):
  kinesis-forwarder --stream people-changes --table people \\
      --clickhouse-url http://clickhouse:8123

  # Over HTTPS, to a server whose certificate a private CA signed:
  kinesis-forwarder --stream people-changes --table people \\
      --clickhouse-url https://clickhouse.internal:8443 --clickhouse-ca-file /etc/ssl/private-ca.pem

  # Flatten here, for a server without executable UDFs; JSON logs and metrics:
  kinesis-forwarder --stream arn:aws:kinesis:eu-west-1:123456789012:stream/people-changes \\
      --table people --flatten local --log-format json --metrics-addr 0.0.0.0:9464

  # The same, into a table whose metadata columns are named v and d:
  kinesis-forwarder --stream people-changes --table people --flatten local \\
      --version-field v --deleted-field d

  # Drain what the stream holds now, then exit (scripts, tests), against local emulators:
  kinesis-forwarder --stream people-changes --table people --once \\
      --endpoint-url http://127.0.0.1:4567 --region us-east-1

  # The table's own DynamoDB stream (24 hours of changes, no extra cost):
  kinesis-forwarder --dynamodb-table people --table people \\
      --clickhouse-url http://clickhouse:8123

  # Two processes sharing the shards:
  kinesis-forwarder ... --workers 2 --worker-index 0
  kinesis-forwarder ... --workers 2 --worker-index 1

Exit status: 0 when done or stopped by SIGTERM/SIGINT after sending the open batch;
1 on an error while running (an expired checkpoint, a stream deleted, a stop that came
before the open batch was sent); 2 on bad flags; 3 when start-up finds what no retry can
fix (ClickHouse refuses the user or password, an unknown database, a missing table or
stream, a destination the rows cannot go into, a certificate that is not trusted).
Once running, every ClickHouse and Kinesis fault is retried without end.";

#[derive(Parser, Debug)]
#[command(name = "kinesis-forwarder", version, about = ABOUT, long_about = LONG_ABOUT, after_help = AFTER_HELP)]
#[command(group(ArgGroup::new("source").required(true).multiple(false)))]
struct Args {
    /// Kinesis data stream name or ARN (the table's Kinesis streaming destination).
    #[arg(
        long,
        env = "KINESIS_STREAM",
        value_name = "NAME|ARN",
        group = "source"
    )]
    stream: Option<String>,

    /// DynamoDB stream ARN (the table's own stream), instead of --stream.
    #[arg(
        long,
        env = "DYNAMODB_STREAM_ARN",
        value_name = "ARN",
        group = "source"
    )]
    dynamodb_stream: Option<String>,

    /// DynamoDB table whose latest DynamoDB stream is read (found with ListStreams), instead
    /// of --stream. Its checkpoints are kept under the stream's ARN.
    #[arg(long, env = "DYNAMODB_TABLE", value_name = "NAME", group = "source")]
    dynamodb_table: Option<String>,

    /// Kinesis or DynamoDB Streams endpoint, for local emulators (default: the region's).
    #[arg(long, env = "KINESIS_ENDPOINT_URL", value_name = "URL")]
    endpoint_url: Option<String>,

    /// AWS region (default: from the environment or profile).
    #[arg(long, env = "AWS_REGION")]
    region: Option<String>,

    /// Where shards without a checkpoint start (at-timestamp: Kinesis only).
    #[arg(long, value_enum, default_value_t = StartArg::TrimHorizon)]
    start: StartArg,

    /// Time for --start at-timestamp (RFC 3339, e.g. 2026-11-24T08:00:00Z).
    #[arg(long, value_name = "TIME", required_if_eq("start", "at-timestamp"))]
    start_timestamp: Option<String>,

    /// A checkpoint older than the stream's retention means lost changes: stop (and
    /// reload the snapshot), or go on from the oldest record the stream holds.
    #[arg(long, value_enum, default_value_t = ExpiredArg::Fail)]
    on_expired_checkpoint: ExpiredArg,

    /// ClickHouse HTTP interface: http://HOST:8123, or https://HOST:8443 for TLS (the
    /// server's certificate is verified against the system's root certificates, from
    /// SSL_CERT_FILE or SSL_CERT_DIR if set, and those of --clickhouse-ca-file).
    #[arg(
        long,
        env = "CLICKHOUSE_URL",
        default_value = "http://localhost:8123",
        value_name = "URL"
    )]
    clickhouse_url: String,

    /// PEM file of one or more CA certificates trusted for an https:// --clickhouse-url, in
    /// addition to the system's root certificates (a private CA, a self-signed server).
    #[arg(long, env = "CLICKHOUSE_CA_FILE", value_name = "PATH")]
    clickhouse_ca_file: Option<PathBuf>,

    /// ClickHouse user.
    #[arg(long, env = "CLICKHOUSE_USER", default_value = "default")]
    clickhouse_user: String,

    /// ClickHouse password (prefer the environment variable or a file).
    #[arg(
        long,
        env = "CLICKHOUSE_PASSWORD",
        hide_env_values = true,
        value_name = "PASSWORD"
    )]
    clickhouse_password: Option<String>,

    /// File holding the ClickHouse password (trailing newline ignored).
    #[arg(
        long,
        env = "CLICKHOUSE_PASSWORD_FILE",
        value_name = "PATH",
        conflicts_with = "clickhouse_password"
    )]
    clickhouse_password_file: Option<PathBuf>,

    /// The longest an insert may take (sending its rows and waiting for the answer) before
    /// it is given up and retried.
    #[arg(long, default_value = "180s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    clickhouse_timeout: Duration,

    /// ClickHouse database (default: the user's default database).
    #[arg(long, env = "CLICKHOUSE_DATABASE", value_name = "NAME")]
    clickhouse_database: Option<String>,

    /// Compression of insert bodies.
    #[arg(long, value_enum, default_value_t = CompressionArg::Lz4)]
    compression: CompressionArg,

    /// Destination table (ReplacingMergeTree(version, is_deleted)), e.g. people.
    #[arg(long, env = "FORWARDER_TABLE", value_name = "NAME")]
    table: String,

    /// Stream landing table for --flatten server [default: <table>_stream].
    #[arg(long, value_name = "NAME")]
    stream_table: Option<String>,

    /// Errors table (sql/02_flat_and_errors.sql).
    #[arg(long, default_value = "dynamo_errors", value_name = "NAME")]
    errors_table: String,

    /// Checkpoint table (sql/10_kinesis_checkpoints.sql).
    #[arg(long, default_value = "kinesis_checkpoints", value_name = "NAME")]
    checkpoint_table: String,

    /// Do not create the checkpoint table at start-up (it must exist).
    #[arg(long)]
    no_create_checkpoint_table: bool,

    /// Where records are flattened: by the server's function (raw records into the stream
    /// table), or here (flat rows into the destination table, with the column plan of
    /// dynamo_flatten_columns read from the destination: it needs an _extra column).
    #[arg(long, value_enum, default_value_t = FlattenArg::Server)]
    flatten: FlattenArg,

    /// --flatten local: the destination's version column (UInt64, microseconds since the
    /// epoch of the change), as dynamo-flatten's --version-field. An attribute of that name
    /// is written as item_<NAME>. (With --flatten server the server's function names it.)
    #[arg(
        long,
        env = "FORWARDER_VERSION_FIELD",
        default_value = "version",
        value_name = "NAME"
    )]
    version_field: String,

    /// --flatten local: the destination's delete-flag column (1 for a REMOVE, else 0), as
    /// dynamo-flatten's --deleted-field. An attribute of that name is written as
    /// item_<NAME>. (With --flatten server the server's function names it.)
    #[arg(
        long,
        env = "FORWARDER_DELETED_FIELD",
        default_value = "is_deleted",
        value_name = "NAME"
    )]
    deleted_field: String,

    /// Send a batch when it holds this many records.
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    batch_rows: usize,

    /// Send a batch when it holds this many bytes of records.
    #[arg(long, default_value_t = 16 << 20, value_name = "BYTES")]
    batch_bytes: usize,

    /// Send a batch at the latest this long after its first record arrived.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    batch_linger: Duration,

    /// Records read but not yet inserted, at most; reading pauses above it.
    #[arg(long, default_value_t = 128 << 20, value_name = "BYTES")]
    max_buffer_bytes: usize,

    /// Read every shard to its current end, send, checkpoint, and exit.
    #[arg(long)]
    once: bool,

    /// Number of forwarder processes sharing the stream's shards.
    #[arg(long, env = "FORWARDER_WORKERS", default_value_t = 1, value_name = "N")]
    workers: u32,

    /// This process's index among --workers (0-based).
    #[arg(
        long,
        env = "FORWARDER_WORKER_INDEX",
        default_value_t = 0,
        value_name = "I"
    )]
    worker_index: u32,

    /// How often the shard list is read again.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    discovery_interval: Duration,

    /// Wait before asking again a shard that returned no records.
    #[arg(long, default_value = "500ms", value_parser = humantime::parse_duration, value_name = "DURATION")]
    idle_poll: Duration,

    /// Records per GetRecords call (1..=10000; DynamoDB Streams gives at most 1000).
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    records_per_call: i32,

    /// After SIGTERM/SIGINT, how long sending the open batch may take before it is given
    /// up (not checkpointed: it is read again at the next start).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    shutdown_timeout: Duration,

    /// Serve Prometheus metrics (/metrics), /healthz and /readyz on this address.
    #[arg(long, env = "FORWARDER_METRICS_ADDR", value_name = "ADDR:PORT")]
    metrics_addr: Option<SocketAddr>,

    /// /readyz fails when records wait and no batch was delivered for this long.
    #[arg(long, default_value = "5min", value_parser = humantime::parse_duration, value_name = "DURATION")]
    ready_stall: Duration,

    /// Records refused one after another (alone, with the same error code, nothing accepted
    /// in between) that open the dead-letter breaker: ClickHouse is then taken to be at
    /// fault, nothing more goes to the errors table, and the records are retried until it
    /// accepts them.
    #[arg(long, default_value_t = 3, value_name = "N")]
    breaker_after: u32,

    /// Log format on stderr. Levels with RUST_LOG (default info).
    #[arg(long, value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,

    /// One-line progress display on stderr.
    #[arg(long, value_enum, default_value_t = ProgressArg::Auto)]
    progress: ProgressArg,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum StartArg {
    TrimHorizon,
    Latest,
    AtTimestamp,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ExpiredArg {
    Fail,
    TrimHorizon,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum CompressionArg {
    Lz4,
    None,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum FlattenArg {
    Server,
    Local,
}

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ProgressArg {
    Auto,
    Always,
    Never,
}

fn config(args: Args) -> Result<Config, Error> {
    let start = match args.start {
        StartArg::TrimHorizon => StartPosition::TrimHorizon,
        StartArg::Latest => StartPosition::Latest,
        StartArg::AtTimestamp => {
            let text = args.start_timestamp.as_deref().unwrap_or_default();
            let t = humantime::parse_rfc3339_weak(text)
                .map_err(|e| Error::Config(format!("--start-timestamp {text:?}: {e}")))?;
            StartPosition::AtTimestamp(t)
        }
    };
    let password = match (&args.clickhouse_password, &args.clickhouse_password_file) {
        (Some(p), _) => p.clone(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| {
                Error::Config(format!(
                    "--clickhouse-password-file {}: {e}",
                    path.display()
                ))
            })?
            .trim_end_matches(['\n', '\r'])
            .to_string(),
        (None, None) => String::new(),
    };
    let progress = match args.progress {
        ProgressArg::Always => true,
        ProgressArg::Never => false,
        ProgressArg::Auto => args.log_format == LogFormat::Human && std::io::stderr().is_terminal(),
    };
    let flatten_options = Options {
        version_field: args.version_field,
        deleted_field: args.deleted_field,
        ..Options::default()
    };
    let (stream, source) = match (args.stream, args.dynamodb_stream, args.dynamodb_table) {
        (Some(s), _, _) => (s, SourceKind::Kinesis),
        (None, Some(arn), _) => (arn, SourceKind::DynamoStream),
        (None, None, Some(table)) => (table, SourceKind::DynamoTable),
        (None, None, None) => {
            return Err(Error::Config(
                "one of --stream, --dynamodb-stream or --dynamodb-table is needed".into(),
            ))
        }
    };
    Ok(Config {
        stream,
        source,
        endpoint_url: args.endpoint_url,
        region: args.region,
        start,
        expired_checkpoint: match args.on_expired_checkpoint {
            ExpiredArg::Fail => ExpiredCheckpoint::Fail,
            ExpiredArg::TrimHorizon => ExpiredCheckpoint::TrimHorizon,
        },
        clickhouse: ClickHouse {
            url: args.clickhouse_url,
            ca_file: args.clickhouse_ca_file,
            user: args.clickhouse_user,
            password: Secret::new(password),
            database: args.clickhouse_database,
            lz4: matches!(args.compression, CompressionArg::Lz4),
            stream_table: args
                .stream_table
                .unwrap_or_else(|| format!("{}_stream", args.table)),
            table: args.table,
            errors_table: args.errors_table,
            checkpoint_table: args.checkpoint_table,
            create_checkpoint_table: !args.no_create_checkpoint_table,
            timeout: args.clickhouse_timeout,
        },
        flatten: match args.flatten {
            FlattenArg::Server => FlattenMode::Server,
            FlattenArg::Local => FlattenMode::Local,
        },
        flatten_options,
        batch: BatchLimits {
            max_rows: args.batch_rows,
            max_bytes: args.batch_bytes,
            linger: args.batch_linger,
        },
        max_buffer_bytes: args.max_buffer_bytes,
        once: args.once,
        workers: args.workers,
        worker_index: args.worker_index,
        discovery_interval: args.discovery_interval,
        idle_poll: args.idle_poll,
        records_per_call: args.records_per_call,
        shutdown_timeout: args.shutdown_timeout,
        metrics_addr: args.metrics_addr,
        progress,
        breaker_after: args.breaker_after,
        ready_stall: args.ready_stall,
    })
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// SIGTERM or SIGINT: graceful shutdown; a second one, or the shutdown timeout: hard stop.
async fn watch_signals(stop: Stop, timeout: Duration) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        error!("cannot install signal handlers");
        return;
    };
    tokio::select! {
        _ = term.recv() => info!("SIGTERM received"),
        _ = int.recv() => info!("SIGINT received"),
    }
    stop.shutdown.cancel();
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
        _ = tokio::time::sleep(timeout) => {}
    }
    stop.hard_stop.cancel();
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(args.log_format);
    let cfg = match config(args) {
        Ok(c) => c,
        Err(e) => {
            error!("{e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = cfg.validate() {
        error!("{e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            error!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let stats = Stats::new();
        if let Some(addr) = cfg.metrics_addr {
            let served = match stats::install_metrics() {
                Ok(handle) => health::serve(addr, handle, stats.clone(), cfg.ready_stall).await,
                Err(e) => Err(e),
            };
            if let Err(e) = served {
                error!("{e}");
                return ExitCode::from(e.exit_code());
            }
            info!(%addr, "serving /metrics, /healthz and /readyz");
        }
        let stop = Stop::default();
        tokio::spawn(watch_signals(stop.clone(), cfg.shutdown_timeout));
        let progress_stop = CancellationToken::new();
        let progress = cfg
            .progress
            .then(|| tokio::spawn(stats::progress(stats.clone(), progress_stop.clone())));
        let result = forwarder::run(cfg, stop, stats).await;
        progress_stop.cancel();
        if let Some(p) = progress {
            let _ = p.await;
        }
        match result {
            Ok(s) => {
                info!(
                    records = s.records_inserted,
                    batches = s.batches,
                    error_rows = s.error_rows,
                    shards_ended = s.shards_ended,
                    "stopped"
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                error!("{e}");
                ExitCode::from(e.exit_code())
            }
        }
    })
}
