"""The SQL of `dynamo-flatten schema --cluster` run on a cluster of one shard, and the forwarder
writing through its Distributed tables on both flatten paths.

chDB has no Keeper, so neither ON CLUSTER nor a Replicated table can run here; but a cluster of
one shard on the engine itself (harness.engine.cluster_config) takes Distributed tables, whose
shard is this server. So the generated statements run as printed except for two changes: no
`ON CLUSTER c1`, and each Replicated…MergeTree as the same …MergeTree without Replicated (the
generated ones take no arguments: the server's default path). The snapshot reads the local
export with file() where the generated statement has s3Cluster('c1', …), which sends its work
to the nodes over the network.

Checked on what the rehearsal gives: the snapshot reaches people_local through the Distributed
`people`; the forwarder (--flatten server and --flatten local) then fills both databases with
the same rows, errors and checkpoints, all through Distributed tables; and --flatten local reads
the DynamoDB key from the table the Distributed `people` writes to (a Distributed table has no
sorting key of its own): an item whose key does not fit is an error row on both paths.
"""

from __future__ import annotations

import gzip
import json
import random
import re
from decimal import Decimal

import pytest

from harness import FIXTURES
from harness.dynamodb import change_record
from harness.engine import build_udf_dir, cluster_config, schema_sql
from harness.forwarder import BAD_RECORDS, Changes, Database, Forwarder, Stream
from harness.http_front import FrontProcess
from harness.sql import split_statements

EXPORT = sorted(FIXTURES.glob("export-full/AWSDynamoDB/*/data/*.json.gz"))
# Keys of the model's items are S; this one's is N: no fit for `id String`, an error row.
MISFIT = change_record("INSERT", {"id": {"N": "7"}}, 1_764_000_000_000_000,
                       {"id": {"N": "7"}, "first_name": {"S": "misfit"}})


def one_shard(stmt: str) -> str:
    """A generated statement as a cluster without Keeper takes it (see the module's doc)."""
    stmt = stmt.replace(" ON CLUSTER `c1`", "")
    stmt = re.sub(r"\bReplicated(\w*MergeTree)\b", r"\1", stmt)
    return stmt.replace("FROM s3Cluster('c1', ", "FROM file(")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, binary):
    tmp = tmp_path_factory.mktemp("cluster")
    udf = build_udf_dir(tmp / "udf", binary=binary)
    with FrontProcess(tmp / "db", udf, cluster_config(tmp / "cluster.xml", "c1")) as front:
        yield front


@pytest.fixture(scope="module")
def generated(binary) -> list[str]:
    sql = schema_sql(binary, "--table", "people", "--partition-key", "id", "--cluster", "c1",
                     "--s3-auth", "server", "--s3-url", str(EXPORT[0].parent / "*.json.gz"), *map(str, EXPORT))
    stmts = split_statements(sql, keep_comments=False)
    assert sum(" ON CLUSTER `c1`" in s for s in stmts) == 11 and "s3Cluster('c1', " in stmts[-1]
    return [one_shard(s) for s in stmts]


def export_items() -> dict[str, dict]:
    items = {}
    for path in EXPORT:
        for line in gzip.decompress(path.read_bytes()).decode().splitlines():
            item = json.loads(line)["Item"]
            items[item["id"]["S"]] = item
    return items


