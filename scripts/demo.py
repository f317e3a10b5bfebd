"""The snapshot-and-changes flow on the embedded ClickHouse engine (chDB).

1. registers `dynamo_flatten` from clickhouse-config/ (the shipped function file),
2. loads the sample DynamoDB full export (gzip JSON lines) through the UDF into a
   ReplacingMergeTree(version, is_deleted) table,
3. applies change records (Kinesis Data Streams for DynamoDB records, incremental-export
   lines, a DynamoDB Streams record) through the same function,
4. prints the table after each step and the final state read with FINAL.

Run it with scripts/demo, which builds the program first.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chdb_udf import build_udf_dir, open_session  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
WORK = REPO / ".work" / "demo"

COLUMNS = "id String, first_name String, age UInt8, tags Array(String), version UInt64, is_deleted UInt8"

# Every row goes through the UDF once; error rows (they start with {"_error") are kept
# apart from the data.
FLATTEN = """
    SELECT dynamo_flatten(line) AS j FROM file('{path}', 'LineAsString')
"""


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def main() -> int:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    udf = build_udf_dir(WORK / "udf")
    s = open_session(WORK / "db", udf)

    def q(sql: str) -> str:
        return s.query(sql, "PrettyCompactMonoBlock").bytes().decode()

    def scalar(sql: str) -> str:
        return s.query(sql, "TSV").bytes().decode().strip()

    step("destination table")
    s.query(f"""
        CREATE TABLE people ({COLUMNS})
        ENGINE = ReplacingMergeTree(version, is_deleted) ORDER BY id""")
    s.query("""
        CREATE TABLE load_errors (source String, error String, line String)
        ENGINE = MergeTree ORDER BY tuple()""")
    print(scalar("SHOW CREATE TABLE people").replace("\\n", "\n"))

    def load(source: str, path: Path) -> tuple[int, int, float]:
        started = time.perf_counter()
        s.query(f"""
            CREATE TEMPORARY TABLE IF NOT EXISTS staged (line String, j String) ENGINE = Memory""")
        s.query("TRUNCATE TABLE staged")
        s.query(f"""
            INSERT INTO staged
            SELECT line, dynamo_flatten(line) FROM file('{path}', 'LineAsString')""")
        s.query(f"""
            INSERT INTO people
            SELECT untuple(JSONExtract(j, 'Tuple({COLUMNS})'))
            FROM staged WHERE NOT startsWith(j, '{{"_error"')""")
        s.query(f"""
            INSERT INTO load_errors
            SELECT '{source}', JSONExtractString(j, '_error'), line
            FROM staged WHERE startsWith(j, '{{"_error"')""")
        elapsed = time.perf_counter() - started
        rows = int(scalar("SELECT count() FROM staged"))
        errors = int(scalar("SELECT count() FROM staged WHERE startsWith(j, '{\"_error\"')"))
        return rows, errors, elapsed

    step("snapshot: full export through dynamo_flatten")
    export = FIXTURES / "export-full" / "AWSDynamoDB" / "*" / "data" / "*.json.gz"
    rows, errors, secs = load("snapshot", export)
    print(f"{rows} lines read, {rows - errors} rows loaded, {errors} errors, {secs:.2f} s")
    print(q("SELECT id, first_name, age, tags, version, is_deleted FROM people ORDER BY id"))

    step("stream: change records through the same function")
    for name, path in [
        ("Kinesis Data Streams records", FIXTURES / "kinesis" / "records.jsonl"),
        ("incremental-export lines", FIXTURES / "export-incremental" / "lines.jsonl"),
    ]:
        rows, errors, secs = load("stream", path)
        print(f"{name}: {rows} records, {errors} errors, {secs:.2f} s")
    # A Lambda event holds several DynamoDB Streams records: one row per record.
    s.query(f"""
        INSERT INTO people
        SELECT untuple(JSONExtract(j, 'Tuple({COLUMNS})')) FROM (
            SELECT dynamo_flatten(arrayJoin(JSONExtractArrayRaw(line, 'Records'))) AS j
            FROM file('{FIXTURES / "streams" / "lambda-event.json"}', 'JSONAsString', 'line String'))
        WHERE NOT startsWith(j, '{{"_error"')""")
    print("DynamoDB Streams event: 1 record")

    step("all row versions (before merges)")
    print(q("SELECT id, first_name, age, version, is_deleted FROM people ORDER BY id, version"))

    step("current state: SELECT … FINAL")
    print(q("SELECT id, first_name, age, tags, version FROM people FINAL ORDER BY id"))
    final = scalar("SELECT count() FROM people FINAL")
    errs = scalar("SELECT count() FROM load_errors")
    print(f"final rows: {final}, error rows kept in load_errors: {errs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
