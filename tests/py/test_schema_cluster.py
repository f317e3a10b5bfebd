"""`dynamo-flatten schema --cluster NAME`: every generated statement parsed by ClickHouse's own parser.

chDB is one embedded server without a cluster: a Distributed table or s3Cluster() over a
cluster that `remote_servers` does not define fails (CLUSTER_DOESNT_EXIST), and a Replicated
table needs ZooKeeper/Keeper (test_cluster_one_shard.py runs them on a one-shard cluster, with
those parts taken out). So nothing here creates or loads the cluster's tables. Instead each
statement goes through the engine's parser with `formatQuery` (and `EXPLAIN AST` for the
Distributed engine's arguments), and the checks are made on what the parser gave back: ON
CLUSTER on every CREATE, the Replicated engines, the Distributed tables' sharding keys (the
DynamoDB partition key alone), the views writing into the Distributed tables, and the snapshot
load through s3Cluster.

The single-server output must not change: it is compared byte for byte with
tests/fixtures/schema/*.sql, written by the generator before --cluster existed (after an
intended change to the single-server SQL, write them again with the commands in GOLDEN).
"""

from __future__ import annotations

import re
import subprocess

import pytest

from harness import FIXTURES
from harness.engine import schema_sql
from harness.sql import quote, split_statements

SAMPLE = [
    *sorted(str(p) for p in FIXTURES.glob("export-full/AWSDynamoDB/*/data/*.json.gz")),
    str(FIXTURES / "kinesis" / "records.jsonl"),
]
S3_URL = "https://b.s3.amazonaws.com/p/AWSDynamoDB/x/data/*.json.gz"

# The golden single-server outputs and the arguments that write them.
GOLDEN = {
    "people.sql": ["--table", "people", "--partition-key", "id"],
    "people_sort_key.sql": ["--table", "people", "--partition-key", "id", "--sort-key", "first_name",
                            "--s3-auth", "nosign", "--s3-url", S3_URL],
}

KEYS = {
    "partition key": (["--partition-key", "id"], "ORDER BY (id)"),
    "partition + sort key": (["--partition-key", "id", "--sort-key", "first_name"], "ORDER BY (id, first_name)"),
}


def formatted(ch, stmt: str) -> str:
    """The statement as ClickHouse's parser reads it, on one line (fails on a parse error)."""
    return ch.one(f"SELECT formatQuerySingleLine({quote(stmt)})")


def cluster_statements(binary, *args: str) -> list[str]:
    sql = schema_sql(binary, "--table", "people", *args, "--s3-url", S3_URL, *SAMPLE)
    return split_statements(sql, keep_comments=False)


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_single_server_output_unchanged(binary, name):
    sql = schema_sql(binary, *GOLDEN[name], *SAMPLE)
    assert sql == (FIXTURES / "schema" / name).read_text()


@pytest.mark.parametrize("keys", sorted(KEYS))
def test_every_statement_parses(ch, binary, keys):
    key_args, order_by = KEYS[keys]
    stmts = cluster_statements(binary, *key_args, "--cluster", "c1")
    parsed = [formatted(ch, s) for s in stmts]
    creates = [p for p in parsed if p.startswith("CREATE ")]
    assert len(parsed) == 12 and len(creates) == 11, parsed
    for p in creates:
        assert re.match(r"CREATE (TABLE|MATERIALIZED VIEW) IF NOT EXISTS \w+ ON CLUSTER c1 ", p), p

    def create(name: str) -> str:
        (p,) = [p for p in creates if p.split(" ON CLUSTER ")[0].endswith(f" {name}")]
        return p

    # The MergeTree tables: Replicated, one per shard; the rows' order is the DynamoDB key.
    dest = create("people_local")
    assert " ENGINE = ReplicatedReplacingMergeTree(version, is_deleted) " in dest, dest
    assert dest.endswith(f" {order_by}"), dest
    assert "non_replicated_deduplication_window" not in dest
    assert " ENGINE = ReplicatedMergeTree ORDER BY (`table`, at)" in create("dynamo_errors_local")
    ckpt = create("kinesis_checkpoints_local")
    assert ckpt.endswith(" ENGINE = ReplicatedReplacingMergeTree(version) ORDER BY (stream, consumer, shard_id)"), ckpt

    # Over each, a Distributed table with the name the loads and the readers use; the
    # destination sharded by the partition key alone, also when there is a sort key.
    assert create("people") == (
        "CREATE TABLE IF NOT EXISTS people ON CLUSTER c1 AS people_local "
        "ENGINE = Distributed('c1', currentDatabase(), 'people_local', cityHash64(id))")
    assert create("dynamo_errors").endswith(
        "AS dynamo_errors_local ENGINE = Distributed('c1', currentDatabase(), 'dynamo_errors_local', cityHash64(line))")
    assert create("kinesis_checkpoints").endswith(
        "ENGINE = Distributed('c1', currentDatabase(), 'kinesis_checkpoints_local', "
        "cityHash64(stream, consumer, shard_id))")

    # The landing tables are Null on every node (the formatter quotes the engine's name); the
    # views route into the Distributed tables.
    assert create("people_flat").endswith("ENGINE = `Null`")
    assert create("people_stream").endswith("ENGINE = `Null`")
    assert " TO people AS SELECT " in create("people_flat_mv")
    assert " TO dynamo_errors AS SELECT " in create("people_errors_mv")
    assert " TO people_flat AS SELECT " in create("people_stream_mv")

    # The snapshot: every node reads its share of the files through s3Cluster and calls the
    # function there; the rows go into people_flat, so the views shard them.
    (load,) = [p for p in parsed if p.startswith("INSERT ")]
    assert load.startswith("INSERT INTO people_flat SETTINGS distributed_foreground_insert = 1 SELECT 'snapshot', line, "
                           "dynamo_flatten_columns(line, "), load
    assert (f"FROM s3Cluster('c1', '{S3_URL}', {{access_key_id:String}}, {{secret_access_key:String}}, "
            "'LineAsString')") in load, load


