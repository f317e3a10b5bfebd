"""Schema drift through the shipped `dynamo_flatten_columns(line, columns)`, in chDB.

A destination `ReplacingMergeTree(version, is_deleted)` with typed columns, `_extra String`,
`version UInt64` and `is_deleted UInt8` is loaded twice, as the contract (spec-columns.md)
says it is read:

    JSONExtract(j, 'Tuple(<list>, _extra String, version UInt64, is_deleted UInt8)')

- the snapshot path: an INSERT … SELECT from a gzip file of export lines `{"Item":…}`;
- the stream path: Kinesis Data Streams records (MODIFY, INSERT, REMOVE, one out of order)
  inserted into a Null landing table whose materialized view calls the function with the
  destination's WHOLE column list (`_extra`, `version` and `is_deleted` included, which the
  function ignores).

The items drift from the columns: new attributes, wider numbers (300 into UInt8, -5 into
UInt8), more decimals (12.505 into Decimal(38,2)), type changes (S where N was, NULL into
non-Nullable columns, L where SS was), 38-digit numbers, 1e100 into Decimal(38,2) and
Float32, nested maps, booleans, date-times, names like `version` and `_extra`.

Every attribute of every input image is checked, value by value: it is either in its column
with the exact value (compared as the engine's `toString`, from TabSeparated output), and
then not in `_extra`; or it is in `_extra` under its original name with its DynamoDB JSON
value (read with `JSONExtractRaw`, `JSONExtractString(_extra, name, 'N')` and
`_extra::JSON`), and its column holds NULL or the type's default. Every output row of the
function is `isValidJSON`, error rows included.

Also: the parameterised `executable` form `df_cols('<list>')(line)` (the value arrives as one
single-quoted SQL literal, see conftest.py) gives the same rows as the pool function.
"""

from __future__ import annotations

import gzip
import json

import pytest

from harness.dynamodb import change_record, dumps
from harness.sql import quote

DB = "columns_drift"
ERR = """startsWith(j, '{"_error"')"""

# The destination's columns besides _extra, version and is_deleted: (name, type, default as
# toString gives it; None for NULL).
COLUMNS = [
    ("id", "String", ""),
    ("qty", "UInt8", "0"),
    ("stock", "Int64", "0"),
    ("price", "Decimal(38, 2)", "0"),
    ("big", "Int128", "0"),
    ("ratio", "Float64", "0"),
    ("small", "Float32", "0"),
    ("tags", "Array(String)", "[]"),
    ("scores", "Array(Decimal(10, 2))", "[]"),
    ("note", "Nullable(String)", None),
    ("attrs", "Map(String, String)", "{}"),
    ("doc", "JSON", "{}"),
    ("active", "Bool", "false"),
    ("seen", "DateTime64(3, 'UTC')", "1970-01-01 00:00:00.000"),
    ("status", "LowCardinality(String)", ""),
    ("blob", "String", ""),
    ("odd name", "UInt16", "0"),
]
META = [("_extra", "String"), ("version", "UInt64"), ("is_deleted", "UInt8")]


def ident(name: str) -> str:
    return name if name.isidentifier() else "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


LIST = ", ".join(f"{ident(n)} {t}" for n, t, _ in COLUMNS)
WHOLE_LIST = LIST + ", " + ", ".join(f"{n} {t}" for n, t in META)
TUPLE = f"Tuple({WHOLE_LIST})"
DEFAULTS = {n: d for n, _, d in COLUMNS}


class Extra:
    """The attribute must be in _extra, not in its column."""

    def __repr__(self) -> str:
        return "EXTRA"


EXTRA = Extra()


class Sql:
    """The column's toString must equal this expression, evaluated by the engine (the nearest
    Float32/Float64, the instant of a date-time)."""

    def __init__(self, expr: str):
        self.expr = expr

    def __repr__(self) -> str:
        return f"Sql({self.expr})"


class Doc:
    """A JSON column: toString parses to this object."""

    def __init__(self, value):
        self.value = value

    def __repr__(self) -> str:
        return f"Doc({self.value!r})"


def f64(t: str) -> Sql:
    return Sql(f"toString(toFloat64({quote(t)}))")


