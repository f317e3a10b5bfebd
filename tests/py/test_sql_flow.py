"""The SQL scripts in sql/, run as written in chDB, with the snapshot read from an S3 server.

The S3 server is moto on 127.0.0.1 at a free port (the `moto` fixture of conftest.py); the sample full export (manifests, `_started`, both
data files, the empty one included) is uploaded to it with boto3 under
s3://my-exports/dynamo/AWSDynamoDB/<export-id>/, as DynamoDB writes it.

How the scripts are run (harness.engine): each file is split into statements (comments, strings and
quoted identifiers are respected, see `split_statements`) and every statement is sent unchanged.
Query parameters are NOT substituted here: chDB's `Session.query(sql, fmt, params={...})`
hands them to the engine, which replaces `{name:Type}` itself, the same mechanism as
`clickhouse-client --param_name=…`. Like clickhouse-client with `--multiquery`, every
statement of a file gets all parameters, and the first failing statement stops the file.

The scripts use unqualified names, i.e. the current database. The chDB session is shared by
every test module of the process (one database path per process), and other modules create
their own `dynamo_errors`, so this module works in its own database (`USE sql_flow`) and
switches back to `default` at the end.

The tests run in file order and build on each other: 01-03 load the snapshot from S3, 04 a
staged snapshot with a bad line, 05 the Kinesis records with a bad record, 06 reads the
state, 07-09 clean up. The last test stands alone, in a database of its own: a model of a
table's history whose stream has a gap, filled by 12 from an incremental export.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import re

import pytest
from test_cdc_model import (
    expected_state,
    export_files,
    incremental_export_files,
    kds_record,
    simulate,
    state_diff,
    stored_state,
    table_at,
)

from harness import FIXTURES, SQL_DIR
from harness.aws import Moto
from harness.forwarder import disorder
from harness.sql import split_statements, tsv

DB = "sql_flow"

EXPORT_ID = "01732406400000-8f3a1c2e"
EXPORT_DIR = FIXTURES / "export-full"            # holds AWSDynamoDB/<export-id>/…
BUCKET, PREFIX = "my-exports", "dynamo"          # as in the sample manifest-summary.json
KINESIS = FIXTURES / "kinesis" / "records.jsonl"
LAMBDA_EVENT = FIXTURES / "streams" / "lambda-event.json"

SALLY = "0A556908-F72B-4BE6-9048-9E60715358D4"
ZOE = "1B2C3D4E-0000-4000-8000-000000000001"
LI = "2C3D4E5F-0000-4000-8000-000000000002"
BOB = "3D4E5F60-0000-4000-8000-000000000003"
ANA = "4E5F6071-0000-4000-8000-000000000004"

SNAPSHOT_STATE = [
    (SALLY, "sally", "26", "0", "0"),
    (ZOE, "Zoë \"zee\" O'Neil", "41", "0", "0"),
    (LI, "李雷 🚀", "100", "0", "0"),
]
ANA_LINE = f'{{"Item":{{"id":{{"S":"{ANA}"}},"first_name":{{"S":"ana"}},"age":{{"N":"7"}}}}}}'
BAD_LINE = f'{{"Item":{{"id":{{"S":"{ANA}"}},"first_name":{{"S":"ana"}},"age":{{"X":"7"}}}}}}'
BAD_LINE_ERROR = 'unknown type tag "X" (expected S, N, B, BOOL, NULL, M, L, SS, NS or BS) at byte 91'
BAD_RECORD = ('{"awsRegion":"us-east-1","eventName":"MODIFY","dynamodb":'
              '{"ApproximateCreationDateTime":1732406509000,"NewImage":{"id":{"S":"0A55')
BAD_RECORD_ERROR = "unexpected end of input (truncated JSON?) at byte 129"

# The column list of every dynamo_flatten_columns call in 03, 04 and 05.
COLUMNS = "id String, first_name String, age UInt8, PRIMARY KEY (id)"

UDF_CALLS = "ExecutableUserDefinedFunctionInvocations"
UDF_INPUT_BYTES = "ExecutableUserDefinedFunctionInputBytes"

OBJECTS_AFTER_LOADS = [
    "dynamo_errors", "people", "people_errors_mv", "people_flat", "people_flat_mv",
    "people_snapshot", "people_snapshot_mv", "people_stream", "people_stream_mv",
]


# --- this module's database ------------------------------------------------------------------


def tables(ch) -> list[str]:
    return [r[0] for r in tsv(ch.run(f"SELECT name FROM system.tables WHERE database = '{DB}' ORDER BY name"))]


# --- proving one call of dynamo_flatten per row ------------------------------------------------
#
# ClickHouse counts, per process, the blocks it sends to executable UDFs and the bytes written
# to their stdin. With the shipped config (RowBinary, send_chunk_header) a block of N rows is
# "N\n" followed by each row's arguments, the line and the column list, each String as a
# LEB128 length and its bytes, so the byte count of ONE pass over the inserted rows is known
# exactly; a second call of the function on the same rows (e.g. one per view) would double it.


def udf_counters(ch) -> dict[str, int]:
    rows = tsv(ch.run(f"SELECT event, value FROM system.events WHERE event IN ('{UDF_CALLS}', '{UDF_INPUT_BYTES}')"))
    got = {k: int(v) for k, v in rows}
    return {UDF_CALLS: got.get(UDF_CALLS, 0), UDF_INPUT_BYTES: got.get(UDF_INPUT_BYTES, 0)}


def leb128(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def one_block(lines: list[str]) -> dict[str, int]:
    """The counters' increase for one block holding `lines`, each sent once (with the list)."""
    data = [line.encode() for line in lines]
    cols = COLUMNS.encode()
    per_list = len(leb128(len(cols))) + len(cols)
    size = len(f"{len(data)}\n") + sum(len(leb128(len(d))) + len(d) + per_list for d in data)
    return {UDF_CALLS: 1, UDF_INPUT_BYTES: size}


