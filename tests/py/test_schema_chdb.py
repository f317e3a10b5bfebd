"""`dynamo-flatten schema`: the SQL it prints runs in the engine and loads the sample data.

The generated statements run as printed, except the snapshot load: its s3(URL, 'LineAsString')
is pointed at the local fixture files by reading them with file() instead (same arguments),
because this test has no S3 server; tests/py/test_sql_flow.py covers s3() itself.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from conftest import FIXTURES

EXPORT_GLOB = str(FIXTURES / "export-full" / "AWSDynamoDB" / "*" / "data" / "*.json.gz")
KINESIS = FIXTURES / "kinesis" / "records.jsonl"
SALLY = "0A556908-F72B-4BE6-9048-9E60715358D4"
ZOE = "1B2C3D4E-0000-4000-8000-000000000001"
LI = "2C3D4E5F-0000-4000-8000-000000000002"
BOB = "3D4E5F60-0000-4000-8000-000000000003"


def generate(binary, *args: str) -> str:
    out = subprocess.run(
        [str(binary), "schema", *args], capture_output=True, check=True, text=True, timeout=60
    )
    return out.stdout


def statements(sql: str) -> list[str]:
    """The generated file's statements: each ends with ';' at the end of a line."""
    body = "\n".join(l for l in sql.splitlines() if not l.startswith("--"))
    return [s.strip() for s in re.split(r";\s*$", body, flags=re.M) if s.strip()]


@pytest.fixture(scope="module")
def loaded(ch, binary):
    sql = generate(
        binary, "--table", "sch_people", "--partition-key", "id", "--s3-url", EXPORT_GLOB, "--s3-auth", "server",
        *sorted(str(p) for p in FIXTURES.glob("export-full/AWSDynamoDB/*/data/*.json.gz")),
        str(KINESIS),
    )
    stmts = statements(sql)
    snapshot = stmts.pop()
    assert snapshot.startswith("INSERT INTO `sch_people_flat`") and "FROM s3(" in snapshot
    for s in stmts:
        ch.run(s)
    ch.run(snapshot.replace("FROM s3(", "FROM file("))
    return sql


def test_generated_ddl_types(loaded):
    ddl = loaded
    for col in [
        "`id`         String,",
        "`age`        UInt8,",
        "`first_name` String,",
        "`scores`     Array(Decimal(38, 9)),",
        "`tags`       Array(String),",
        "`active`     Nullable(Bool),",
        "`version`    UInt64,",
    ]:
        assert col in ddl, col
    assert "ORDER BY (`id`);" in ddl
    # A Decimal column: the exact function is used.
    assert "dynamo_flatten_exact(record)" in ddl


def test_snapshot_loaded_exactly(ch, loaded):
    assert ch.rows(
        "SELECT id, first_name, age, toString(scores), tags, active, avatar, version, is_deleted "
        "FROM sch_people FINAL ORDER BY id"
    ) == [
        (SALLY, "sally", "26", "[]", "[]", None, None, "0", "0"),
        (ZOE, "Zoë \"zee\" O'Neil", "41", "[1.5,-7,12345678901234567890123456789.123456789]",
         "['admin','beta']", "true", "iVBORw0KGgo=", "0", "0"),
        (LI, "李雷 🚀", "100", "[]", "[]", None, None, "0", "0"),
    ]
    assert json.loads(ch.one(f"SELECT address FROM sch_people WHERE id = '{ZOE}'")) == {
        "city": "Zürich", "geo": ["47.3769", "8.5417"]}


def test_stream_records_through_generated_views(ch, loaded):
    for line in KINESIS.read_text().splitlines():
        ch.run("INSERT INTO sch_people_stream VALUES (" + quote(line) + ")")
    ch.run("INSERT INTO sch_people_stream VALUES ('{\"eventName\":\"INSERT\"}')")
    # MODIFY applied, REMOVE (also the TTL one) hides the row, INSERT adds bob.
    assert ch.rows("SELECT id, first_name, age, version FROM sch_people FINAL ORDER BY id") == [
        (SALLY, "sally", "27", "1732406501000000"),
        (BOB, "bob", "33", "1732406500123456"),
    ]
    assert ch.rows(
        "SELECT source, error FROM dynamo_errors WHERE table = 'sch_people' ORDER BY at"
    ) == [("stream", "change record has no dynamodb at byte 0")]


def test_odd_names_and_collisions(ch, binary, tmp_path):
    sample = tmp_path / "odd.jsonl"
    sample.write_text(
        '{"Item":{"pk":{"S":"a"},"first-name":{"S":"x"},"version":{"N":"7"},"we`ird":{"N":"-3"}}}\n'
    )
    sql = generate(binary, "--table", "odd table", "--partition-key", "pk", "--s3-url",
                   str(sample), "--s3-auth", "server", str(sample))
    stmts = statements(sql)
    snapshot = stmts.pop()
    for s in stmts:
        ch.run(s)
    ch.run(snapshot.replace("FROM s3(", "FROM file("))
    assert ch.rows(
        "SELECT pk, `first-name`, item_version, `we\\`ird`, version FROM `odd table` FINAL"
    ) == [("a", "x", "7", "-3", "0")]


def quote(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"
