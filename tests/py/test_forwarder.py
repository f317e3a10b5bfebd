"""kinesis-forwarder end to end: kinesalite -> the forwarder -> ClickHouse (chDB behind the
test-only HTTP front), with the sql/ flow in a database per test.

Every scenario asserts that the destination (`people FINAL`) equals the change model's final
state, value by value. Items that do not match their table go through both flatten paths into
the same column-aware DDL and give identical tables, `_extra` included.
"""

from __future__ import annotations

import base64
import random
import time

from harness import SQL_DIR, wait_until
from harness.dynamodb import change_record
from harness.forwarder import (
    BAD_RECORDS,
    FAST,
    Changes,
    Database,
    Stream,
    assert_both_paths_agree,
    disorder,
    forwarder,
)
from harness.sql import quote, split_statements


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
    assert_both_paths_agree(server, local, stream, expected)
    assert all(e[0] == "people" and e[1] == "stream" and e[2] for e in server.errors())


def test_a_second_once_run_reads_nothing_again(tmp_path, kinesis, front):
    rng = random.Random(2)
    model = Changes()
    stream = Stream(kinesis, "resume", 2)
    db = Database(front, "fwd_resume")
    db.keep_seen()
    f = forwarder(tmp_path, kinesis, stream, front, db)
    stream.put(model.run(rng, 500, 200))
    f.run_once()
    stream.put(model.run(rng, 300, 200))
    f.run_once()
    f.run_once()
    assert db.state() == model.expected()
    # Every record went in exactly once: the checkpoints resumed after the last one.
    assert db.rows("SELECT count(), uniqExact(line) FROM fwd_resume.seen") == [("800", "800")]


def test_split_and_merge_while_running(tmp_path, kinesis, front):
    rng = random.Random(3)
    model = Changes()
    stream = Stream(kinesis, "reshard", 2)
    db = Database(front, "fwd_reshard")
    f = forwarder(tmp_path, kinesis, stream, front, db, *FAST).start()
    try:
        stream.put(disorder(model.run(rng, 1500, 400), rng))
        wait_until(lambda: f.metric("kinesis_forwarder_records_inserted_total") >= len(stream.sent), 60,
                   "the first records")
        stream.split("shardId-000000000000")             # -> 2 and 3
        stream.put(disorder(model.run(rng, 1500, 400), rng))
        stream.merge("shardId-000000000003", "shardId-000000000001")  # -> 4
        stream.put(disorder(model.run(rng, 1500, 400), rng))
        shards = stream.shards()
        assert set(shards) == {f"shardId-00000000000{i}" for i in range(5)}
        assert shards["shardId-000000000004"]["AdjacentParentShardId"] == "shardId-000000000001"
        wait_until(lambda: f.metric("kinesis_forwarder_records_inserted_total") >= len(stream.sent), 60,
                   "every record")
        closed = {"shardId-000000000000", "shardId-000000000001", "shardId-000000000003"}
        wait_until(lambda: {s for s, (_, end) in db.checkpoints().items() if end} == closed, 30,
                   "the closed shards' SHARD_END checkpoints")
        assert f.alive()
        assert f.terminate() == 0, f.log()[-3000:]
    finally:
        if f.alive():
            f.kill()
    assert db.state() == model.expected()
    # Records went to every shard, and each child was read only after its parents ended:
    # its first checkpoint is later than their SHARD_END checkpoints.
    assert {s for s, _, _ in stream.sent} == {f"shardId-00000000000{i}" for i in range(5)}
    first = dict(db.rows("SELECT shard_id, min(version) FROM fwd_reshard.kinesis_checkpoints GROUP BY shard_id"))
    ended = dict(db.rows("SELECT shard_id, min(version) FROM fwd_reshard.kinesis_checkpoints "
                         "WHERE shard_end GROUP BY shard_id"))
    for child, parents in {"shardId-000000000002": ["shardId-000000000000"],
                           "shardId-000000000003": ["shardId-000000000000"],
                           "shardId-000000000004": ["shardId-000000000003", "shardId-000000000001"]}.items():
        for p in parents:
            assert int(first[child]) > int(ended[p]), (child, p)
    assert {s: q for s, (q, _) in db.checkpoints().items()} == stream.last_sequence_numbers()


