"""kinesis-forwarder's DynamoDB Streams source end to end, against moto's DynamoDB:

    moto table (stream NEW_AND_OLD_IMAGES) --ExportTableToPointInTime--> moto S3 --sql/03--> people
                 \\--DynamoDB Streams--> kinesis-forwarder --> people_stream (sql/05) | people (--flatten local)

What is proven, in one scenario: items with every DynamoDB type (S, N with 38 digits and
exponents of ±125/130, B, SS, NS, BS, M, L, NULL, BOOL, nested, unicode, empty strings and
binaries), loaded from the table's point-in-time export by sql/03 exactly as a Scan shows them;
then 450 seeded random PutItem / UpdateItem (SET, nested SET, list elements, list_append,
REMOVE, nested REMOVE, ADD to numbers and sets, DELETE from sets) / DeleteItem on 30 keys, in
bursts on one item within the same second, while two forwarders run (the server's view with
--dynamodb-table, --flatten local with --dynamodb-stream ARN), stopped by SIGTERM once caught
up, and a last --once run of each after more changes. Afterwards every stream record reached
people_stream exactly once, as DynamoDB Streams JSON with its images and time intact; `people
FINAL` equals a Scan of the table in both databases, item by item and value by value (numbers
as Decimal, sets as sets, binary as bytes, in their columns or in `_extra`), with each row's
version the time of its item's last change; deleted items are gone; both databases hold
identical rows; the errors table is empty; the checkpoint names the stream ARN and its last
sequence number. The scenario runs twice: with records stamped in whole seconds as AWS stamps
them (a moto server of this module's own, see harness.aws.Moto), where a burst gives equal
versions and the order of the records alone must make the later change win, and with moto's
own milliseconds. Smaller tests: a NEW_IMAGE stream (REMOVE records carry only the keys), and
the refusal of a table without a stream or with a KEYS_ONLY one.

What moto does not show: it has ONE shard per stream, which never closes or splits (resharding
is covered against kinesalite in test_forwarder.py); and its export differs from AWS's layout:
one file `<prefix>/AWSDynamoDB/<uuid>/data/<uuid>.gz` (no `.json`), no manifest files, no
`_started`, and the <uuid> is not the export ARN's id. Its quirks the workload keeps clear of:
ADD to a number written with an exponent and no "." fails (it reads it with int()), and it
accepts set members of equal value ("1" and "1.0"), which AWS refuses. An UpdateItem that
creates an item gives two INSERT records on moto (the key alone, then the item), one on AWS.
"""

from __future__ import annotations

import base64
import json
import random
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest

from harness import wait_until
from harness.aws import Moto
from harness.forwarder import FAST, Database, Forwarder

PREFIX = "people"                # of the export in S3
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
STREAM_VIEW = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}

# sql/01's `people` is ORDER BY id, so the DynamoDB key is the partition key `id` (S) alone.
KEY_SCHEMA = [{"AttributeName": "id", "KeyType": "HASH"}]
KEY_ATTRIBUTES = [{"AttributeName": "id", "AttributeType": "S"}]

# -- values --------------------------------------------------------------------------------------

# Numbers as AWS writes them (normalised: no trailing zeros, exponents for the huge and tiny),
# pairwise different in value, so that a set of them is a valid NS.
NUMBERS = ["0", "1", "-1", "7", "26", "255", "256", "300", "26.5", "0.5", "-0.5",
           "3.1415926535897932384626433832795028841",
           "12345678901234567890123456789012345678", "-12345678901234567890123456789012345678",
           "9.9999999999999999999999999999999999999E+125", "-9.9999999999999999999999999999999999999E+125",
           "1E-130", "-1E-130", "1E+100", "0.000000000000000000000000000000000001"]
STRINGS = ["", "sally", "Zoë \"zee\" O'Neil", "李雷 🚀", "back\\slash", "tab\there\nnew line",
           "\u2028\u2029", "nul\x00byte", "ünïcödé ÅÄÖ", "{\"S\":\"not a type\"}"]
