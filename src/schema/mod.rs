//! The schema generator: column types inferred from sample items, and the
//! SQL that creates the destination, the flatten/errors fan-out, the stream
//! landing table and the snapshot load for them; and the SQL that adds columns later
//! ([`evolve`]). With a cluster name, the same for a ClickHouse cluster ([`cluster`]).
//!
//! The SQL has the same shape as the scripts in `sql/`:
//!
//! ```text
//! s3(…) / <t>_stream ──dynamo_flatten_columns once──▶ <t>_flat (Null) ─┬─▶ <t>              (good rows)
//!                                                                       └─▶ dynamo_errors   (error rows)
//! ```
//!
//! The column list is a string literal in the SQL (the function's second argument), so one
//! function serves every table and a schema change is SQL only. Attributes without a
//! column, or whose value does not fit it, land in the `_extra` column as DynamoDB JSON.

pub mod cluster;
pub mod evolve;
mod infer;

pub use infer::{
    ColumnType, Documents, InferOptions, Inferrer, Missing, MIN_DATETIME_PRECISION, MIN_SCALE,
};

use std::fmt::Write as _;

use crate::flatten::RENAMED_PREFIX;

use cluster::Layout;
pub use cluster::{BadClusterName, ClusterName};

/// The column-aware function: `dynamo_flatten_columns(line, '<column list>')`.
pub const FUNCTION: &str = "dynamo_flatten_columns";

/// The destination column holding the attributes that have no column or did not fit it.
pub const EXTRA_COLUMN: &str = crate::flatten::EXTRA_FIELD;

/// What to generate.
#[derive(Clone, Debug)]
pub struct Spec {
    pub table: String,
    pub partition_key: String,
    pub sort_key: Option<String>,
    pub version_field: String,
    pub deleted_field: String,
    /// The export's data files, e.g. `https://bucket.s3.amazonaws.com/prefix/AWSDynamoDB/<id>/data/*.json.gz`.
    pub s3_url: String,
    pub s3_auth: S3Auth,
    /// A cluster to generate for (`--cluster`): `ON CLUSTER`, Replicated engines, Distributed
    /// tables, `s3Cluster`; `None` for one server.
    pub cluster: Option<ClusterName>,
}

/// How the snapshot load signs its S3 requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum S3Auth {
    /// Access key and secret as query parameters `{access_key_id:String}`,
    /// `{secret_access_key:String}` (`clickhouse-client --param_access_key_id=…`).
    #[default]
    Keys,
    /// Unsigned requests, for a public bucket.
    NoSign,
    /// No credentials in the query: the server's own (environment, role, config).
    Server,
}

/// A problem with the sample or the keys.
#[derive(Debug, PartialEq, Eq)]
pub enum SchemaError {
    NoItems,
    KeyNotFound {
        role: &'static str,
        name: String,
    },
    /// No ClickHouse type holds every value of the key exactly.
    KeyUntyped {
        role: &'static str,
        name: String,
    },
}

impl std::fmt::Display for SchemaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SchemaError::NoItems => f.write_str("the sample holds no items"),
            SchemaError::KeyNotFound { role, name } => {
                write!(
                    f,
                    "{role} \"{name}\" is not an attribute of the sample items"
                )
            }
            SchemaError::KeyUntyped { role, name } => write!(
                f,
                "{role} \"{name}\": no ClickHouse column type holds its values exactly"
            ),
        }
    }
}

impl std::error::Error for SchemaError {}

/// `name` as a ClickHouse identifier in backquotes.
pub fn ident(name: &str) -> String {
    format!("`{}`", name.replace('\\', "\\\\").replace('`', "\\`"))
}

/// `s` as a ClickHouse string literal.
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// One column of the destination: its name as the function writes it, and its type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Col {
    pub name: String,
    pub ty: String,
}

impl Col {
    pub fn new(name: impl Into<String>, ty: impl Into<String>) -> Col {
        Col {
            name: name.into(),
            ty: ty.into(),
        }
    }
}

