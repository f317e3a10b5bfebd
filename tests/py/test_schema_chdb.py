"""`dynamo-flatten schema`: the SQL it prints runs in the engine and loads the sample data.

The generated statements run as printed, except the snapshot load: its s3(URL, 'LineAsString')
is pointed at the local fixture files by reading them with file() instead (same arguments),
because this test has no S3 server; tests/py/test_sql_flow.py covers s3() itself
(Engine.run_generated).
"""

from __future__ import annotations

import json
import re

import pytest

from harness import FIXTURES
from harness.engine import schema_sql
from harness.sql import quote, split_statements

EXPORT_GLOB = str(FIXTURES / "export-full" / "AWSDynamoDB" / "*" / "data" / "*.json.gz")
KINESIS = FIXTURES / "kinesis" / "records.jsonl"
SALLY = "0A556908-F72B-4BE6-9048-9E60715358D4"
ZOE = "1B2C3D4E-0000-4000-8000-000000000001"
LI = "2C3D4E5F-0000-4000-8000-000000000002"
BOB = "3D4E5F60-0000-4000-8000-000000000003"

COLUMN_LIST = ("'`id` String, `age` Int64, `first_name` String, `active` Nullable(Bool), "
               "`address` Nullable(String), `avatar` Nullable(String), `empty` Nullable(String), "
               "`nickname` Nullable(String), `scores` Array(Decimal(38, 9)), `tags` Array(String), "
               "`blobs` Array(String), `nested` Nullable(String), PRIMARY KEY (`id`)'")


@pytest.fixture(scope="module")
def loaded(ch, binary):
    sql = schema_sql(
        binary, "--table", "sch_people", "--partition-key", "id", "--s3-url", EXPORT_GLOB, "--s3-auth", "server",
        *sorted(str(p) for p in FIXTURES.glob("export-full/AWSDynamoDB/*/data/*.json.gz")),
        str(KINESIS),
    )
    ch.run_generated(sql)
    return sql


def test_generated_ddl_types(loaded):
    ddl = loaded
    for col in [
        "`id`         String,",
        "`age`        Int64,",
        "`first_name` String,",
        "`scores`     Array(Decimal(38, 9)),",
        "`tags`       Array(String),",
        "`active`     Nullable(Bool),",
        "`_extra`     String DEFAULT '{}',",
        "`version`    UInt64,",
    ]:
        assert col in ddl, col
    assert "ORDER BY (`id`)\nSETTINGS non_replicated_deduplication_window = 1000;" in ddl
    # One function, the column list as a literal in every call; the view's Tuple adds _extra
    # and the metadata.
    assert "dynamo_flatten_exact" not in ddl and "dynamo_flatten(" not in ddl
    assert f"--   {COLUMN_LIST}\n" in ddl
    assert f"dynamo_flatten_columns(record, {COLUMN_LIST}) AS j" in ddl
    assert f"SELECT 'snapshot', line, dynamo_flatten_columns(line, {COLUMN_LIST})\n" in ddl
    assert ("`blobs` Array(String), `nested` Nullable(String), `_extra` String, `version` UInt64, "
            "`is_deleted` UInt8)') AS t FROM `sch_people_flat`") in ddl


def test_snapshot_loaded_exactly(ch, loaded):
    assert ch.rows(
        "SELECT id, first_name, age, toString(scores), tags, active, avatar, _extra, version, is_deleted "
        "FROM sch_people FINAL ORDER BY id"
    ) == [
        (SALLY, "sally", "26", "[]", "[]", None, None, "{}", "0", "0"),
        (ZOE, "Zoë \"zee\" O'Neil", "41", "[1.5,-7,12345678901234567890123456789.123456789]",
         "['admin','beta']", "true", "iVBORw0KGgo=", "{}", "0", "0"),
        (LI, "李雷 🚀", "100", "[]", "[]", None, None, "{}", "0", "0"),
    ]
    # An M in a String column: plain JSON, numbers as written.
    assert ch.one(f"SELECT address FROM sch_people WHERE id = '{ZOE}'") == (
        '{"city":"Zürich","geo":[47.3769,8.5417]}')


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