BINARIES = [b"", b"\x00", b"\xff\xfe\x00\x01", b"plain", bytes(range(256))]
NAMES = ["nick", "名前 🚀", "with space", "a.b", "tags", "scores", "blobs", "blob", "meta", "list",
         "flag", "nothing", "count", "big", "note"]
MAP_KEYS = ["x", "y", "李", "a.b", "with space", "#hash", ":colon"]
SET_NAMES = {"tags": "SS", "scores": "NS", "blobs": "BS"}    # what ADD creates when absent
ALL_TAGS = {"S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL"}

# Items written before the export: every type, nested, and values that do not fit the columns.
INITIAL = [
    {"id": {"S": "all-types"}, "first_name": {"S": "sally"}, "age": {"N": "26"},
     "s": {"S": "Zoë \"zee\" O'Neil \\ 李雷 🚀 \t\n\u2028"}, "empty": {"S": ""},
     "n_big": {"N": "9.9999999999999999999999999999999999999E+125"}, "n_tiny": {"N": "-1E-130"},
     "n_38": {"N": "12345678901234567890123456789012345678"}, "n_frac": {"N": "0.000000000000000000000000000000000001"},
     "b": {"B": b"\x00\x01\xfe\xff"}, "b_empty": {"B": b""},
     "ss": {"SS": ["a", "李雷", "x y", "\"q\""]},
     "ns": {"NS": ["1", "-1E-130", "9.9999999999999999999999999999999999999E+125", "0.5"]},
     "bs": {"BS": [b"\x00", b"\xff\xfe", b"abc"]},
     "m": {"M": {"nested": {"M": {"deeper": {"L": [{"N": "1"}, {"M": {}}, {"NULL": True}]}}},
                 "ss": {"SS": ["in a map"]}, "b": {"B": b"\x80"}, "n": {"N": "-0.5"}}},
     "l": {"L": [{"S": ""}, {"N": "0"}, {"B": b"\x00"}, {"SS": ["q"]}, {"NS": ["2", "3"]},
                 {"BS": [b"\x01"]}, {"L": []}, {"BOOL": False}, {"M": {"k": {"S": "v"}}}]},
     "null": {"NULL": True}, "t": {"BOOL": True}, "f": {"BOOL": False},
     "名前 🚀": {"S": "unicode name"}, "a.b": {"N": "1"}, "with space": {"S": "x"}},
    {"id": {"S": "age-300"}, "first_name": {"S": ""}, "age": {"N": "300"}},
    {"id": {"S": "age-negative"}, "age": {"N": "-1"}},
    {"id": {"S": "age-fraction"}, "age": {"N": "26.5"}, "first_name": {"N": "7"}},
    {"id": {"S": "age-string"}, "age": {"S": "26"}, "first_name": {"BOOL": True}},
    {"id": {"S": "age-255"}, "age": {"N": "255"}, "first_name": {"S": "back\\slash"}},
    {"id": {"S": "age-38-digits"}, "age": {"N": "12345678901234567890123456789012345678"}},
    {"id": {"S": "李雷 🚀 key"}, "first_name": {"S": "李雷 🚀"}, "age": {"N": "0"}},
    {"id": {"S": "quote\"back\\slash'key"}, "first_name": {"NULL": True}, "age": {"NULL": True}},
    {"id": {"S": "only-key"}},
]
KEYS = [item["id"]["S"] for item in INITIAL] + [f"k{i:02d}" for i in range(20)]