def test_generated_tables_snapshot_and_forwarder_through_distributed_tables(tmp_path, cluster, generated, kinesis):
    items = export_items()
    server = Database(cluster, "c1_server", ";\n".join(generated), sql_files=())
    local = Database(cluster, "c1_local", ";\n".join(generated), sql_files=())
    for db in (server, local):
        engines = dict(db.rows(f"SELECT name, engine FROM system.tables WHERE database = '{db.name}'"))
        assert engines["people"] == engines["dynamo_errors"] == engines["kinesis_checkpoints"] == "Distributed"
        assert engines["people_local"] == "ReplacingMergeTree"
        # The snapshot went through the Distributed table into the shard's table.
        assert db.rows(f"SELECT id, first_name, age FROM {db.name}.people_local ORDER BY id") == sorted(
            (k, v.get("first_name", {}).get("S", ""), str(int(Decimal(v.get("age", {}).get("N", "0")))))
            for k, v in items.items())
        assert db.errors() == []

    rng = random.Random(31)
    model = Changes()
    model.run(rng, 1_500, 300)
    stream = Stream(kinesis, "cluster", 2)
    stream.put(model.records + BAD_RECORDS + [MISFIT])
    Forwarder(tmp_path, kinesis, stream.name, cluster.port, server.name).run_once()
    f = Forwarder(tmp_path, kinesis, stream.name, cluster.port, local.name, "--flatten", "local")
    f.run_once()
    assert "PRIMARY KEY (`id`)" in f.log()  # the key of people_local, behind the Distributed people

    def changed(db: Database) -> list[tuple]:
        return db.rows(f"SELECT id, first_name, toString(age), toString(version) FROM {db.name}.people FINAL "
                       "WHERE startsWith(id, 'p') AND is_deleted = 0 ORDER BY id")

    assert changed(server) == changed(local) == model.expected()
    everything = "SELECT * FROM {}.people FINAL ORDER BY id"
    assert server.rows(everything.format(server.name)) == local.rows(everything.format(local.name))
    for db in (server, local):
        assert db.rows(f"SELECT count() FROM {db.name}.people FINAL") == [(str(len(items) + len(model.items)),)]
    assert [e[3] for e in server.errors()] == sorted([*BAD_RECORDS, MISFIT])
    assert server.errors() == local.errors()
    (misfit,) = [e[2] for e in server.errors() if e[3] == MISFIT]
    assert misfit.startswith('key attribute "id" is missing or does not fit its column\'s type'), misfit
    for db in (server, local):
        assert db.checkpoints() == {s: (q, False) for s, q in stream.last_sequence_numbers().items()}
        # The rows are in the shard's tables, where the Distributed ones put them.
        assert db.rows(f"SELECT count() FROM {db.name}.kinesis_checkpoints_local") != [("0",)]
        assert db.rows(f"SELECT count() FROM {db.name}.dynamo_errors_local") == [(str(len(BAD_RECORDS) + 1),)]


def test_schema_evolve_on_the_cluster(cluster, generated, binary):
    """`schema evolve --cluster c1` on the same one-shard cluster: the columns on the shard's
    table and on the Distributed one, the views, and the backfill through the Distributed table."""
    db = Database(cluster, "c1_evolve", ";\n".join(generated), sql_files=())
    (columns,) = re.findall(r"dynamo_flatten_columns\(record, ('(?:[^'\\]|\\.)*')\)", "\n".join(generated))
    items = export_items()
    keys = sorted(items)[:2]
    t = 1_764_000_000_000_000
    drift = [change_record("MODIFY", {"id": {"S": k}}, t + i, {**items[k], "qty": {"N": str(10 + i)}}, items[k])
             for i, k in enumerate(keys)]
    db.run_statements(["INSERT INTO people_stream FORMAT LineAsString\n" + "".join(d + "\n" for d in drift)])
    extra = f"SELECT id, JSONExtractRaw(_extra, 'qty') FROM {db.name}.people FINAL WHERE JSONHas(_extra, 'qty') ORDER BY id"
    assert db.rows(extra) == [(k, f'{{"N":"{10 + i}"}}') for i, k in enumerate(keys)]

    values = db.run(f"SELECT _extra FROM {db.name}.people FINAL WHERE JSONHas(_extra, 'qty') FORMAT TSVRaw")
    sql = schema_sql(binary, "evolve", "--cluster", "c1", "--table", "people", "--columns", columns,
                     "--add", "qty", stdin=values)
    stmts = split_statements(sql, keep_comments=False)
    assert [s.split("\n")[0] for s in stmts] == [
        "ALTER TABLE `people_local` ON CLUSTER `c1`", "ALTER TABLE `people` ON CLUSTER `c1`",
        "ALTER TABLE `people_flat_mv` ON CLUSTER `c1` MODIFY QUERY",
        "ALTER TABLE `people_stream_mv` ON CLUSTER `c1` MODIFY QUERY", "INSERT INTO `people`"]
    db.run_statements([one_shard(s) for s in stmts])

    for table in ("people", "people_local"):
        assert ("qty", "Nullable(Int64)") in db.rows(f"SELECT name, type FROM system.columns "
                                                     f"WHERE database = '{db.name}' AND table = '{table}'")
    assert db.rows(extra) == []
    moved = f"SELECT id, qty, version FROM {db.name}.people FINAL WHERE qty IS NOT NULL ORDER BY id"
    assert db.rows(moved) == [(k, str(10 + i), str(t + i)) for i, k in enumerate(keys)]
    # New records fill the column directly, through the new views.
    new = change_record("INSERT", {"id": {"S": "new"}}, t + 5, {"id": {"S": "new"}, "qty": {"N": "7"}})
    db.run_statements([f"INSERT INTO people_stream FORMAT LineAsString\n{new}\n"])
    assert db.rows(moved)[-1] == ("new", "7", str(t + 5))
    assert db.errors() == []