def f32(t: str) -> Sql:
    return Sql(f"toString(toFloat32({quote(t)}))")


# id -> attribute -> (DynamoDB JSON value, where it must land: the column's toString, None
# for NULL, Sql(...), Doc(...), or EXTRA).
SNAPSHOT = {
    "s01": {  # everything fits
        "qty": ({"N": "7"}, "7"),
        "stock": ({"N": "-5"}, "-5"),
        "price": ({"N": "12.50"}, "12.5"),
        "big": ({"N": "99999999999999999999999999999999999999"}, "99999999999999999999999999999999999999"),
        "ratio": ({"N": "1E+2"}, f64("1E+2")),
        "small": ({"N": "1.5"}, "1.5"),
        "tags": ({"SS": ["x", "y"]}, "['x','y']"),
        "scores": ({"NS": ["1.5", "2"]}, "[1.5,2]"),
        "note": ({"S": 'Zoë "zee" \\ O\'Neil\t🚀'}, 'Zoë "zee" \\ O\'Neil\t🚀'),
        "attrs": ({"M": {"k": {"S": "v"}, "é": {"S": "w"}}}, "{'k':'v','é':'w'}"),
        "doc": ({"M": {"a": {"N": "1"}, "b": {"S": "x"}, "n": {"M": {"l": {"L": [{"N": "1"}, {"N": "2"}]}}}}},
                Doc({"a": 1, "b": "x", "n": {"l": [1, 2]}})),
        "active": ({"BOOL": True}, "true"),
        "seen": ({"S": "2024-01-02T03:04:05.123Z"}, "2024-01-02 03:04:05.123"),
        "status": ({"S": "new"}, "new"),
        "blob": ({"B": "AAEC"}, "AAEC"),
        "odd name": ({"N": "65535"}, "65535"),
    },
    "s02": {  # wider numbers, more decimals
        "qty": ({"N": "300"}, EXTRA),
        "stock": ({"N": "-9223372036854775809"}, EXTRA),
        "price": ({"N": "12.505"}, EXTRA),
        "big": ({"N": "1E+2"}, "100"),
        "ratio": ({"N": "12345678901234567890123456789.123456789"},
                  f64("12345678901234567890123456789.123456789")),
        "small": ({"N": "1e100"}, EXTRA),
        "scores": ({"NS": ["1.505", "2"]}, EXTRA),
        "note": ({"NULL": True}, None),
        "odd name": ({"N": "65536"}, EXTRA),
    },
    "s03": {  # negative numbers, 38 digits, edges
        "qty": ({"N": "-5"}, EXTRA),
        "price": ({"N": "1e100"}, EXTRA),
        "big": ({"N": "-1E+38"}, "-100000000000000000000000000000000000000"),
        "stock": ({"N": "9223372036854775807"}, "9223372036854775807"),
        "ratio": ({"N": "-1E-130"}, f64("-1E-130")),
        "small": ({"N": "3.4028235E38"}, f32("3.4028235E38")),
        "x_added": ({"N": "42"}, EXTRA),
    },
    "s04": {  # type changes
        "qty": ({"S": "7"}, EXTRA),
        "price": ({"S": "12.5"}, EXTRA),
        "stock": ({"NULL": True}, EXTRA),
        "status": ({"NULL": True}, EXTRA),
        "tags": ({"L": [{"S": "x"}, {"N": "1"}]}, EXTRA),
        "active": ({"N": "1"}, EXTRA),
        "note": ({"N": "5"}, EXTRA),
        "blob": ({"N": "1"}, EXTRA),
        "seen": ({"N": "1704164645"}, EXTRA),
        "doc": ({"L": [{"M": {}}]}, EXTRA),
    },
    "s05": {  # L where SS was, nested maps, new attributes
        "tags": ({"L": [{"S": "a"}, {"S": "b"}]}, "['a','b']"),
        "scores": ({"L": [{"N": "1.10"}, {"N": "-3"}]}, "[1.1,-3]"),
        "attrs": ({"M": {"k": {"N": "1"}}}, EXTRA),
        "doc": ({"M": {"a.b": {"N": "1"}}}, EXTRA),
        "note": ({"M": {"deep": {"L": [{"S": "x"}, {"BOOL": True}]}}}, '{"deep":["x",true]}'),
        "x_nested": ({"M": {"a": {"M": {"b": {"L": [{"N": "1E+2"}, {"BOOL": False}, {"NULL": True},
                                                    {"NS": ["0.10"]}, {"BS": ["AA=="]}]}}}}}, EXTRA),
        "x_flag": ({"BOOL": False}, EXTRA),
    },
    "s06": {  # names like the metadata fields and like _extra
        "version": ({"N": "5"}, EXTRA),
        "is_deleted": ({"BOOL": True}, EXTRA),
        "_extra": ({"S": "mine"}, EXTRA),
        "active": ({"BOOL": False}, "false"),
    },
    "s07": {
        "seen": ({"S": "2024-01-02 03:04:05"}, "2024-01-02 03:04:05.000"),
        "doc": ({"M": {"big": {"N": "12345678901234567890123456789"}, "f": {"N": "0.5"},
                       "i": {"N": "-9223372036854775808"}, "s": {"SS": ["p", "q"]}}},
                Doc({"big": "12345678901234567890123456789", "f": 0.5, "i": -9223372036854775808,
                     "s": ["p", "q"]})),
    },
    "s08": {
        "seen": ({"S": "2024-01-02T03:04:05.1234Z"}, EXTRA),
        "attrs": ({"M": {}}, "{}"),
    },
    "s09": {
        "seen": ({"S": "2024-01-02T12:04:05.5+09:00"}, "2024-01-02 03:04:05.500"),
        "tags": ({"L": []}, "[]"),
    },
    "s10": {},
}