def random_value(rng: random.Random, depth: int = 0) -> dict:
    """A random attribute value (DynamoDB JSON as the boto3 client takes it: B as bytes)."""
    tags = ["S", "N", "B", "SS", "NS", "BS", "NULL", "BOOL"] + (["M", "L"] * 2 if depth < 3 else [])
    tag = rng.choice(tags)
    if tag == "S":
        return {"S": rng.choice(STRINGS)}
    if tag == "N":
        return {"N": rng.choice(NUMBERS)}
    if tag == "B":
        return {"B": rng.choice(BINARIES)}
    if tag in SET_NAMES.values():
        return random_set(rng, tag)
    if tag == "NULL":
        return {"NULL": True}
    if tag == "BOOL":
        return {"BOOL": rng.random() < 0.5}
    if tag == "M":
        return {"M": {k: random_value(rng, depth + 1) for k in rng.sample(MAP_KEYS, rng.randint(0, 3))}}
    return {"L": [random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]}


def random_set(rng: random.Random, tag: str) -> dict:
    pool = {"SS": [s for s in STRINGS if s], "NS": NUMBERS, "BS": [b for b in BINARIES if b]}[tag]
    return {tag: rng.sample(pool, rng.randint(1, 3))}


def attribute(rng: random.Random, name: str) -> dict:
    """A random value for the attribute `name`: first_name and age mostly fit their columns."""
    if name == "age":
        return random_age(rng)
    if name == "first_name":
        if rng.random() < 0.85:
            return {"S": rng.choice(STRINGS)}
        # Not M or L, which a String column would take as their plain JSON text (expected_row).
        return rng.choice([{"N": rng.choice(NUMBERS)}, {"B": rng.choice(BINARIES)}, {"NULL": True},
                           {"BOOL": False}, random_set(rng, rng.choice(list(SET_NAMES.values())))])
    return random_value(rng)


def random_age(rng: random.Random) -> dict:
    r = rng.random()
    if r < 0.7:
        return {"N": str(rng.randrange(256))}      # fits UInt8
    if r < 0.9:
        return {"N": rng.choice(NUMBERS)}          # fits or not
    return random_value(rng)                       # mostly another type: _extra


def random_item(rng: random.Random, key: str) -> dict:
    item = {"id": {"S": key}}
    for name in ["first_name", "age"] + rng.sample(NAMES, rng.randint(0, 5)):
        if rng.random() < 0.9:
            item[name] = attribute(rng, name)
    return item


# -- comparing values exactly ----------------------------------------------------------------------


def typed(av: dict, b64: bool):
    """An attribute value as a Python value that compares exactly and only with the same value
    of the same type: ("N", Decimal), sets as frozensets, B as bytes (`b64`: given as its base64
    text, as in JSON; else bytes, as from boto3), M as a dict, L as a list."""
    ((tag, v),) = av.items()
    def binary(x):
        return base64.b64decode(x, validate=True) if b64 else bytes(x)
    if tag in ("S", "BOOL"):
        return tag, v
    if tag == "N":
        return tag, Decimal(v)
    if tag == "B":
        return tag, binary(v)
    if tag == "SS":
        return tag, frozenset(v)
    if tag == "NS":
        return tag, frozenset(Decimal(x) for x in v)
    if tag == "BS":
        return tag, frozenset(binary(x) for x in v)
    if tag == "M":
        return tag, typed_image(v, b64)
    if tag == "L":
        return tag, [typed(x, b64) for x in v]
    if tag == "NULL" and v is True:
        return tag, None
    raise AssertionError(f"not an attribute value: {av!r}")


def typed_image(image: dict, b64: bool) -> dict:
    return {k: typed(v, b64) for k, v in image.items()}


def tags(image: dict) -> set[str]:
    """The type tags in an item, nested ones included."""
    out = set()
    for av in image.values():
        ((tag, v),) = av.items()
        out.add(tag)
        if tag == "M":
            out |= tags(v)
        if tag == "L":
            out |= tags(dict(enumerate(v)))
    return out


def fits_uint8(av: dict | None) -> bool:
    if av is None or "N" not in av:
        return False
    d = Decimal(av["N"])
    return d == d.to_integral_value() and 0 <= d <= 255