/// The column list the function takes: `` `id` String, `age` Int64 `` (every name
/// backquoted, so any name works). Written into the SQL with [`literal`].
pub fn column_list(cols: &[Col]) -> String {
    let parts: Vec<String> = cols
        .iter()
        .map(|c| format!("{} {}", ident(&c.name), c.ty))
        .collect();
    parts.join(", ")
}

/// What JSONExtract reads the function's output with: the attribute columns, `_extra` and
/// the metadata, in the destination's order.
pub fn tuple_type(cols: &[Col], version_field: &str, deleted_field: &str) -> String {
    let mut all = cols.to_vec();
    all.extend(meta_cols(version_field, deleted_field));
    format!("Tuple({})", column_list(&all))
}

/// `_extra`, version and the delete flag: the columns after the attributes.
fn meta_cols(version_field: &str, deleted_field: &str) -> [Col; 3] {
    [
        Col::new(EXTRA_COLUMN, "String"),
        Col::new(version_field, "UInt64"),
        Col::new(deleted_field, "UInt8"),
    ]
}

/// The SELECT of `<t>_flat_mv`: the good rows of `<t>_flat`, typed by name.
pub fn flat_view_select(
    table: &str,
    cols: &[Col],
    version_field: &str,
    deleted_field: &str,
) -> String {
    let mut all = cols.to_vec();
    all.extend(meta_cols(version_field, deleted_field));
    let picks: Vec<String> = all
        .iter()
        .enumerate()
        .map(|(i, c)| format!("t.{} AS {}", i + 1, ident(&c.name)))
        .collect();
    format!(
        "SELECT {}\nFROM (SELECT JSONExtract(j, {}) AS t FROM {} WHERE NOT startsWith(j, '{{\"_error\"'))",
        picks.join(", "),
        literal(&tuple_type(cols, version_field, deleted_field)),
        ident(&format!("{table}_flat"))
    )
}

/// The list the function takes for a table: the columns, then `PRIMARY KEY (…)` naming
/// the key columns, so that an item whose key does not fit is an error row instead of a
/// row with a default key.
pub fn function_list(cols: &[Col], keys: &[String]) -> String {
    let list = column_list(cols);
    if keys.is_empty() {
        return list;
    }
    let keys: Vec<String> = keys.iter().map(|k| ident(k)).collect();
    format!("{list}, PRIMARY KEY ({})", keys.join(", "))
}

/// `dynamo_flatten_columns(<arg>, '<list>')`.
pub fn function_call(arg: &str, cols: &[Col], keys: &[String]) -> String {
    format!("{FUNCTION}({arg}, {})", literal(&function_list(cols, keys)))
}

/// The SELECT of `<t>_stream_mv`: every record through the function, into `<t>_flat`.
pub fn stream_view_select(table: &str, cols: &[Col], keys: &[String]) -> String {
    format!(
        "SELECT 'stream' AS source, record AS line, {} AS j FROM {}",
        function_call("record", cols, keys),
        ident(&format!("{table}_stream"))
    )
}

/// The destination's columns, inferred over the sample: keys first, then the other
/// attributes as first seen; the ones without a type stay in the list (as comments).
struct Plan {
    types: Vec<ColumnType>,
    cols: Vec<Col>,
    key_names: Vec<String>,
}

/// The partition key and the sort key, with their roles.
fn spec_keys(spec: &Spec) -> Vec<(&'static str, &str)> {
    std::iter::once(("partition key", &*spec.partition_key))
        .chain(spec.sort_key.as_deref().map(|k| ("sort key", k)))
        .collect()
}

