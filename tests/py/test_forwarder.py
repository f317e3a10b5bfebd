"""kinesis-forwarder end to end: kinesalite -> the forwarder -> ClickHouse (chDB behind the
test-only HTTP front), with the sql/ flow in a database per test.

Every scenario asserts that the destination (`people FINAL`) equals the change model's final
state, value by value.
"""

from __future__ import annotations

import random
import signal
import time

import pytest

from forwarder_env import (BAD_RECORDS, Changes, Database, Forwarder, LocalKinesis, Stream,
                           disorder, wait_until)

FAST = ["--batch-linger", "200ms", "--idle-poll", "100ms", "--discovery-interval", "1s"]


@pytest.fixture(scope="module")
def kinesis():
    with LocalKinesis() as k:
        yield k


@pytest.fixture(scope="module")
def front(ch):
    import clickhouse_http_front as chf

    f = chf.ClickHouseHTTPFront(ch.session)
    _, port = f.start_in_thread()
    f.port = port
    yield f
    f.stop()


def forwarder(tmp_path, kinesis, stream: Stream, front, db: Database, *extra: str) -> Forwarder:
    return Forwarder(tmp_path, kinesis, stream.name, front.port, db.name, *extra)


def test_two_shards_10k_records_both_flatten_paths_give_the_model(tmp_path, kinesis, front):
    rng = random.Random(1)
    model = Changes()
    model.run(rng, 10_000, 1_500)
    stream = Stream(kinesis, "two-shards", 2)
    stream.put(disorder(model.records, rng) + BAD_RECORDS)
    assert len(stream.sent) >= 11_000
    assert {s for s, _, _ in stream.sent} == {"shardId-000000000000", "shardId-000000000001"}

    server = Database(front, "fwd_server")
    local = Database(front, "fwd_local")
    forwarder(tmp_path, kinesis, stream, front, server).run_once()
    forwarder(tmp_path, kinesis, stream, front, local, "--flatten", "local").run_once()

    expected = model.expected()
    assert len(expected) > 500
    assert server.state() == expected
    assert local.state() == expected
    # Identical destination rows, deleted ones included.
    everything = "SELECT * FROM {}.people FINAL ORDER BY id"
    assert server.rows(everything.format("fwd_server")) == local.rows(everything.format("fwd_local"))
    # The bad records are in the errors table, with the same reasons on both paths.
    errors = server.errors()
    assert [e[3] for e in errors] == sorted(BAD_RECORDS)
    assert all(e[0] == "people" and e[1] == "stream" and e[2] for e in errors)
    assert errors == local.errors()
    # Each shard's checkpoint is its last record; both shards are open.
    last = {}
    for shard, seq, _ in stream.sent:
        last[shard] = max(last.get(shard, 0), seq)
    assert server.checkpoints() == {s: (q, False) for s, q in last.items()}
    assert local.checkpoints() == server.checkpoints()


def test_a_second_once_run_reads_nothing_again(tmp_path, kinesis, front):
    rng = random.Random(2)
    model = Changes()
    stream = Stream(kinesis, "resume", 2)
    db = Database(front, "fwd_resume")
    db.run("CREATE TABLE fwd_resume.seen (line String) ENGINE = MergeTree ORDER BY tuple()")
    db.run("CREATE MATERIALIZED VIEW fwd_resume.seen_mv TO fwd_resume.seen AS "
           "SELECT line FROM fwd_resume.people_flat")
    f = forwarder(tmp_path, kinesis, stream, front, db)
    stream.put(model.run(rng, 500, 200))
    f.run_once()
    stream.put(model.run(rng, 300, 200))
    f.run_once()
    f.run_once()
    assert db.state() == model.expected()
    # Every record went in exactly once: the checkpoints resumed after the last one.
    assert db.rows("SELECT count(), uniqExact(line) FROM fwd_resume.seen") == [("800", "800")]