def expected_row(item: dict) -> tuple:
    """The destination row of a Scan item: (id, first_name, age, _extra) as the column list
    'id String, first_name String, age UInt8' puts it. first_name is an S (or a B, as its
    base64 text) or else in _extra (the workload never gives it an M or L, which a String
    column would take as their plain JSON text); age a whole number 0…255 or else in _extra;
    an attribute that is absent leaves its column at the default ('' and 0); every other
    attribute is in _extra."""
    rest = dict(item)
    key = rest.pop("id")["S"]
    name = rest.get("first_name", {})
    first_name = ""
    if "S" in name:
        first_name = rest.pop("first_name")["S"]
    elif "B" in name:  # a String column takes B as its base64 text
        first_name = base64.b64encode(rest.pop("first_name")["B"]).decode()
    age = int(Decimal(rest.pop("age")["N"])) if fits_uint8(rest.get("age")) else 0
    return key, first_name, age, typed_image(rest, b64=False)


def stored_rows(db: Database) -> dict[str, tuple]:
    """The live rows of `people FINAL`, with _extra decoded like expected_row."""
    rows = db.rows(f"SELECT id, first_name, age, _extra FROM {db.name}.people FINAL "
                   "WHERE is_deleted = 0 ORDER BY id")
    return {r[0]: (r[0], r[1], int(r[2]), typed_image(json.loads(r[3]), b64=True)) for r in rows}


def assert_holds_the_table(db: Database, scan: list[dict]) -> None:
    expected = {row[0]: row for row in map(expected_row, scan)}
    got = stored_rows(db)
    diffs = [f"{k!r}: missing in {db.name}" for k in expected.keys() - got.keys()]
    diffs += [f"{k!r}: in {db.name} but not in the table: {got[k]}" for k in got.keys() - expected.keys()]
    diffs += [f"{k!r}:\n  stored   {got[k]}\n  expected {expected[k]}"
              for k in sorted(expected.keys() & got.keys()) if got[k] != expected[k]]
    assert not diffs, f"{len(diffs)} rows differ from the Scan:\n" + "\n".join(diffs[:10])


# -- moto ------------------------------------------------------------------------------------------


def scan(ddb, table: str) -> list[dict]:
    items, kw = [], {}
    while True:
        page = ddb.scan(TableName=table, ConsistentRead=True, **kw)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        kw = {"ExclusiveStartKey": page["LastEvaluatedKey"]}


def stream_records(streams, arn: str) -> tuple[str, list[dict]]:
    """The stream's only shard (moto has one) and all its records, read from TRIM_HORIZON."""
    shards = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    assert len(shards) == 1, shards
    shard = shards[0]["ShardId"]
    it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    records = []
    while True:
        page = streams.get_records(ShardIterator=it)
        if not page["Records"]:
            return shard, records
        records += page["Records"]
        it = page["NextShardIterator"]


