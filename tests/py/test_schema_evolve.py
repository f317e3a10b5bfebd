"""Schema drift and evolution, in chDB: `dynamo-flatten schema` tables, items with new
attributes (they land in _extra), sql/11_drift_report.sql, and the SQL of
`dynamo-flatten schema evolve` run as printed.

The destination is `people` in this module's own database (`schema_evolve`), so the drift
report runs as written. Changes are incremental-export lines inserted into people_stream
(one shape the function reads like any other, with a version of their own):

  p1  qty 3, price 12.5, color (never a column)     p2  qty 300, price with 34 digits
  p3  qty "n/a" (an S), price 1.234 (3 decimals)     p4  qty 1E+2, `n'q` 7
  p5  qty -5, then deleted                           p6  qty 1E+100 (beyond any Decimal)
  p7  color only                                     p1  an older version with qty 999, after
  pa  an attribute named Item, alone in _extra ({"Item":…} alone reads as an export line)
"""

from __future__ import annotations

import json

import pytest

from harness.engine import schema_sql
from harness.sql import tsv

DB = "schema_evolve"
V1, V2 = 1_732_406_500_000_000, 1_732_406_600_000_000
BIG = "99999999999999999999999999999999.99"

SNAPSHOT = [
    {"id": {"S": f"p{i}"}, "first_name": {"S": name}, "age": {"N": age}}
    for i, name, age in [(1, "ann", "30"), (2, "bo", "41"), (3, "cy", "25")]
]


def change(key: str, version: int, new: dict | None) -> str:
    """An incremental-export line: the new image, or a delete (keys only) without it."""
    doc: dict = {"Metadata": {"WriteTimestampMicros": {"N": str(version)}}, "Keys": {"id": {"S": key}}}
    if new is not None:
        doc["NewImage"] = {"id": {"S": key}, **new}
    return json.dumps(doc, separators=(",", ":"))


def person(name: str, age: str, **extra: dict) -> dict:
    return {"first_name": {"S": name}, "age": {"N": age}, **extra}


DRIFT = [
    change("p1", V1, person("ann", "31", qty={"N": "3"}, price={"N": "12.5"}, color={"S": "red"})),
    change("p2", V1, person("bo", "42", qty={"N": "300"}, price={"N": BIG})),
    change("p3", V1, person("cy", "26", qty={"S": "n/a"}, price={"N": "1.234"})),
    change("p4", V1, person("di", "7", qty={"N": "1E+2"}, **{"n'q": {"N": "7"}})),
    change("p5", V1, person("ed", "50", qty={"N": "-5"})),
    change("p5", V2, None),
    change("p6", V1, person("fa", "60", qty={"N": "1E+100"})),
    change("p7", V1, person("gu", "70", color={"S": "blue"})),
    change("p1", V1 - 1, person("ann", "99", qty={"N": "999"})),   # older: loses to V1
    change("pa", V1, person("jo", "10", Item={"S": "boxed"})),
]

STATE = "SELECT id, first_name, age, version, is_deleted FROM people FINAL ORDER BY id"


@pytest.fixture(scope="module")
def db(ch):
    with ch.in_database(DB):
        yield ch


@pytest.fixture(scope="module")
def loaded(db, binary, tmp_path_factory):
    """The generated tables, the snapshot (p1-p3) through file(), then the drifted changes."""
    sample = tmp_path_factory.mktemp("evolve") / "snapshot.jsonl"
    sample.write_text("".join(json.dumps({"Item": i}) + "\n" for i in SNAPSHOT))
    sql = schema_sql(binary, "--table", "people", "--partition-key", "id", "--s3-auth", "server",
                     "--s3-url", str(sample), str(sample))
    assert "'`id` String, `age` Int64, `first_name` String, PRIMARY KEY (`id`)'" in sql
    db.run_generated(sql)
    # No background merges: the stored row counts below are what the inserts wrote.
    db.run(f"SYSTEM STOP MERGES {DB}.people")
    db.insert_lines("people_stream", DRIFT)
    return sql


def extra(db) -> dict[str, dict]:
    return {k: json.loads(v) for k, v in tsv(db.run("SELECT id, _extra FROM people FINAL ORDER BY id"))}


CURRENT = [
    ("p1", "ann", "31", str(V1), "0"), ("p2", "bo", "42", str(V1), "0"),
    ("p3", "cy", "26", str(V1), "0"), ("p4", "di", "7", str(V1), "0"),
    ("p6", "fa", "60", str(V1), "0"), ("p7", "gu", "70", str(V1), "0"),
    ("pa", "jo", "10", str(V1), "0"),
]