def test_sigkill_at_10_random_points_loses_nothing(tmp_path, kinesis, front):
    rng = random.Random(4)
    model = Changes()
    stream = Stream(kinesis, "killed", 2)
    stream.put(disorder(model.run(rng, 6000, 1000), rng))
    db = Database(front, "fwd_killed", """
        CREATE TABLE seen (line String) ENGINE = MergeTree ORDER BY tuple();
        CREATE MATERIALIZED VIEW seen_mv TO seen AS SELECT line FROM people_flat;
    """)
    # 40 records per call at most 5 calls/s per shard: at most 400 records/s, whatever the
    # machine's speed, so the 10 runs (at most 12 s) cannot finish the 6 600 records.
    f = forwarder(tmp_path, kinesis, stream, front, db, "--batch-rows", "150", "--batch-linger", "50ms",
                  "--records-per-call", "40", "--idle-poll", "100ms")
    progress = []
    for _ in range(10):
        f.start()
        time.sleep(rng.uniform(0.3, 1.2))
        f.kill()
        # No checkpoint ahead of the data: every record up to a shard's checkpoint is stored.
        checkpoints = db.checkpoints()
        seen = {r[0] for r in db.rows("SELECT line FROM fwd_killed.seen")}
        for shard, seq, record in stream.sent:
            if seq <= checkpoints.get(shard, (0, False))[0]:
                assert record in seen, (shard, seq)
        progress.append(sum(q > 0 for q, _ in checkpoints.values()))
        progress.append(len(seen))
    # The kills fell while work was going on, not all before or after it.
    assert 0 < len({r[0] for r in db.rows("SELECT line FROM fwd_killed.seen")}) < len(set(model.records))
    f.run_once()
    assert db.state() == model.expected()
    assert {r[0] for r in db.rows("SELECT line FROM fwd_killed.seen")} == set(model.records)


def test_clickhouse_down_for_10s_then_back(tmp_path, kinesis, front):
    rng = random.Random(5)
    model = Changes()
    stream = Stream(kinesis, "ch-down", 2)
    db = Database(front, "fwd_down")
    buffer = 256 << 10
    f = forwarder(tmp_path, kinesis, stream, front, db, *FAST, "--max-buffer-bytes", str(buffer),
                  "--batch-bytes", str(64 << 10), "--records-per-call", "200").start()
    try:
        stream.put(model.run(rng, 1000, 300))
        wait_until(lambda: f.metric("kinesis_forwarder_records_inserted_total") >= 1000, 60, "first wave")
        front.stop()
        try:
            stream.put(model.run(rng, 4000, 300))  # about 1.1 MB, over 4 times the buffer
            time.sleep(10)
            assert f.alive(), f.log()[-3000:]
            m = f.metrics()
            read = m["kinesis_forwarder_records_read_total"]
            inserted = m["kinesis_forwarder_records_inserted_total"]
            # Reading stopped when the buffer was full: memory stays bounded.
            min_len = min(len(r) for r in model.records)
            assert read - inserted <= buffer // min_len + 2 * 200, (read, inserted)
            assert read < len(stream.sent)
            assert m['kinesis_forwarder_retries_total{op="insert"}'] >= 2
        finally:
            front.start_in_thread(front.port)
        wait_until(lambda: f.metric("kinesis_forwarder_records_inserted_total") >= len(stream.sent), 90,
                   "every record after the restart")
        assert f.terminate() == 0
    finally:
        if f.alive():
            f.kill()
    assert db.state() == model.expected()
    assert "insert failed; retrying" in f.log()


