"""What the kinesis-forwarder tests and its benchmark share: a change model with its expected
final state, a local Kinesis stream, a database behind the HTTP front, and the forwarder process.

The ClickHouse side is the HTTP front (harness.http_front) over a chDB session with the
dynamo_flatten UDF loaded; Kinesis is kinesalite, DynamoDB Streams is moto (harness.aws).
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from harness import SQL_DIR, free_port, release_binary
from harness.aws import LocalKinesis, LocalServer
from harness.dynamodb import change_record
from harness.sql import split_statements, tsv

NAMES = ["sally", "bob", "ana", "li", "Zoë \"zee\" O'Neil", "李雷 🚀", "back\\slash", "tab\there", ""]
T0 = 1_764_000_000_000_000  # µs


# -- the change model ------------------------------------------------------------------------


def kds_record(event: str, key: str, t_us: int, new: dict | None, old: dict | None) -> str:
    """A change record of the model's item `key` (`new` and `old`: its id, first_name, age)."""

    def image(item: dict) -> dict:
        return {"id": {"S": item["id"]}, "first_name": {"S": item["first_name"]},
                "age": {"N": str(item["age"])}}

    return change_record(event, {"id": {"S": key}}, t_us, new and image(new), old and image(old), size=100)


@dataclass
class Changes:
    """Change records of a simulated table, and the table's state after all of them."""

    records: list[str] = field(default_factory=list)
    state: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # id -> (name, age, version)
    items: dict[str, dict] = field(default_factory=dict)
    t: int = T0

    def run(self, rng: random.Random, n_ops: int, n_keys: int, prefix: str = "p") -> list[str]:
        """Appends `n_ops` INSERT/MODIFY/REMOVE records; returns the new ones."""
        out = []
        for _ in range(n_ops):
            key = f"{prefix}{rng.randrange(n_keys):05d}"
            self.t += rng.randrange(1, 3000)
            old = self.items.get(key)
            if old is not None and rng.random() < 0.2:
                out.append(kds_record("REMOVE", key, self.t, None, old))
                del self.items[key]
                del self.state[key]
                continue
            new = {"id": key, "first_name": rng.choice(NAMES), "age": rng.randrange(100)}
            out.append(kds_record("MODIFY" if old else "INSERT", key, self.t, new, old))
            self.items[key] = new
            self.state[key] = (new["first_name"], str(new["age"]), str(self.t))
        self.records += out
        return out

    def expected(self) -> list[tuple]:
        return sorted((k, *v) for k, v in self.state.items())


def disorder(records: list[str], rng: random.Random, dup: float = 0.1) -> list[str]:
    """The records with about `dup` of them repeated, shuffled in blocks: out of order."""
    out = list(records) + [r for r in records if rng.random() < dup]
    blocks = [out[i:i + 50] for i in range(0, len(out), 50)]
    rng.shuffle(blocks)
    return [r for b in blocks for r in b]


BAD_RECORDS = [
    '{"eventName":"MODIFY","dynamodb":{"ApproximateCreationDateTime":1,"NewImage":{"id":{"Q":"x"}}}}',
    "not json at all",
]


def partition_key(record: str) -> str:
    m = re.search(r'"Keys":\{"id":\{"S":"([^"]*)"', record)
    return m.group(1) if m else "bad"


# -- Kinesis ---------------------------------------------------------------------------------