class UdfCalls:
    def __init__(self, ch):
        self.ch = ch

    def __enter__(self):
        self.before = udf_counters(self.ch)
        return self

    def __exit__(self, *exc):
        after = udf_counters(self.ch)
        self.delta = {k: after[k] - self.before[k] for k in after}


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def export_url(moto) -> str:
    """Uploads the sample export tree; returns the data-file glob that 03 takes as `url`."""
    s3 = moto.s3()
    s3.create_bucket(Bucket=BUCKET)
    files = sorted(p for p in EXPORT_DIR.rglob("*") if p.is_file())
    for p in files:
        s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/{p.relative_to(EXPORT_DIR).as_posix()}", Body=p.read_bytes())
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"])
    base = f"{PREFIX}/AWSDynamoDB/{EXPORT_ID}"
    assert keys == [
        f"{base}/_started",
        f"{base}/data/r5hq2yzb3u7nlebjhxm4e2bt7a.json.gz",
        f"{base}/data/zzz0emptypartition0000000000.json.gz",
        f"{base}/manifest-files.json",
        f"{base}/manifest-summary.json",
    ]
    return f"{moto.endpoint}/{BUCKET}/{base}/data/*.json.gz"


@pytest.fixture(scope="module")
def params(export_url) -> dict:
    """What `clickhouse-client --param_url=… --param_access_key_id=… …` would pass."""
    return {"url": export_url, "access_key_id": Moto.KEY, "secret_access_key": Moto.SECRET}


@pytest.fixture(scope="module")
def db(ch):
    """The shared chDB session, switched to this module's own database."""
    with ch.in_database(DB):
        yield ch


def export_lines() -> list[str]:
    lines = []
    for p in sorted((EXPORT_DIR / "AWSDynamoDB" / EXPORT_ID / "data").glob("*.json.gz")):
        lines += gzip.decompress(p.read_bytes()).decode().splitlines()
    return lines


