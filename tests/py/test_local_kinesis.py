"""The local Kinesis server the project installs behaves as the forwarder needs: shards with
hash ranges, real sequence numbers, and resharding with closed parents."""

from __future__ import annotations

from harness.aws import LocalKinesis


def read_shard(c, stream: str, shard: str) -> tuple[list[bytes], bool]:
    """All records of a shard from TRIM_HORIZON, and whether the shard is closed (no next iterator)."""
    it = c.get_shard_iterator(StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    data = []
    for _ in range(50):
        r = c.get_records(ShardIterator=it, Limit=1000)
        data += [rec["Data"] for rec in r["Records"]]
        it = r.get("NextShardIterator")
        if it is None:
            return data, True
        if not r["Records"] and r.get("MillisBehindLatest", 0) == 0:
            return data, False
    raise AssertionError("shard did not end")


def test_split_closes_the_parent_and_routes_new_records_to_children():
    with LocalKinesis() as k:
        c = k.client()
        c.create_stream(StreamName="s", ShardCount=2)
        k.wait_active("s")
        shards = c.list_shards(StreamName="s")["Shards"]
        assert [s["ShardId"] for s in shards] == ["shardId-000000000000", "shardId-000000000001"]
        for i in range(20):
            r = c.put_record(StreamName="s", Data=f"before-{i}".encode(), PartitionKey=f"k{i}")
            assert len(r["SequenceNumber"]) > 20  # real, long sequence numbers
        parent = shards[0]
        lo, hi = (int(parent["HashKeyRange"][x]) for x in ("StartingHashKey", "EndingHashKey"))
        c.split_shard(StreamName="s", ShardToSplit=parent["ShardId"], NewStartingHashKey=str((lo + hi) // 2))
        k.wait_active("s")
        for i in range(20):
            c.put_record(StreamName="s", Data=f"after-{i}".encode(), PartitionKey=f"k{i}")
        shards = {s["ShardId"]: s for s in c.list_shards(StreamName="s")["Shards"]}
        children = [s for s in shards.values() if s.get("ParentShardId") == parent["ShardId"]]
        assert len(children) == 2
        assert "EndingSequenceNumber" in shards[parent["ShardId"]]["SequenceNumberRange"]
        data, closed = read_shard(c, "s", parent["ShardId"])
        assert closed and all(d.startswith(b"before-") for d in data)
        everything = []
        for sid in shards:
            everything += read_shard(c, "s", sid)[0]
        assert sorted(everything) == sorted([f"before-{i}".encode() for i in range(20)]
                                            + [f"after-{i}".encode() for i in range(20)])