def test_sigterm_mid_batch_sends_the_open_batch_and_exits_0(tmp_path, kinesis, front):
    rng = random.Random(6)
    model = Changes()
    stream = Stream(kinesis, "sigterm", 2)
    stream.put(model.run(rng, 2000, 500))
    db = Database(front, "fwd_sigterm")
    f = forwarder(tmp_path, kinesis, stream, front, db, "--batch-linger", "10min",
                  "--idle-poll", "100ms").start()
    try:
        wait_until(lambda: f.metric("kinesis_forwarder_records_read_total") >= 2000, 60, "the records read")
        assert f.metric("kinesis_forwarder_records_inserted_total") == 0  # still in the open batch
        t = time.monotonic()
        assert f.terminate() == 0
        assert time.monotonic() - t < 10
    finally:
        if f.alive():
            f.kill()
    assert db.state() == model.expected()
    assert {s: q for s, (q, _) in db.checkpoints().items()} == stream.last_sequence_numbers()
    assert "SIGTERM received" in f.log()


def test_two_workers_share_a_stream_and_its_lineage(tmp_path, kinesis, front):
    rng = random.Random(7)
    model = Changes()
    stream = Stream(kinesis, "workers", 4)
    stream.put(disorder(model.run(rng, 3000, 600), rng))
    for s in ("shardId-000000000000", "shardId-000000000001", "shardId-000000000002"):
        stream.split(s)  # -> 4..9
    stream.put(disorder(model.run(rng, 3000, 600), rng))
    db = Database(front, "fwd_workers")
    workers = [forwarder(tmp_path / str(i), kinesis, stream, front, db, *FAST, "--workers", "2",
                         "--worker-index", str(i)) for i in range(2)]
    for i, w in enumerate(workers):
        (tmp_path / str(i)).mkdir()
        w.start("--once")
    for w in workers:
        assert w.wait(120) == 0, w.log()[-3000:]
    assert db.state() == model.expected()
    owners = db.rows("SELECT shard_id, groupUniqArray(worker) FROM fwd_workers.kinesis_checkpoints "
                     "GROUP BY shard_id ORDER BY shard_id")
    assert len(owners) == 10
    assert all(len(eval(o)) == 1 for _, o in owners), owners  # one worker per shard
    assert {eval(o)[0] for _, o in owners} == {"0/2", "1/2"}
    # Some child is read by the other worker than its parent, and still after it.
    by = {s: eval(o)[0] for s, o in owners}
    parent_of = {s: d["ParentShardId"] for s, d in stream.shards().items() if "ParentShardId" in d}
    assert any(by[c] != by[p] for c, p in parent_of.items())
    first = dict(db.rows("SELECT shard_id, min(version) FROM fwd_workers.kinesis_checkpoints GROUP BY shard_id"))
    ended = dict(db.rows("SELECT shard_id, min(version) FROM fwd_workers.kinesis_checkpoints "
                         "WHERE shard_end GROUP BY shard_id"))
    for child, parent in parent_of.items():
        assert int(first[child]) > int(ended[parent])


def test_a_record_the_server_refuses_goes_to_the_errors_table(tmp_path, kinesis, front):
    rng = random.Random(8)
    model = Changes()
    stream = Stream(kinesis, "poison", 1)
    good = model.run(rng, 300, 100)
    poison = good[150].replace('"eventSource"', '"POISON":1,"eventSource"')
    stream.put(good[:150] + [poison] + good[150:])
    # A landing-table view that throws on one record, as a server-side check might.
    db = Database(front, "fwd_poison", """
        DROP VIEW people_stream_mv;
        CREATE MATERIALIZED VIEW people_stream_mv TO people_flat AS
        SELECT 'stream' AS source, record AS line,
               if(throwIf(position(record, 'POISON') > 0, 'poison record'), '', dynamo_flatten(record)) AS j
        FROM people_stream;
    """)
    f = forwarder(tmp_path, kinesis, stream, front, db)
    f.run_once()
    errors = db.errors()
    assert len(errors) == 1
    assert errors[0][3] == poison
    assert "ClickHouse refused the record" in errors[0][2] and "poison record" in errors[0][2]
    # Every other record is stored (the poison record is a MODIFY of an item changed again later,
    # so the model's state does not depend on it).
    assert db.state() == model.expected()
    assert "splitting them to find the bad one" in f.log()


