//! `dynamo-flatten schema --cluster NAME`: the same tables and views for a ClickHouse cluster.
//!
//! Every statement runs `ON CLUSTER`, so every node has every table and view and takes any
//! load. Each MergeTree table is Replicated, one per shard, under the name with
//! [`LOCAL_SUFFIX`]; a Distributed table over it keeps the name the forwarder and the `sql/`
//! scripts use, so their inserts and reads cover the whole cluster:
//!
//! ```text
//! <t>_stream / s3Cluster(…) ──▶ <t>_flat (Null, each node) ─┬─▶ <t> (Distributed, cityHash64(pk)) ──▶ <t>_local (each shard)
//!                                                            └─▶ dynamo_errors (Distributed)       ──▶ dynamo_errors_local
//! ```
//!
//! `FINAL` on a Distributed table runs on each shard by itself, so the destination is sharded
//! by the DynamoDB partition key: every version of an item lands on the same shard.

use std::fmt;
use std::fmt::Write as _;
use std::str::FromStr;

use super::{ident, literal};

/// The suffix of the per-shard table under each Distributed table.
pub const LOCAL_SUFFIX: &str = "_local";

/// The errors table every destination shares.
pub const ERRORS_TABLE: &str = "dynamo_errors";

/// kinesis-forwarder's checkpoint table (its default `--checkpoint-table`).
pub const CHECKPOINTS_TABLE: &str = "kinesis_checkpoints";

/// The columns of the checkpoint table, as in `sql/10_kinesis_checkpoints.sql`.
pub const CHECKPOINT_COLUMNS: [(&str, &str); 8] = [
    ("stream", "String"),
    ("consumer", "String"),
    ("shard_id", "String"),
    ("sequence_number", "String"),
    ("shard_end", "Bool"),
    ("version", "UInt64"),
    ("worker", "String"),
    ("updated_at", "DateTime64(3) DEFAULT now64(3)"),
];

/// The name of a cluster of the servers' `remote_servers`: letters, digits, `_` and `-`,
/// starting with a letter or `_` (the names an XML element, and so the config, can give).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterName(String);

/// Why a cluster name was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum BadClusterName {
    Empty,
    /// `{cluster}`: a macro, not a name.
    Macro(String),
    /// A character a cluster name cannot have.
    Chars(String),
}

const LIST_THEM: &str = "SELECT DISTINCT cluster FROM system.clusters lists them";

impl fmt::Display for BadClusterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadClusterName::Empty => write!(f, "the cluster name is empty ({LIST_THEM})"),
            BadClusterName::Macro(n) => write!(
                f,
                "{n:?} is a macro: give the cluster's own name, as the servers' remote_servers \
                 defines it ({LIST_THEM})"
            ),
            BadClusterName::Chars(n) => write!(
                f,
                "{n:?} is not a cluster name: remote_servers names a cluster with letters, \
                 digits, '_' and '-', starting with a letter or '_' ({LIST_THEM})"
            ),
        }
    }
}

impl std::error::Error for BadClusterName {}