# --- the scripts themselves -------------------------------------------------------------------


def test_split_statements():
    sql = """-- header; with a semicolon
SELECT 'a;b', "c;d", `e;f`, 'it''s;', 'x\\';y' /* ; */ ;
/* only a comment; */
-- only a comment;
SELECT '{"_error"' -- trailing; comment
;SELECT 3"""
    assert split_statements(sql) == [
        "-- header; with a semicolon\nSELECT 'a;b', \"c;d\", `e;f`, 'it''s;', 'x\\';y' /* ; */",
        "/* only a comment; */\n-- only a comment;\nSELECT '{\"_error\"' -- trailing; comment",
        "SELECT 3",
    ]
    assert split_statements(sql, keep_comments=False)[1] == "SELECT '{\"_error\"'"


def test_every_script_has_a_header_with_its_parameters():
    files = sorted(SQL_DIR.glob("*.sql"))
    assert [p.name for p in files] == [
        "01_destination.sql", "02_flat_and_errors.sql", "03_snapshot_from_s3.sql",
        "04_snapshot_staged.sql", "05_stream.sql", "06_current_state.sql",
        "07_cleanup_staging.sql", "08_drop_errors_table.sql", "09_purge_deleted.sql", "10_kinesis_checkpoints.sql",
        "11_drift_report.sql", "12_incremental_export.sql",
    ]
    for p in files:
        text = p.read_text()
        assert text.startswith(f"-- {p.name}: "), p.name
        header = text[: text.index("\n\n")] if "\n\n" in text else text
        assert "-- Parameters" in header and "-- Run" in header, p.name
        assert f"< sql/{p.name}" in header, p.name
        code = "\n".join(split_statements(text, keep_comments=False))
        used = set(re.findall(r"\{(\w+):\w+\}", code))
        for name in used:
            assert f"--param_{name}=" in header, (p.name, name)
        if not used:
            assert "-- Parameters: none." in header, p.name


def test_s3_table_function_takes_query_parameters(db, params):
    sql = "SELECT count() FROM s3({url:String}, {access_key_id:String}, {secret_access_key:String}, 'LineAsString')"
    assert db.run(sql, params) == "3\n"      # 3 items; the empty partition file adds none
    with pytest.raises(Exception, match=r"(?s)Substitution `url` is not set.*UNKNOWN_QUERY_PARAMETER"):
        db.run(sql)


# --- the flow ---------------------------------------------------------------------------------


def test_snapshot_from_s3(db, params):
    db.run_file("01_destination.sql", params)
    db.run_file("02_flat_and_errors.sql", params)
    with UdfCalls(db) as calls:
        assert db.run_file("03_snapshot_from_s3.sql", params) == [""]

    rows = "SELECT id, first_name, age, version, is_deleted FROM people {} ORDER BY id"
    assert tsv(db.run(rows.format("FINAL"))) == SNAPSHOT_STATE
    assert tsv(db.run(rows.format(""))) == SNAPSHOT_STATE      # exactly 3 rows stored
    assert db.count("dynamo_errors") == 0
    assert db.count("people_flat") == 0                           # Null: nothing staged
    # Every line read from S3 went through dynamo_flatten once, in one block.
    assert calls.delta == one_block(export_lines())