class Workload:
    """Seeded random writes to the moto table. Each change is chosen from the item as it is
    (a GetItem first), so that every request is valid; `done` counts them by kind."""

    def __init__(self, ddb, table: str, rng: random.Random):
        self.ddb, self.table, self.rng = ddb, table, rng
        self.done: Counter = Counter()

    def run(self, n_ops: int) -> None:
        n = 0
        while n < n_ops:
            key = self.rng.choice(KEYS)
            # Bursts: several changes of one item a few milliseconds apart, in the same second.
            for _ in range(self.rng.choice([1, 1, 1, 2, 3, 5, 8])):
                self.change(key)
                n += 1

    def change(self, key: str) -> None:
        rng, k = self.rng, {"id": {"S": key}}
        item = self.ddb.get_item(TableName=self.table, Key=k, ConsistentRead=True).get("Item")
        attrs = {n: v for n, v in (item or {}).items() if n != "id"}
        maps = map_paths(attrs)
        filled = [p for p in maps if member(attrs, p)]
        lists = [n for n, v in attrs.items() if "L" in v]
        sets = {n: tag for n, v in attrs.items() for tag in v if tag in ("SS", "NS", "BS")}
        new_sets = [n for n in SET_NAMES if n not in attrs]
        # moto's ADD reads a number without a "." with int(), which fails on "1E-130".
        numbers = [n for n in ("age", "count", "big")
                   if n not in attrs or "N" in attrs[n] and ("." in attrs[n]["N"] or "E" not in attrs[n]["N"])]
        r = rng.random()
        if item is None or r < 0.12:
            self.ddb.put_item(TableName=self.table, Item=random_item(rng, key))
            self.done["put"] += 1
        elif r < 0.2:
            self.ddb.delete_item(TableName=self.table, Key=k)
            self.done["delete"] += 1
        elif r < 0.32 and maps:
            path = rng.choice(maps)
            self.update(k, f"SET {placeholders(len(path) + 1)} = :v0", [*path, rng.choice(MAP_KEYS)],
                        [random_value(rng)], "set nested")
        elif r < 0.42 and lists:
            name = rng.choice(lists)
            n_items = len(attrs[name]["L"])
            if n_items and rng.random() < 0.5:
                self.update(k, f"SET #n0[{rng.randrange(n_items)}] = :v0", [name], [random_value(rng)],
                            "set list element")
            else:
                self.update(k, "SET #n0 = list_append(#n0, :v0)", [name],
                            [{"L": [random_value(rng) for _ in range(rng.randint(1, 2))]}], "list_append")
        elif r < 0.5 and attrs:
            names = rng.sample(sorted(attrs), min(len(attrs), rng.randint(1, 2)))
            self.update(k, "REMOVE " + ", ".join(f"#n{i}" for i in range(len(names))), names, [], "remove")
        elif r < 0.57 and filled:
            path = rng.choice(filled)
            name = rng.choice(sorted(member(attrs, path)))
            self.update(k, f"REMOVE {placeholders(len(path) + 1)}", [*path, name], [], "remove nested")
        elif r < 0.67 and numbers:
            delta = rng.choice(["1", "-1", "0.5", "100", "-300", "12345678901234567890123456789012345678"])
            self.update(k, "ADD #n0 :v0", [rng.choice(numbers)], [{"N": delta}], "add number")
        elif r < 0.74 and sets:
            name = rng.choice(sorted(sets))
            members = attrs[name][sets[name]]
            self.update(k, "DELETE #n0 :v0", [name], [{sets[name]: rng.sample(members, rng.randint(1, len(members)))}],
                        "delete from set")
        elif r < 0.84 and (sets or new_sets):
            # Members come from NUMBERS, STRINGS and BINARIES only, so moto's union (by text)
            # is the union by value.
            name = rng.choice(sorted(sets) + new_sets)
            tag = sets.get(name) or SET_NAMES[name]
            self.update(k, "ADD #n0 :v0", [name], [random_set(rng, tag)], "add to set")
        else:
            names = rng.sample(["first_name", "age", *NAMES], rng.randint(1, 3))
            values = [attribute(rng, n) for n in names]
            self.update(k, "SET " + ", ".join(f"#n{i} = :v{i}" for i in range(len(names))), names, values, "set")

    def update(self, key: dict, expression: str, names: list[str], values: list[dict], kind: str) -> None:
        kw = {"ExpressionAttributeNames": {f"#n{i}": n for i, n in enumerate(names)}}
        if values:
            kw["ExpressionAttributeValues"] = {f":v{i}": v for i, v in enumerate(values)}
        self.ddb.update_item(TableName=self.table, Key=key, UpdateExpression=expression, **kw)
        self.done[kind] += 1


def placeholders(n: int) -> str:
    """The document path #n0.#n1.….#n<n-1>."""
    return ".".join(f"#n{i}" for i in range(n))


def map_paths(attrs: dict, prefix: tuple = ()) -> list[tuple]:
    """The paths of every map among `attrs`, nested maps included."""
    out = []
    for name, v in attrs.items():
        if "M" in v:
            out.append((*prefix, name))
            out += map_paths(v["M"], (*prefix, name))
    return out