# Rows the function must answer with an error row (not inserted).
BAD_SNAPSHOT = [
    '{"Item":{"id":{"S":"bad1"},"qty":{"Q":"1"}}}',
]
# Error rows by the contract's "Always" rules (every mode): an N outside DynamoDB's range, a
# lone surrogate. Checked on their own (test_always_rules_give_error_rows).
ALWAYS_BAD = [
    '{"Item":{"id":{"S":"bad2"},"qty":{"N":"1E+126"}}}',
    '{"Item":{"id":{"S":"bad3"},"note":{"S":"\\ud800"}}}',
    '{"Item":{"id":{"S":"bad4"},"x_set":{"NS":["1","123456789012345678901234567890123456789"]}}}',
    '{"Item":{"id":{"S":"bad5"},"note":{"S":"\\ud83d\\u0041"}}}',
]

T0 = 1_732_406_501_000  # ms, Kinesis records without a precision field

# (event, id, ms, image): the stream, in the order it is inserted.
STREAM = [
    ("MODIFY", "s01", T0 + 10, {  # a value grows out of its column
        **{k: v for k, v in SNAPSHOT["s01"].items() if k not in ("qty", "price", "tags")},
        "qty": ({"N": "300"}, EXTRA),
        "price": ({"N": "13"}, "13"),
        "tags": ({"L": [{"S": "z"}]}, "['z']"),
        "blob": ({"B": "AAEC"}, "AAEC"),
        "x_bin": ({"B": "/w=="}, EXTRA),
        "x_set": ({"SS": ["p"]}, EXTRA),
    }),
    ("MODIFY", "s02", T0 + 20, {  # it comes back into range
        "qty": ({"N": "8"}, "8"),
        "price": ({"N": "12.51"}, "12.51"),
        "note": ({"S": "back"}, "back"),
        "blobs": ({"BS": ["AAEC", "/w=="]}, EXTRA),
    }),
    ("REMOVE", "s03", T0 + 30, None),
    ("INSERT", "s11", T0 + 40, {
        "qty": ({"N": "1E+2"}, "100"),
        "price": ({"N": "0.01"}, "0.01"),
        "version": ({"N": "1"}, EXTRA),
        "seen": ({"S": "2099-12-31T23:59:59.999Z"}, "2099-12-31 23:59:59.999"),
    }),
    ("MODIFY", "s04", T0 + 60, {"qty": ({"N": "1"}, "1")}),
    ("MODIFY", "s04", T0 + 50, {"qty": ({"N": "2"}, "2")}),  # older: loses
]
BAD_STREAM = [
    ('{"awsRegion":"us-east-1","eventName":"MODIFY","dynamodb":'
     '{"ApproximateCreationDateTime":1732406509000,"NewImage":{"id":{"S":"s0'),
]