def test_an_expired_checkpoint_stops_with_a_clear_error(tmp_path, kinesis, front):
    stream = Stream(kinesis, "expired", 1)
    stream.put(Changes().run(random.Random(9), 10, 10))
    db = Database(front, "fwd_expired")
    f = forwarder(tmp_path, kinesis, stream, front, db)
    f.run_once()
    db.run("INSERT INTO fwd_expired.kinesis_checkpoints (stream, consumer, shard_id, sequence_number, "
           "shard_end, version, worker) VALUES ('expired', 'people', 'shardId-000000000042', '123', 0, 1, 'x')")
    f.start("--once")
    assert f.wait(60) == 1
    assert "older than the stream's retention" in f.log() and "shardId-000000000042" in f.log()
    f.run_once("--on-expired-checkpoint", "trim-horizon")


def test_bad_flags_exit_2_and_secrets_stay_out_of_logs(tmp_path, kinesis, front):
    stream = Stream(kinesis, "flags", 1)
    stream.put(Changes().run(random.Random(10), 20, 10))
    db = Database(front, "fwd_flags")
    f = forwarder(tmp_path, kinesis, stream, front, db, "--workers", "2", "--worker-index", "2")
    f.start("--once")
    assert f.wait(30) == 2
    assert "--worker-index 2 must be below --workers 2" in f.log()
    (tmp_path / "pw").write_text("s3cret-pw\n")
    f = forwarder(tmp_path, kinesis, stream, front, db, "--clickhouse-password-file", str(tmp_path / "pw"))
    f.env["RUST_LOG"] = "trace"
    f.run_once()
    assert db.state()  # the password is ignored by the front; the run went through
    log = f.log()
    assert "s3cret-pw" not in log and kinesis.SECRET not in log


# -- column-aware: the same plan on both paths ------------------------------------------------

# The attribute columns (name, type, DDL after the type). The list without the DDL part is what
# the server path passes to the function; --flatten local reads the same from DESCRIBE TABLE.
COLUMNS = [
    ("id", "String", ""), ("first_name", "String", ""), ("age", "UInt8", ""),
    ("price", "Decimal(38, 2)", ""), ("qty", "Int64", ""), ("score", "Nullable(Float64)", ""),
    ("big", "Int128", ""), ("tags", "Array(String)", ""), ("doc", "String", ""),
    ("attrs", "Map(String, Int64)", ""), ("meta", "JSON", ""), ("seen", "DateTime64(3, 'UTC')", ""),
    ("ok", "Bool", ""), ("blob", "String", ""), ("item_v", "Nullable(String)", ""),
    ("origin", "LowCardinality(String)", "DEFAULT 'dynamodb'"),
]
COLUMN_LIST = ", ".join(f"{n} {t}" for n, t, _ in COLUMNS)