def test_extra_and_drift_report_after_the_snapshot(db, params):
    """The attributes without a column are in _extra, exact (06 reads them, 11 sums them up)."""
    zoe_extra = ('{"tags":{"SS":["admin","beta"]},"scores":{"NS":["1.5","-7",'
                 '"12345678901234567890123456789.123456789"]},"active":{"BOOL":true},'
                 '"nickname":{"NULL":true},"avatar":{"B":"iVBORw0KGgo="},"address":{"M":{"city":'
                 '{"S":"Zürich"},"geo":{"L":[{"N":"47.3769"},{"N":"8.5417"}]}}},"empty":{"S":""}}')
    li_extra = ('{"blobs":{"BS":["AAEC","/w=="]},"nested":{"M":{"l":{"L":[{"M":{"x":{"N":"-0.000001"}}},'
                '{"L":[]},{"M":{}}]}}}}')
    state, errors, extra = (tsv(t) for t in db.run_file("06_current_state.sql", params))
    assert [r[:4] for r in state] == [
        (SALLY, "sally", "26", "{}"),
        (ZOE, "Zoë \"zee\" O'Neil", "41", zoe_extra),
        (LI, "李雷 🚀", "100", li_extra),
    ]
    assert errors == []
    assert [r[:4] for r in extra] == [
        (ZOE, "['tags','scores','active','nickname','avatar','address','empty']", "", "['admin','beta']"),
        (LI, "['blobs','nested']", "", "[]"),
    ]
    assert json.loads(extra[0][4])["scores"] == {"NS": ["1.5", "-7", "12345678901234567890123456789.123456789"]}

    report = tsv(db.run_file("11_drift_report.sql", params)[0])
    attrs = ["active", "address", "avatar", "blobs", "empty", "nested", "nickname", "scores", "tags"]
    assert [r[0] for r in report] == attrs                        # 1 row each: by name
    assert {r[0]: r[1:4] for r in report} == {
        "active": ("1", "33.33", "['BOOL']"), "address": ("1", "33.33", "['M']"),
        "avatar": ("1", "33.33", "['B']"), "blobs": ("1", "33.33", "['BS']"),
        "empty": ("1", "33.33", "['S']"), "nested": ("1", "33.33", "['M']"),
        "nickname": ("1", "33.33", "['NULL']"), "scores": ("1", "33.33", "['NS']"),
        "tags": ("1", "33.33", "['SS']"),
    }
    examples = {r[0]: r[4] for r in report}
    assert examples["tags"] == """['{"SS":["admin","beta"]}']"""
    assert examples["active"] == """['{"BOOL":true}']"""


def test_staged_snapshot_bad_line_goes_to_errors_and_load_continues(db, params):
    db.run_file("04_snapshot_staged.sql", params)
    lines = [BAD_LINE, ANA_LINE]          # the good line comes after the bad one
    with UdfCalls(db) as calls:
        db.insert_lines("people_snapshot", lines)

    assert tsv(db.run("SELECT `table`, source, error, line FROM dynamo_errors")) == [
        ("people", "snapshot", BAD_LINE_ERROR, BAD_LINE),
    ]
    assert tsv(db.run("SELECT id, first_name, age, version, is_deleted FROM people FINAL ORDER BY id")) == (
        SNAPSHOT_STATE + [(ANA, "ana", "7", "0", "0")]
    )
    # Each inserted row ended in exactly one of the two tables …
    assert db.count("people") + db.count("dynamo_errors") == 3 + len(lines)
    assert db.count("people_snapshot") == 0
    # … after exactly one call of the function on it.
    assert calls.delta == one_block(lines)


def test_stream_kinesis_records(db, params):
    db.run_file("05_stream.sql", params)
    records = KINESIS.read_text().splitlines()
    assert len(records) == 4
    sent = records[:2] + [BAD_RECORD] + records[2:]
    with UdfCalls(db) as calls:
        db.insert_lines("people_stream", sent)

    state, errors, extra = (tsv(t) for t in db.run_file("06_current_state.sql", params))
    # INSERT bob (µs precision), MODIFY sally (ms, no precision field: ×1000), REMOVE zoe and
    # the TTL REMOVE of li: both hidden by FINAL. ana (staged snapshot) is untouched.
    assert state == [
        (SALLY, "sally", "27", "{}", "1732406501000000", "0"),
        (BOB, "bob", "33", "{}", "1732406500123456", "0"),
        (ANA, "ana", "7", "{}", "0", "0"),
    ]
    assert extra == []           # the current rows have no attribute beyond the columns
    # The deletes are stored as delete markers with the record's time in µs.
    assert tsv(db.run("SELECT id, version FROM people WHERE is_deleted = 1 ORDER BY id")) == [
        (ZOE, "1732406502345678"),
        (LI, "1732406503000001"),
    ]
    assert tsv(db.run("SELECT `table`, source, error, line FROM dynamo_errors WHERE source = 'stream'")) == [
        ("people", "stream", BAD_RECORD_ERROR, BAD_RECORD),
    ]
    assert [r[:3] + r[5:] for r in errors] == [
        ("people", "snapshot", "1", BAD_LINE_ERROR),
        ("people", "stream", "1", BAD_RECORD_ERROR),
    ]
    assert db.count("people") + db.count("dynamo_errors") == 3 + 2 + len(sent)
    assert db.count("people_stream") == 0 and db.count("people_flat") == 0
    assert calls.delta == one_block(sent)