def member(attrs: dict, path: tuple) -> dict:
    for name in path:
        attrs = attrs[name]["M"]
    return attrs


# -- the test --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_whole_seconds():
    """A moto server of this module's own whose stream records carry whole seconds, as AWS's."""
    with Moto(stream_seconds=True) as moto:
        yield moto


@pytest.fixture(params=["seconds", "milliseconds"])
def clock(request) -> tuple[str, Moto]:
    """The moto server, and how its stream records are stamped: in whole seconds as on AWS
    (bursts on one item give equal versions: the later change must still win), or moto's own
    milliseconds (the `moto` server)."""
    if request.param == "seconds":
        return request.param, request.getfixturevalue("moto_whole_seconds")
    return request.param, request.getfixturevalue("moto")


def create_table(ddb, name: str) -> dict:
    ddb.create_table(TableName=name, KeySchema=KEY_SCHEMA, AttributeDefinitions=KEY_ATTRIBUTES,
                     BillingMode="PAY_PER_REQUEST", StreamSpecification=STREAM_VIEW)
    return ddb.describe_table(TableName=name)["Table"]


def export_url(moto: Moto, ddb, table: dict, bucket: str) -> str:
    """Exports the table to S3 (point in time); returns the data-file glob for sql/03."""
    ddb.update_continuous_backups(TableName=table["TableName"],
                                  PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    s3 = moto.s3()
    s3.create_bucket(Bucket=bucket)
    ddb.export_table_to_point_in_time(TableArn=table["TableArn"], S3Bucket=bucket, S3Prefix=PREFIX,
                                      ExportFormat="DYNAMODB_JSON")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=PREFIX)["Contents"]]
    uuid = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    assert len(keys) == 1 and re.fullmatch(f"{PREFIX}/AWSDynamoDB/{uuid}/data/{uuid}\\.gz", keys[0]), keys
    # AWS names the data files data/<id>.json.gz (sql/03's example glob); moto writes ONE file
    # data/<uuid>.gz, which that glob would miss. data/*.gz matches both.
    return f"{moto.endpoint}/{bucket}/{PREFIX}/AWSDynamoDB/*/data/*.gz"


def item_key(record: dict) -> str:
    return record["dynamodb"]["Keys"]["id"]["S"]


def microseconds(record: dict) -> int:
    """The record's ApproximateCreationDateTime in µs since the epoch, exactly."""
    return (record["dynamodb"]["ApproximateCreationDateTime"] - EPOCH) // timedelta(microseconds=1)


