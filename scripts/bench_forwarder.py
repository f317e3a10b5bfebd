"""Benchmark of kinesis-forwarder against the local stack (kinesalite, chDB behind the
HTTP front over chDB), in one run:

1. Throughput: a pre-filled stream (8 shards) drained with --once, both flatten paths.
   Reports records/s and MB/s (wall), the forwarder's own CPU seconds per 10 000 records, and
   what one core of forwarder CPU would carry, as a ratio to 8 shards x 1 MB/s (the most
   8 shards take in).
2. Latency: records put at a steady rate; each record's time from PutRecords to its row
   being inserted into the destination (a view on the destination stamps now64(6)).
   Reports p50/p99 for the default batch linger and a short one.

The ClickHouse side here is chDB in this Python process behind a Python HTTP server, so the
wall-clock figures are bounded by it; the forwarder's CPU figures are its own.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from harness.aws import LocalKinesis
from harness.engine import binary_path, build_udf_dir, open_session
from harness.forwarder import Changes, Database, Forwarder, Stream, kds_record
from harness.http_front import ClickHouseHTTPFront

ARRIVED = """
CREATE TABLE arrived (id String, at DateTime64(6)) ENGINE = MergeTree ORDER BY tuple();
CREATE MATERIALIZED VIEW arrived_mv TO arrived AS SELECT id, now64(6) AS at FROM people;
"""


def run_measured(f: Forwarder, *more: str) -> tuple[float, float]:
    """Runs the forwarder with --once; returns (wall s, CPU s of the forwarder process)."""
    f.start("--once", *more)
    t = time.perf_counter()
    _, status, usage = os.wait4(f.proc.pid, 0)
    wall = time.perf_counter() - t
    f.proc.returncode = os.waitstatus_to_exitcode(status)
    assert f.proc.returncode == 0, f.log()[-3000:]
    return wall, usage.ru_utime + usage.ru_stime


def throughput(tmp: Path, k, front, records: int) -> None:
    rng = random.Random(1)
    model = Changes()
    model.run(rng, records, records // 2)
    stream = Stream(k, "bench-throughput", 8)
    t = time.perf_counter()
    stream.put(model.records)
    mb = sum(len(r) for r in model.records) / 1e6
    print(f"stream: {len(model.records)} records, {mb:.1f} MB in 8 shards "
          f"(put in {time.perf_counter() - t:.1f} s)")
    print(f"{'path':<8} {'wall s':>7} {'rec/s':>8} {'MB/s':>6} {'CPU s':>6} {'CPU s/10k':>9} "
          f"{'MB/s per core':>13} {'x 8 MB/s':>8}")
    for i, mode in enumerate(["server", "local"] * 2):
        db = Database(front, f"bench_tp_{i}")
        f = Forwarder(tmp, k, stream.name, front.port, db.name, "--flatten", mode)
        wall, cpu = run_measured(f)
        assert db.state() == model.expected(), "the destination does not match the model"
        n = len(model.records)
        per_core = mb / cpu
        print(f"{mode:<8} {wall:7.2f} {n / wall:8.0f} {mb / wall:6.1f} {cpu:6.2f} "
              f"{cpu / n * 10_000:9.3f} {per_core:13.1f} {per_core / 8:8.1f}")


def latency(tmp: Path, k, front, rate: int, seconds: float, linger: str | None) -> list[float]:
    stream = Stream(k, f"bench-latency-{linger or 'default'}", 4)
    db = Database(front, f"bench_lat_{(linger or 'default').replace('ms', '')}", ARRIVED)
    extra = ["--idle-poll", "200ms"] + (["--batch-linger", linger] if linger else [])
    f = Forwarder(tmp, k, stream.name, front.port, db.name, *extra).start()
    put_at: dict[str, float] = {}
    try:
        time.sleep(1.0)
        c = k.client()
        per_tick = rate // 10
        start = time.time()
        tick = 0
        while time.time() - start < seconds:
            batch = []
            now = time.time()
            for j in range(per_tick):
                key = f"t{tick:05d}-{j:04d}"
                t_us = int(now * 1e6)
                batch.append(kds_record("INSERT", key, t_us,
                                        {"id": key, "first_name": "x", "age": j % 100}, None))
                put_at[key] = now
            c.put_records(StreamName=stream.name,
                          Records=[{"Data": r.encode(), "PartitionKey": f"k{j}"} for j, r in enumerate(batch)])
            tick += 1
            time.sleep(max(0.0, start + tick / 10 - time.time()))
        deadline = time.time() + 60
        while int(db.run(f"SELECT count() FROM {db.name}.arrived")) < len(put_at):
            assert time.time() < deadline, "records missing after 60 s"
            time.sleep(0.2)
    finally:
        f.signal(15)
        f.wait(60)
    rows = db.rows(f"SELECT id, toUnixTimestamp64Micro(at) FROM {db.name}.arrived")
    return [int(at) / 1e6 - put_at[i] for i, at in rows]


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=40_000)
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=15)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-forwarder-"))
    udf_dir = build_udf_dir(tmp / "udf", binary=binary_path())
    front = ClickHouseHTTPFront(open_session(tmp / "db", udf_dir))
    front.start_in_thread()
    with LocalKinesis() as k:
        print("== throughput (--once, pre-filled stream)")
        throughput(tmp, k, front, args.records)
        print(f"\n== latency: PutRecords -> inserted, {args.rate} records/s for {args.seconds:.0f} s, 4 shards")
        for linger, label in ((None, "5s (default)"), ("1s", "1s")):
            lat = latency(tmp, k, front, args.rate, args.seconds, linger)
            print(f"batch linger {label:<13} records {len(lat):6}  p50 {pct(lat, 50):.3f} s  "
                  f"p99 {pct(lat, 99):.3f} s  max {max(lat):.3f} s  mean {statistics.mean(lat):.3f} s")
    front.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