def test_stream_lambda_event_split_into_records(db):
    # The form shown in 05_stream.sql for an event file (here an absolute path).
    with UdfCalls(db) as calls:
        db.run("INSERT INTO people_stream SELECT arrayJoin(JSONExtractArrayRaw(event, 'Records')) "
                  "FROM file({path:String}, 'RawBLOB', 'event String')", {"path": str(LAMBDA_EVENT)})
    assert tsv(db.run(f"SELECT first_name, age, version FROM people FINAL WHERE id = '{SALLY}'")) == [
        ("sally", "28", "1732406510000000"),          # seconds ×10⁶
    ]
    assert calls.delta[UDF_CALLS] == 1


def test_only_the_loading_views_call_the_function(db):
    """Why one call per row: only the objects that write INTO people_flat call the function;
    the two views that read people_flat use the column j of the block they are given."""
    views = tsv(db.run(f"SELECT name, as_select, create_table_query FROM system.tables "
                          f"WHERE database = '{DB}' AND engine = 'MaterializedView' ORDER BY name"))
    calls = {name: f"dynamo_flatten_columns(line, '{COLUMNS}')" in select
             or f"dynamo_flatten_columns(record, '{COLUMNS}')" in select for name, select, _ in views}
    targets = {name: re.search(r" TO (\S+)", create).group(1) for name, _, create in views}
    assert calls == {"people_errors_mv": False, "people_flat_mv": False,
                     "people_snapshot_mv": True, "people_stream_mv": True}
    assert targets == {"people_errors_mv": f"{DB}.dynamo_errors", "people_flat_mv": f"{DB}.people",
                       "people_snapshot_mv": f"{DB}.people_flat", "people_stream_mv": f"{DB}.people_flat"}
    snapshot_insert, = split_statements((SQL_DIR / "03_snapshot_from_s3.sql").read_text(), keep_comments=False)
    assert snapshot_insert.count("dynamo_flatten_columns(") == 1 and "INSERT INTO people_flat" in snapshot_insert
    assert f"SELECT 'snapshot', line, dynamo_flatten_columns(line, '{COLUMNS}')" in snapshot_insert
    # 12 loads the same way (source 'incremental'); its delete markers call no function.
    incremental_insert, markers = split_statements((SQL_DIR / "12_incremental_export.sql").read_text(),
                                                   keep_comments=False)
    assert incremental_insert.count("dynamo_flatten_columns(") == 1 and "INSERT INTO people_flat" in incremental_insert
    assert f"SELECT 'incremental', line, dynamo_flatten_columns(line, '{COLUMNS}')" in incremental_insert
    assert "dynamo_flatten" not in markers and markers.startswith("INSERT INTO people ")
    assert tsv(db.run(f"SELECT name, engine FROM system.tables WHERE database = '{DB}' "
                         "AND name IN ('people_flat', 'people_snapshot', 'people_stream') ORDER BY name")) == [
        ("people_flat", "Null"), ("people_snapshot", "Null"), ("people_stream", "Null"),
    ]


# --- cleanup ----------------------------------------------------------------------------------


