"""docker-compose.yml rehearsed without Docker: every service's command run as a local process
the way its container would run it (harness.compose.Stack: the file's own commands, environment,
healthchecks and volumes, host names turned into local ports), up, then down and up again
with the volumes kept, as `docker compose down` and `up` do.

What this cannot show (README.md "Local stack"): the images themselves, the 26.9 image's
entrypoint beyond its documented rules, the native protocol of the ClickHouse healthcheck, the
Compose network and restart policy.
"""

from __future__ import annotations

import json
import random
import subprocess
import urllib.request
from pathlib import Path

from harness import compose as ce
from harness import wait_until
from harness.forwarder import Changes, partition_key

FIXTURE_RECORD = (ce.REPO / "tests" / "fixtures" / "kinesis" / "records.jsonl").read_text().splitlines()[0]
# The first fixture record, an INSERT, as people FINAL holds it (id, first_name, age, version).
FIXTURE_ROW = ("3D4E5F60-0000-4000-8000-000000000003", "bob", "33", "1732406500123456")
STREAM = "people-changes"
INIT_FILES = ["01_destination.sql", "02_flat_and_errors.sql", "05_stream.sql", "10_kinesis_checkpoints.sql"]


def kinesis_client(s: ce.Stack):
    import boto3

    env = s.environment("forwarder")
    return boto3.client("kinesis", endpoint_url=env["KINESIS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
                        aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])


def put(s: ce.Stack, records: list[str], sent: list[tuple[str, int, str]]) -> None:
    """PutRecords into the stream, as DynamoDB's Kinesis streaming destination writes them
    (partition key = the item's key); each record's shard and sequence number into `sent`."""
    r = kinesis_client(s).put_records(StreamName=STREAM, Records=[
        {"Data": rec.encode(), "PartitionKey": partition_key(rec)} for rec in records])
    assert r.get("FailedRecordCount", 0) == 0, r
    sent += [(res["ShardId"], int(res["SequenceNumber"]), rec) for rec, res in zip(records, r["Records"])]


def last_per_shard(sent) -> dict[str, tuple[int, bool]]:
    out: dict[str, tuple[int, bool]] = {}
    for shard, seq, _ in sent:
        out[shard] = (max(out.get(shard, (0, False))[0], seq), False)
    return out


def state(s: ce.Stack) -> list[tuple]:
    return s.query("SELECT id, first_name, age, version FROM people FINAL WHERE is_deleted = 0 ORDER BY id")


def checkpoints(s: ce.Stack) -> dict[str, tuple[int, bool]]:
    rows = s.query("SELECT shard_id, argMax(sequence_number, version), argMax(shard_end, version) "
                   f"FROM kinesis_checkpoints WHERE stream = '{STREAM}' AND consumer = 'people' GROUP BY shard_id")
    return {shard: (int(seq) if seq else 0, end == "true") for shard, seq, end in rows}


def keep_seen(s: ce.Stack) -> None:
    """From now on the table `seen` gets every record line that reaches people_flat, repeats
    included (the stream view's output)."""
    for sql in ("CREATE TABLE seen (line String) ENGINE = MergeTree ORDER BY tuple()",
                "CREATE MATERIALIZED VIEW seen_mv TO seen AS SELECT line FROM people_flat"):
        status, out = s.http("clickhouse", sql)
        assert status == 200, out


def readme_command(prefix: str) -> str:
    (cmd,) = [c for c in ce.shell_commands(ce.readme_section("Local stack")) if c.startswith(prefix)]
    return cmd