/// The columns for `spec` from the types inferred over the sample.
fn plan(spec: &Spec, inf: &Inferrer, opts: InferOptions) -> Result<Plan, SchemaError> {
    if inf.items() == 0 {
        return Err(SchemaError::NoItems);
    }
    let keys = spec_keys(spec);
    for (role, k) in &keys {
        if !inf.names().any(|n| n == *k) {
            return Err(SchemaError::KeyNotFound {
                role,
                name: k.to_string(),
            });
        }
    }

    // Keys first, then the other attributes as first seen, then the metadata.
    let mut types: Vec<ColumnType> = inf.column_types(opts);
    // A key value that does not fit would leave the key at its default and merge rows of
    // different items: keys get the widest defaults, whatever the options.
    let key_types = inf.column_types(InferOptions {
        floats: false,
        narrow: false,
        datetimes: false,
        ..opts
    });
    let key_rank = |n: &str| keys.iter().position(|(_, k)| *k == n).unwrap_or(keys.len());
    for (c, k) in types.iter_mut().zip(key_types) {
        let rank = key_rank(&c.name);
        if rank < keys.len() {
            let Some(ty) = k.ty else {
                return Err(SchemaError::KeyUntyped {
                    role: keys[rank].0,
                    name: c.name.clone(),
                });
            };
            // Keys are never missing in DynamoDB.
            let ty = match ty
                .strip_prefix("Nullable(")
                .and_then(|t| t.strip_suffix(')'))
            {
                Some(inner) => inner.to_string(),
                None => ty,
            };
            c.ty = Some(ty);
            c.note = k.note;
        }
    }
    types.sort_by_key(|c| key_rank(&c.name));
    for c in types.iter_mut() {
        // The function writes an attribute named like a metadata field under a new name.
        if c.name == spec.version_field || c.name == spec.deleted_field {
            let renamed = format!("attribute \"{}\" renamed by the function", c.name);
            c.note = Some(match c.note.take() {
                Some(n) => format!("{renamed}; {n}"),
                None => renamed,
            });
            c.name = format!("{RENAMED_PREFIX}{}", c.name);
        }
    }
    let cols: Vec<Col> = types
        .iter()
        .filter_map(|c| c.ty.as_ref().map(|t| Col::new(c.name.clone(), t.clone())))
        .collect();
    let key_names: Vec<String> = keys.iter().map(|(_, k)| k.to_string()).collect();
    Ok(Plan {
        types,
        cols,
        key_names,
    })
}

/// The SQL for `spec`, from the types inferred over the sample.
pub fn render(spec: &Spec, inf: &Inferrer, opts: InferOptions) -> Result<String, SchemaError> {
    let plan = plan(spec, inf, opts)?;
    let layout = Layout {
        cluster: spec.cluster.as_ref(),
    };
    let mut s = String::new();
    write_header(&mut s, spec, inf.items(), &plan);
    write_destination(&mut s, spec, &plan, layout);
    write_errors(&mut s, layout);
    write_routing(&mut s, spec, &plan, layout);
    write_stream(&mut s, spec, &plan, layout);
    if let Some(c) = layout.cluster {
        cluster::write_checkpoints(&mut s, c);
    }
    write_snapshot(&mut s, spec, &plan, layout);
    Ok(s)
}

/// What the SQL is, and the column list it uses.
fn write_header(w: &mut String, spec: &Spec, items: u64, plan: &Plan) {
    let _ = writeln!(
        w,
        "-- Generated by `dynamo-flatten schema` from {items} sample items."
    );
    let _ = writeln!(
        w,
        "-- Every row goes through {FUNCTION}(line, <column list>) once. The column list (the same\n\
         -- literal in every call below; use it in any other load of this table):\n--   {}",
        literal(&function_list(&plan.cols, &plan.key_names))
    );
    let _ = writeln!(
        w,
        "-- Attributes without a column, or whose value does not fit it, land in `{EXTRA_COLUMN}` as\n\
         -- DynamoDB JSON (sql/11_drift_report.sql lists them; `dynamo-flatten schema evolve` adds\n\
         -- columns for them)."
    );
    if let Some(c) = &spec.cluster {
        cluster::write_header(w, c, &spec.table);
    }
}

