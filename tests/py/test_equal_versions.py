"""Changes of one item with equal versions: the later one wins, by insertion order.

DynamoDB Streams gives `ApproximateCreationDateTime` in whole seconds, so two changes of one
item in the same second carry the same version (seconds × 10⁶). The forwarder does not fold
anything into the version; it relies on the rule ReplacingMergeTree documents for equal
versions: the row inserted last survives (the last part, and within one insert the last row).
That rule meets the forwarder's order: one shard's records are inserted in shard order, batch
after batch (one batcher, one insert at a time, a split batch first half first); a retried
insert carries the same deduplication token, so it lands once, in its place; after a restart
the records after the checkpoint are inserted again in the same order, after the first
copies; and a child shard is read only after its parent's SHARD_END is checkpointed, so its
records are inserted after every record of the parent.

These tests prove the engine side in chDB, through sql/01, 02 and 05 as written: DynamoDB
Streams records (the JSON the forwarder writes) with one version, in one insert and in
several, with a re-delivery after a "restart", with a delete and a re-insert, and many keys in
one block (the sort of an insert block must keep the insertion order of equal keys), read with
FINAL and after OPTIMIZE … FINAL. The end-to-end test against moto is test_dynamodb_streams.py.
"""

from __future__ import annotations

import json

import pytest

from harness.sql import tsv

DB = "equal_versions"
SECOND = 1_764_000_000
ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/people/stream/2026-12-01T00:00:00.000"


@pytest.fixture()
def db(ch):
    with ch.in_database(DB):
        yield ch


def flow(db) -> None:
    for f in ("01_destination.sql", "02_flat_and_errors.sql", "05_stream.sql"):
        db.run_file(f)


def record(seq: int, key: str, event: str, age: int | None) -> str:
    """A DynamoDB Streams record, as the forwarder writes it, created at SECOND."""
    ddb: dict = {"ApproximateCreationDateTime": SECOND, "Keys": {"id": {"S": key}}}
    image = {"id": {"S": key}, "first_name": {"S": f"v{seq}"}}
    if age is not None:
        image["age"] = {"N": str(age)}
    ddb["OldImage" if event == "REMOVE" else "NewImage"] = image
    ddb.update({"SequenceNumber": f"{seq:021d}", "SizeBytes": 50, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    return json.dumps({"eventID": str(seq), "eventName": event, "eventVersion": "1.1",
                       "eventSource": "aws:dynamodb", "awsRegion": "us-east-1", "dynamodb": ddb,
                       "eventSourceARN": ARN}, separators=(",", ":"))


def state(db) -> list[tuple]:
    return tsv(db.run("SELECT id, first_name, age, version FROM people FINAL "
                         "WHERE is_deleted = 0 ORDER BY id"))


def stored(db) -> list[tuple]:
    """After OPTIMIZE … FINAL: what the merge kept (deleted rows included)."""
    db.run("OPTIMIZE TABLE people FINAL")
    return tsv(db.run("SELECT id, first_name, is_deleted FROM people ORDER BY id"))


def test_one_insert_block_the_last_row_wins(db):
    flow(db)
    db.insert_lines("people_stream", [record(i, "a", "INSERT" if i == 1 else "MODIFY", i) for i in range(1, 8)])
    assert state(db) == [("a", "v7", "7", f"{SECOND}000000")]
    assert stored(db) == [("a", "v7", "0")]


def test_across_inserts_and_a_redelivery_after_a_restart(db):
    flow(db)
    changes = [record(i, "a", "MODIFY", i) for i in range(1, 7)]
    for c in changes[:4]:
        db.insert_lines("people_stream", [c])
    # "Crash" after the 4th insert, checkpoint after the 2nd: records 3..6 come again.
    db.insert_lines("people_stream", changes[2:4])
    db.insert_lines("people_stream", changes[4:])
    assert state(db) == [("a", "v6", "6", f"{SECOND}000000")]
    assert stored(db) == [("a", "v6", "0")]


def test_a_delete_then_a_put_in_the_same_second(db):
    flow(db)
    db.insert_lines("people_stream", [record(1, "a", "INSERT", 1), record(2, "b", "INSERT", 1)])
    db.insert_lines("people_stream", [record(3, "a", "REMOVE", 1), record(4, "b", "REMOVE", 1)])
    db.insert_lines("people_stream", [record(5, "b", "INSERT", 5)])
    assert state(db) == [("b", "v5", "5", f"{SECOND}000000")]
    assert stored(db) == [("a", "v3", "1"), ("b", "v5", "0")]


def test_many_keys_in_one_block_keep_their_order(db):
    """The insert sorts the block by id; rows with equal ids keep their order (a stable sort),
    so the last change of every key wins, with 20 000 rows over 200 keys interleaved."""
    flow(db)
    keys = [f"k{i:03d}" for i in range(200)]
    lines = [record(n, keys[n % 200 if n % 3 else (n * 7) % 200], "MODIFY", n % 100) for n in range(20_000)]
    db.insert_lines("people_stream", lines)
    last = {}
    for n in range(20_000):
        last[keys[n % 200 if n % 3 else (n * 7) % 200]] = n
    assert state(db) == [(k, f"v{n}", str(n % 100), f"{SECOND}000000") for k, n in sorted(last.items())]
    assert stored(db) == [(k, f"v{n}", "0") for k, n in sorted(last.items())]