@pytest.mark.parametrize("keys", sorted(KEYS))
def test_distributed_sharding_key_in_the_ast(ch, binary, keys):
    """The parser's tree of the destination's Distributed engine: cityHash64 of the partition
    key column, nothing else."""
    key_args, _ = KEYS[keys]
    stmts = cluster_statements(binary, *key_args, "--cluster", "c1")
    (dist,) = [s for s in stmts if s.startswith("CREATE TABLE IF NOT EXISTS `people` ")]
    ast = "\n".join(ch.col(f"EXPLAIN AST {dist}"))
    engine = ast[ast.index("Function Distributed"):]
    lines = [line.strip() for line in engine.splitlines()]
    assert lines[:8] == [
        "Function Distributed (children 1)",
        "ExpressionList (children 4)",
        "Literal 'c1'",
        "Function currentDatabase (children 1)",
        "ExpressionList",
        "Literal 'people_local'",
        "Function cityHash64 (children 1)",
        "ExpressionList (children 1)",
    ], ast
    assert lines[8] == "Identifier id", ast


def test_cluster_tables_as_the_single_server_ones(ch, binary):
    """The per-shard destination and errors tables have the single-server tables' columns and
    keys: only the name, ON CLUSTER, the engine and the deduplication setting differ."""
    one = {formatted(ch, s).split(" (")[0]: formatted(ch, s)
           for s in split_statements(schema_sql(binary, *GOLDEN["people.sql"], *SAMPLE), keep_comments=False)}
    many = {formatted(ch, s).split(" (")[0]: formatted(ch, s)
            for s in cluster_statements(binary, "--partition-key", "id", "--cluster", "c1")}
    for name, engine in [("people", "ReplacingMergeTree(version, is_deleted)"), ("dynamo_errors", "MergeTree")]:
        single = one[f"CREATE TABLE IF NOT EXISTS {name}"]
        local = many[f"CREATE TABLE IF NOT EXISTS {name}_local ON CLUSTER c1"]
        assert local.replace(f"{name}_local ON CLUSTER c1", name).replace(f"Replicated{engine}", engine) == (
            single.replace(" SETTINGS non_replicated_deduplication_window = 1000", "")), (single, local)


def test_names_that_need_quoting(ch, binary):
    stmts = cluster_statements(binary, "--partition-key", "id", "--cluster", "eu-prod_2")
    parsed = [formatted(ch, s) for s in stmts]
    assert all(" ON CLUSTER `eu-prod_2` " in p for p in parsed if p.startswith("CREATE ")), parsed
    assert any("Distributed('eu-prod_2', currentDatabase(), 'people_local', cityHash64(id))" in p for p in parsed)
    assert any("FROM s3Cluster('eu-prod_2', " in p for p in parsed)


@pytest.mark.parametrize(("name", "message"), [
    ("", "the cluster name is empty"),
    ("{cluster}", '"{cluster}" is a macro'),
    ("prod.eu", '"prod.eu" is not a cluster name'),
    ("c1`; DROP TABLE people; --", '"c1`; DROP TABLE people; --" is not a cluster name'),
])
def test_bad_cluster_names_refused(binary, name, message):
    out = subprocess.run([str(binary), "schema", "--table", "people", "--partition-key", "id",
                          "--cluster", name, *SAMPLE], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 2 and out.stdout == "", out
    assert f"invalid value '{name}' for '--cluster <NAME>': {message}" in out.stderr, out.stderr


def test_help_describes_the_flag(binary):
    out = subprocess.run([str(binary), "schema", "--help"], capture_output=True, text=True, timeout=60, check=True)
    text = " ".join(out.stdout.split())
    assert "--cluster <NAME>" in text
    for part in ["ON CLUSTER NAME", "ReplicatedReplacingMergeTree", "cityHash64(<partition key>)", "s3Cluster(NAME"]:
        assert part in text, part