/// The destination: one `ReplacingMergeTree(version, is_deleted)`, or on a cluster one
/// replicated per shard under a Distributed table.
fn write_destination(w: &mut String, spec: &Spec, plan: &Plan, layout: Layout) {
    let t = &spec.table;
    match layout.cluster {
        None => {
            let _ = writeln!(w, "\n-- Destination: the current state, read with FINAL.");
        }
        Some(_) => cluster::write_destination_comment(w, t),
    }
    let _ = writeln!(
        w,
        "CREATE TABLE IF NOT EXISTS {}{}\n(",
        ident(&layout.stored(t)),
        layout.on()
    );
    write_columns(w, spec, &plan.types);
    let order: Vec<String> = spec_keys(spec).iter().map(|(_, k)| ident(k)).collect();
    let engine = format!(
        "ReplacingMergeTree({}, {})",
        ident(&spec.version_field),
        ident(&spec.deleted_field)
    );
    match layout.cluster {
        None => {
            let _ = writeln!(
                w,
                ")\nENGINE = {engine}\nORDER BY ({})\n\
                 SETTINGS non_replicated_deduplication_window = 1000;",
                order.join(", ")
            );
        }
        Some(c) => {
            let _ = writeln!(
                w,
                ")\nENGINE = Replicated{engine}\nORDER BY ({});",
                order.join(", ")
            );
            cluster::write_destination_distributed(
                w,
                c,
                t,
                &spec.partition_key,
                spec.sort_key.as_deref(),
            );
        }
    }
}

/// The destination's column lines, padded, with their notes; the attributes without a type
/// as comments before the metadata columns.
fn write_columns(w: &mut String, spec: &Spec, types: &[ColumnType]) {
    let mut lines: Vec<(String, Option<String>)> = types
        .iter()
        .filter_map(|c| c.ty.as_ref().map(|ty| (c, ty)))
        .map(|(c, ty)| {
            (
                format!("{} {ty}", ident_padded(&c.name, types, spec)),
                c.note.clone(),
            )
        })
        .collect();
    let meta = [
        (
            format!(
                "{} String DEFAULT '{{}}'",
                ident_padded(EXTRA_COLUMN, types, spec)
            ),
            Some("attributes without a column or that did not fit it".to_string()),
        ),
        (
            format!("{} UInt64", ident_padded(&spec.version_field, types, spec)),
            Some("µs since the epoch; 0 for snapshot rows".to_string()),
        ),
        (
            format!("{} UInt8", ident_padded(&spec.deleted_field, types, spec)),
            Some("1 for deletes".to_string()),
        ),
    ];
    let first_meta = lines.len();
    lines.extend(meta);
    for (i, (line, note)) in lines.iter().enumerate() {
        if i == first_meta {
            for c in types.iter().filter(|c| c.ty.is_none()) {
                let _ = writeln!(
                    w,
                    "    -- {}: {}",
                    ident(&c.name),
                    c.note.as_deref().unwrap_or("no column type")
                );
            }
        }
        let comma = if i + 1 < lines.len() { "," } else { "" };
        let line = format!("    {line}{comma}");
        match note {
            Some(n) => {
                let _ = writeln!(w, "{line:<60} -- {n}");
            }
            None => {
                let _ = writeln!(w, "{line}");
            }
        }
    }
}

/// The columns of `dynamo_errors`, in parentheses.
const ERRORS_COLUMNS: &str = "(\n    at DateTime64(3) DEFAULT now64(3),\n    \
    `table` LowCardinality(String),\n    source LowCardinality(String),\n    error String,\n    \
    line String\n)";

/// `dynamo_errors`, shared by every destination.
fn write_errors(w: &mut String, layout: Layout) {
    if let Some(c) = layout.cluster {
        cluster::write_errors(w, c, ERRORS_COLUMNS);
        return;
    }
    let _ = writeln!(
        w,
        "\n-- Rows that could not be read, with their reason and raw input (one table for all)."
    );
    let _ = writeln!(
        w,
        "CREATE TABLE IF NOT EXISTS dynamo_errors\n{ERRORS_COLUMNS}\nENGINE = MergeTree\n\
         ORDER BY (`table`, at)\nSETTINGS non_replicated_deduplication_window = 1000;"
    );
}

