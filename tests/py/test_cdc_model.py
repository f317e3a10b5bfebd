"""Model-based CDC test: a simulated DynamoDB table, its full export and its change stream,
loaded through the sql/ scripts, must give exactly the simulated table's final state.

The model (seeded, deterministic): a table `people` (partition key `id`, S) with `first_name`
(S), `age` (N) and optional attributes of every other type (N with up to 38 digits, SS, NS,
BOOL, NULL, B, BS, M with an L inside, and `expires_at` for TTL). Over simulated time it takes
PutItem (INSERT or MODIFY), UpdateItem (SET / REMOVE of single attributes; an update that
changes nothing writes no record), DeleteItem and TTL deletes (REMOVE by the DynamoDB service,
`userIdentity` set) on a few thousand keys, some of them hot.

* Items written before the stream is enabled have no change records.
* The Kinesis Data Streams for DynamoDB destination is enabled BEFORE the full export at time
  T; every change after that is a KDS record. The table's precision setting changes over
  time: MICROSECOND, MILLISECOND, and legacy records without the precision field
  (milliseconds). With millisecond precision DynamoDB keeps per-item order by moving a second
  change of an item within the same millisecond one millisecond later; the model does the
  same, so versions are strictly increasing per item.
* B values in the records are base64 of the base64 text, as KDS writes them.
* The export is the table at T, written as DynamoDB writes it: `_started`,
  `manifest-summary.json`, `manifest-files.json` (JSON lines) and several gzip data parts of
  `{"Item":{…}}` lines, one of them an empty partition. It is uploaded to the local S3 server
  and loaded with sql/03_snapshot_from_s3.sql and its query parameters.
* The records are duplicated (some several times), shuffled as a whole, and inserted into
  people_stream (sql/05_stream.sql) in batches of varying size; half of them before the
  snapshot load and half after it.
* Malformed export lines and malformed records (each a corrupted copy of a real one, so the
  model is unaffected) are mixed in; they must end in dynamo_errors with their reason, source
  and raw line, while every good row is stored.

Checks: the state from sql/06_current_state.sql (`people FINAL`) equals the model's final
state value by value (age, version exact; `_extra` holds every other attribute as the item's
DynamoDB JSON); deleted keys are absent; the complete flattened documents (the columns and
`_extra`, kept by an extra view on people_flat, added by this test) equal the model's items
attribute by attribute, numbers as their exact text; with background merges stopped, every row
that must survive the inserts is stored in `people` (see test_no_good_row_lost); and after
sql/09_purge_deleted.sql the table without FINAL is the model state.

The module works in its own database (`cdc_model`) of the shared chDB session and its own S3
bucket, and switches back to `default` at the end.
"""

from __future__ import annotations

import base64
import copy
import json
import random
import re
from collections import Counter
from dataclasses import dataclass, field

import pytest

from harness.aws import Moto
from harness.dynamodb import TTL_IDENTITY, change_record, dumps, export_tree
from harness.sql import tsv

DB = "cdc_model"
SEED = 20241124
BUCKET, PREFIX = "cdc-exports", "people/cdc"

N_KEYS = 3000              # the key space
N_PRE_STREAM = 2000        # items written before the stream is enabled (no records)
N_OPS_BEFORE_EXPORT = 5000
N_OPS_AFTER_EXPORT = 5000
N_HOT = 40                 # keys that get a fifth of all operations
N_PARTS = 5                # export data parts with items (plus one empty partition)

STREAM_ON_US = 1_732_406_400_000_000          # 2024-11-24T00:00:00Z, µs
# The table's ApproximateCreationDateTimePrecision from the given operation on; None: a legacy
# record without the field (milliseconds). The export falls into the second MICROSECOND phase.
PRECISION_PHASES = {0: "MICROSECOND", 1500: "MILLISECOND", 3000: None, 4200: "MICROSECOND",
                    6500: "MILLISECOND", 8000: None, 9000: "MILLISECOND"}

NAMES = [
    "sally", "bob", "ana", "li", "Zoë \"zee\" O'Neil", "李雷 🚀", "Ørjan", "O'Brien",
    "back\\slash", "tab\there", "line\nbreak", "", "nul\x00char", "emoji 👩‍👩‍👧", "ß", "a;b,c",
    "{\"not\":\"json\"}", "\u00e9t\u00e9",
]
CITIES = ["Zürich", "Paris", "東京", "São Paulo", "", "New\nYork"]


