"""The snapshot-and-changes flow on the embedded ClickHouse engine (chDB).

Part 1, the sample export in tests/fixtures/:
  registers `dynamo_flatten` from clickhouse-config/ (the shipped function file), loads the
  export through the UDF into a ReplacingMergeTree(version, is_deleted) table, applies change
  records (Kinesis Data Streams for DynamoDB records, incremental-export lines, a DynamoDB
  Streams record) through the same function, and prints the table before and after.

Part 2, a generated export (100 000 items by default, --items N):
  writes it as a real export (manifests, gzip parts, an empty part), serves it from a local S3
  server, generates the tables with `dynamo-flatten schema`, loads the snapshot from S3 through
  the UDF, puts a batch of change records (INSERT/MODIFY/REMOVE, duplicates, shuffled, a few
  malformed) into a local Kinesis stream, runs kinesis-forwarder --once to send them through the
  stream landing table, and reports rows, rows/s, errors, checkpoints and the final state.

Run it with scripts/demo, which builds the programs first.
"""

from __future__ import annotations

import argparse
import copy
import gzip
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

from harness import FIXTURES, RELEASE, REPO
from harness.aws import LocalKinesis, Moto
from harness.dynamodb import change_record, export_tree
from harness.engine import Engine, build_udf_dir
from harness.http_front import ClickHouseHTTPFront
from harness.sql import split_statements

WORK = REPO / ".work" / "demo"
BIN = RELEASE / "dynamo-flatten"
FORWARDER = RELEASE / "kinesis-forwarder"
GEN = RELEASE / "examples" / "gen_export"
EXPORT_ID = "01732406400000-0d3e5a7c"
MARK = "UPDATED-BY-STREAM"  # the status the MODIFY records set

COLUMNS = "id String, first_name String, age UInt8, tags Array(String), version UInt64, is_deleted UInt8"

# Every row goes through the UDF once; error rows (they start with {"_error") are kept
# apart from the data.
FLATTEN = """
    SELECT dynamo_flatten(line) AS j FROM file('{path}', 'LineAsString')
"""


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=100_000, help="items in the generated export")
    args = ap.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    s = Engine.open(WORK / "db", build_udf_dir(WORK / "udf"))
    print("# Part 1: the sample export")
    sample_flow(s)
    print(f"\n# Part 2: a generated export of {args.items} items, served from a local S3 server")
    generated_flow(s, args.items)
    return 0