class Stream:
    def __init__(self, kinesis: LocalKinesis, name: str, shards: int):
        self.k, self.name, self.c = kinesis, name, kinesis.client()
        self.c.create_stream(StreamName=name, ShardCount=shards)
        kinesis.wait_active(name)
        self.sent: list[tuple[str, int, str]] = []  # (shard, sequence number, record)

    def put(self, records: list[str]) -> None:
        for i in range(0, len(records), 500):
            part = records[i:i + 500]
            r = self.c.put_records(StreamName=self.name, Records=[
                {"Data": rec.encode(), "PartitionKey": partition_key(rec)} for rec in part])
            assert r.get("FailedRecordCount", 0) == 0, r
            for rec, res in zip(part, r["Records"]):
                self.sent.append((res["ShardId"], int(res["SequenceNumber"]), rec))

    def last_sequence_numbers(self) -> dict[str, int]:
        """Per shard, the sequence number of the last record put."""
        last: dict[str, int] = {}
        for shard, seq, _ in self.sent:
            last[shard] = max(last.get(shard, 0), seq)
        return last

    def shards(self) -> dict[str, dict]:
        return {s["ShardId"]: s for s in self.c.list_shards(StreamName=self.name)["Shards"]}

    def split(self, shard: str) -> None:
        s = self.shards()[shard]
        lo, hi = (int(s["HashKeyRange"][x]) for x in ("StartingHashKey", "EndingHashKey"))
        self.c.split_shard(StreamName=self.name, ShardToSplit=shard, NewStartingHashKey=str((lo + hi) // 2 + 1))
        self.k.wait_active(self.name)

    def merge(self, a: str, b: str) -> None:
        self.c.merge_shards(StreamName=self.name, ShardToMerge=a, AdjacentShardToMerge=b)
        self.k.wait_active(self.name)


# -- ClickHouse (through the front, between the forwarder's requests) ---------------------------


class Database:
    """A database in the shared chDB session: the sql/ flow (`sql_files`, by default 01, 02 and
    05), the `_extra` column that --flatten local needs (if sql/01 has none), then
    `extra_sql`. With `sql_files=()` the database holds `extra_sql` alone."""

    SQL_FLOW = ("01_destination.sql", "02_flat_and_errors.sql", "05_stream.sql")
    ADD_EXTRA = "ALTER TABLE people ADD COLUMN IF NOT EXISTS _extra String DEFAULT '{}'"

    def __init__(self, front, name: str, extra_sql: str = "", sql_files: tuple[str, ...] = SQL_FLOW):
        self.front, self.name = front, name
        self.run(f"DROP DATABASE IF EXISTS {name}")
        self.run(f"CREATE DATABASE {name}")
        stmts = []
        for f in sql_files:
            stmts += split_statements((SQL_DIR / f).read_text())
        if "01_destination.sql" in sql_files:
            stmts.append(self.ADD_EXTRA)
        stmts += split_statements(extra_sql)
        self.run_statements(stmts)

    def run_statements(self, stmts: list[str], params: dict | None = None) -> list[str]:
        """Runs `stmts` one after the other in this database (the scripts' unqualified names
        are its tables), each with the query parameters `params`, as clickhouse-client
        --param_… gives them; returns each one's TSV output."""
        return self.front.run_in(self.name, stmts, params)

    def run_file(self, name: str, params: dict | None = None) -> list[str]:
        """Runs sql/<name> as written in this database (see run_statements)."""
        return self.run_statements(split_statements((SQL_DIR / name).read_text()), params)

    def run(self, sql: str) -> str:
        return self.front.query(sql)

    def keep_seen(self) -> None:
        """From now on `seen()` lists every record line that reaches the flat table (the
        stream view's output), repeats included."""
        self.run(f"CREATE TABLE {self.name}.seen (line String) ENGINE = MergeTree ORDER BY tuple()")
        self.run(f"CREATE MATERIALIZED VIEW {self.name}.seen_mv TO {self.name}.seen AS "
                 f"SELECT line FROM {self.name}.people_flat")

    def seen(self) -> list[str]:
        return [r[0] for r in self.rows(f"SELECT line FROM {self.name}.seen")]

    def rows(self, sql: str) -> list[tuple]:
        return tsv(self.run(sql))

    def state(self) -> list[tuple]:
        return self.rows(f"SELECT id, first_name, age, version FROM {self.name}.people FINAL "
                         "WHERE is_deleted = 0 ORDER BY id")

    def errors(self) -> list[tuple]:
        return self.rows(f"SELECT `table`, source, error, line FROM {self.name}.dynamo_errors "
                         "ORDER BY line")

    def checkpoints(self) -> dict[str, tuple[int, bool]]:
        rows = self.rows(
            f"SELECT shard_id, argMax(sequence_number, version), argMax(shard_end, version) "
            f"FROM {self.name}.kinesis_checkpoints GROUP BY shard_id")
        return {s: (int(q) if q else 0, e == "true") for s, q, e in rows}


# -- the forwarder process -------------------------------------------------------------------


class Forwarder:
    """The forwarder from `stream` into the database `db` behind the ClickHouse HTTP front on
    `port`. `kinesis` is the local AWS server it reads from (LocalKinesis, or Moto for
    DynamoDB Streams). `stream` is a Kinesis stream name, or the
    source flags in its place (`("--dynamodb-table", name)`)."""

    def __init__(self, tmp: Path, kinesis: LocalServer, stream: str | tuple[str, ...], port: int,
                 db: str, *extra: str):
        self.metrics_port = free_port()
        source = ["--stream", stream] if isinstance(stream, str) else list(stream)
        self.args = [str(release_binary("kinesis-forwarder")), *source, "--endpoint-url", kinesis.endpoint,
                     "--region", "us-east-1", "--clickhouse-url", f"http://127.0.0.1:{port}",
                     "--clickhouse-database", db, "--table", "people", "--progress", "never",
                     "--metrics-addr", f"127.0.0.1:{self.metrics_port}", *extra]
        self.env = {**os.environ, "AWS_ACCESS_KEY_ID": kinesis.KEY,
                    "AWS_SECRET_ACCESS_KEY": kinesis.SECRET, "AWS_EC2_METADATA_DISABLED": "true",
                    "RUST_LOG": "info"}
        self.tmp, self.proc, self.runs = tmp, None, 0
        self.log_path = tmp / "forwarder.log"

    def start(self, *more: str) -> Forwarder:
        self.runs += 1
        # Not a with-block: the process writes to the file while it runs.
        log = open(self.log_path, "ab")  # noqa: SIM115
        log.write(f"--- run {self.runs}\n".encode())
        log.flush()
        self.proc = subprocess.Popen(self.args + list(more), env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=log)
        log.close()
        return self

    def wait(self, timeout: float = 120) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"forwarder still running after {timeout}s:\n{self.log()[-4000:]}")

    def run_once(self, *more: str, timeout: float = 120) -> None:
        self.start("--once", *more)
        rc = self.wait(timeout)
        assert rc == 0, self.log()[-4000:]

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.proc.wait()

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, then the exit status."""
        self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def metrics(self) -> dict[str, float]:
        """Prometheus text from /metrics, as {'name{labels}': value}."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    def metric(self, name: str) -> float:
        try:
            return sum(v for k, v in self.metrics().items() if k == name or k.startswith(name + "{"))
        except OSError:
            return -1.0


def assert_both_paths_agree(server: Database, local: Database, stream: Stream, expected: list[tuple]) -> None:
    """The server path and --flatten local filled `server` and `local` from `stream`: both equal
    the model's `expected` state, hold identical rows (deleted ones included) and errors, and
    checkpoint every shard at its last record."""
    assert server.state() == expected
    assert local.state() == expected
    everything = "SELECT * FROM {}.people FINAL ORDER BY id"
    assert server.rows(everything.format(server.name)) == local.rows(everything.format(local.name))
    assert [e[3] for e in server.errors()] == sorted(BAD_RECORDS)
    assert server.errors() == local.errors()
    assert server.checkpoints() == {s: (q, False) for s, q in stream.last_sequence_numbers().items()}
    assert local.checkpoints() == server.checkpoints()


# Short waits, for tests that watch a running forwarder.
FAST = ["--batch-linger", "200ms", "--idle-poll", "100ms", "--discovery-interval", "1s"]


def forwarder(tmp: Path, kinesis: LocalKinesis, stream: Stream, front, db: Database, *extra: str) -> Forwarder:
    """A forwarder from `stream` into `db` through `front` (the ClickHouse HTTP front)."""
    return Forwarder(tmp, kinesis, stream.name, front.port, db.name, *extra)