def test_stream_of_a_moto_table_gives_its_scan_in_both_flatten_paths(tmp_path, clock, front):
    name, moto = clock
    table_name = f"people-streams-{name}"
    ddb = moto.client("dynamodb")
    streams = moto.client("dynamodbstreams")
    rng = random.Random(20261202)
    table = create_table(ddb, table_name)
    arn = table["LatestStreamArn"]
    work = Workload(ddb, table_name, rng)

    # 1. The snapshot: the items above and a random one per other key, exported, loaded by 03.
    for item in INITIAL + [random_item(rng, k) for k in KEYS[len(INITIAL):]]:
        ddb.put_item(TableName=table_name, Item=item)
    url = export_url(moto, ddb, table, f"exports-{name}")
    at_export = scan(ddb, table_name)
    assert len(at_export) == len(KEYS)
    assert set().union(*map(tags, at_export)) == ALL_TAGS
    server, local = Database(front, f"ddbs_{name}_server"), Database(front, f"ddbs_{name}_local")
    for db in (server, local):
        assert db.run_file("03_snapshot_from_s3.sql", {
            "url": url, "access_key_id": Moto.KEY, "secret_access_key": Moto.SECRET}) == [""]
        assert db.errors() == []
        assert_holds_the_table(db, at_export)
        assert db.rows(f"SELECT DISTINCT version, is_deleted FROM {db.name}.people") == [("0", "0")]
    server.keep_seen()  # from here on: the stream's records, as they reach people_flat

    # 2. Changes while both forwarders run, then SIGTERM once they caught up.
    def forwarders(*more: str) -> list[Forwarder]:
        (tmp_path / "server").mkdir(exist_ok=True)
        (tmp_path / "local").mkdir(exist_ok=True)
        return [
            Forwarder(tmp_path / "server", moto, ("--dynamodb-table", table_name), front.port, server.name, *more),
            Forwarder(tmp_path / "local", moto, ("--dynamodb-stream", arn), front.port, local.name,
                      "--flatten", "local", *more),
        ]

    running = [f.start() for f in forwarders(*FAST)]
    work.run(300)
    shard, records = stream_records(streams, arn)
    last = int(records[-1]["dynamodb"]["SequenceNumber"])
    for f, db in zip(running, (server, local)):
        wait_until(lambda f=f, db=db: not f.alive() or db.checkpoints().get(shard, (0, False))[0] == last,
                   30, f"{db.name} to reach sequence number {last}")
        assert f.terminate() == 0, f.log()[-4000:]

    # 3. More changes while they are stopped; --once goes on from the checkpoints.
    work.run(150)
    for f in forwarders():
        f.run_once()

    # What the workload did: every kind of change, many in bursts on one item.
    assert len(work.done) == 11 and min(work.done.values()) >= 5, work.done
    shard, records = stream_records(streams, arn)
    events = Counter(r["eventName"] for r in records)
    assert events["INSERT"] > 30 and events["MODIFY"] > 200 and events["REMOVE"] > 20, events
    same_item = [(a, b) for a, b in pairwise(records) if a["dynamodb"]["Keys"] == b["dynamodb"]["Keys"]]
    same_second = sum(1 for a, b in same_item if microseconds(a) // 10**6 == microseconds(b) // 10**6)
    assert same_second > 100, same_second
    images = [r["dynamodb"]["NewImage"] for r in records if "NewImage" in r["dynamodb"]]
    assert set().union(*map(tags, images)) == ALL_TAGS
    # first_name and age in their columns, and not fitting them (into _extra).
    assert {"S", "B", "N", "BOOL"} <= {next(iter(i["first_name"])) for i in images if "first_name" in i}
    ages = [i["age"] for i in images if "age" in i]
    assert sum(map(fits_uint8, ages)) > 50 and sum(not fits_uint8(a) and "N" in a for a in ages) > 10
    assert len({next(iter(a)) for a in ages}) >= 5
    last_change = {item_key(r): r for r in records}
    if name == "seconds":
        assert all(microseconds(r) % 10**6 == 0 for r in records)
        # Items whose last change has the time (the version) of the change before, which
        # wrote another image: only the order of the records tells the winner.
        tied = {item_key(b) for a, b in same_item if b is last_change[item_key(b)]
                and microseconds(a) == microseconds(b) and a["dynamodb"].get("NewImage") != b["dynamodb"].get("NewImage")}
        assert len(tied) >= 3, tied

    # 4. What the forwarder wrote, and the destination: equal to the table, in both databases.
    assert_records_arrived_intact(server, records, arn)
    final = scan(ddb, table_name)
    gone = set(KEYS) - {i["id"]["S"] for i in final}
    assert gone, "some items should end deleted"
    for db in (server, local):
        assert db.errors() == []
        assert_holds_the_table(db, final)
        deleted = {r[0] for r in db.rows(f"SELECT DISTINCT id FROM {db.name}.people WHERE is_deleted = 1")}
        assert gone <= deleted
        # Each row's version is its item's last change's time (DynamoDB Streams: s × 10⁶).
        versions = dict(db.rows(f"SELECT id, version FROM {db.name}.people FINAL"))
        assert versions == {k: str(microseconds(last_change[k])) for k in versions}
        assert db.checkpoints() == {shard: (int(records[-1]["dynamodb"]["SequenceNumber"]), False)}
        assert db.rows(f"SELECT DISTINCT stream, consumer FROM {db.name}.kinesis_checkpoints") == [(arn, "people")]
    everything = "SELECT * FROM {}.people FINAL ORDER BY id"
    assert server.rows(everything.format(server.name)) == local.rows(everything.format(local.name))


def assert_records_arrived_intact(db: Database, records: list[dict], arn: str) -> None:
    """Every stream record reached people_stream once (the run after SIGTERM started after
    the checkpoint), as DynamoDB Streams JSON with the record's event name, sequence number,
    time, keys and images, value for value."""
    lines = {}
    for line in db.seen():
        lines.setdefault(json.loads(line)["eventID"], []).append(line)
    assert sorted(lines) == sorted(r["eventID"] for r in records)
    assert all(len(v) == 1 for v in lines.values()), [v for v in lines.values() if len(v) > 1][:3]
    wrong_time = []
    for want in records:
        line = lines[want["eventID"]][0]
        got = json.loads(line, parse_float=Decimal)
        g, w = got["dynamodb"], want["dynamodb"]
        assert (got["eventName"], g["SequenceNumber"], got["eventSourceARN"]) == (
            want["eventName"], w["SequenceNumber"], arn), line
        for image in ("Keys", "NewImage", "OldImage"):
            assert (image in g) == (image in w), (image, line)
            if image in w:
                assert typed_image(g[image], b64=True) == typed_image(w[image], b64=False), (image, line, want)
        if Decimal(g["ApproximateCreationDateTime"]) != Decimal(microseconds(want)) / 10**6:
            wrong_time.append(f"sent {w['ApproximateCreationDateTime'].timestamp()}, written "
                              f"{g['ApproximateCreationDateTime']}: {line[:300]}")
    assert not wrong_time, (f"{len(wrong_time)} of {len(records)} records carry another "
                            "ApproximateCreationDateTime than the stream's:\n" + "\n".join(wrong_time[:3]))


def test_a_new_image_stream_gives_the_scan_too(tmp_path, front, moto):
    """NEW_IMAGE: a REMOVE record carries the keys alone, and still deletes the row."""
    table_name = "people-new-image"
    ddb = moto.client("dynamodb")
    ddb.create_table(TableName=table_name, KeySchema=KEY_SCHEMA, AttributeDefinitions=KEY_ATTRIBUTES,
                     BillingMode="PAY_PER_REQUEST",
                     StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})
    work = Workload(ddb, table_name, random.Random(7))
    work.run(120)
    assert work.done["delete"] >= 5, work.done
    db = Database(front, "ddbs_new_image")
    Forwarder(tmp_path, moto, ("--dynamodb-table", table_name), front.port, db.name).run_once()
    final = scan(ddb, table_name)
    assert 0 < len(final) < len(KEYS)
    assert db.errors() == []
    assert_holds_the_table(db, final)


@pytest.mark.parametrize(("spec", "message"), [
    (None, "ListStreams finds no DynamoDB stream of table {table}: the table does not exist"),
    ({"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"},
     "has view type KEYS_ONLY: its records do not carry the items' new images"),
])
def test_a_table_without_a_stream_of_images_is_refused(tmp_path, front, moto, spec, message):
    table_name = f"people-refused-{spec['StreamViewType'] if spec else 'no-stream'}".lower()
    ddb = moto.client("dynamodb")
    ddb.create_table(TableName=table_name, KeySchema=KEY_SCHEMA, AttributeDefinitions=KEY_ATTRIBUTES,
                     BillingMode="PAY_PER_REQUEST", **({"StreamSpecification": spec} if spec else {}))
    ddb.put_item(TableName=table_name, Item={"id": {"S": "a"}})
    db = Database(front, "ddbs_refused")
    f = Forwarder(tmp_path, moto, ("--dynamodb-table", table_name), front.port, db.name).start("--once")
    assert f.wait(60) == 3, f.log()
    assert message.format(table=table_name) in f.log(), f.log()
    assert db.rows("SELECT count() FROM ddbs_refused.people") == [("0",)]