impl ClusterName {
    pub fn parse(name: &str) -> Result<ClusterName, BadClusterName> {
        let mut chars = name.chars();
        let Some(first) = chars.next() else {
            return Err(BadClusterName::Empty);
        };
        if name.starts_with('{') && name.ends_with('}') {
            return Err(BadClusterName::Macro(name.to_string()));
        }
        let starts = first.is_ascii_alphabetic() || first == '_';
        if !starts || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(BadClusterName::Chars(name.to_string()));
        }
        Ok(ClusterName(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ClusterName {
    type Err = BadClusterName;

    fn from_str(s: &str) -> Result<ClusterName, BadClusterName> {
        ClusterName::parse(s)
    }
}

/// Where the generated statements put things: one server, or a cluster.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Layout<'a> {
    pub(crate) cluster: Option<&'a ClusterName>,
}

impl Layout<'_> {
    /// ` ON CLUSTER `c`` on a cluster, else nothing.
    pub(crate) fn on(&self) -> String {
        self.cluster.map(on_cluster).unwrap_or_default()
    }

    /// The table that stores the rows of `name`: `name` itself on one server, the per-shard
    /// `<name>_local` on a cluster.
    pub(crate) fn stored(&self, name: &str) -> String {
        match self.cluster {
            Some(_) => local(name),
            None => name.to_string(),
        }
    }
}

/// ` ON CLUSTER `c``.
fn on_cluster(cluster: &ClusterName) -> String {
    format!(" ON CLUSTER {}", ident(cluster.as_str()))
}

/// The per-shard table under the Distributed table `name`.
pub fn local(name: &str) -> String {
    format!("{name}{LOCAL_SUFFIX}")
}

/// The destination's sharding key: the DynamoDB partition key alone, so that every version
/// of an item (and every item of a partition) lands on one shard.
pub fn sharding_key(partition_key: &str) -> String {
    format!("cityHash64({})", ident(partition_key))
}

/// `CREATE TABLE <name> ON CLUSTER c AS <name>_local ENGINE = Distributed(…, <key>)`.
pub fn distributed_table(cluster: &ClusterName, name: &str, key: &str) -> String {
    let local = local(name);
    format!(
        "CREATE TABLE IF NOT EXISTS {} ON CLUSTER {} AS {}\n\
         ENGINE = Distributed({}, currentDatabase(), {}, {key});",
        ident(name),
        ident(cluster.as_str()),
        ident(&local),
        literal(cluster.as_str()),
        literal(&local),
    )
}

/// What the header says on a cluster.
pub(crate) fn write_header(w: &mut String, cluster: &ClusterName, table: &str) {
    let c = ident(cluster.as_str());
    let (t, tl) = (ident(table), ident(&local(table)));
    let _ = writeln!(
        w,
        "-- For the cluster {c}. Every statement runs ON CLUSTER, so every node has every table and\n\
         -- view and takes any load ({} must be installed on every node). Each\n\
         -- MergeTree table is Replicated, one per shard ({tl}, dynamo_errors_local,\n\
         -- kinesis_checkpoints_local), under a Distributed table with the name the forwarder and\n\
         -- the sql/ scripts use ({t}, dynamo_errors, kinesis_checkpoints): write and read those.\n\
         -- Give the forwarder's user distributed_foreground_insert = 1 (sql/README.md, \"On a\n\
         -- cluster\"): an insert into a Distributed table then returns once its rows are on their\n\
         -- shards, not when they are queued on the node that took it.",
        super::FUNCTION
    );
}

/// The comment above the destination's per-shard table.
pub(crate) fn write_destination_comment(w: &mut String, table: &str) {
    let _ = writeln!(
        w,
        "\n-- Destination, one per shard, replicated within it: read it through {} (below).\n\
         -- Replicated…MergeTree without a path takes the server's default_replica_path and\n\
         -- default_replica_name (/clickhouse/tables/{{uuid}}/{{shard}} and {{replica}} unless configured):\n\
         -- ON CLUSTER gives the table one UUID on every node, and a table dropped and created again\n\
         -- gets a path of its own. That needs the {{shard}} and {{replica}} macros and an Atomic database\n\
         -- (the default); elsewhere give the path as the first two arguments, e.g.\n\
         --   ReplicatedReplacingMergeTree('/clickhouse/tables/{{shard}}/{{database}}/{{table}}', '{{replica}}', …).\n\
         -- A replicated table remembers the tokens of its last inserts (replicated_deduplication_window),\n\
         -- so a retried insert lands once without the setting the single-server table has.",
        ident(table)
    );
}

/// The Distributed table over the destination, with its comment.
pub(crate) fn write_destination_distributed(
    w: &mut String,
    cluster: &ClusterName,
    table: &str,
    partition_key: &str,
    sort_key: Option<&str>,
) {
    let key = sharding_key(partition_key);
    let sort_note = match sort_key {
        Some(sk) => format!(
            "\n-- The sort key {} is left out: every item of a partition is on one shard too.",
            ident(sk)
        ),
        None => String::new(),
    };
    let _ = writeln!(
        w,
        "\n-- {t}: the whole table, over the shards' {tl}. Every load writes here (through\n\
         -- {mv}) and the current state is read here: SELECT … FROM {t} FINAL.\n\
         -- FINAL on a Distributed table runs on each shard by itself, so all versions of an item\n\
         -- must be on one shard: the sharding key is the DynamoDB partition key, {key}.{sort_note}\n\
         -- {tl} directly only for work on each shard (OPTIMIZE … FINAL CLEANUP, ALTER … ON CLUSTER).",
        t = ident(table),
        tl = ident(&local(table)),
        mv = ident(&format!("{table}_flat_mv")),
    );
    let _ = writeln!(w, "{}", distributed_table(cluster, table, &key));
}

/// The errors tables: per shard, and the Distributed `dynamo_errors` over them.
pub(crate) fn write_errors(w: &mut String, cluster: &ClusterName, columns: &str) {
    let _ = writeln!(
        w,
        "\n-- Rows that could not be read, with their reason and raw input (one table for all), one per\n\
         -- shard, replicated within it (engine as above): read them through {ERRORS_TABLE}."
    );
    let _ = writeln!(
        w,
        "CREATE TABLE IF NOT EXISTS {}{}\n{columns}\nENGINE = ReplicatedMergeTree\nORDER BY (`table`, at);",
        ident(&local(ERRORS_TABLE)),
        on_cluster(cluster)
    );
    let _ = writeln!(
        w,
        "-- {ERRORS_TABLE}: all of them, the name the views, the forwarder and the sql/ scripts use.\n\
         -- Sharded by the raw line, not at random: an insert tried again sends each row to the shard\n\
         -- that has it already, whose deduplication then recognises the block."
    );
    let _ = writeln!(
        w,
        "{}",
        distributed_table(cluster, ERRORS_TABLE, "cityHash64(line)")
    );
}

/// kinesis-forwarder's checkpoint tables (`sql/10_kinesis_checkpoints.sql`) for the cluster.
pub(crate) fn write_checkpoints(w: &mut String, cluster: &ClusterName) {
    let _ = writeln!(
        w,
        "\n-- kinesis-forwarder's place in the stream (sql/10_kinesis_checkpoints.sql), shared by all its\n\
         -- workers whichever node they reach: one per shard, replicated, read through\n\
         -- {CHECKPOINTS_TABLE}. The forwarder creates a single-server table of that name at start-up\n\
         -- unless one exists: this one then stands. For another --checkpoint-table, rename both."
    );
    let width = CHECKPOINT_COLUMNS
        .iter()
        .map(|(n, _)| n.len())
        .max()
        .unwrap_or(0);
    let cols: Vec<String> = CHECKPOINT_COLUMNS
        .iter()
        .map(|(n, ty)| format!("    {n:width$} {ty}"))
        .collect();
    let _ = writeln!(
        w,
        "CREATE TABLE IF NOT EXISTS {}{}\n(\n{}\n)\nENGINE = ReplicatedReplacingMergeTree(version)\n\
         ORDER BY (stream, consumer, shard_id);",
        ident(&local(CHECKPOINTS_TABLE)),
        on_cluster(cluster),
        cols.join(",\n")
    );
    let _ = writeln!(
        w,
        "{}",
        distributed_table(
            cluster,
            CHECKPOINTS_TABLE,
            "cityHash64(stream, consumer, shard_id)"
        )
    );
}

/// What the snapshot load's comment adds on a cluster.
pub(crate) fn write_snapshot_comment(w: &mut String, cluster: &ClusterName, table: &str) {
    let _ = writeln!(
        w,
        "-- s3Cluster({}, …) hands the files out to the nodes of the cluster as they ask for them:\n\
         -- each node reads its files and calls {} on their lines (the SELECT\n\
         -- runs where the file is read), and the rows come back to the node that runs this statement,\n\
         -- into its {flat} (parallel_distributed_insert_select spreads an insert only into a\n\
         -- Distributed or Replicated table). Its views send the good rows to {t}, which sends each to\n\
         -- the shard of its partition key, and the others to dynamo_errors. Not into {tl}: the files\n\
         -- of one node hold items of every shard. Nor INSERT INTO {t} … FROM s3Cluster: with\n\
         -- parallel_distributed_insert_select = 2 (the default) each node would write its rows into its\n\
         -- own {tl}. distributed_foreground_insert = 1: the statement ends when the rows are on\n\
         -- their shards, instead of queueing the whole export on this node's disk first.",
        literal(cluster.as_str()),
        super::FUNCTION,
        flat = ident(&format!("{table}_flat")),
        t = ident(table),
        tl = ident(&local(table)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_accepted_and_refused() {
        for ok in ["c", "prod_cluster", "my-cluster", "_x1", "A-2_b"] {
            assert_eq!(ClusterName::parse(ok).map(|c| c.0), Ok(ok.to_string()));
        }
        assert_eq!(ClusterName::parse(""), Err(BadClusterName::Empty));
        assert_eq!(
            ClusterName::parse("{cluster}"),
            Err(BadClusterName::Macro("{cluster}".into()))
        );
        for bad in [
            "1st", "-x", "a b", "a.b", "a`b", "a'b", "a\\b", "é", "a;DROP", "a\n",
        ] {
            assert_eq!(
                ClusterName::parse(bad),
                Err(BadClusterName::Chars(bad.into())),
                "{bad:?}"
            );
        }
        let msg = ClusterName::parse("a b").unwrap_err().to_string();
        assert!(msg.starts_with("\"a b\" is not a cluster name"), "{msg}");
        assert!(msg.contains("system.clusters"), "{msg}");
    }

    #[test]
    fn distributed_statement() {
        let c = ClusterName::parse("my-cluster").unwrap();
        assert_eq!(
            distributed_table(&c, "odd name", &sharding_key("p`k")),
            "CREATE TABLE IF NOT EXISTS `odd name` ON CLUSTER `my-cluster` AS `odd name_local`\n\
             ENGINE = Distributed('my-cluster', currentDatabase(), 'odd name_local', cityHash64(`p\\`k`));"
        );
    }

    /// The checkpoint columns are the ones the forwarder creates (sql/10), in its order.
    #[test]
    fn checkpoint_columns_match_sql_10() {
        let sql = include_str!("../../sql/10_kinesis_checkpoints.sql");
        let body = &sql[sql
            .find("CREATE TABLE IF NOT EXISTS kinesis_checkpoints")
            .unwrap()..];
        let cols: Vec<(String, String)> = body
            .lines()
            .skip(2)
            .take_while(|l| !l.starts_with(')'))
            .map(|l| {
                let l = l
                    .split("--")
                    .next()
                    .unwrap_or("")
                    .trim()
                    .trim_end_matches(',');
                let (n, ty) = l.split_once(' ').unwrap();
                (n.to_string(), ty.trim().to_string())
            })
            .collect();
        let want: Vec<(String, String)> = CHECKPOINT_COLUMNS
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        assert_eq!(cols, want);
    }
}