def item_of(key: str, image: dict) -> dict:
    return {"id": {"S": key}, **{k: v for k, (v, _) in image.items()}}


def export_line(key: str, image: dict) -> str:
    # Non-ASCII as \u escapes: strings must be copied with their escapes.
    return dumps({"Item": item_of(key, image)}, ascii_only=True)


def kds_record(event: str, key: str, ms: int, image: dict | None, old: dict | None) -> str:
    return change_record(event, {"id": {"S": key}}, ms, image and item_of(key, image), old and item_of(key, old),
                         precision=None, table="t", size=100)


def final_images() -> dict[str, tuple[dict, int]]:
    """id -> (image, version) after the stream, as ReplacingMergeTree FINAL keeps it."""
    state = {k: (v, 0, 0) for k, v in SNAPSHOT.items()}  # image, version, deleted
    for event, key, ms, image in STREAM:
        version = ms * 1000
        if key in state and state[key][1] >= version:
            continue
        old = state.get(key, ({}, 0, 0))[0]
        state[key] = (old, version, 1) if event == "REMOVE" else (image, version, 0)
    return {k: (img, v) for k, (img, v, deleted) in state.items() if not deleted}


# --- the two paths ---------------------------------------------------------------------------


def select_columns():
    return ", ".join(f"toString({ident(n)})" for n, _, _ in COLUMNS) + ", _extra, version, is_deleted"


@pytest.fixture(scope="module")
def db(ch):
    with ch.in_database(DB):
        yield ch


@pytest.fixture(scope="module")
def export_file(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("columns") / "export.json.gz"
    lines = [export_line(k, v) for k, v in SNAPSHOT.items()] + BAD_SNAPSHOT
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))
    return f"file({quote(str(path))}, 'LineAsString')"


@pytest.fixture(scope="module")
def loaded(db, export_file):
    """Loads the snapshot, then the stream; returns (snapshot state, final state, audit rows)."""
    ddl = ", ".join(f"{ident(n)} {t}" for n, t, _ in COLUMNS) + ", " + ", ".join(f"{n} {t}" for n, t in META)
    db.run("DROP TABLE IF EXISTS cols_dest")
    db.run(f"CREATE TABLE cols_dest ({ddl}) ENGINE = ReplacingMergeTree(version, is_deleted) ORDER BY id")

    # Snapshot path: INSERT … SELECT from the export file, with the list without metadata.
    db.run(f"""INSERT INTO cols_dest
               SELECT untuple(JSONExtract(j, {quote(TUPLE)}))
               FROM (SELECT dynamo_flatten_columns(line, {quote(LIST)}) AS j FROM {export_file})
               WHERE NOT {ERR}""")
    snapshot = db.rows(f"SELECT {select_columns()} FROM cols_dest FINAL ORDER BY id")

    # Stream path: a landing table and its view, with the destination's whole list.
    db.run("DROP TABLE IF EXISTS cols_stream")
    db.run("DROP TABLE IF EXISTS cols_audit")
    db.run("CREATE TABLE cols_stream (record String) ENGINE = Null")
    db.run("CREATE TABLE cols_audit (record String, j String) ENGINE = MergeTree ORDER BY tuple()")
    cols = ", ".join(f"tupleElement(r, {quote(n)}) AS {ident(n)}" for n, _, _ in COLUMNS + [(m, t, "") for m, t in META])
    db.run(f"""CREATE MATERIALIZED VIEW cols_stream_mv TO cols_dest AS
               SELECT {cols}
               FROM (SELECT JSONExtract(j, {quote(TUPLE)}) AS r
                     FROM (SELECT dynamo_flatten_columns(record, {quote(WHOLE_LIST)}) AS j FROM cols_stream)
                     WHERE NOT {ERR})""")
    db.run(f"""CREATE MATERIALIZED VIEW cols_audit_mv TO cols_audit AS
               SELECT record, dynamo_flatten_columns(record, {quote(WHOLE_LIST)}) AS j FROM cols_stream""")
    records = []
    snap = dict(SNAPSHOT)
    for event, key, ms, image in STREAM:
        old = snap.get(key)
        records.append(kds_record(event, key, ms, image, old if event != "INSERT" else None))
        if image is not None:
            snap[key] = image
    db.insert_lines("cols_stream", records + BAD_STREAM)
    final = db.rows(f"SELECT {select_columns()} FROM cols_dest FINAL ORDER BY id")
    audit = db.rows("SELECT record, j, isValidJSON(j) FROM cols_audit")
    return snapshot, final, audit, records


