"""kinesis-forwarder in operation: the dead-letter breaker, start-up errors that end the run,
/healthz and /readyz, `--once` on a busy shard, stops, start positions, checkpoint versions
and JSON logs. Against kinesalite and chDB behind the test-only HTTP front, as in
test_forwarder.py.
"""

from __future__ import annotations

import json
import random
import re
import signal
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime

from harness import REPO, wait_until
from harness.forwarder import (
    BAD_RECORDS,
    FAST,
    Changes,
    Database,
    Stream,
    forwarder,
)


def get(port: int, path: str) -> tuple[int, dict]:
    """GET http://127.0.0.1:port/path: the status and the JSON body."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


# -- what counts as refused data -------------------------------------------------------------


def test_the_data_codes_are_the_engines_codes(ch):
    text = (REPO / "src" / "forwarder" / "codes.rs").read_text()
    listed = re.findall(r'\(\s*(\d+),\s*"([A-Z_0-9]+)"', text)
    assert len(listed) > 20
    for code, name in listed:
        assert ch.rows(f"SELECT errorCodeToName({code})") == [(name,)], code


def test_a_server_that_refuses_every_record_opens_the_breaker_and_loses_nothing(tmp_path, kinesis, front):
    rng = random.Random(21)
    model = Changes()
    stream = Stream(kinesis, "breaker", 2)
    stream.put(model.run(rng, 400, 100) + BAD_RECORDS)
    # A view that throws for every row (a data code: 395) while `sick` holds a row, as a
    # server-side check broken by DDL would.
    db = Database(front, "fwd_breaker", """
        CREATE TABLE sick (x UInt8) ENGINE = MergeTree ORDER BY x;
        INSERT INTO sick VALUES (1);
        DROP VIEW people_stream_mv;
        CREATE MATERIALIZED VIEW people_stream_mv TO people_flat AS
        SELECT 'stream' AS source, record AS line,
               if(throwIf((SELECT count() FROM fwd_breaker.sick) > 0, 'the check is broken'), '', dynamo_flatten(record)) AS j
        FROM people_stream;
    """)
    f = forwarder(tmp_path, kinesis, stream, front, db, *FAST, "--batch-rows", "64",
                  "--ready-stall", "1h").start()
    try:
        wait_until(lambda: f.metric("kinesis_forwarder_breaker_open") == 1, 90, "the breaker to open")
        status, body = get(f.metrics_port, "/readyz")
        assert status == 503 and body["breaker_open"] is True, body
        assert any("breaker" in r for r in body["reasons"])
        assert get(f.metrics_port, "/healthz")[0] == 200
        time.sleep(2)  # while open: nothing is dead-lettered, no checkpoint moves
        assert db.errors() == []
        assert db.checkpoints() == {}
        assert f.metric("kinesis_forwarder_records_inserted_total") == 0
        assert "the dead-letter breaker is open" in f.log()
        db.run("TRUNCATE TABLE fwd_breaker.sick")  # the server is fixed
        wait_until(lambda: f.metric("kinesis_forwarder_records_inserted_total")
                   + f.metric("kinesis_forwarder_error_rows_total") >= len(stream.sent), 90, "every record")
        assert f.metric("kinesis_forwarder_breaker_open") == 0
        assert get(f.metrics_port, "/readyz")[0] == 200
        assert f.terminate() == 0
    finally:
        if f.alive():
            f.kill()
    assert db.state() == model.expected()
    # The unreadable records went to the errors table through the view, as error rows of the
    # function; no good record did.
    assert sorted(e[3] for e in db.errors()) == sorted(BAD_RECORDS)
    assert "accepts records again: the dead-letter breaker is closed" in f.log()
    assert db.checkpoints() == {s: (q, False) for s, q in stream.last_sequence_numbers().items()}


# -- start-up ----------------------------------------------------------------------------------


def test_start_up_errors_no_retry_can_fix_exit_3_at_once(tmp_path, kinesis, front):
    stream = Stream(kinesis, "startup", 1)
    stream.put(Changes().run(random.Random(22), 10, 10))
    db = Database(front, "fwd_startup")

    def fails(*flags: str, **replace: str) -> str:
        """Runs with `flags` added and the values of flags `replace` names (`table=` for
        `--table`) replaced; returns the exit status, a newline, and the log."""
        sub = tmp_path / str(len(list(tmp_path.iterdir())))
        sub.mkdir()
        f = forwarder(sub, kinesis, stream, front, db, *flags)
        for name, value in replace.items():
            f.args[f.args.index("--" + name.replace("_", "-")) + 1] = value
        t = time.monotonic()
        f.start("--once")
        rc = f.wait(30)
        assert time.monotonic() - t < 15, f.log()[-2000:]
        return f"{rc}\n{f.log()}"

    out = fails(clickhouse_database="no_such_db")
    assert out.startswith("3\n") and "cannot start" in out and "no_such_db" in out, out[-2000:]
    out = fails(table="ghosts")
    assert out.startswith("3\n"), out[-2000:]
    assert "table(s) ghosts_stream do not exist in database fwd_startup" in out
    out = fails(stream="no-such-stream")
    assert out.startswith("3\n") and "cannot read stream no-such-stream" in out, out[-2000:]
    out = fails("--no-create-checkpoint-table", "--checkpoint-table", "nowhere")
    assert out.startswith("3\n") and "nowhere" in out, out[-2000:]
    out = fails(clickhouse_url="ftp://127.0.0.1:1")
    assert out.startswith("2\n") and "http:// or https://" in out, out[-2000:]
    # Nothing was written anywhere.
    assert db.rows("SELECT count() FROM fwd_startup.people") == [("0",)]


# -- health ------------------------------------------------------------------------------------


def test_readyz_tells_a_stuck_forwarder_from_an_idle_one(tmp_path, kinesis, front):
    rng = random.Random(23)
    model = Changes()
    stream = Stream(kinesis, "health", 1)
    db = Database(front, "fwd_health")
    f = forwarder(tmp_path, kinesis, stream, front, db, *FAST, "--ready-stall", "2s").start()
    try:
        wait_until(lambda: get_or_none(f.metrics_port, "/readyz") == 200, 30, "ready")
        stream.put(model.run(rng, 200, 50))
        wait_until(lambda: f.metric("kinesis_forwarder_records_inserted_total") >= 200, 30, "the records")
        time.sleep(2.5)  # idle longer than the stall: still ready, nothing waits
        status, body = get(f.metrics_port, "/readyz")
        assert status == 200 and body["ready"] is True and body["records_waiting"] == 0, body
        assert body["millis_behind_latest"] is not None and body["last_insert"].endswith("Z")
        front.stop()
        try:
            stream.put(model.run(rng, 100, 50))
            wait_until(lambda: get(f.metrics_port, "/readyz")[1]["records_waiting"] == 100, 30, "records read")
            status, body = get(f.metrics_port, "/readyz")
            assert status == 503, body
            assert any("nothing was delivered" in r for r in body["reasons"]), body
            assert get(f.metrics_port, "/healthz")[0] == 200
        finally:
            front.start_in_thread(front.port)
        wait_until(lambda: get_or_none(f.metrics_port, "/readyz") == 200, 60, "ready again")
        assert 'kinesis_forwarder_millis_behind_latest{shard="shardId-000000000000"}' in f.metrics()
        assert f.terminate() == 0
    finally:
        if f.alive():
            f.kill()
    assert db.state() == model.expected()


def get_or_none(port: int, path: str) -> int | None:
    try:
        return get(port, path)[0]
    except OSError:
        return None


# -- --once, stops, start positions ------------------------------------------------------------


def test_once_ends_at_the_stream_end_seen_at_start_on_a_busy_shard(tmp_path, kinesis, front):
    rng = random.Random(24)
    model = Changes()
    stream = Stream(kinesis, "busy", 1)
    stream.put(model.run(rng, 300, 100))
    db = Database(front, "fwd_busy")
    stop = threading.Event()

    def produce():
        while not stop.is_set():
            stream.put(model.run(rng, 20, 100))
            time.sleep(0.05)

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        time.sleep(1)
        f = forwarder(tmp_path, kinesis, stream, front, db, *FAST, "--records-per-call", "50")
        t = time.monotonic()
        f.run_once(timeout=60)
        took = time.monotonic() - t
        assert took < 30, took
    finally:
        stop.set()
        producer.join()
    # It stopped although records kept coming; the next run takes the rest.
    assert "--once: every shard is read to its current end" in f.log()
    f.run_once()
    assert db.state() == model.expected()


def test_a_second_signal_or_the_shutdown_timeout_gives_up_the_open_batch(tmp_path, kinesis, front):
    rng = random.Random(25)
    model = Changes()
    stream = Stream(kinesis, "stops", 1)
    db = Database(front, "fwd_stops")

    def stop_while_clickhouse_is_down(timeout: str, second_signal: bool) -> None:
        f = forwarder(tmp_path, kinesis, stream, front, db, *FAST, "--shutdown-timeout", timeout).start()
        try:
            wait_until(lambda: get_or_none(f.metrics_port, "/readyz") == 200, 30, "ready")
            front.stop()
            try:
                stream.put(model.run(rng, 100, 50))
                wait_until(lambda: f.metric("kinesis_forwarder_retries_total") >= 1, 30, "a failed insert")
                t = time.monotonic()
                f.signal(signal.SIGTERM)
                if second_signal:
                    time.sleep(1)
                    assert f.alive()  # still trying to send the open batch
                    f.signal(signal.SIGTERM)
                rc = f.wait(30)
                took = time.monotonic() - t
            finally:
                front.start_in_thread(front.port)
        finally:
            if f.alive():
                f.kill()
        assert rc == 1, f.log()[-2000:]
        assert took < (5 if second_signal else 6), took
        assert "records were not inserted and not checkpointed" in f.log()

    stop_while_clickhouse_is_down("60s", second_signal=True)
    stop_while_clickhouse_is_down("2s", second_signal=False)
    # Given up, not lost: the next run reads them again.
    forwarder(tmp_path, kinesis, stream, front, db).run_once()
    assert db.state() == model.expected()


def test_start_latest_and_at_timestamp_skip_what_came_before(tmp_path, kinesis, front):
    rng = random.Random(26)
    model = Changes()
    stream = Stream(kinesis, "starts", 2)
    before = model.run(rng, 100, 1000, prefix="a")
    stream.put(before)
    time.sleep(1.2)
    t = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    time.sleep(1.2)
    after = model.run(rng, 100, 1000, prefix="b")
    stream.put(after)

    at = Database(front, "fwd_at")
    at.keep_seen()
    forwarder(tmp_path, kinesis, stream, front, at, "--start", "at-timestamp",
              "--start-timestamp", t).run_once()
    assert sorted(at.seen()) == sorted(after)

    latest = Database(front, "fwd_latest")
    latest.keep_seen()
    f = forwarder(tmp_path, kinesis, stream, front, latest, *FAST, "--start", "latest").start()
    try:
        wait_until(lambda: f.log().count("reading shard") >= 2, 30, "both shards opened")
        time.sleep(0.5)
        later = model.run(rng, 50, 1000, prefix="c")
        stream.put(later)
        wait_until(lambda: f.metric("kinesis_forwarder_records_inserted_total") >= 50, 30, "the new records")
        assert f.terminate() == 0
    finally:
        if f.alive():
            f.kill()
    assert sorted(latest.seen()) == sorted(later)


# -- checkpoints and logs ----------------------------------------------------------------------


def test_checkpoint_versions_go_on_from_the_table_not_the_clock(tmp_path, kinesis, front):
    rng = random.Random(27)
    model = Changes()
    stream = Stream(kinesis, "versions", 1)
    db = Database(front, "fwd_versions")
    db.keep_seen()
    f = forwarder(tmp_path, kinesis, stream, front, db)
    stream.put(model.run(rng, 100, 50))
    f.run_once()
    shard, (seq, _) = next(iter(db.checkpoints().items()))
    # The same checkpoint again, written by a clock 100 days ahead (as if the clock then
    # stepped back to the right time).
    ahead = int(db.rows("SELECT max(version) FROM fwd_versions.kinesis_checkpoints")[0][0]) + 100 * 86_400 * 10**6
    db.run("INSERT INTO fwd_versions.kinesis_checkpoints (stream, consumer, shard_id, sequence_number, "
           f"shard_end, version, worker) VALUES ('versions', 'people', '{shard}', '{seq}', 0, {ahead}, '0/1')")
    stream.put(model.run(rng, 100, 50))
    f.run_once()
    f.run_once()
    assert db.checkpoints() == {shard: (stream.last_sequence_numbers()[shard], False)}
    newest = int(db.rows("SELECT max(version) FROM fwd_versions.kinesis_checkpoints")[0][0])
    assert newest > ahead
    # Nothing was read twice: the third run started after the second one's checkpoint.
    assert len(db.seen()) == len(set(db.seen())) == 200
    assert db.state() == model.expected()


def test_json_logs_are_one_object_per_line(tmp_path, kinesis, front):
    stream = Stream(kinesis, "jsonlogs", 1)
    stream.put(Changes().run(random.Random(28), 20, 10))
    db = Database(front, "fwd_jsonlogs")
    forwarder(tmp_path, kinesis, stream, front, db, "--log-format", "json").run_once()
    lines = [line for line in f_log_lines(tmp_path) if line]
    events = [json.loads(line) for line in lines]
    assert {"timestamp", "level", "message"} <= set(events[0])
    assert any(e["message"] == "starting" and e["stream"] == "jsonlogs" for e in events)
    assert any(e["message"] == "stopped" and e["records"] == 20 for e in events)


def f_log_lines(tmp_path) -> list[str]:
    text = (tmp_path / "forwarder.log").read_text()
    return [line for line in text.splitlines() if not line.startswith("--- run")]
