"""kinesis-forwarder through fault-injecting proxies (harness/fault_proxy.py): one in
front of kinesalite (--endpoint-url), one in front of the ClickHouse HTTP front
(--clickhouse-url). Whatever fails on the way, the destination ends up equal to the change
model, no good record is dead-lettered, every shard is checkpointed at its last record, and
no shard is asked for records more than 5 times a second.

The schedule of the scenario: six phases, each with one Kinesis fault kind and one or two
ClickHouse fault kinds, every kind at RATE (20%) of the calls it applies to (GetRecords and
GetShardIterator, ListShards at a quarter of it; INSERT requests, checkpoints included). A
phase lasts until each of its kinds was injected MIN_INJECTED times; records keep coming
(a wave whenever the forwarder has read everything), and the stream is split between the
third and fourth phases. Then the proxies pass everything and the forwarder catches up.
"""

from __future__ import annotations

import random
from collections import Counter
from urllib.parse import parse_qs, urlsplit

import pytest

from harness import wait_until
from harness.forwarder import (
    BAD_RECORDS,
    Changes,
    Database,
    Forwarder,
    Stream,
    disorder,
)

# isort: split
from harness.fault_proxy import ClickHouseFaultProxy, KinesisFaultProxy

RATE = 0.2
MIN_INJECTED = 3
# (Kinesis kind, ClickHouse kinds) per phase; the stream is split after SPLIT_AFTER phases.
PHASES = [
    ("throughput_exceeded", ("lost_response",)),
    ("limit_exceeded", ("truncated_500",)),
    ("expired_iterator", ("slow_response",)),
    ("internal_failure", ("refuse", "reset")),
    ("reset", ("udf_timeout", "unknown_identifier")),
    ("delay", ("memory_limit",)),
]
SPLIT_AFTER = 3
# A slow answer is held 3 s; the forwarder gives up on it after 2 s.
HOLD, CLICKHOUSE_TIMEOUT = 3.0, "2s"
# Small chunks and batches: many calls and inserts for the faults to hit.
FLAGS = ["--batch-linger", "200ms", "--idle-poll", "100ms", "--discovery-interval", "1s",
         "--records-per-call", "150", "--batch-rows", "150", "--clickhouse-timeout", CLICKHOUSE_TIMEOUT]


def forwarder_via(tmp_path, kinesis, stream: Stream, db: Database, kinesis_endpoint: str,
                  clickhouse_port: int, *extra: str) -> Forwarder:
    """The forwarder with --endpoint-url `kinesis_endpoint` and --clickhouse-url on
    127.0.0.1:`clickhouse_port`."""
    f = Forwarder(tmp_path, kinesis, stream.name, clickhouse_port, db.name, *extra)
    f.args[f.args.index("--endpoint-url") + 1] = kinesis_endpoint
    return f