def column_aware_ddl() -> str:
    """The destination (metadata columns v and d) with its column-aware stream path: the view
    calls dynamo_flatten_columns (here its variant with --version-field v --deleted-field d)
    and reads the result with JSONExtract. The columns that an insert does not write
    (MATERIALIZED, ALIAS, EPHEMERAL) have types the plan does not take: they must be skipped."""
    errors_table = next(s for s in split_statements((SQL_DIR / "02_flat_and_errors.sql").read_text())
                        if "TABLE IF NOT EXISTS dynamo_errors" in s)
    columns = ",\n".join(f"    {n} {t} {ddl}" for n, t, ddl in COLUMNS)
    tuple_type = quote(f"Tuple({COLUMN_LIST}, _extra String, v UInt64, d UInt8)")
    names = [n for n, _, _ in COLUMNS] + ["_extra", "v", "d"]
    picked = ",\n".join(f"    tupleElement(r, '{n}') AS {n}" for n in names)
    return f"""
        {errors_table};
        CREATE TABLE people (
        {columns},
            day Date MATERIALIZED toDate(seen),
            extra_keys Array(String) MATERIALIZED JSONExtractKeys(_extra),
            name_len UInt64 ALIAS length(first_name),
            raw FixedString(2) EPHEMERAL,
            _extra String DEFAULT '{{}}',
            v UInt64,
            d UInt8
        ) ENGINE = ReplacingMergeTree(v, d) ORDER BY id;
        CREATE TABLE people_flat (source LowCardinality(String), line String, j String) ENGINE = Null;
        CREATE MATERIALIZED VIEW people_flat_mv TO people AS
        SELECT {picked}
        FROM (SELECT JSONExtract(j, {tuple_type}) AS r FROM people_flat WHERE NOT startsWith(j, '{{"_error"'));
        CREATE MATERIALIZED VIEW people_errors_mv TO dynamo_errors AS
        SELECT 'people' AS `table`, source, JSONExtractString(j, '_error') AS error, line
        FROM people_flat WHERE startsWith(j, '{{"_error"');
        CREATE TABLE people_stream (record String) ENGINE = Null;
        CREATE MATERIALIZED VIEW people_stream_mv TO people_flat AS
        SELECT 'stream' AS source, record AS line, df_columns_vd(record, {quote(COLUMN_LIST)}) AS j
        FROM people_stream;
    """


def S(s):
    return {"S": s}


def N(n):
    return {"N": n}


def drifted_records() -> list[str]:
    """Items that do not match the table, as change records (with a repeat, a MODIFY and a
    REMOVE), and the unreadable records."""
    big38 = "12345678901234567890123456789012345678"
    blob = base64.b64encode(b"hello").decode()  # change_record encodes it again, as Kinesis does
    items = {
        # 300 in UInt8, 12.505 in Decimal(38, 2), S where N, new attributes, one named _extra.
        "a": {"id": S("a"), "first_name": S("ann"), "age": N("300"), "price": N("12.505"),
              "qty": S("7"), "nickname": S("annie"), "_extra": S("x")},
        # NULL in a non-Nullable column; NULL, 38 digits and L of S where they fit.
        "b": {"id": S("b"), "first_name": {"NULL": True}, "age": N("42"), "price": N("12.50"),
              "score": {"NULL": True}, "big": N(big38), "tags": {"L": [S("x"), S("y")]},
              "doc": {"L": [N("1"), S("s")]}},
        # L with a number where Array(String), 38 digits into Float64 and Decimal(38, 2).
        "c": {"id": S("c"), "tags": {"L": [S("x"), N("1")]}, "score": N(big38),
              "price": N("123456789012345678901234567890123456.78"), "big": N("-" + "9" * 38),
              "doc": {"M": {"k": N("2"), "l": {"L": [S("s"), {"BOOL": True}]}}}},
        # Nested maps: into Map, into JSON, and without a column; Int64 overflow.
        "d": {"id": S("d"), "attrs": {"M": {"a": N("1"), "b": N("-5")}},
              "meta": {"M": {"x": N("1"), "y": N("123456789012345678901234567890"),
                             "z": {"L": [N("1"), S("a")]}}},
              "profile": {"M": {"a": {"M": {"b": {"SS": ["x", "y"]}}}}},
              "qty": N("9223372036854775808")},
        # Attributes named like the metadata (v → item_v; d has no item_d column), and
        # `version`, an ordinary attribute here; a DateTime64 in seconds; binary.
        "e": {"id": S("e"), "seen": S("2024-01-02T03:04:05.123Z"), "ok": {"BOOL": True},
              "v": S("item-version"), "d": N("5"), "version": N("3"), "blob": {"B": blob}},
        # Before 1970; a number where Bool; the DEFAULT column given.
        "f": {"id": S("f"), "seen": S("1969-12-31T23:59:59.5Z"), "ok": N("1"), "origin": S("src")},
    }
    g_old = {"id": S("g"), "first_name": S("old")}
    g_new = {"id": S("g"), "first_name": S("new"), "seen": S("2024-01-02T03:04:05.1234Z"),
             "tags": {"SS": ["p", "q"]}}
    h = {"id": S("h"), "first_name": S("gone"), "age": N("1000")}
    t = 1_700_000_000_000_000
    records = [change_record("INSERT", {"id": it["id"]}, t + i, it, None)
               for i, it in enumerate(items.values())]
    records += [records[0],
                change_record("INSERT", {"id": S("g")}, t + 10, g_old, None),
                change_record("MODIFY", {"id": S("g")}, t + 11, g_new, g_old),
                change_record("INSERT", {"id": S("h")}, t + 12, h, None),
                change_record("REMOVE", {"id": S("h")}, t + 13, None, h)]
    return records + BAD_RECORDS