# --- value-by-value checks -------------------------------------------------------------------


def resolve(db, expected: dict) -> dict:
    """Evaluates every Sql(...) expectation in one query."""
    sqls = sorted({e.expr for image, _ in expected.values() for _, e in image.values() if isinstance(e, Sql)})
    if not sqls:
        return {}
    row = db.rows("SELECT " + ", ".join(sqls))[0]
    return dict(zip(sqls, row))


def check_state(db, rows: list[tuple], expected: dict[str, tuple[dict, int]]) -> int:
    """Checks every attribute of every row; returns the number of attributes checked."""
    names = [n for n, _, _ in COLUMNS]
    got = {r[0]: dict(zip(names + ["_extra", "version", "is_deleted"], r)) for r in rows}
    assert sorted(got) == sorted(expected), "ids"
    sql_values = resolve(db, expected)
    checked = 0
    for key, (image, version) in expected.items():
        row = got[key]
        where = f"{key}: {row}"
        assert row["version"] == str(version) and row["is_deleted"] == "0", where
        extra = json.loads(row["_extra"])
        want_extra = {a: v for a, (v, e) in image.items() if e is EXTRA}
        assert extra == want_extra, where
        for col in names:
            attr = image.get(col)
            if col == "id":
                assert row["id"] == key
                continue
            if attr is None or attr[1] is EXTRA:
                # Absent, or kept in _extra: NULL or the type's default.
                assert row[col] == DEFAULTS[col], f"{where}: {col}"
                continue
            _, e = attr
            if isinstance(e, Sql):
                assert row[col] == sql_values[e.expr], f"{where}: {col} vs {e}"
            elif isinstance(e, Doc):
                assert json.loads(row[col]) == e.value, f"{where}: {col}"
            else:
                assert row[col] == e, f"{where}: {col}"
            checked += 1
        checked += len(want_extra)
        # Attributes with no column at all must be in _extra.
        for a, (_, e) in image.items():
            assert a in names or e is EXTRA, f"test data: {a} has no column"
    return checked


def check_extra_in_engine(db, expected: dict[str, tuple[dict, int]]) -> None:
    """Reads _extra the ways the contract names: JSONExtractString(_extra, name, 'N'),
    JSONExtractRaw and _extra::JSON."""
    probes = [(k, a, v) for k, (image, _) in expected.items() for a, (v, e) in image.items() if e is EXTRA]
    assert probes
    arr = "[" + ", ".join(f"({quote(k)}, {quote(a)})" for k, a, _ in probes) + "]"
    rows = db.rows(f"""SELECT p.1, p.2, JSONHas(_extra, p.2), JSONExtractString(_extra, p.2, 'N'),
                              JSONExtractRaw(_extra, p.2), JSONType(_extra, p.2)
                       FROM cols_dest FINAL ARRAY JOIN {arr} AS p WHERE id = p.1 ORDER BY p.1, p.2""")
    assert len(rows) == len(probes)
    by = {(k, a): v for k, a, v in probes}
    for key, attr, has, n_text, raw, typ in rows:
        v = by[(key, attr)]
        assert (has, typ) == ("1", "Object"), (key, attr)
        assert json.loads(raw) == v, (key, attr, raw)
        assert n_text == v.get("N", ""), (key, attr)
    # _extra::JSON reads every row; N stay strings there.
    assert db.one("SELECT count() FROM cols_dest FINAL WHERE isValidJSON(_extra)") == db.one(
        "SELECT count() FROM cols_dest FINAL")
    assert db.rows("""SELECT toString(CAST(_extra, 'JSON').qty.N), toString(CAST(_extra, 'JSON').x_set.SS)
                      FROM cols_dest FINAL WHERE id = 's01'""") == [("300", "['p']")]