def test_drift_lands_in_extra(db, loaded):
    assert tsv(db.run(STATE)) == CURRENT
    assert extra(db) == {
        "p1": {"qty": {"N": "3"}, "price": {"N": "12.5"}, "color": {"S": "red"}},
        "p2": {"qty": {"N": "300"}, "price": {"N": BIG}},
        "p3": {"qty": {"S": "n/a"}, "price": {"N": "1.234"}},
        "p4": {"qty": {"N": "1E+2"}, "n'q": {"N": "7"}},
        "p6": {"qty": {"N": "1E+100"}},
        "p7": {"color": {"S": "blue"}},
        "pa": {"Item": {"S": "boxed"}},
    }
    assert db.count("dynamo_errors") == 0


def test_drift_report(db, loaded):
    report = {r[0]: r[1:] for r in tsv(db.run_file("11_drift_report.sql")[0])}
    # Most frequent first, then by name.
    assert list(report) == ["qty", "price", "color", "Item", "n'q"]
    assert {a: r[:3] for a, r in report.items()} == {
        "qty": ("5", "71.43", "['N','S']"),          # p5 is deleted: FINAL does not show it
        "price": ("3", "42.86", "['N']"),
        "color": ("2", "28.57", "['S']"),
        "Item": ("1", "14.29", "['S']"),
        "n'q": ("1", "14.29", "['N']"),
    }
    assert report["price"][3] == f"""['{{"N":"1.234"}}','{{"N":"12.5"}}','{{"N":"{BIG}"}}']"""
    assert report["n'q"][3] == """['{"N":"7"}']"""
    # Up to 3 of the 5 distinct qty values, sorted.
    qty = report["qty"][3]
    shown = [x for x in ['{"N":"3"}', '{"N":"300"}', '{"S":"n/a"}', '{"N":"1E+2"}', '{"N":"1E+100"}']
             if f"'{x}'" in qty]
    assert len(shown) == 3 and qty == "[" + ",".join(f"'{x}'" for x in sorted(shown)) + "]"


@pytest.fixture(scope="module")
def evolve_sql(db, binary, loaded) -> str:
    """The documented pipeline: the _extra values holding qty, into `schema evolve`."""
    values = db.run("SELECT _extra FROM people FINAL WHERE JSONHas(_extra, 'qty') FORMAT TSVRaw")
    return schema_sql(binary, "evolve", "--table", "people",
                      "--columns", "'`id` String, `age` Int64, `first_name` String, PRIMARY KEY (`id`)'",
                      "--add", "qty", "--add", "price Decimal(38, 2)", "--add", "`n'q`",
                      "--add", "Item String", stdin=values)


def test_evolve_output(evolve_sql):
    sql = evolve_sql
    assert ("--   `qty` Nullable(Int64) (type inferred from 5 values; mixed types: 2 of 5 values "
            "(S/B, N beyond Decimal(76)) land in _extra)") in sql
    assert "--   `n'q` Nullable(Int64) (type inferred from 1 value)\n" in sql
    assert "--   `price` Decimal(38, 2)\n" in sql
    assert ("ALTER TABLE `people`\n"
            "    ADD COLUMN IF NOT EXISTS `qty` Nullable(Int64) AFTER `first_name`,\n"
            "    ADD COLUMN IF NOT EXISTS `price` Decimal(38, 2) AFTER `qty`,\n"
            "    ADD COLUMN IF NOT EXISTS `n'q` Nullable(Int64) AFTER `price`,\n"
            "    ADD COLUMN IF NOT EXISTS `Item` String AFTER `n'q`;") in sql
    new_list = ("'`id` String, `age` Int64, `first_name` String, `qty` Nullable(Int64), "
                "`price` Decimal(38, 2), `n\\'q` Nullable(Int64), `Item` String, PRIMARY KEY (`id`)'")
    assert f"dynamo_flatten_columns(record, {new_list}) AS j" in sql
    assert sql.index("ALTER TABLE `people_flat_mv` MODIFY QUERY") < sql.index("ALTER TABLE `people_stream_mv` MODIFY QUERY")