def sample_flow(s: Engine) -> None:
    def q(sql: str) -> str:
        return s.run(sql, fmt="PrettyCompactMonoBlock")

    def scalar(sql: str) -> str:
        return s.run(sql).strip()

    step("destination table")
    s.run(f"""
        CREATE TABLE people ({COLUMNS})
        ENGINE = ReplacingMergeTree(version, is_deleted) ORDER BY id""")
    s.run("""
        CREATE TABLE load_errors (source String, error String, line String)
        ENGINE = MergeTree ORDER BY tuple()""")
    print(scalar("SHOW CREATE TABLE people").replace("\\n", "\n"))

    def load(source: str, path: Path) -> tuple[int, int, float]:
        started = time.perf_counter()
        s.run("""
            CREATE TEMPORARY TABLE IF NOT EXISTS staged (line String, j String) ENGINE = Memory""")
        s.run("TRUNCATE TABLE staged")
        s.run(f"""
            INSERT INTO staged
            SELECT line, dynamo_flatten(line) FROM file('{path}', 'LineAsString')""")
        s.run(f"""
            INSERT INTO people
            SELECT untuple(JSONExtract(j, 'Tuple({COLUMNS})'))
            FROM staged WHERE NOT startsWith(j, '{{"_error"')""")
        s.run(f"""
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
    s.run(f"""
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


def write_export(root: Path, items: int, parts: int = 4) -> tuple[dict[str, bytes], Path]:
    """A full export as DynamoDB writes it (manifests, _started, gzip parts, an empty part) of
    `items` generated items, under root/dynamo/: its files by S3 key (bucket `exports`), and the
    first data part's path, a sample for `dynamo-flatten schema`."""
    lines = []
    for k in range(parts):
        n = items // parts + (1 if k < items % parts else 0)
        out = subprocess.run([str(GEN), "--items", str(n), "--seed", str(100 + k)],
                             check=True, capture_output=True).stdout
        lines.append(out.splitlines())
        print(f"  part {k}: {n} items, {len(out) / 1e6:.1f} MB", flush=True)
    files, _ = export_tree(EXPORT_ID, lines + [[]], random.Random(1), bucket="exports", prefix="dynamo",
                           time_us=int(EXPORT_ID.split("-")[0]) * 1000, table="orders")
    for key, body in files.items():
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(body)
    sample = next(k for k in files if k.endswith(".json.gz"))
    return files, root / sample


def change_records(sample: Path, count: int, rng: random.Random):
    """INSERT/MODIFY/REMOVE records for items of the export, with duplicates and shuffled."""
    with gzip.open(sample, "rt") as f:
        items = [json.loads(line)["Item"] for _, line in zip(range(count), f)]
    ts = 1732500000000000
    records, expect = [], {"modified": 0, "removed": 0, "inserted": 0}
    for i, item in enumerate(items):
        keys = {"pk": item["pk"], "sk": item["sk"]}
        ts += rng.randrange(1, 5000)
        if i % 3 == 0:
            new = copy.deepcopy(item)
            new["status"] = {"S": MARK}
            event, old = "MODIFY", item
        elif i % 3 == 1:
            event, new, old = "REMOVE", None, item
        else:
            new = copy.deepcopy(item)
            new["pk"] = keys["pk"] = {"S": "CUSTOMER#NEW" + item["pk"]["S"].split("#")[1]}
            event, old = "INSERT", None
        expect[{"MODIFY": "modified", "REMOVE": "removed", "INSERT": "inserted"}[event]] += 1
        records.append(change_record(event, keys, ts, new, old, table="orders", event_id=f"ev-{i}"))
    records += rng.sample(records, len(records) // 10)  # at-least-once delivery: duplicates
    rng.shuffle(records)  # and no order
    records += ['{"eventName":"MODIFY","dynamodb":{"ApproximateCreationDateTime":1}}', "not json"]
    return records, expect


def generated_flow(s: Engine, items: int) -> None:
    def scalar(sql: str) -> str:
        return s.run(sql).strip()

    def q(sql: str) -> str:
        return s.run(sql, fmt="PrettyCompactMonoBlock")

    step(f"generate the export ({items} items)")
    root = WORK / "export"
    files, sample = write_export(root, items)

    with Moto() as s3:
        n = s3.upload("exports", files)
        url = s3.url("exports", f"dynamo/AWSDynamoDB/{EXPORT_ID}/data/*.json.gz")
        print(f"  {n} files uploaded to the local S3 server: {url}")

        step("generate the tables: dynamo-flatten schema (a sample: the first part)")
        sql = subprocess.run([str(BIN), "schema", "--table", "orders", "--partition-key", "pk",
                              "--sort-key", "sk", "--s3-url", url, str(sample)],
                             check=True, capture_output=True, text=True).stdout
        stmts = split_statements(sql, keep_comments=False)
        print(stmts[0])
        snapshot = stmts.pop()
        for st in stmts:
            s.run(st)

        step("snapshot: INSERT … SELECT … dynamo_flatten_columns(line, …) FROM s3(…) (generated SQL)")
        started = time.perf_counter()
        s.run(snapshot, {"access_key_id": Moto.KEY, "secret_access_key": Moto.SECRET})
        secs = time.perf_counter() - started
    loaded = int(scalar("SELECT count() FROM orders"))
    errors = int(scalar("SELECT count() FROM dynamo_errors WHERE table = 'orders'"))
    print(f"  {loaded} rows loaded in {secs:.2f} s ({loaded / secs:,.0f} rows/s), {errors} errors")

    step("stream: change records through Kinesis and kinesis-forwarder into orders_stream")
    records, expect = change_records(sample, min(3000, items), random.Random(7))
    front = ClickHouseHTTPFront(s.session)
    front.start_in_thread()
    port = front.port
    print(f"  ClickHouse HTTP interface on 127.0.0.1:{port}: a stand-in over this chDB session "
          "(harness/http_front.py)")
    try:
        with LocalKinesis() as k:
            c = k.client()
            c.create_stream(StreamName="orders-changes", ShardCount=2)
            k.wait_active("orders-changes")
            for i in range(0, len(records), 500):
                part = records[i:i + 500]
                c.put_records(StreamName="orders-changes", Records=[
                    {"Data": r.encode(), "PartitionKey": hashlib.md5(r.encode()).hexdigest()} for r in part])
            print(f"  {len(records)} records put into the local Kinesis stream orders-changes (2 shards)")
            env = {**os.environ, "AWS_ACCESS_KEY_ID": k.KEY, "AWS_SECRET_ACCESS_KEY": k.SECRET,
                   "AWS_EC2_METADATA_DISABLED": "true"}
            cmd = [str(FORWARDER), "--stream", "orders-changes", "--endpoint-url", k.endpoint,
                   "--region", "us-east-1", "--clickhouse-url", f"http://127.0.0.1:{port}",
                   "--table", "orders", "--once", "--progress", "never"]
            print("  $ " + " ".join(cmd[:1] + ["--stream", "orders-changes", "--table", "orders", "--once", "…"]))
            started = time.perf_counter()
            subprocess.run(cmd, check=True, env=env)
            secs = time.perf_counter() - started
    finally:
        front.stop()
    print(f"  {len(records)} records ({expect['modified']} MODIFY, {expect['removed']} REMOVE, "
          f"{expect['inserted']} INSERT, {len(records) // 11} duplicates, 2 malformed, shuffled) "
          f"forwarded in {secs:.2f} s")
    print(q("SELECT shard_id, argMax(sequence_number, version) AS checkpoint, "
            "argMax(shard_end, version) AS shard_end FROM kinesis_checkpoints "
            "WHERE consumer = 'orders' GROUP BY shard_id ORDER BY shard_id"))

    step("report")
    final = int(scalar("SELECT count() FROM orders FINAL"))
    want = loaded - expect["removed"] + expect["inserted"]
    shipped = int(scalar(f"SELECT countIf(status = '{MARK}') FROM orders FINAL"))
    print(f"  snapshot rows loaded:     {loaded}")
    print(f"  rows in FINAL:            {final} (expected {want}: loaded - removed + inserted)")
    print(f"  status = '{MARK}': {shipped} (expected {expect['modified']})")
    print(q("SELECT source, error, count() AS rows FROM dynamo_errors WHERE table = 'orders' "
            "GROUP BY source, error ORDER BY source, error"))
    print("  a modified, a removed and an inserted item, all their row versions:")
    with gzip.open(sample, "rt") as f:
        first = [json.loads(line)["Item"] for _, line in zip(range(3), f)]
    keys = [first[0]["pk"]["S"], first[1]["pk"]["S"], "CUSTOMER#NEW" + first[2]["pk"]["S"].split("#")[1]]
    sks = [first[0]["sk"]["S"], first[1]["sk"]["S"], first[2]["sk"]["S"]]
    cond = " OR ".join(f"(pk = '{k}' AND sk = '{sk}')" for k, sk in zip(keys, sks))
    print(q(f"SELECT pk, sk, status, version, is_deleted FROM orders WHERE {cond} ORDER BY pk, version"))
    print("  … and in FINAL:")
    print(q(f"SELECT pk, sk, status, version FROM orders FINAL WHERE {cond} ORDER BY pk"))
    if final != want or shipped != expect["modified"]:
        raise SystemExit("the final state does not match the changes applied")


if __name__ == "__main__":
    sys.exit(main())