/// `<t>_flat` and the two views that route its rows to the destination and `dynamo_errors`.
fn write_routing(w: &mut String, spec: &Spec, plan: &Plan, layout: Layout) {
    let t = &spec.table;
    let flat = format!("{t}_flat");
    let on = layout.on();
    let _ = writeln!(
        w,
        "\n-- Every raw row after one call of {FUNCTION}; two views route it."
    );
    if layout.cluster.is_some() {
        let _ = writeln!(
            w,
            "-- On every node, for the loads it runs: {} writes into {}, which sends\n\
             -- each row to the shard of its partition key.",
            ident(&format!("{t}_flat_mv")),
            ident(t)
        );
    }
    let _ = writeln!(
        w,
        "CREATE TABLE IF NOT EXISTS {}{on} (source LowCardinality(String), line String, j String) ENGINE = Null;",
        ident(&flat)
    );
    let _ = writeln!(
        w,
        "CREATE MATERIALIZED VIEW IF NOT EXISTS {}{on} TO {} AS\n{};",
        ident(&format!("{t}_flat_mv")),
        ident(t),
        flat_view_select(t, &plan.cols, &spec.version_field, &spec.deleted_field)
    );
    let _ = writeln!(
        w,
        "CREATE MATERIALIZED VIEW IF NOT EXISTS {}{on} TO dynamo_errors AS\nSELECT {} AS `table`, source, JSONExtractString(j, '_error') AS error, line\nFROM {} WHERE startsWith(j, '{{\"_error\"');",
        ident(&format!("{t}_errors_mv")),
        literal(t),
        ident(&flat)
    );
}

/// `<t>_stream`, where raw change records land, and its view.
fn write_stream(w: &mut String, spec: &Spec, plan: &Plan, layout: Layout) {
    let t = &spec.table;
    let on = layout.on();
    let _ = writeln!(
        w,
        "\n-- Stream: raw change records land here (one record per row), e.g. from kinesis-forwarder."
    );
    if layout.cluster.is_some() {
        let _ = writeln!(
            w,
            "-- On every node: a forwarder may insert on any of them (through a load balancer, say)."
        );
    }
    let _ = writeln!(
        w,
        "CREATE TABLE IF NOT EXISTS {}{on} (record String) ENGINE = Null;",
        ident(&format!("{t}_stream"))
    );
    let _ = writeln!(
        w,
        "CREATE MATERIALIZED VIEW IF NOT EXISTS {}{on} TO {} AS\n{};",
        ident(&format!("{t}_stream_mv")),
        ident(&format!("{t}_flat")),
        stream_view_select(t, &plan.cols, &plan.key_names)
    );
}

/// The snapshot load: the export's files through the function into `<t>_flat`, with `s3`,
/// or `s3Cluster` on a cluster.
fn write_snapshot(w: &mut String, spec: &Spec, plan: &Plan, layout: Layout) {
    let (auth_note, auth_args) = match spec.s3_auth {
        S3Auth::Keys => (
            "-- Parameters: --param_access_key_id=… --param_secret_access_key=…",
            "{access_key_id:String}, {secret_access_key:String}, ",
        ),
        S3Auth::NoSign => ("-- Unsigned requests (public bucket).", "NOSIGN, "),
        S3Auth::Server => (
            "-- The server's own S3 credentials (environment, role, config).",
            "",
        ),
    };
    let (from, settings) = match layout.cluster {
        None => ("s3(".to_string(), ""),
        Some(c) => (
            format!("s3Cluster({}, ", literal(c.as_str())),
            "\nSETTINGS distributed_foreground_insert = 1",
        ),
    };
    let run = match layout.cluster {
        None => "run once, after the stream is enabled",
        Some(_) => "run once, on any node, after the stream is enabled",
    };
    let _ = writeln!(
        w,
        "\n-- Snapshot: the full export straight from S3 ({run})."
    );
    if let Some(c) = layout.cluster {
        cluster::write_snapshot_comment(w, c, &spec.table);
    }
    let _ = writeln!(w, "{auth_note}");
    let _ = writeln!(
        w,
        "INSERT INTO {}\nSELECT 'snapshot', line, {}\nFROM {from}{}, {auth_args}'LineAsString'){settings};",
        ident(&format!("{}_flat", spec.table)),
        function_call("line", &plan.cols, &plan.key_names),
        literal(&spec.s3_url)
    );
}