def test_up_then_down_and_up_again_goes_on_from_the_checkpoints(tmp_path, binary):
    rng = random.Random(20261202)
    model, sent = Changes(), []
    with ce.stack(tmp_path, binary) as s:
        # -- docker compose up --build -d
        # kinesis: not healthy before it listens, then healthy; its data on the volume.
        rc, out = s.healthcheck("kinesis", {"node": Path("node")})
        assert rc == 1 and "ECONNREFUSED" in out, out
        s.up_kinesis()
        assert (s.volume_dir("kinesis-data") / "CURRENT").is_file()  # LevelDB, not memory
        rc, out = s.create_stream()
        assert (rc, out) == (0, f"stream {STREAM} created with 2 shards: ACTIVE\n")

        # clickhouse: the entrypoint runs the init files on a temporary server; the healthcheck
        # query fails until the last one has run, and passes on the server started after it.
        steps: list[tuple[str | None, int]] = []
        _, ran = s.up_clickhouse(on_step=lambda name: steps.append((name, s.clickhouse_healthcheck()[0])))
        assert ran == INIT_FILES
        assert steps == [(None, 500), *[(f, 500) for f in INIT_FILES[:-1]], (INIT_FILES[-1], 200)]
        assert s.clickhouse_healthcheck() == (200, "0\n")
        keep_seen(s)

        forwarder = s.up_forwarder()
        first = model.run(rng, 60, 15)
        put(s, first, sent)
        # The README's put-record, through `docker compose run --rm aws` (the CLI stand-in).
        rc, out = s.aws(readme_command("docker compose run --rm aws kinesis put-record"))
        assert rc == 0, out
        answer = json.loads(out)
        sent.append((answer["ShardId"], int(answer["SequenceNumber"]), FIXTURE_RECORD))

        expected = sorted([*model.expected(), FIXTURE_ROW])
        wait_until(lambda: state(s) == expected, 60, "the first records in people")
        wait_until(lambda: checkpoints(s) == last_per_shard(sent), 30, "the checkpoints of the first records")
        # The README's curl, on the published port.
        url = readme_command("curl ").split("'")[1]
        out = subprocess.run(["curl", "-sS", "--noproxy", "*", s.published_url(url)], capture_output=True,
                             text=True, timeout=30, check=True).stdout
        assert FIXTURE_ROW[0] + "\tbob\t33\t{}\t1732406500123456\t0" in out.splitlines(), out
        with urllib.request.urlopen(f"http://127.0.0.1:{s.port('forwarder', 9464)}/readyz", timeout=5) as r:
            assert r.status == 200
        assert len(ce.tsv(s.http("clickhouse", "SELECT line FROM seen")[1])) == len(sent)

        # -- docker compose down: the forwarder stops first, sends and checkpoints, exits 0.
        statuses = s.down()
        assert statuses["forwarder"] == 0, forwarder.log()[-3000:]
        assert set(statuses) == {"forwarder", "clickhouse", "kinesis"}

        # -- docker compose up: same volumes.
        s.up_kinesis()
        rc, out = s.create_stream()
        assert (rc, out) == (0, f"stream {STREAM} exists (2 open shards): ACTIVE\n")
        _, ran = s.up_clickhouse()
        assert ran == []  # the data folder is not empty: no init scripts
        assert s.clickhouse_healthcheck() == (200, "0\n")
        assert state(s) == expected
        assert checkpoints(s) == last_per_shard(sent)

        forwarder = s.up_forwarder()
        second = model.run(rng, 40, 15)
        put(s, second, sent)
        expected = sorted([*model.expected(), FIXTURE_ROW])
        wait_until(lambda: state(s) == expected, 60, "the records put after the restart in people")
        wait_until(lambda: checkpoints(s) == last_per_shard(sent), 30, "the checkpoints of every record")
        assert forwarder.alive(), forwarder.log()[-3000:]
        assert "checkpoints=2" in forwarder.log().split("--- run")[-1]  # went on from both shards
        # Nothing read twice: every record reached people_flat exactly once over both runs.
        seen = sorted(r[0] for r in ce.tsv(s.http("clickhouse", "SELECT line FROM seen")[1]))
        assert seen == sorted(rec for _, _, rec in sent)
        assert s.query("SELECT count() FROM dynamo_errors") == [("0",)]

        statuses = s.down()
        assert statuses["forwarder"] == 0, forwarder.log()[-3000:]


def test_a_stream_in_memory_refuses_the_checkpoints_after_down_and_up(tmp_path, binary):
    """Why the stream is on a volume: with kinesalite in memory (the file's command without
    --path), `up` after `down` gives a new, empty stream of the same name, and the forwarder
    stops with exit 1 on the checkpoints ClickHouse kept; `restart: on-failure:3` then gives up
    after 3 tries instead of looping."""
    rng = random.Random(7)
    model, sent = Changes(), []
    with ce.stack(tmp_path, binary) as s:
        s.up_kinesis(in_memory=True)
        assert s.create_stream()[0] == 0
        s.up_clickhouse()
        forwarder = s.up_forwarder()
        put(s, model.run(rng, 20, 8), sent)
        wait_until(lambda: checkpoints(s) == last_per_shard(sent), 60, "the checkpoints")
        assert s.down()["forwarder"] == 0

        s.up_kinesis(in_memory=True)
        rc, out = s.create_stream()
        assert (rc, out) == (0, f"stream {STREAM} created with 2 shards: ACTIVE\n")  # a new stream
        s.up_clickhouse()
        forwarder = s.up_forwarder()
        assert forwarder.wait(60) == 1
        assert "did not come from this stream" in forwarder.log()
        assert "--on-expired-checkpoint trim-horizon" in forwarder.log()
        assert state(s) == model.expected()  # what was delivered stays
        s.down()


def test_the_kinesis_steps_fail_loudly(tmp_path, binary):
    with ce.stack(tmp_path, binary) as s:
        # Nothing listens on the kinesis port: create-stream exits 1 and says why.
        argv = [*s.argv("create-stream", {"node": Path("node")}), "--timeout", "1"]
        rc, out = s.run("create-stream", argv, s.environment("create-stream"))
        assert rc == 1 and "gave up after 1s" in out and "ECONNREFUSED" in out, out
        # A server that refuses the request: exit 1 at once with the service's error.
        s.up_kinesis()
        argv = [*s.argv("create-stream", {"node": Path("node")})]
        argv[argv.index("2")] = "0"
        rc, out = s.run("create-stream", argv, s.environment("create-stream"))
        assert rc == 2 and "SHARDS must be a positive integer" in out, out
        env = {**s.environment("create-stream")}
        argv = [*s.argv("create-stream", {"node": Path("node")})]
        argv[argv.index(STREAM)] = "bad name!"
        rc, out = s.run("create-stream", argv, env)
        assert rc == 1 and "ValidationException" in out, out
        s.down()