def test_every_fault_at_20_percent_with_a_split_gives_the_model(tmp_path, kinesis, front):
    rng = random.Random(21)
    model = Changes()
    stream = Stream(kinesis, "faults", 4)
    db = Database(front, "fwd_faults")
    stream.put(disorder(model.run(rng, 5000, 2000), rng))
    with KinesisFaultProxy(kinesis.port, seed=1) as kp, \
            ClickHouseFaultProxy(front.port, seed=2, hold=HOLD) as cp:
        f = forwarder_via(tmp_path, kinesis, stream, db, kp.endpoint, cp.port, *FLAGS).start()
        try:
            def phase_done(k_kind: str, c_kinds: tuple[str, ...], k0: Counter, c0: Counter) -> bool:
                assert f.alive(), f.log()[-3000:]
                if kp.injected[k_kind] - k0[k_kind] >= MIN_INJECTED and \
                        all(cp.injected[c] - c0[c] >= MIN_INJECTED for c in c_kinds):
                    return True
                if f.metric("kinesis_forwarder_records_read_total") >= len(stream.sent):
                    stream.put(disorder(model.run(rng, 400, 2000), rng))  # keep the inserts coming
                return False

            for i, (k_kind, c_kinds) in enumerate(PHASES):
                if i == SPLIT_AFTER:
                    stream.split("shardId-000000000000")  # -> 4 and 5
                    stream.put(disorder(model.run(rng, 5000, 2000), rng))
                kp.set_faults({k_kind: RATE})
                cp.set_faults(dict.fromkeys(c_kinds, RATE))
                k0, c0 = Counter(kp.injected), Counter(cp.injected)
                wait_until(lambda k=k_kind, c=c_kinds, k0=k0, c0=c0: phase_done(k, c, k0, c0), 60,
                           f"phase {i + 1}: {k_kind} and {', '.join(c_kinds)} injected {MIN_INJECTED} times",
                           interval=0.2)
            kp.clear()
            cp.clear()

            last = stream.last_sequence_numbers()
            wait_until(lambda: {s: q for s, (q, _) in db.checkpoints().items()} == last, 60,
                       "every shard checkpointed at its last record")
            metrics = f.metrics()
            assert f.alive()
            assert f.terminate() == 0, f.log()[-3000:]
        finally:
            if f.alive():
                f.kill()

    assert len(model.records) >= 10_000 and len(stream.sent) > len(model.records)
    assert db.state() == model.expected()
    assert db.errors() == [], "good records were dead-lettered"
    checkpoints = db.checkpoints()
    assert {s: q for s, (q, _) in checkpoints.items()} == last
    assert {s for s, (_, end) in checkpoints.items() if end} == {"shardId-000000000000"}
    assert set(last) == {f"shardId-00000000000{i}" for i in range(6)}

    # Every GetRecords call was traced to its shard, and no shard was called more than 5
    # times within any second.
    called = kp.shards_called()
    assert set(called) == set(last), called
    rates = {s: kp.max_calls_per_second(s) for s in sorted(last)}
    assert max(rates.values()) <= 5, rates

    for k_kind, c_kinds in PHASES:
        assert kp.injected[k_kind] >= MIN_INJECTED
        assert all(cp.injected[c] >= MIN_INJECTED for c in c_kinds)
    # Each fault was seen by the forwarder: expired iterators are not retried by the SDK, so
    # every one is a retry of the forwarder; every faulted insert (batch or checkpoint) failed
    # once at least (a refusal fails the attempts made while the port is closed too).
    retries = Counter({k[len('kinesis_forwarder_retries_total{op="'):-2]: v for k, v in metrics.items()
                       if k.startswith("kinesis_forwarder_retries_total{")})
    assert retries["expired_iterator"] == kp.injected["expired_iterator"], retries
    assert retries["insert"] > 0 and retries["checkpoint"] > 0, retries
    assert retries["insert"] + retries["checkpoint"] >= sum(cp.injected.values()), (retries, cp.injected)


@pytest.mark.parametrize("flatten", ["server", "local"])
def test_a_lost_response_is_retried_and_lands_once(tmp_path, kinesis, front, flatten):
    rng = random.Random(22)
    model = Changes()
    stream = Stream(kinesis, f"lost-{flatten}", 2)
    records = disorder(model.run(rng, 1200, 400), rng, dup=0)  # every (id, version) once
    stream.put(records[:600] + BAD_RECORDS + records[600:])
    db = Database(front, f"fwd_lost_{flatten}")
    # No merges: a repeated row stays visible.
    db.run(f"SYSTEM STOP MERGES {db.name}.people")
    db.run(f"SYSTEM STOP MERGES {db.name}.dynamo_errors")
    with ClickHouseFaultProxy(front.port) as cp:
        # The first answer to every batch is lost (after the server committed it).
        cp.set_faults({"lost_response": 1.0}, once_per=cp.dedup_token)
        f = forwarder_via(tmp_path, kinesis, stream, db, kinesis.endpoint, cp.port,
                          "--flatten", flatten, "--records-per-call", "100", "--batch-rows", "100")
        f.run_once()
    lost = cp.injected["lost_response"]
    tokens = {parse_qs(urlsplit(s.target).query)["insert_deduplication_token"][0] for s in cp.log if s.fault}
    assert lost >= 6 and len(tokens) == lost
    assert f.log().count("insert failed; retrying") == lost

    assert db.state() == model.expected()
    # Each record once, before any merge: as many rows as distinct (id, version), and each
    # bad record once in the errors table.
    (rows, distinct), = db.rows(f"SELECT count(), uniqExact(id, version) FROM {db.name}.people")
    errors = [e[3] for e in db.errors()]
    assert (rows, errors) == (distinct, sorted(BAD_RECORDS)), (
        f"{rows} rows for {distinct} distinct (id, version), {len(errors)} error rows for "
        f"{len(BAD_RECORDS)} bad records: retried inserts landed again")