/// `name` as an identifier, padded to the widest column name of the destination.
fn ident_padded(name: &str, types: &[ColumnType], spec: &Spec) -> String {
    let width = types
        .iter()
        .filter(|c| c.ty.is_some())
        .map(|c| c.name.as_str())
        .chain([EXTRA_COLUMN, &spec.version_field, &spec.deleted_field])
        .map(|n| ident(n).chars().count())
        .max()
        .unwrap_or(0);
    format!("{:width$}", ident(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, Value};

    fn spec() -> Spec {
        Spec {
            table: "people".into(),
            partition_key: "id".into(),
            sort_key: None,
            version_field: "version".into(),
            deleted_field: "is_deleted".into(),
            s3_url: "https://b.s3.amazonaws.com/p/AWSDynamoDB/x/data/*.json.gz".into(),
            s3_auth: S3Auth::Keys,
            cluster: None,
        }
    }

    fn inferrer(items: &[&str]) -> Inferrer {
        let mut inf = Inferrer::new();
        for i in items {
            let m: Map<String, Value> = serde_json::from_str(i).unwrap();
            inf.add_item(&m);
        }
        inf
    }

    #[test]
    fn quoting() {
        assert_eq!(ident("first-name"), "`first-name`");
        assert_eq!(ident("a`b\\c"), "`a\\`b\\\\c`");
        assert_eq!(literal("it's \\"), "'it\\'s \\\\'");
        // The list quotes every name; as a literal its backslashes and quotes are escaped
        // once more.
        let cols = [
            Col::new("id", "String"),
            Col::new("it's `odd`\\", "Nullable(Int64)"),
        ];
        assert_eq!(
            column_list(&cols),
            "`id` String, `it's \\`odd\\`\\\\` Nullable(Int64)"
        );
        assert_eq!(
            literal(&column_list(&cols)),
            "'`id` String, `it\\'s \\\\`odd\\\\`\\\\\\\\` Nullable(Int64)'"
        );
        assert_eq!(
            tuple_type(&cols[..1], "version", "is_deleted"),
            "Tuple(`id` String, `_extra` String, `version` UInt64, `is_deleted` UInt8)"
        );
    }

    #[test]
    fn keys_first_collisions_renamed() {
        let inf = inferrer(&[
            r#"{"name":{"S":"x"},"id":{"S":"a"},"version":{"N":"3"},"odd name":{"N":"1.5"}}"#,
        ]);
        let sql = render(&spec(), &inf, InferOptions::default()).unwrap();
        let ddl = &sql[sql.find("CREATE TABLE IF NOT EXISTS `people`").unwrap()..];
        let id = ddl.find("`id` String").unwrap();
        assert!(id < ddl.find("`name` String").unwrap());
        assert!(ddl.contains("`item_version` Int64"));
        assert!(ddl.contains("`odd name` Decimal(38, 6)"));
        assert!(ddl.contains("ORDER BY (`id`)"));
        let list = "'`id` String, `name` String, `odd name` Decimal(38, 6), `item_version` Int64, \
                    PRIMARY KEY (`id`)'";
        assert!(sql.contains(&format!("dynamo_flatten_columns(record, {list}) AS j")));
        assert!(sql.contains(&format!(
            "SELECT 'snapshot', line, dynamo_flatten_columns(line, {list})\n"
        )));
        assert!(!sql.contains("dynamo_flatten_exact"));
        assert!(sql.contains(
            "FROM s3('https://b.s3.amazonaws.com/p/AWSDynamoDB/x/data/*.json.gz', \
             {access_key_id:String}, {secret_access_key:String}, 'LineAsString');"
        ));
    }

    #[test]
    fn extra_column_and_tuple() {
        let inf = inferrer(&[
            r#"{"id":{"S":"a"},"age":{"N":"26"},"huge":{"N":"1E+100"}}"#,
            r#"{"id":{"S":"b"},"age":{"S":"unknown"}}"#,
            r#"{"id":{"S":"c"},"age":{"N":"41"}}"#,
        ]);
        let sql = render(&spec(), &inf, InferOptions::default()).unwrap();
        let ddl_start = sql.find("CREATE TABLE IF NOT EXISTS `people`").unwrap();
        let ddl = &sql[ddl_start..ddl_start + sql[ddl_start..].find(";\n").unwrap()];
        let lines: Vec<&str> = ddl.lines().map(str::trim_end).collect();
        assert_eq!(
            lines,
            [
                "CREATE TABLE IF NOT EXISTS `people`",
                "(",
                "    `id`         String,",
                "    `age`        Int64,                                      -- mixed types: 1 of 3 values (S/B) land in _extra",
                "    -- `huge`: numbers beyond Decimal(76, S): no column type holds them exactly; the attribute stays in _extra",
                "    `_extra`     String DEFAULT '{}',                        -- attributes without a column or that did not fit it",
                "    `version`    UInt64,                                     -- µs since the epoch; 0 for snapshot rows",
                "    `is_deleted` UInt8                                       -- 1 for deletes",
                ")",
                "ENGINE = ReplacingMergeTree(`version`, `is_deleted`)",
                "ORDER BY (`id`)",
                "SETTINGS non_replicated_deduplication_window = 1000",
            ]
        );
        assert!(sql.contains(
            "SELECT t.1 AS `id`, t.2 AS `age`, t.3 AS `_extra`, t.4 AS `version`, t.5 AS `is_deleted`\n\
             FROM (SELECT JSONExtract(j, 'Tuple(`id` String, `age` Int64, `_extra` String, \
             `version` UInt64, `is_deleted` UInt8)') AS t FROM `people_flat` \
             WHERE NOT startsWith(j, '{\"_error\"'));"
        ));
        assert!(sql.contains(
            "dynamo_flatten_columns(record, '`id` String, `age` Int64, PRIMARY KEY (`id`)')"
        ));
    }

    #[test]
    fn keys_keep_wide_types() {
        let inf =
            inferrer(&[r#"{"id":{"N":"7"},"ts":{"S":"2024-01-02T03:04:05Z"},"n":{"N":"7"}}"#]);
        let mut s = spec();
        s.sort_key = Some("ts".into());
        let opts = InferOptions {
            narrow: true,
            datetimes: true,
            ..InferOptions::default()
        };
        let sql = render(&s, &inf, opts).unwrap();
        assert!(
            sql.contains("'`id` Int64, `ts` String, `n` UInt8, PRIMARY KEY (`id`, `ts`)'"),
            "{sql}"
        );
        let inf = inferrer(&[r#"{"id":{"N":"1e100"}}"#]);
        assert_eq!(
            render(&spec(), &inf, InferOptions::default()),
            Err(SchemaError::KeyUntyped {
                role: "partition key",
                name: "id".into()
            })
        );
    }

    #[test]
    fn missing_key_is_an_error() {
        let inf = inferrer(&[r#"{"id":{"S":"a"}}"#]);
        let mut s = spec();
        s.sort_key = Some("ts".into());
        assert_eq!(
            render(&s, &inf, InferOptions::default()),
            Err(SchemaError::KeyNotFound {
                role: "sort key",
                name: "ts".into()
            })
        );
    }

    /// The statements of generated SQL, without their comment lines.
    fn statements(sql: &str) -> Vec<String> {
        let code: Vec<&str> = sql.lines().filter(|l| !l.starts_with("--")).collect();
        code.join("\n")
            .split(";\n")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.trim_end_matches(';').to_string())
            .collect()
    }

    fn cluster_sql(sort_key: Option<&str>) -> String {
        let inf = inferrer(&[r#"{"id":{"S":"a"},"ts":{"S":"t"},"age":{"N":"26"}}"#]);
        let mut s = spec();
        s.sort_key = sort_key.map(str::to_string);
        s.cluster = Some(ClusterName::parse("c1").unwrap());
        render(&s, &inf, InferOptions::default()).unwrap()
    }

    #[test]
    fn cluster_every_statement_on_cluster() {
        let sql = cluster_sql(None);
        let stmts = statements(&sql);
        assert_eq!(stmts.len(), 12, "{stmts:#?}");
        let (ddl, dml): (Vec<&String>, Vec<&String>) =
            stmts.iter().partition(|s| s.starts_with("CREATE "));
        assert_eq!(ddl.len(), 11);
        for s in &ddl {
            let head = s.lines().next().unwrap_or("");
            assert!(head.contains(" ON CLUSTER `c1`"), "{s}");
        }
        // The snapshot load reads through s3Cluster; it is not DDL, so it has no ON CLUSTER.
        assert_eq!(dml.len(), 1);
        assert!(
            dml[0].starts_with("INSERT INTO `people_flat`\n"),
            "{}",
            dml[0]
        );
        assert!(dml[0].contains(
            "\nFROM s3Cluster('c1', 'https://b.s3.amazonaws.com/p/AWSDynamoDB/x/data/*.json.gz', \
             {access_key_id:String}, {secret_access_key:String}, 'LineAsString')\n\
             SETTINGS distributed_foreground_insert = 1"
        ));
        assert!(!sql.contains("FROM s3("));
    }

    #[test]
    fn cluster_engines_replicated() {
        let sql = cluster_sql(None);
        let engines: Vec<&str> = sql
            .lines()
            .filter_map(|l| l.strip_prefix("ENGINE = "))
            .collect();
        assert_eq!(
            engines,
            [
                "ReplicatedReplacingMergeTree(`version`, `is_deleted`)",
                "Distributed('c1', currentDatabase(), 'people_local', cityHash64(`id`));",
                "ReplicatedMergeTree",
                "Distributed('c1', currentDatabase(), 'dynamo_errors_local', cityHash64(line));",
                "ReplicatedReplacingMergeTree(version)",
                "Distributed('c1', currentDatabase(), 'kinesis_checkpoints_local', \
                 cityHash64(stream, consumer, shard_id));",
            ]
        );
        assert!(!sql.contains("non_replicated_deduplication_window"));
        assert!(sql.contains("CREATE TABLE IF NOT EXISTS `people_local` ON CLUSTER `c1`\n(\n"));
        assert!(
            sql.contains("CREATE TABLE IF NOT EXISTS `people` ON CLUSTER `c1` AS `people_local`\n")
        );
        // The loads write into the Distributed tables, under the names the single-server
        // SQL has.
        assert!(sql.contains("`people_flat_mv` ON CLUSTER `c1` TO `people` AS\n"));
        assert!(sql.contains("`people_errors_mv` ON CLUSTER `c1` TO dynamo_errors AS\n"));
        assert!(sql.contains("`people_stream_mv` ON CLUSTER `c1` TO `people_flat` AS\n"));
        assert!(sql.contains(
            "CREATE TABLE IF NOT EXISTS `people_stream` ON CLUSTER `c1` (record String) ENGINE = Null"
        ));
    }

    #[test]
    fn cluster_sharded_by_partition_key_only() {
        let sql = cluster_sql(Some("ts"));
        assert!(sql.contains("ORDER BY (`id`, `ts`);"));
        assert!(sql.contains(
            "ENGINE = Distributed('c1', currentDatabase(), 'people_local', cityHash64(`id`));"
        ));
        assert!(sql.contains("-- The sort key `ts` is left out"));
        assert!(!sql.contains("cityHash64(`id`, `ts`)"));
    }

    #[test]
    fn one_server_has_nothing_of_a_cluster() {
        let inf = inferrer(&[r#"{"id":{"S":"a"}}"#]);
        let sql = render(&spec(), &inf, InferOptions::default()).unwrap();
        for s in [
            "ON CLUSTER",
            "Replicated",
            "Distributed",
            "s3Cluster",
            "_local",
            "kinesis_checkpoints",
        ] {
            assert!(!sql.contains(s), "{s}");
        }
        assert_eq!(statements(&sql).len(), 8);
    }
}