def test_cleanup_staging_drops_the_staged_path_only(db, params):
    assert tables(db) == OBJECTS_AFTER_LOADS
    assert db.run_file("07_cleanup_staging.sql", params) == ["", ""]
    assert tables(db) == [t for t in OBJECTS_AFTER_LOADS if not t.startswith("people_snapshot")]
    # Running it again is harmless (IF EXISTS).
    db.run_file("07_cleanup_staging.sql", params)


def test_drop_errors_table_only_when_empty(db, params):
    before = tables(db)
    with pytest.raises(Exception, match=r"(?s)dynamo_errors is not empty: nothing was dropped.*"
                                        r"FUNCTION_THROW_IF_VALUE_IS_NON_ZERO"):
        db.run_file("08_drop_errors_table.sql", params)
    assert tables(db) == before

    db.run("TRUNCATE TABLE dynamo_errors")
    # Another destination table's errors view also writes into dynamo_errors: refused.
    db.run("CREATE TABLE things_flat (source LowCardinality(String), line String, j String) ENGINE = Null")
    db.run("CREATE MATERIALIZED VIEW things_errors_mv TO dynamo_errors AS SELECT 'things' AS `table`, "
              "source, JSONExtractString(j, '_error') AS error, line FROM things_flat "
              "WHERE startsWith(j, '{\"_error\"')")
    with pytest.raises(Exception, match="another materialized view writes into dynamo_errors"):
        db.run_file("08_drop_errors_table.sql", params)
    assert "dynamo_errors" in tables(db) and "people_errors_mv" in tables(db)
    db.run("DROP VIEW things_errors_mv")
    db.run("DROP TABLE things_flat")

    db.run_file("08_drop_errors_table.sql", params)
    assert tables(db) == [t for t in before if t not in ("dynamo_errors", "people_errors_mv")]
    # As the header says: without the errors view a bad row is now dropped silently,
    # and good rows still load.
    rows = db.count("people")
    db.insert_lines("people_stream", [BAD_RECORD])
    assert db.count("people") == rows


def test_purge_deleted_rows(db, params):
    final = "SELECT id, first_name, age, version, is_deleted FROM people {} ORDER BY id"
    state = tsv(db.run(final.format("FINAL")))
    assert db.count("people WHERE is_deleted = 1") == 2
    db.run_file("09_purge_deleted.sql", params)
    # Every key now has one stored row, deleted keys none: the table equals its FINAL view.
    assert tsv(db.run(final.format(""))) == state == [
        (SALLY, "sally", "28", "1732406510000000", "0"),
        (BOB, "bob", "33", "1732406500123456", "0"),
        (ANA, "ana", "7", "0", "0"),
    ]


# --- a stream with a gap, filled by an incremental export (12) ---------------------------------
#
# The model of test_cdc_model.py: a table's history (items from before the stream, puts,
# updates, deletes, TTL deletes and re-inserts of the same keys, attributes of every type) and
# its full export at T. The forwarder delivered the stream's records up to a point per shard
# (two shards, by key), then stopped for longer than the stream's retention: the records from
# there up to `horizon` are gone, and the restarted forwarder (--on-expired-checkpoint trim-horizon)
# delivers those from `horizon` on. An incremental export of [ExportFromTime, ExportToTime),
# whole seconds before the older checkpoint and after the horizon, covers the gap and
# overlaps what the stream delivered on both sides.

GAP_DB = "sql_flow_gap"
GAP_BUCKET = "gap-exports"
FULL_PREFIX, RECOVERY_PREFIX = "dynamo/people", "dynamo/recovery-1"
FINAL_ROWS = ("SELECT id, first_name, age, _extra, version, is_deleted FROM people FINAL "
              "WHERE is_deleted = 0 ORDER BY id")


@pytest.fixture
def gap_db(db):
    """A database of its own for one scenario; this module's database again afterwards."""
    with db.in_database(GAP_DB):
        yield db
    db.run(f"USE {DB}")