def test_evolve_moves_the_values_exactly(db, loaded, evolve_sql):
    stored = db.count("people")
    outputs = db.run_script(evolve_sql)
    assert all(o == "" for o in outputs)
    rows = tsv(db.run("SELECT id, qty, toString(price), `n'q`, Item, version FROM people FINAL ORDER BY id"))
    assert rows == [
        ("p1", "3", "12.5", None, "", str(V1)),
        ("p2", "300", BIG, None, "", str(V1)),
        ("p3", None, "0", None, "", str(V1)),        # nothing fits: the row is as it was
        ("p4", "100", "0", "7", "", str(V1)),
        ("p6", None, "0", None, "", str(V1)),
        ("p7", None, "0", None, "", str(V1)),
        ("pa", None, "0", None, "boxed", str(V1)),
    ]
    # Moved values are gone from _extra; what does not fit (and what has no column) stays.
    assert extra(db) == {
        "p1": {"color": {"S": "red"}},
        "p2": {},
        "p3": {"qty": {"S": "n/a"}, "price": {"N": "1.234"}},
        "p4": {},
        "p6": {"qty": {"N": "1E+100"}},
        "p7": {"color": {"S": "blue"}},
        "pa": {},
    }
    # The same rows and versions; the deleted p5 stays deleted, p1's older row stays beaten.
    assert tsv(db.run(STATE)) == CURRENT
    # Only the rows with something to move were inserted again (p1, p2, p4, pa).
    assert db.count("people") == stored + 4
    # The backfill again: nothing left to move, nothing inserted.
    backfill = db.run_script(evolve_sql[evolve_sql.index("-- Backfill."):])
    assert backfill == [""] and db.count("people") == stored + 4
    # The drift report now shows only what still does not fit.
    report = {r[0]: r[1] for r in tsv(db.run_file("11_drift_report.sql")[0])}
    assert report == {"qty": "2", "price": "1", "color": "2"}


def test_new_rows_use_the_new_columns(db, evolve_sql):
    """After the evolution (the test above), new rows fill the new columns directly."""
    db.insert_lines("people_stream", [
        change("p8", V2, person("ho", "8", qty={"N": "42"}, price={"N": "0.01"}, **{"n'q": {"N": "-1"}})),
        change("p9", V2, person("io", "9", qty={"N": "4.5"})),
    ])
    assert tsv(db.run("SELECT id, qty, toString(price), `n'q`, _extra FROM people FINAL "
                         "WHERE id IN ('p8', 'p9') ORDER BY id")) == [
        ("p8", "42", "0.01", "-1", "{}"),
        ("p9", None, "0", None, '{"qty":{"N":"4.5"}}'),
    ]


def test_recreated_views_work_the_same(ch, binary, tmp_path):
    """--views recreate: DROP VIEW + CREATE MATERIALIZED VIEW, in a database of its own
    (then back to this module's)."""
    with ch.in_database("schema_evolve_recreate"):
        sample = tmp_path / "s.jsonl"
        sample.write_text(json.dumps({"Item": SNAPSHOT[0]}) + "\n")
        ch.run_generated(schema_sql(binary, "--table", "people", "--partition-key", "id",
                                     "--s3-auth", "server", "--s3-url", str(sample), str(sample)))
        ch.insert_lines("people_stream", [DRIFT[0]])
        sql = schema_sql(binary, "evolve", "--table", "people", "--views", "recreate",
                         "--columns", "id String, age Int64, first_name String, _extra String, "
                         "version UInt64, is_deleted UInt8", "--add", "qty UInt8")
        assert "DROP VIEW IF EXISTS `people_stream_mv`;" in sql and "is LOST" in sql
        ch.run_script(sql)
        ch.insert_lines("people_stream", [change("p2", V1, person("bo", "1", qty={"N": "9"}))])
        assert tsv(ch.run("SELECT id, qty, _extra FROM people FINAL ORDER BY id")) == [
            ("p1", "3", '{"price":{"N":"12.5"},"color":{"S":"red"}}'),
            ("p2", "9", "{}"),
        ]
    ch.run(f"USE {DB}")


def test_evolve_refuses_what_would_break(binary):
    cols = "id String, age Int64"
    for args, message in [
        (["--add", "age"], "already in the current column list"),
        (["--add", "qty Int65"], "qty"),
        (["--add", "_extra String"], "taken by the destination"),
        (["--add", "qty"], "not in the 0 _extra values read"),
    ]:
        with pytest.raises(RuntimeError, match=message):
            schema_sql(binary, "evolve", "--table", "people", "--columns", cols, *args, stdin="")