def test_attributes_without_a_column_or_that_misfit_land_in_extra(ch, loaded):
    """A new attribute and a value that does not fit its column: kept in _extra, exact."""
    record = json.loads(KINESIS.read_text().splitlines()[0])
    image = record["dynamodb"]["NewImage"]
    image["id"] = {"S": "drift-1"}
    image["age"] = {"S": "unknown"}
    image["qty"] = {"N": "123456789012345678901234567890.50"}
    image["label"] = {"S": "café"}           # caf\u00e9 in the record (json.dumps)
    record["dynamodb"]["Keys"] = {"id": image["id"]}
    ch.run("INSERT INTO sch_people_stream VALUES (" + quote(json.dumps(record)) + ")")
    # _extra is the text the function wrote, exactly: numbers and string escapes as in the
    # record (json.dumps wrote café as caf\u00e9).
    assert ch.rows("SELECT first_name, age, _extra FROM sch_people FINAL WHERE id = 'drift-1'") == [
        ("bob", "0", ('{"age":{"S":"unknown"},"qty":{"N":"123456789012345678901234567890.50"},'
                      '"label":{"S":"caf\\u00e9"}}')),
    ]


def test_odd_names_and_collisions(ch, binary, tmp_path):
    sample = tmp_path / "odd.jsonl"
    sample.write_text(
        '{"Item":{"pk":{"S":"a"},"first-name":{"S":"x"},"version":{"N":"7"},"we`ird":{"N":"-3"},'
        '"it\'s \\\\ odd":{"S":"q"}}}\n'
    )
    sql = schema_sql(binary, "--table", "odd table", "--partition-key", "pk", "--s3-url",
                     str(sample), "--s3-auth", "server", str(sample))
    # Names with quotes and backslashes are backquoted in the list, and the list is escaped
    # once more as a string literal.
    assert "'`pk` String, `first-name` String, `it\\'s \\\\\\\\ odd` String, `item_version` Int64, `we\\\\`ird` Int64, PRIMARY KEY (`pk`)'" in sql
    ch.run_generated(sql)
    assert ch.rows(
        "SELECT pk, `first-name`, item_version, `we\\`ird`, `it's \\\\ odd`, _extra, version FROM `odd table` FINAL"
    ) == [("a", "x", "7", "-3", "q", "{}", "0")]


def test_types_with_room_and_flags(binary, tmp_path):
    sample = tmp_path / "types.jsonl"
    items = [
        {"id": {"S": "a"}, "n": {"N": "7"}, "d": {"N": "1.25"}, "at": {"S": "2024-01-02T03:04:05.5Z"},
         "huge": {"N": "1E+100"}, "mixed": {"N": "1"}},
        {"id": {"S": "b"}, "n": {"N": "255"}, "d": {"N": "3"}, "at": {"S": "2024-01-02 03:04:05.123456"},
         "huge": {"N": "-1E+100"}, "mixed": {"S": "one"}},
        {"id": {"S": "c"}, "n": {"N": "9"}, "at": {"S": "2024-01-02T03:04:05+09:00"}, "mixed": {"N": "3"}},
    ]
    sample.write_text("".join(json.dumps(i) + "\n" for i in items))

    def ddl(*flags: str) -> str:
        sql = schema_sql(binary, "--table", "t", "--partition-key", "id", *flags, str(sample))
        return next(s for s in split_statements(sql) if "CREATE TABLE IF NOT EXISTS `t`" in s)

    def col(sql: str, name: str) -> str:
        m = re.search(rf"^    `{name}` +(.*?),?(?: +-- (.*))?$", sql, flags=re.MULTILINE)
        assert m, (name, sql)
        return m.group(1) + (f" -- {m.group(2)}" if m.group(2) else "")

    wide = ddl()
    assert col(wide, "n") == "Int64"
    assert col(wide, "d") == "Nullable(Decimal(38, 6))"
    assert col(wide, "at") == "String"
    assert col(wide, "mixed") == "Int64 -- mixed types: 1 of 3 values (S/B) land in _extra"
    assert ("\n    -- `huge`: numbers beyond Decimal(76, S): no column type holds them exactly; "
            "the attribute stays in _extra\n") in wide
    assert not re.search(r"^    `huge`", wide, flags=re.MULTILINE)
    narrow = ddl("--narrow", "--datetimes")
    assert col(narrow, "n") == "UInt8"
    assert col(narrow, "d") == "Nullable(Decimal(38, 2))"
    assert col(narrow, "at") == "DateTime64(6, 'UTC')"