def shard_of(key: str) -> int:
    return hashlib.sha256(key.encode()).digest()[0] % 2


def newest(snapshot: dict[str, dict], changes) -> tuple[dict[str, dict], dict[str, int]]:
    """The items and versions people FINAL holds once the snapshot and these changes are in:
    per key its change with the highest version (the snapshot's row has version 0)."""
    best: dict[str, tuple[int, dict | None]] = {key: (0, item) for key, item in snapshot.items()}
    for c in changes:
        if c.key not in best or c.version > best[c.key][0]:
            best[c.key] = (c.version, c.new)
    return ({k: item for k, (_, item) in best.items() if item is not None},
            {k: v for k, (v, item) in best.items() if item is not None})


def test_stream_gap_filled_by_an_incremental_export(gap_db, params, moto):
    sim = simulate()
    rng = random.Random(20241125)
    later = [c for c in sim.changes if c.version > sim.export_time_us]
    delivered = {0: later[len(later) * 3 // 10].version, 1: later[len(later) * 4 // 10].version}
    horizon = later[len(later) * 7 // 10].version
    before_gap = [c for c in sim.changes if c.version <= delivered[shard_of(c.key)]]
    after_gap = [c for c in sim.changes if c.version >= horizon]
    lost = [c for c in sim.changes if delivered[shard_of(c.key)] < c.version < horizon]
    from_s, to_s = min(delivered.values()) // 10**6 - 2, horizon // 10**6 + 3
    from_us, to_us = from_s * 10**6, to_s * 10**6

    # What the stream alone leaves in people FINAL, and the cases the gap holds.
    held, held_version = newest(sim.snapshot, before_gap + after_gap)
    last = {c.key: c for c in sim.changes}                  # each key's last change
    lost_ids = {(c.key, c.version) for c in lost}
    removed_lost = {c.key for c in lost if c.event == "REMOVE"}
    inserted_lost = {c.key for c in lost if c.event == "INSERT"}
    start, end = table_at(sim, from_us), table_at(sim, to_us)
    no_line = {c.key for c in sim.changes if from_us <= c.version < to_us} - start.keys() - end.keys()
    left_alive = {k for k in no_line if k in held and from_us <= held_version[k] < to_us}
    cases = {
        "last change lost": sum((k, c.version) in lost_ids for k, c in last.items()),
        "deleted in the gap for good": sum((k, c.version) in lost_ids and c.event == "REMOVE"
                                           for k, c in last.items()),
        "created in the gap": len({k for k, c in last.items() if (k, c.version) in lost_ids}
                                  - sim.snapshot.keys() - removed_lost),
        "deleted before the gap, back in it": len(
            inserted_lost & {c.key for c in before_gap if c.event == "REMOVE"}),
        "deleted in the gap, back after it": len(
            removed_lost & {c.key for c in after_gap if c.event == "INSERT"}),
        "created and deleted within the range (no line)": len(no_line),
        "of those, created before the gap and deleted in it": len(left_alive),
    }
    assert all(n >= 1 for n in cases.values()), cases
    assert cases["last change lost"] >= 100, cases

    # The full export at T and the incremental export, in S3 as DynamoDB writes them.
    full_id, full_files, _ = export_files(sim, rng, bucket=GAP_BUCKET, prefix=FULL_PREFIX, bad_lines=())
    incr_id, incr_files, incr_lines = incremental_export_files(
        sim, from_us, to_us, rng, bucket=GAP_BUCKET, prefix=RECOVERY_PREFIX)
    s3 = moto.s3()
    s3.create_bucket(Bucket=GAP_BUCKET)
    for key, body in {**full_files, **incr_files}.items():
        s3.put_object(Bucket=GAP_BUCKET, Key=key, Body=body)
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=GAP_BUCKET, Prefix=RECOVERY_PREFIX)["Contents"])
    base = f"{RECOVERY_PREFIX}/AWSDynamoDB"
    assert [k for k in keys if not k.startswith(f"{base}/data/")] == [
        f"{base}/{incr_id}/_started", f"{base}/{incr_id}/manifest-files.json",
        f"{base}/{incr_id}/manifest-summary.json"]
    assert all(re.fullmatch(rf"{base}/data/[a-z2-7]{{26}}\.json\.gz", k) for k in keys if "/data/" in k)
    # The lines have the shape of the real sample in tests/fixtures.
    sample = json.loads((FIXTURES / "export-incremental" / "lines.jsonl").read_text().splitlines()[0])
    docs = [json.loads(line) for k in keys if "/data/" in k for line in gzip.decompress(incr_files[k]).splitlines()]
    assert len(docs) == incr_lines
    assert all([f for f in sample if f in d] == list(d) and {"Metadata", "Keys"} <= d.keys()
               and d["Metadata"]["WriteTimestampMicros"].keys() == {"N"} for d in docs)
    assert {("NewImage" in d, "OldImage" in d) for d in docs} == {(True, False), (True, True), (False, True)}
    full = {**params, "url": f"{moto.endpoint}/{GAP_BUCKET}/{FULL_PREFIX}/AWSDynamoDB/{full_id}/data/*.json.gz"}
    incremental = {**params, "url": f"{moto.endpoint}/{GAP_BUCKET}/{base}/data/*.json.gz",
                   "export_from_time": str(from_s), "export_to_time": str(to_s)}

    # Not in the order of time: the records from after the gap first, then the snapshot, then
    # the records from before the gap (both shuffled, some twice), the export last.
    for name in ("01_destination.sql", "02_flat_and_errors.sql", "05_stream.sql"):
        gap_db.run_file(name)
    gap_db.insert_lines("people_stream", disorder([kds_record(c, rng) for c in after_gap], rng))
    assert gap_db.run_file("03_snapshot_from_s3.sql", full) == [""]
    gap_db.insert_lines("people_stream", disorder([kds_record(c, rng) for c in before_gap], rng))

    # Without the export the gap is real: the table holds the newest of what the stream
    # delivered, which differs from the table's history.
    without = stored_state(tsv(gap_db.run(FINAL_ROWS)))
    diff = state_diff(without, expected_state(held, held_version))
    assert not diff, diff
    expected = expected_state(sim.final, sim.version)
    differing = {k for k in without.keys() | expected.keys() if without.get(k) != expected.get(k)}
    assert len(differing) >= 100, len(differing)
    assert left_alive <= without.keys() - expected.keys()      # created, and deleted in the gap

    # 12 fills it: people FINAL equals the model value by value.
    markers = f"people WHERE is_deleted = 1 AND version = {to_us - 1}"
    assert gap_db.count(markers) == 0
    assert gap_db.run_file("12_incremental_export.sql", incremental) == ["", ""]
    got = stored_state(tsv(gap_db.run(FINAL_ROWS)))
    diff = state_diff(got, expected)
    assert not diff, diff
    assert gap_db.count("dynamo_errors") == 0
    # Statement 2 deleted exactly the items the export has no line for but the stream had
    # created within the range.
    assert {r[0] for r in tsv(gap_db.run(f"SELECT id FROM {markers}"))} == left_alive

    # The check in the header of 12: the lines read equal the manifest's itemCount.
    summary = json.loads(incr_files[f"{base}/{incr_id}/manifest-summary.json"])
    assert summary["exportType"] == "INCREMENTAL_EXPORT" and summary["itemCount"] == incr_lines
    n = gap_db.run("SELECT count() FROM s3({url:String}, {access_key_id:String}, "
                      "{secret_access_key:String}, 'LineAsString')", incremental)
    assert int(n) == incr_lines

    # Loading it again changes nothing.
    gap_db.run_file("12_incremental_export.sql", incremental)
    assert stored_state(tsv(gap_db.run(FINAL_ROWS))) == got
    assert gap_db.count(markers) == len(left_alive)