def test_snapshot_path_value_by_value(db, loaded):
    snapshot, _, _, _ = loaded
    expected = {k: (v, 0) for k, v in SNAPSHOT.items()}
    assert check_state(db, snapshot, expected) == sum(len(image) for image, _ in expected.values())


def test_stream_path_value_by_value(db, loaded):
    _, final, _, _ = loaded
    expected = final_images()
    assert "s03" not in expected and expected["s04"][1] == (T0 + 60) * 1000
    assert check_state(db, final, expected) == sum(len(image) for image, _ in expected.values())
    check_extra_in_engine(db, expected)


def test_extra_of_the_snapshot_in_the_engine(db, export_file):
    # _extra read as the contract reads it: a String element of the tuple.
    rows = db.rows(f"""SELECT JSONExtractString(line, 'Item', 'id', 'S') AS id,
                              JSONExtractString(e, 'qty', 'N'),
                              JSONExtractString(e, 'price', 'N'),
                              JSONExtractString(e, 'small', 'N'),
                              toString(CAST(e, 'JSON').stock.N),
                              JSONExtractRaw(e, 'version')
                       FROM (SELECT line, tupleElement(JSONExtract(j, 'Tuple(_extra String)'), '_extra') AS e
                             FROM (SELECT line, dynamo_flatten_columns(line, {quote(LIST)}) AS j FROM {export_file})
                             WHERE NOT {ERR})
                       WHERE id IN ('s02', 's03', 's06') ORDER BY id""")
    assert rows == [
        ("s02", "300", "12.505", "1e100", "-9223372036854775809", ""),
        ("s03", "-5", "1e100", "", "", ""),
        ("s06", "", "", "", "", '{"N":"5"}'),
    ]


def test_every_output_row_is_valid_json(db, loaded, export_file):
    _, _, audit, records = loaded
    source = f"(SELECT dynamo_flatten_columns(line, {quote(LIST)}) AS j FROM {export_file})"
    n = len(SNAPSHOT) + len(BAD_SNAPSHOT)
    assert db.rows(f"SELECT count(), countIf(isValidJSON(j)) FROM {source}") == [(str(n), str(n))]
    inputs = db.col(f"SELECT JSONExtractString(j, '_input') FROM {source} WHERE {ERR}")
    assert sorted(inputs) == sorted(BAD_SNAPSHOT)
    # The stream: every record answered once, every answer valid JSON, one error row.
    assert len(audit) == len(records) + len(BAD_STREAM)
    assert all(valid == "1" for _, _, valid in audit), [a for a in audit if a[2] != "1"]
    errors = [r for r, j, _ in audit if j.startswith('{"_error"')]
    assert errors == BAD_STREAM


def test_always_rules_give_error_rows(db):
    """An N outside DynamoDB's range and a lone surrogate give error rows (valid JSON); they
    are never loaded (a row JSONExtract cannot read would land as a row of defaults)."""
    arr = "[" + ", ".join(quote(line) for line in ALWAYS_BAD) + "]"
    rows = db.rows(f"""SELECT line, startsWith(j, '{{"_error"'), isValidJSON(j), j
                       FROM (SELECT line, dynamo_flatten_columns(line, {quote(LIST)}) AS j
                             FROM (SELECT arrayJoin({arr}) AS line))""")
    assert len(rows) == len(ALWAYS_BAD)
    wrong = [(line, j) for line, is_error, valid, j in rows if (is_error, valid) != ("1", "1")]
    assert wrong == []