def test_drifted_items_give_identical_tables_on_both_paths(tmp_path, kinesis, front):
    stream = Stream(kinesis, "drift", 2)
    stream.put(drifted_records())
    server = Database(front, "fwd_cols_server", column_aware_ddl(), sql_files=())
    local = Database(front, "fwd_cols_local", column_aware_ddl(), sql_files=())
    meta = ("--version-field", "v", "--deleted-field", "d")
    forwarder(tmp_path, kinesis, stream, front, server, *meta).run_once()
    f = forwarder(tmp_path, kinesis, stream, front, local, "--flatten", "local", *meta)
    f.run_once()
    assert "column plan from DESCRIBE TABLE" in f.log()
    inserts = [r for r in front.requests if r.startswith("INSERT INTO `people`")]
    assert inserts and all("input_format_skip_unknown_fields = '0'" in r and
                           "input_format_defaults_for_omitted_fields = '0'" in r and
                           "date_time_input_format = 'best_effort'" in r for r in inserts), inserts

    everything = "SELECT * FROM {}.people FINAL ORDER BY id"
    rows = local.rows(everything.format(local.name))
    assert rows == server.rows(everything.format(server.name))
    computed = "SELECT id, day, extra_keys, name_len FROM {}.people FINAL ORDER BY id"
    assert local.rows(computed.format(local.name)) == server.rows(computed.format(server.name))
    assert [r[0] for r in rows] == ["a", "b", "c", "d", "e", "f", "g"]  # h was removed
    assert server.errors() == local.errors()
    assert [e[3] for e in local.errors()] == sorted(BAD_RECORDS)

    for db in (server, local):
        def row(key: str, *cols: str, db: Database = db) -> tuple:
            return db.rows(f"SELECT {', '.join(cols)} FROM {db.name}.people FINAL WHERE id = '{key}'")[0]

        assert row("a", "first_name", "age", "price", "qty", "_extra") == (
            "ann", "0", "0", "0",
            ('{"age":{"N":"300"},"price":{"N":"12.505"},"qty":{"S":"7"},"nickname":{"S":"annie"},'
             '"_extra":{"S":"x"}}'))
        assert row("a", "JSONExtractString(_extra, 'age', 'N')", "extra_keys") == (
            "300", "['age','price','qty','nickname','_extra']")
        assert row("b", "first_name", "age", "price", "score", "big", "tags", "doc", "_extra") == (
            "", "42", "12.5", None, "12345678901234567890123456789012345678", "['x','y']",
            '[1,"s"]', '{"first_name":{"NULL":true}}')
        assert row("c", "tags", "score", "price", "big", "doc", "_extra") == (
            "[]", "1.2345678901234568e37", "123456789012345678901234567890123456.78", "-" + "9" * 38,
            '{"k":2,"l":["s",true]}', '{"tags":{"L":[{"S":"x"},{"N":"1"}]}}')
        assert row("d", "attrs", "toJSONString(meta)", "qty", "_extra") == (
            "{'a':1,'b':-5}", '{"x":1,"y":"123456789012345678901234567890","z":[1,"a"]}', "0",
            '{"profile":{"M":{"a":{"M":{"b":{"SS":["x","y"]}}}}},"qty":{"N":"9223372036854775808"}}')
        assert row("e", "seen", "ok", "item_v", "blob", "v", "d", "_extra") == (
            "2024-01-02 03:04:05.123", "true", "item-version", "aGVsbG8=", "1700000000000004", "0",
            '{"d":{"N":"5"},"version":{"N":"3"}}')
        # The DEFAULT column takes its type's default when the item has no such attribute, on
        # both paths (JSONExtract gives '' for a missing key).
        assert row("e", "origin") == ("",)
        assert row("f", "seen", "ok", "origin", "day", "_extra") == (
            "1969-12-31 23:59:59.500", "false", "src", "1970-01-01", '{"ok":{"N":"1"}}')
        assert row("g", "first_name", "seen", "tags", "v", "_extra") == (
            "new", "1970-01-01 00:00:00.000", "['p','q']", "1700000000000011",
            '{"seen":{"S":"2024-01-02T03:04:05.1234Z"}}')