# --- the model ---------------------------------------------------------------------------------


@dataclass
class Change:
    key: str
    event: str                  # INSERT | MODIFY | REMOVE
    ttl: bool                   # a REMOVE by the TTL process
    version: int                # the row's version: the record's time in µs
    stamp: int                  # ApproximateCreationDateTime as written (ms or µs)
    precision: str | None
    new: dict | None
    old: dict | None


@dataclass
class Sim:
    pre_stream: dict[str, dict]             # the table when the stream is enabled
    changes: list[Change]                   # in the order they happened
    export_time_us: int
    snapshot: dict[str, dict]               # the table at T
    final: dict[str, dict]                  # the table at the end
    version: dict[str, int]                 # final version per key (0: never changed since)
    stats: Counter = field(default_factory=Counter)


def number(rng: random.Random) -> str:
    """An N as DynamoDB returns it (no leading zeros, no trailing fractional zeros)."""
    kind = rng.randrange(6)
    sign = "-" if rng.random() < 0.3 else ""
    if kind == 0:
        return str(rng.randrange(0, 1000))
    if kind == 1:   # 38 significant digits
        digits = str(rng.randrange(10**37, 10**38))
        cut = rng.randrange(1, 38)
        frac = digits[cut:].rstrip("0")
        return sign + digits[:cut] + ("." + frac if frac else "")
    if kind == 2:
        return sign + "0." + "0" * rng.randrange(0, 8) + str(rng.randrange(1, 10))
    if kind == 3:
        return sign + str(rng.randrange(1, 10**6)) + "." + str(rng.randrange(1, 10**6)).rstrip("0")
    if kind == 4:
        return sign + str(rng.randrange(1, 10**18))
    return "12345678901234567890123456789.123456789"


def binary(rng: random.Random) -> str:
    return base64.b64encode(rng.randbytes(rng.randrange(0, 24))).decode()


def new_item(rng: random.Random, key: str, now_s: int) -> dict:
    item: dict = {"id": {"S": key}}
    if rng.random() < 0.93:
        item["first_name"] = {"S": rng.choice(NAMES)}
    if rng.random() < 0.93:
        item["age"] = {"N": str(rng.randrange(0, 256))}
    if rng.random() < 0.3:
        item["score"] = {"N": number(rng)}
    if rng.random() < 0.3:
        item["tags"] = {"SS": rng.sample(["admin", "beta", "", "ünï", "x y", "a\"b"], rng.randrange(1, 4))}
    if rng.random() < 0.2:
        item["nums"] = {"NS": sorted({number(rng) for _ in range(rng.randrange(1, 4))})}
    if rng.random() < 0.3:
        item["active"] = {"BOOL": rng.random() < 0.5}
    if rng.random() < 0.1:
        item["nickname"] = {"NULL": True}
    if rng.random() < 0.25:
        item["avatar"] = {"B": binary(rng)}
    if rng.random() < 0.15:
        item["blobs"] = {"BS": sorted({binary(rng) for _ in range(rng.randrange(1, 4))})}
    if rng.random() < 0.2:
        item["address"] = {"M": {
            "city": {"S": rng.choice(CITIES)},
            "geo": {"L": [{"N": number(rng)}, {"N": number(rng)}, {"M": {}}, {"L": []}]},
        }}
    if rng.random() < 0.2:
        item["expires_at"] = {"N": str(now_s + rng.randrange(-30, 90))}
    rng_keys = list(item)[1:]
    rng.shuffle(rng_keys)           # attribute order differs from item to item
    return {"id": item["id"], **{k: item[k] for k in rng_keys}}