def test_maps_in_string_columns_keep_the_number_text(db):
    """The contract: an M or L in a String column is "plain JSON text, numbers as written".
    What lands in the column is what JSONExtract makes of the row, so the numbers must come
    out as written there too (the engine re-serialises a nested object it reads into a
    String: 1E+2 would become 100, a 29-digit decimal a Float64)."""
    m = {"M": {"n": {"L": [{"N": "1E+2"}, {"N": "12345678901234567890123456789.123456789"},
                           {"N": "-0.0000001"}]}}}
    line = dumps({"Item": {"id": {"S": "m1"}, "note": m}})
    got = db.one(f"""SELECT tupleElement(JSONExtract(dynamo_flatten_columns({quote(line)}, 'id String, note String'),
                                                    'Tuple(id String, note String)'), 'note')""")
    assert got == '{"n":[1E+2,12345678901234567890123456789.123456789,-0.0000001]}'


DATETIMES = [
    # (column type, ISO 8601 text): each must land as the instant the engine reads from the
    # text itself (no offset: in the column's time zone).
    ("DateTime64(3, 'UTC')", "2024-01-02T03:04:05.123Z"),
    ("DateTime64(3, 'UTC')", "2024-01-02T12:04:05.5+09:00"),
    ("DateTime64(3, 'UTC')", "2024-01-02 03:04:05"),
    ("DateTime64(3, 'UTC')", "1960-01-01T09:00:00+09:00"),
    ("DateTime64(3, 'UTC')", "1900-01-01T00:00:00Z"),
    ("DateTime64(3, 'UTC')", "2286-11-20T17:46:39Z"),
    ("DateTime64(3, 'UTC')", "2286-11-20T17:46:40Z"),
    ("DateTime64(3, 'UTC')", "2299-12-31T23:59:59.999Z"),
    ("DateTime64(6, 'Asia/Tokyo')", "2024-01-02 03:04:05.123456"),
    ("DateTime64(6, 'Asia/Tokyo')", "2024-01-02T03:04:05.123456-05:30"),
    ("DateTime('UTC')", "2024-01-02T03:04:05Z"),
    ("DateTime('Asia/Tokyo')", "2024-01-02 03:04:05"),
    ("DateTime('UTC')", "2106-02-07T06:28:15Z"),
]


@pytest.mark.parametrize("typ,text", DATETIMES)
def test_datetimes_land_as_their_instant(db, typ, text):
    line = dumps({"Item": {"id": {"S": "d"}, "t": {"S": text}}})
    tz = typ.split("'")[1]
    if typ.startswith("DateTime64"):
        p = typ.split("(")[1].split(",")[0]
        want = f"parseDateTime64BestEffort({quote(text)}, {p}, {quote(tz)})"
    else:
        want = f"parseDateTimeBestEffort({quote(text)}, {quote(tz)})"
    got, extra, expected = db.rows(
        f"""SELECT toString(r.t), r._extra, toString({want})
            FROM (SELECT JSONExtract(dynamo_flatten_columns({quote(line)}, {quote('id String, t ' + typ)}),
                                     {quote('Tuple(id String, t ' + typ + ', _extra String)')}) AS r)""")[0]
    assert (got, extra) == (expected, "{}")


def test_error_rows_are_not_loaded(db, loaded):
    assert db.col("SELECT id FROM cols_dest WHERE startsWith(id, 'bad')") == []


def test_parameterised_function_gives_the_same_rows(db, export_file):
    """`df_cols('<list>')(line)`: an executable function whose command has
    `--columns {columns:String}`; the list (with 'UTC' quoted inside) arrives as one
    single-quoted SQL literal that --columns unquotes."""
    rows = db.rows(f"""SELECT count(), countIf(a = b), countIf(isValidJSON(b)), any(b)
                       FROM (SELECT dynamo_flatten_columns(line, {quote(LIST)}) AS a,
                                    df_cols({quote(LIST)})(line) AS b
                             FROM {export_file})
                       SETTINGS max_block_size = 4""")
    n = str(len(SNAPSHOT) + len(BAD_SNAPSHOT))
    assert rows[0][:3] == (n, n, n), rows


def test_unparsable_column_list_fails_the_query_naming_the_column(db):
    with pytest.raises(Exception) as e:
        db.run("""SELECT dynamo_flatten_columns('{"Item":{"id":{"S":"a"}}}', 'id String, qty Int65')""")
    assert "qty" in str(e.value)