def test_local_flattening_refuses_a_destination_it_cannot_fill(tmp_path, kinesis, front):
    stream = Stream(kinesis, "refusals", 1)
    stream.put(Changes().run(random.Random(11), 10, 10))

    def refused(db: Database, *flags: str, code: int = 3) -> str:
        f = forwarder(tmp_path / db.name, kinesis, stream, front, db, "--flatten", "local", *flags)
        (tmp_path / db.name).mkdir()
        f.start("--once")
        assert f.wait(60) == code, f.log()[-3000:]
        assert db.rows(f"SELECT count() FROM {db.name}.people") == [("0",)]
        return f.log()

    log = refused(Database(front, "fwd_no_extra", "ALTER TABLE people DROP COLUMN _extra"))
    assert ("destination: table `people` has no _extra column: --flatten local keeps there every "
            "attribute that has no column or does not fit its column's type. Add it with: "
            "ALTER TABLE `people` ADD COLUMN _extra String DEFAULT '{}'") in log

    log = refused(Database(front, "fwd_uuid", "ALTER TABLE people ADD COLUMN token UUID"))
    assert ("destination: table `people` cannot take flattened rows: column list: column `token`: "
            "type UUID is not supported") in log

    log = refused(Database(front, "fwd_no_v"), "--version-field", "v")
    assert ("destination: table `people` has no column `v` for the version (--version-field v): "
            "pass the names of its version and delete-flag columns") in log

    log = refused(Database(front, "fwd_same_names"), "--version-field", "v", "--deleted-field", "v", code=2)
    assert "--version-field and --deleted-field must differ" in log


def test_local_flattening_warns_when_the_key_is_not_columns(tmp_path, kinesis, front):
    stream = Stream(kinesis, "key-expression", 1)
    stream.put(Changes().run(random.Random(12), 10, 10))
    db = Database(front, "fwd_key_expr", """
        CREATE TABLE people2 AS people ENGINE = ReplacingMergeTree(version, is_deleted) ORDER BY cityHash64(id);
        EXCHANGE TABLES people AND people2;
    """)
    f = forwarder(tmp_path, kinesis, stream, front, db, "--flatten", "local")
    f.run_once()
    assert "the destination's sorting key is not a list of its columns" in f.log()
    assert "cityHash64(id)" in f.log()
    # With a plain key (sql/01's ORDER BY id) there is no such warning.
    plain = Database(front, "fwd_key_plain")
    g = forwarder(tmp_path / "plain", kinesis, stream, front, plain, "--flatten", "local")
    (tmp_path / "plain").mkdir()
    g.run_once()
    assert "PRIMARY KEY (`id`)" in g.log() and "sorting key is not a list" not in g.log()