def update(rng: random.Random, item: dict) -> dict:
    """UpdateItem: SET or REMOVE one or two attributes (may change nothing)."""
    out = copy.deepcopy(item)
    for _ in range(rng.randrange(1, 3)):
        what = rng.randrange(7)
        if what == 0:
            out["first_name"] = {"S": rng.choice(NAMES)}
        elif what == 1:
            age = int(out.get("age", {"N": "0"})["N"])
            out["age"] = {"N": str(min(255, age + 1) if rng.random() < 0.7 else rng.randrange(0, 256))}
        elif what == 2:
            out["score"] = {"N": number(rng)}
        elif what == 3:
            out["active"] = {"BOOL": rng.random() < 0.5}
        elif what == 4:
            out["avatar"] = {"B": binary(rng)}
        elif what == 5 and "address" in out:
            out["address"]["M"]["city"] = {"S": rng.choice(CITIES)}
        else:   # REMOVE an attribute (never the key)
            optional = [k for k in out if k != "id"]
            if optional:
                del out[rng.choice(optional)]
    return out


def simulate(seed: int = SEED) -> Sim:
    rng = random.Random(seed)
    keys = [f"{rng.getrandbits(128):032x}" for _ in range(N_KEYS)]
    for i in range(0, N_KEYS, 97):          # some non-ASCII keys
        keys[i] = f"ключ-{keys[i][:12]}-ü"
    hot = keys[:N_HOT]
    now = STREAM_ON_US
    table: dict[str, dict] = {k: new_item(rng, k, now // 10**6) for k in rng.sample(keys, N_PRE_STREAM)}
    pre_stream = copy.deepcopy(table)
    last: dict[str, int] = {}               # last version per key
    changes: list[Change] = []
    stats: Counter = Counter()
    precision = PRECISION_PHASES[0]
    key = keys[0]
    snapshot: dict[str, dict] | None = None
    export_time = 0

    def record(key: str, event: str, new: dict | None, old: dict | None, ttl: bool = False):
        prev = last.get(key, 0)
        if precision == "MICROSECOND":
            version = max(now, prev + 1)
            stamp = version
        else:
            ms = now // 1000
            if ms * 1000 <= prev:           # same millisecond as the key's last change
                ms = prev // 1000 + 1
                stats["ms_bumps"] += 1
            version, stamp = ms * 1000, ms
        assert version > prev
        last[key] = version
        changes.append(Change(key, event, ttl, version, stamp, precision,
                              copy.deepcopy(new), copy.deepcopy(old)))
        stats[f"records_{precision}"] += 1
        stats[f"records_{event}"] += 1

    for op in range(N_OPS_BEFORE_EXPORT + N_OPS_AFTER_EXPORT):
        if op == N_OPS_BEFORE_EXPORT:
            export_time = now
            snapshot = copy.deepcopy(table)
        if op in PRECISION_PHASES:          # the table's precision setting is changed
            precision = PRECISION_PHASES[op]
        if op and rng.random() < 0.1:       # a burst: the same key again, microseconds later
            now += rng.randrange(1, 300)
        else:
            now += rng.randrange(1, 400) if rng.random() < 0.6 else rng.randrange(400, 40_000)
            key = rng.choice(hot) if rng.random() < 0.2 else rng.choice(keys)
        old = table.get(key)
        r = rng.random()
        if r < 0.3:                                           # PutItem
            new = new_item(rng, key, now // 10**6)
            table[key] = new
            record(key, "MODIFY" if old else "INSERT", new, old)
        elif r < 0.72:                                        # UpdateItem (an upsert)
            new = update(rng, old or {"id": {"S": key}})
            if new != old:
                table[key] = new
                record(key, "MODIFY" if old else "INSERT", new, old)
            else:
                stats["no_op_updates"] += 1
        elif r < 0.88:                                        # DeleteItem
            if old:
                del table[key]
                record(key, "REMOVE", None, old)
        else:                                                 # the TTL process
            expired = [k for k in rng.sample(keys, 60)
                       if k in table and "expires_at" in table[k]
                       and int(table[k]["expires_at"]["N"]) * 10**6 <= now]
            if expired:
                k = expired[0]
                record(k, "REMOVE", None, table.pop(k), ttl=True)
                stats["ttl_deletes"] += 1

    assert snapshot is not None
    return Sim(pre_stream, changes, export_time, snapshot, table,
               {k: last.get(k, 0) for k in table}, stats)


# --- DynamoDB JSON out of the model -------------------------------------------------------------


def kds_record(c: Change, rng: random.Random) -> str:
    return change_record(c.event, {"id": {"S": c.key}}, c.stamp, c.new, c.old, precision=c.precision,
                         event_id=f"{rng.getrandbits(128):032x}", identity=TTL_IDENTITY if c.ttl else None)


def plain(av):
    """What dynamo_flatten writes for an attribute value; numbers as ("N", exact text)."""
    (tag, v), = av.items()
    if tag == "N":
        return ("N", v)
    if tag == "NS":
        return [("N", x) for x in v]
    if tag == "NULL":
        return None
    if tag == "M":
        return {k: plain(x) for k, x in v.items()}
    if tag == "L":
        return [plain(x) for x in v]
    return v        # S, B (base64 text), BOOL, SS, BS


def parse_doc(j: str) -> dict:
    as_n = lambda text: ("N", text)
    return json.loads(j, parse_int=as_n, parse_float=as_n)


# --- malformed input ----------------------------------------------------------------------------

# (raw export line, reason): each must be rejected whole, the rest of its file still loads.
BAD_EXPORT_LINES = [
    (b'{"Item":{"id":{"S":"bad-tag"},"age":{"X":"7"}}}',
     r'unknown type tag "X" \(expected S, N, B, BOOL, NULL, M, L, SS, NS or BS\)'),
    (b'{"Item":{"id":{"S":"bad-number"},"age":{"N":"12a"}}}', r'N value "12a" is not a number'),
    (b'{"Item":{"id":{"S":"bad-number-type"},"age":{"N":5}}}', r"N value must be a string"),
    (b'{"Item":{"id":{"S":"bad-truncated"},"first_name":{"S":"tru', r"unexpected end of input \(truncated JSON\?\)"),
    (b'{"Item":{"id":{"S":"bad-utf8-\xff\xfe"},"age":{"N":"1"}}}', r"invalid UTF-8"),
    (b'{"Item":{}}', r"item has no attributes"),
    (b"", r"empty input"),
    (b"not json at all", r"expected a JSON object"),
]


def bad_records(good: list[str], rng: random.Random) -> list[tuple[str, str]]:
    """Corrupted copies of real records, with the reason each must be rejected for."""
    def pick(pred=lambda r: True) -> dict:
        while True:
            r = json.loads(rng.choice(good))
            if pred(r):
                return r

    out = []
    text = rng.choice(good)
    out.append((text[: rng.randrange(10, len(text) - 1)], r"unexpected end of input \(truncated JSON\?\)"))
    r = pick()
    r["eventName"] = "UPSERT"
    out.append((dumps(r), r'eventName "UPSERT" is not INSERT, MODIFY or REMOVE'))
    r = pick()
    r["dynamodb"]["ApproximateCreationDateTimePrecision"] = "NANOSECOND"
    out.append((dumps(r), r'ApproximateCreationDateTimePrecision "NANOSECOND" is not MILLISECOND or MICROSECOND'))
    r = pick()
    r["dynamodb"]["ApproximateCreationDateTime"] = "yesterday"
    out.append((dumps(r), r"dynamodb\.ApproximateCreationDateTime is not a valid timestamp"))
    r = pick(lambda r: r["eventName"] == "MODIFY")
    del r["dynamodb"]["NewImage"]
    out.append((dumps(r), r"MODIFY record has no NewImage"))
    r = pick(lambda r: r["eventName"] != "REMOVE")
    r["dynamodb"]["NewImage"]["avatar"] = {"B": "AAEC/w=="}      # single-encoded binary
    out.append((dumps(r), r"B value in a Kinesis record is not base64 of base64 text"))
    r = pick(lambda r: r["eventName"] != "REMOVE")
    r["dynamodb"]["NewImage"]["age"] = {"N": "1e"}
    out.append((dumps(r), r'N value "1e" is not a number'))
    r = pick()
    del r["dynamodb"]
    out.append((dumps(r), r"change record has no dynamodb"))
    out.append((dumps({"Records": [json.loads(rng.choice(good)), json.loads(rng.choice(good))]}),
                r"a Lambda event with a Records array"))
    out.append(("garbage", r"expected a JSON object"))
    return out


# --- the export ---------------------------------------------------------------------------------


def export_files(sim: Sim, rng: random.Random, *, bucket: str = BUCKET, prefix: str = PREFIX,
                 bad_lines=BAD_EXPORT_LINES) -> tuple[str, dict[str, bytes], int]:
    """The full export of the table at T as DynamoDB writes it, with the (line, reason) pairs
    of `bad_lines` mixed in: (export id, files by key, line count)."""
    t_ms = sim.export_time_us // 1000
    export_id = f"{t_ms:014d}-{rng.getrandbits(32):08x}"
    parts: list[list[bytes]] = [[] for _ in range(N_PARTS)]
    for item in sim.snapshot.values():
        line = dumps({"Item": item}, ascii_only=rng.random() < 0.3)
        parts[rng.randrange(N_PARTS)].append(line.encode())
    for line, _ in bad_lines:
        p = parts[rng.randrange(N_PARTS)]
        p.insert(rng.randrange(len(p) + 1), line)
    parts.insert(rng.randrange(N_PARTS + 1), [])          # an empty partition: an empty file
    files, total = export_tree(export_id, parts, rng, bucket=bucket, prefix=prefix,
                               time_us=sim.export_time_us)
    return export_id, files, total


def table_at(sim: Sim, t_us: int) -> dict[str, dict]:
    """The model's table just before `t_us`: the items from before the stream, changed by every
    change with a lower version (per key those are the first of its changes, in order)."""
    table = dict(sim.pre_stream)
    for c in sim.changes:
        if c.version < t_us:
            if c.new is None:
                table.pop(c.key, None)
            else:
                table[c.key] = c.new
    return table


def incremental_lines(sim: Sim, from_us: int, to_us: int, rng: random.Random) -> list[bytes]:
    """The lines of an incremental export of [from_us, to_us) with NEW_AND_OLD_IMAGES as
    DynamoDB writes them: compacted, one line per item changed in the range, with the item at
    the end (NewImage; none when it is gone), at the start (OldImage; none when it did not
    exist yet) and the time of its last change in the range. An item that existed at neither
    end has no line."""
    start, end = table_at(sim, from_us), table_at(sim, to_us)
    last: dict[str, int] = {}
    for c in sim.changes:
        if from_us <= c.version < to_us:
            last[c.key] = c.version
    lines = []
    for key, version in last.items():
        old, new = start.get(key), end.get(key)
        if old is None and new is None:
            continue
        doc: dict = {"Metadata": {"WriteTimestampMicros": {"N": str(version)}}, "Keys": {"id": {"S": key}}}
        if new is not None:
            doc["NewImage"] = new
        if old is not None:
            doc["OldImage"] = old
        lines.append(dumps(doc, ascii_only=rng.random() < 0.3).encode())
    return lines


def incremental_export_files(sim: Sim, from_us: int, to_us: int, rng: random.Random, *,
                             bucket: str = BUCKET, prefix: str = PREFIX) -> tuple[str, dict[str, bytes], int]:
    """An incremental export of [from_us, to_us) as DynamoDB writes it (see export_tree):
    (export id, files by key, line count)."""
    export_id = f"{to_us // 1000:014d}-{rng.getrandbits(32):08x}"
    parts: list[list[bytes]] = [[] for _ in range(N_PARTS)]
    for line in incremental_lines(sim, from_us, to_us, rng):
        parts[rng.randrange(N_PARTS)].append(line)
    parts.insert(rng.randrange(N_PARTS + 1), [])
    files, total = export_tree(export_id, parts, rng, bucket=bucket, prefix=prefix, time_us=to_us,
                               incremental=(from_us, to_us))
    return export_id, files, total


# --- the state of people FINAL ------------------------------------------------------------------


def expected_state(items: dict[str, dict], version: dict[str, int]) -> dict[str, tuple]:
    """What `people FINAL` holds for a table of these items and versions, by id: (first_name,
    age, _extra as a dict, version, is_deleted). _extra holds the attributes that are not
    columns, as DynamoDB JSON (B in the export's form: the function removes the extra base64
    layer of the records)."""
    return {
        key: (item.get("first_name", {"S": ""})["S"], item.get("age", {"N": "0"})["N"],
              {k: v for k, v in item.items() if k not in ("id", "first_name", "age")},
              str(version[key]), "0")
        for key, item in items.items()
    }


def stored_state(rows: list[tuple]) -> dict[str, tuple]:
    """Rows of `SELECT id, first_name, age, _extra, version, is_deleted FROM people FINAL` by id,
    in the form of expected_state."""
    got = {r[0]: (r[1], r[2], json.loads(r[3]), *r[4:]) for r in rows}
    assert len(got) == len(rows)
    return got


def state_diff(got: dict[str, tuple], expected: dict[str, tuple]) -> str:
    """'' when both states are equal, else how they differ, with examples."""
    missing = expected.keys() - got.keys()
    extra = got.keys() - expected.keys()
    wrong = {k: (got[k], expected[k]) for k in expected.keys() & got.keys() if got[k] != expected[k]}
    if not missing and not extra and not wrong:
        return ""
    return (f"{len(missing)} missing, {len(extra)} extra, {len(wrong)} wrong; e.g. missing "
            f"{sorted(missing)[:3]}, extra {sorted(extra)[:3]}, wrong {list(wrong.items())[:2]}")


# --- fixtures -----------------------------------------------------------------------------------


@dataclass
class Loaded:
    sim: Sim
    params: dict
    export_lines: int
    good_records: list[str]          # as sent, duplicates included
    bad: list[tuple[str, bytes, str]]  # (source, raw row, reason pattern)
    sent_rows: Counter               # (id, version, is_deleted) of every good row sent
    required_rows: Counter           # the rows that must be stored (see test_no_good_row_lost)


@pytest.fixture(scope="module")
def sim() -> Sim:
    return simulate()


@pytest.fixture(scope="module")
def db(ch):
    with ch.in_database(DB):
        yield ch


@pytest.fixture(scope="module")
def loaded(db, sim, moto) -> Loaded:
    rng = random.Random(SEED + 1)

    # The export at T, in S3.
    export_id, files, export_lines = export_files(sim, rng)
    s3 = moto.s3()
    s3.create_bucket(Bucket=BUCKET)
    for key, body in files.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    params = {"url": f"{moto.endpoint}/{BUCKET}/{PREFIX}/AWSDynamoDB/{export_id}/data/*.json.gz",
              "access_key_id": Moto.KEY, "secret_access_key": Moto.SECRET}

    # The stream: every change once, some several times, all shuffled, with bad records mixed in.
    records = [kds_record(c, rng) for c in sim.changes]
    row_of = {rec: (c.key, str(c.version), "1" if c.event == "REMOVE" else "0")
              for c, rec in zip(sim.changes, records)}
    sent_rows: Counter = Counter()
    sent: list[str] = []
    for rec in records:
        copies = 1 + (rng.random() < 0.08) + (rng.random() < 0.02)
        sent += [rec] * copies
        sent_rows[row_of[rec]] += copies
    good_records = list(sent)
    bad = bad_records(records, rng)
    for text, _ in bad:
        sent.insert(rng.randrange(len(sent) + 1), text)
    rng.shuffle(sent)
    required_rows: Counter = Counter()
    for item in sim.snapshot.values():
        sent_rows[(item["id"]["S"], "0", "0")] += 1
        required_rows[(item["id"]["S"], "0", "0")] += 1

    db.run_file("01_destination.sql")
    db.run_file("02_flat_and_errors.sql")
    db.run_file("05_stream.sql")
    # The whole flattened document of every good row, next to the shipped views: the shipped
    # destination keeps id, first_name and age; this keeps every attribute for the comparison.
    db.run("CREATE TABLE people_docs (id String, doc String, version UInt64, is_deleted UInt8) "
              "ENGINE = ReplacingMergeTree(version, is_deleted) ORDER BY id")
    db.run("CREATE MATERIALIZED VIEW people_docs_mv TO people_docs AS SELECT "
              "JSONExtractString(j, 'id') AS id, j AS doc, JSONExtractUInt(j, 'version') AS version, "
              "JSONExtractUInt(j, 'is_deleted') AS is_deleted FROM people_flat "
              "WHERE NOT startsWith(j, '{\"_error\"')")
    # No background merges while loading: the stored rows are what the inserts wrote.
    db.run(f"SYSTEM STOP MERGES {DB}.people")

    half = len(sent) // 2
    batches = []
    i = 0
    while i < len(sent):
        n = rng.randrange(200, 1500)
        batches.append(sent[i:i + n])
        i += n
    done = 0
    snapshot_loaded = False
    for batch in batches:
        if not snapshot_loaded and done >= half:
            assert db.run_file("03_snapshot_from_s3.sql", params) == [""]
            snapshot_loaded = True
        db.insert_lines("people_stream", batch)
        done += len(batch)
        # Per batch and key, the row with the highest version must be stored.
        best: dict[str, tuple] = {}
        for rec in batch:
            row = row_of.get(rec)
            if row and (row[0] not in best or int(row[1]) > int(best[row[0]][1])):
                best[row[0]] = row
        required_rows.update(best.values())
    assert snapshot_loaded

    bad_rows = [("snapshot", line, reason) for line, reason in BAD_EXPORT_LINES]
    bad_rows += [("stream", text.encode(), reason) for text, reason in bad]
    return Loaded(sim, params, export_lines, good_records, bad_rows, sent_rows, required_rows)


# --- the model itself ---------------------------------------------------------------------------


def test_model_covers_the_interesting_cases(sim):
    assert simulate().changes == sim.changes                      # deterministic
    t = sim.export_time_us
    before = {c.key for c in sim.changes if c.version <= t}
    after = {c.key for c in sim.changes if c.version > t}
    removed_before = {c.key for c in sim.changes if c.event == "REMOVE" and c.version <= t}
    removed_after = {c.key for c in sim.changes if c.event == "REMOVE" and c.version > t}
    s = sim.stats
    cases = {
        "untouched since before the stream (export only)": len(set(sim.pre_stream) - before - after),
        "changed before T, not after": len(set(sim.final) & before - after),
        "deleted before T, never back": len(removed_before - set(sim.snapshot) - set(sim.final)),
        "in the export, deleted after T": len(set(sim.snapshot) & removed_after - set(sim.final)),
        "created after T": len(set(sim.final) - set(sim.snapshot) - set(sim.pre_stream)),
        "deleted, then back": len(removed_before & set(sim.final)),
        "TTL deletes": s["ttl_deletes"],
        "ms bumps (same item, same ms)": s["ms_bumps"],
        "MICROSECOND records": s["records_MICROSECOND"],
        "MILLISECOND records": s["records_MILLISECOND"],
        "records without a precision": s["records_None"],
        "INSERT / MODIFY / REMOVE": min(s["records_INSERT"], s["records_MODIFY"], s["records_REMOVE"]),
        "updates that changed nothing": s["no_op_updates"],
    }
    assert all(n >= 5 for n in cases.values()), cases
    assert 2000 <= len(sim.final) <= N_KEYS
    # Versions strictly increase per key, in the order of the changes.
    last: dict[str, int] = {}
    for c in sim.changes:
        assert c.version > last.get(c.key, 0)
        last[c.key] = c.version
        assert c.version == (c.stamp if c.precision == "MICROSECOND" else c.stamp * 1000)


# --- the load -----------------------------------------------------------------------------------


def test_export_in_s3_as_dynamodb_writes_it(db, loaded, moto):
    s3 = moto.s3()
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"])
    base = keys[0].rsplit("/", 1)[0]
    assert [k[len(base) + 1:] for k in keys if not k.startswith(f"{base}/data/")] == [
        "_started", "manifest-files.json", "manifest-summary.json"]
    data = [k for k in keys if k.startswith(f"{base}/data/") and k.endswith(".json.gz")]
    assert len(data) == N_PARTS + 1 == len(keys) - 3
    summary = json.loads(s3.get_object(Bucket=BUCKET, Key=f"{base}/manifest-summary.json")["Body"].read())
    manifest = [json.loads(line) for line in
                s3.get_object(Bucket=BUCKET, Key=f"{base}/manifest-files.json")["Body"].read().splitlines()]
    assert sorted(m["dataFileS3Key"] for m in manifest) == data
    assert sum(m["itemCount"] for m in manifest) == summary["itemCount"] == loaded.export_lines
    assert sum(m["itemCount"] == 0 for m in manifest) == 1
    # The check from the header of 03: the lines read equal the manifest's item count.
    n = db.run("SELECT count() FROM s3({url:String}, {access_key_id:String}, "
              "{secret_access_key:String}, 'LineAsString')", loaded.params)
    assert int(n) == summary["itemCount"]


def test_final_state_equals_the_model(db, loaded):
    sim = loaded.sim
    state, errors, _ = (tsv(t) for t in db.run_file("06_current_state.sql"))
    got = stored_state(state)
    diff = state_diff(got, expected_state(sim.final, sim.version))
    assert not diff, diff
    # Deleted keys: absent from FINAL, but their delete markers are stored.
    deleted = {c.key for c in sim.changes if c.event == "REMOVE"} - sim.final.keys()
    assert deleted and not deleted & got.keys()
    markers = {r[0] for r in tsv(db.run("SELECT DISTINCT id FROM people WHERE is_deleted = 1"))}
    assert deleted <= markers
    # The summary of rejected rows in 06: one line per source.
    by_source = Counter(source for source, _, _ in loaded.bad)
    assert [(r[0], r[1], int(r[2])) for r in errors] == [
        ("people", "snapshot", by_source["snapshot"]), ("people", "stream", by_source["stream"])]


def test_documents_equal_the_model_attribute_by_attribute(db, loaded):
    sim = loaded.sim
    rows = tsv(db.run("SELECT id, doc FROM people_docs FINAL"))
    got = {}
    for key, doc in rows:
        d = parse_doc(doc)
        assert d.pop("version") == ("N", str(sim.version.get(key)))
        assert d.pop("is_deleted") == ("N", "0")
        # The columns converted, every other attribute in _extra: a JSON string holding an
        # object of DynamoDB JSON.
        extra = parse_doc(d.pop("_extra"))
        assert not extra.keys() & d.keys()
        got[key] = {**d, **{k: plain(v) for k, v in extra.items()}}
    expected = {key: {k: plain(v) for k, v in item.items()} for key, item in sim.final.items()}
    assert got.keys() == expected.keys()
    wrong = [(k, got[k], expected[k]) for k in expected if got[k] != expected[k]]
    assert not wrong, f"{len(wrong)} documents differ, e.g. {wrong[:2]}"
    # Every type went through, binary from the records (double-encoded) included.
    types = {next(iter(av)) for item in sim.final.values() for av in item.values()}
    assert types == {"S", "N", "B", "BOOL", "NULL", "M", "SS", "NS", "BS"}
    from_stream = [k for k in sim.final if sim.version[k] > 0 and "avatar" in sim.final[k]]
    assert len(from_stream) >= 20


def test_no_good_row_lost(db, loaded):
    """Background merges are stopped, so the stored rows are what the inserts wrote. With the
    default optimize_on_insert = 1, ReplacingMergeTree already keeps only the highest version
    of a key within one inserted block; so every snapshot row and, per batch of records, each
    key's highest-version row must be stored, and nothing that was not sent."""
    stored = Counter(tsv(db.run("SELECT id, version, is_deleted FROM people")))
    assert not loaded.required_rows - stored, list((loaded.required_rows - stored).items())[:5]
    assert not stored - loaded.sent_rows, list((stored - loaded.sent_rows).items())[:5]
    assert sum(loaded.required_rows.values()) > len(loaded.sim.snapshot) + len(loaded.sim.changes) // 2
    assert db.count("dynamo_errors") == len(loaded.bad)
    assert db.count("people_stream") == 0 and db.count("people_flat") == 0


def test_malformed_rows_in_dynamo_errors(db, loaded):
    rows = tsv(db.run("SELECT `table`, source, error, hex(line) FROM dynamo_errors"))
    got = Counter((r[1], bytes.fromhex(r[3])) for r in rows)
    assert got == Counter((source, line) for source, line, _ in loaded.bad)
    assert {r[0] for r in rows} == {"people"}
    reasons = {(source, line): reason for source, line, reason in loaded.bad}
    for _, source, error, hexline in rows:
        line = bytes.fromhex(hexline)
        assert re.fullmatch(reasons[(source, line)] + r".* at byte \d+", error), (source, line, error)
        assert int(error.rsplit(" ", 1)[1]) <= len(line)


def test_purge_deleted_leaves_exactly_the_model(db, loaded):
    sim = loaded.sim
    db.run(f"SYSTEM START MERGES {DB}.people")
    db.run_file("09_purge_deleted.sql")
    rows = tsv(db.run("SELECT id, first_name, age, version, is_deleted FROM people"))
    assert sorted(rows) == sorted(
        (key, item.get("first_name", {"S": ""})["S"], item.get("age", {"N": "0"})["N"],
         str(sim.version[key]), "0")
        for key, item in sim.final.items())
