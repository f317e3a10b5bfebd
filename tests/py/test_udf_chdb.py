"""dynamo-flatten as a ClickHouse executable UDF, run inside chDB.

Every query goes through the functions of clickhouse-config/dynamo_flatten_function.xml (as
shipped) or through variants generated from it (see conftest.py and harness.engine).
"""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET

import pytest
from conftest import EXTRA_VARIANTS, MODE_VARIANTS

from harness import engine
from harness.sql import quote

ERR = """startsWith(j, '{"_error"')"""

SALLY = "0A556908-F72B-4BE6-9048-9E60715358D4"
ZOE = "1B2C3D4E-0000-4000-8000-000000000001"
LI = "2C3D4E5F-0000-4000-8000-000000000002"
BOB = "3D4E5F60-0000-4000-8000-000000000003"

PEOPLE_COLUMNS = "id String, first_name String, age UInt8, version UInt64, is_deleted UInt8"


def export_glob(fixtures) -> str:
    return str(fixtures / "export-full" / "AWSDynamoDB" / "*" / "data" / "*.json.gz")


def create_people(ch, name: str) -> None:
    ch.run(f"DROP TABLE IF EXISTS {name}")
    ch.run(
        f"CREATE TABLE {name} ({PEOPLE_COLUMNS}) "
        "ENGINE = ReplacingMergeTree(version, is_deleted) ORDER BY id"
    )


def load_people(ch, table: str, source: str, fn: str = "dynamo_flatten") -> None:
    """INSERT … SELECT from `source` (a subquery or table function giving `line`)."""
    ch.run(
        f"""INSERT INTO {table}
        SELECT untuple(JSONExtract(j, 'Tuple({PEOPLE_COLUMNS})'))
        FROM (SELECT {fn}(line) AS j FROM {source})
        WHERE NOT {ERR}"""
    )


# --- the shipped config ----------------------------------------------------------------------


def test_shipped_functions_loaded(ch):
    rows = ch.rows(
        """SELECT name, load_status, type, command, format, return_type, argument_types,
                  argument_names, send_chunk_header, deterministic, command_read_timeout,
                  command_write_timeout, command_termination_timeout, pool_size,
                  max_command_execution_time
           FROM system.user_defined_functions WHERE name LIKE 'dynamo_flatten%' ORDER BY name"""
    )
    common = ("executable_pool",)
    assert rows == [
        ("dynamo_flatten", "Success", *common, "dynamo-flatten --format RowBinary --chunk-header",
         "RowBinary", "String", "['String']", "['line']", "1", "1", "30000", "30000", "10", "16", "10"),
        ("dynamo_flatten_columns", "Success", *common,
         "dynamo-flatten --format RowBinary --chunk-header --columns-arg",
         "RowBinary", "String", "['String','String']", "['line','columns']", "1", "1", "30000", "30000",
         "10", "16", "10"),
        ("dynamo_flatten_exact", "Success", *common,
         "dynamo-flatten --format RowBinary --chunk-header --numbers string",
         "RowBinary", "String", "['String']", "['line']", "1", "1", "30000", "30000", "10", "16", "10"),
    ]


def test_variants_keep_shipped_settings(ch):
    shipped = engine.load_functions()
    generated = engine.load_functions(ch.udf_dir / engine.VARIANTS_FILE)
    base = shipped["dynamo_flatten"]
    assert base.findtext("stderr_reaction") == "throw"
    assert base.findtext("check_exit_code") == "1"
    changed = {"name", "type", "format", "send_chunk_header", "command"}
    for v in MODE_VARIANTS:
        fn = generated[v.name]
        for child in base:
            if child.tag not in changed:
                assert ET.tostring(fn.find(child.tag)).strip() == ET.tostring(child).strip(), (v.name, child.tag)
        words = fn.findtext("command").split(" ")
        assert words[:3] == ["dynamo-flatten", "--format", v.format]
        assert ("--chunk-header" in words) == v.chunk_header
        assert fn.findtext("send_chunk_header") == ("1" if v.chunk_header else "0")
        assert fn.findtext("type") == v.type
    loaded = ch.rows(
        "SELECT name, load_status FROM system.user_defined_functions "
        "WHERE name LIKE 'df\\_%' AND load_status = 'Success' ORDER BY name"
    )
    assert len(loaded) == len(MODE_VARIANTS) + len(EXTRA_VARIANTS)


# --- full export -----------------------------------------------------------------------------


def test_full_export_into_replacing_merge_tree(ch, fixtures):
    src = f"file({quote(export_glob(fixtures))}, 'LineAsString')"
    # The empty partition file gives no rows; the data file gives its 3 items, none an error.
    assert ch.rows(f"SELECT _file, count() FROM {src} GROUP BY _file") == [
        ("r5hq2yzb3u7nlebjhxm4e2bt7a.json.gz", "3")
    ]
    assert ch.one(f"SELECT countIf({ERR}) FROM (SELECT dynamo_flatten(line) j FROM {src})") == "0"

    create_people(ch, "export_people")
    load_people(ch, "export_people", src)
    assert ch.rows("SELECT * FROM export_people FINAL ORDER BY id") == [
        (SALLY, "sally", "26", "0", "0"),
        (ZOE, "Zoë \"zee\" O'Neil", "41", "0", "0"),
        (LI, "李雷 🚀", "100", "0", "0"),
    ]


def test_full_export_rich_attributes(ch, fixtures):
    src = f"file({quote(export_glob(fixtures))}, 'LineAsString')"
    ch.run("DROP TABLE IF EXISTS export_rich")
    ch.run(
        """CREATE TABLE export_rich (
            id String, first_name String, age UInt8,
            tags Array(String), scores Array(Decimal(38, 9)), active Nullable(Bool),
            nickname Nullable(String), has_nickname UInt8, avatar String,
            address Map(String, String), address_raw String, address_json JSON,
            nested String, empty Nullable(String), blobs Array(String),
            version UInt64, is_deleted UInt8)
        ENGINE = ReplacingMergeTree(version, is_deleted) ORDER BY id"""
    )
    ch.run(
        f"""INSERT INTO export_rich
        SELECT untuple(JSONExtract(j, 'Tuple(id String, first_name String, age UInt8,
                   tags Array(String), scores Array(Decimal(38, 9)), active Nullable(Bool),
                   nickname Nullable(String))')),
               JSONHas(j, 'nickname'),
               JSONExtractString(j, 'avatar'),
               JSONExtract(j, 'address', 'Map(String, String)'),
               JSONExtractRaw(j, 'address'),
               JSONExtract(j, 'address', 'JSON'),
               JSONExtractRaw(j, 'nested'),
               JSONExtract(j, 'empty', 'Nullable(String)'),
               JSONExtract(j, 'blobs', 'Array(String)'),
               JSONExtractUInt(j, 'version'), JSONExtractUInt(j, 'is_deleted')
        FROM (SELECT dynamo_flatten_exact(line) AS j FROM {src}) WHERE NOT {ERR}"""
    )
    rows = ch.rows(
        """SELECT id, first_name, age, tags, toString(scores), active, nickname, has_nickname,
                  avatar, hex(base64Decode(avatar)), address['city'], address['geo'], address_raw,
                  toString(address_json.city), toString(address_json.geo), nested,
                  JSONLength(nested, 'l'), JSONExtractString(nested, 'l', 1, 'x'), empty,
                  blobs, arrayMap(b -> hex(base64Decode(b)), blobs), version, is_deleted
           FROM export_rich FINAL ORDER BY id"""
    )
    assert rows == [
        (SALLY, "sally", "26", "[]", "[]", None, None, "0", "", "", "", "", "",
         "", "", "", "0", "", None, "[]", "[]", "0", "0"),
        (ZOE, "Zoë \"zee\" O'Neil", "41", "['admin','beta']",
         "[1.5,-7,12345678901234567890123456789.123456789]", "true", None, "1",
         "iVBORw0KGgo=", "89504E470D0A1A0A", "Zürich", '["47.3769","8.5417"]',
         '{"city":"Zürich","geo":["47.3769","8.5417"]}', "Zürich", "['47.3769','8.5417']",
         "", "0", "", "", "[]", "[]", "0", "0"),
        (LI, "李雷 🚀", "100", "[]", "[]", None, None, "0", "", "", "", "", "", "", "",
         '{"l":[{"x":"-0.000001"},[],{}]}', "3", "-0.000001", None, "['AAEC','/w==']",
         "['000102','FF']", "0", "0"),
    ]
    # Exact decimals, not the Float64 neighbour.
    assert ch.one(
        f"SELECT toString(scores[3]) FROM export_rich WHERE id = '{ZOE}'"
    ) == "12345678901234567890123456789.123456789"
    assert ch.one(
        "SELECT sum(arraySum(scores)) FROM export_rich"
    ) == "12345678901234567890123456783.623456789"
    # The surrogate pair became one code point (4 UTF-8 bytes).
    assert ch.one(f"SELECT hex(first_name) FROM export_rich WHERE id = '{LI}'") == "E69D8EE99BB720F09F9A80"


# --- every mode, many blocks -----------------------------------------------------------------

N_ROWS = 200_000


# A JSON string with backslash escapes (\t, \\, \", \u, \n) and the text it stands for.
S_JSON = r"tab\there \\ back \"q\" \u00e9 \n end"
S_TEXT = 'tab\there \\ back "q" é \n end'
P_JSON = r"a\\b\tc"
P_TEXT = "a\\b\tc"


def generated_lines(n_rows: int) -> str:
    """A subquery of `n_rows` export lines: id = n = number; some rows have escaped strings
    and whitespace."""
    line = (
        # Some rows have raw tab/CR/LF whitespace between tokens (escaped on the TSV wire).
        """concat(if(number % 3000 = 5, '{"Item":\\t\\r\\n {', '{"Item":{'), """
        """'"id":{"S":"', toString(number), '"},"n":{"N":"', toString(number), '"}', """
        f"""if(number % 1000 = 7, {quote(',"s":{"S":"' + S_JSON + '"}')}, ''), """
        f"""if(number % 5000 = 11, {quote(',"p":{"S":"' + P_JSON + '"}')}, ''), '}}}}')"""
    )
    return f"(SELECT number, {line} AS line FROM numbers_mt({n_rows}))"


@pytest.mark.parametrize("fn", [v.name for v in MODE_VARIANTS])
def test_many_blocks_every_mode(ch, fn):
    res = ch.rows(
        f"""SELECT count(), sum(JSONExtractUInt(j, 'n')), countIf({ERR}),
                   countIf(JSONExtractString(j, 'id') = toString(number)),
                   countIf(JSONExtractString(j, 's') = {quote(S_TEXT)}),
                   countIf(JSONExtractString(j, 'p') = {quote(P_TEXT)}),
                   countIf(JSONExtractUInt(j, 'version') = 0 AND JSONExtractUInt(j, 'is_deleted') = 0),
                   anyIf(j, number = 7), anyIf(j, number = 5011), anyIf(j, number = {N_ROWS - 1})
            FROM (SELECT number, {fn}(line) AS j FROM {generated_lines(N_ROWS)})
            SETTINGS max_block_size = 7919, max_threads = 2"""
    )
    assert res == [(
        str(N_ROWS), str(N_ROWS * (N_ROWS - 1) // 2), "0", str(N_ROWS), str(N_ROWS // 1000),
        str(N_ROWS // 5000), str(N_ROWS),
        '{"id":"7","n":7,"s":"' + S_JSON + '","version":0,"is_deleted":0}',
        '{"id":"5011","n":5011,"p":"' + P_JSON + '","version":0,"is_deleted":0}',
        f'{{"id":"{N_ROWS - 1}","n":{N_ROWS - 1},"version":0,"is_deleted":0}}',
    )]


# --- bad rows --------------------------------------------------------------------------------

BAD_ROWS = [
    # (input as a SQL expression, expected _error or None for a valid row)
    ("""'{"Item":{"id":{"S":"ok1"},"age":{"N":"1"}}}'""", None),
    ("'hello'", "expected a JSON object at byte 0"),
    ("""'{"id":{"Q":"x"}}'""",
     'unknown type tag "Q" (expected S, N, B, BOOL, NULL, M, L, SS, NS or BS) at byte 7'),
    ("""'{"id":{"S":"a","N":"1"}}'""", "attribute value has more than one type tag at byte 14"),
    ("""'{"N":5}'""", """expected an attribute value object like {"S":…}, found '5' at byte 5"""),
    ("""'{"id":{"S":"b"},"n":{"N":"12abc"}}'""", 'N value "12abc" is not a number at byte 26'),
    ("""'{"Item":{"id":{"S":"tr'""", "unexpected end of input (truncated JSON?) at byte 22"),
    ("''", "empty input at byte 0"),
    # {"id":{"S":"<0xFF>"}}
    ("unhex('7B226964223A7B2253223A22FF227D7D')", "invalid UTF-8 at byte 12"),
    ("""'{"id":{"S":"a"}} x'""", "trailing characters after the JSON document at byte 17"),
    ("""'{"id":{"S":"ok2"},"age":{"N":"2"}}'""", None),
]


def bad_rows_source() -> str:
    items = ", ".join(f"({i}, {expr})" for i, (expr, _) in enumerate(BAD_ROWS))
    return f"(SELECT t.1 AS i, t.2 AS line FROM (SELECT arrayJoin([{items}]) AS t))"


@pytest.mark.parametrize("fn", ["dynamo_flatten", "dynamo_flatten_exact"] + [v.name for v in MODE_VARIANTS])
def test_bad_rows_give_error_rows(ch, fn):
    rows = ch.rows(
        f"""SELECT i, {ERR}, JSONExtractString(j, '_error'), JSONExtractString(j, '_input'),
                   JSONExtractString(j, 'id')
            FROM (SELECT i, line, {fn}(line) AS j FROM {bad_rows_source()}) ORDER BY i"""
    )
    assert len(rows) == len(BAD_ROWS)  # exactly one output row per input row
    for (i, is_err, err, inp, id_), (expr, expected) in zip(rows, BAD_ROWS):
        if expected is None:
            assert (is_err, err) == ("0", ""), (i, err)
            assert id_ in ("ok1", "ok2")
        else:
            assert (is_err, err) == ("1", expected), i
    inputs = {r[0]: r[3] for r in rows}
    assert inputs["2"] == '{"id":{"Q":"x"}}'
    assert inputs["6"] == '{"Item":{"id":{"S":"tr'
    assert inputs["7"] == ""
    assert inputs["8"] == '{"id":{"S":"\ufffd"}}'  # invalid bytes shown as U+FFFD


def test_bad_rows_routing(ch):
    create_people(ch, "routed_people")
    ch.run("DROP TABLE IF EXISTS routed_errors")
    ch.run("CREATE TABLE routed_errors (i UInt32, error String, input String) ENGINE = MergeTree ORDER BY i")
    load_people(ch, "routed_people", bad_rows_source())
    ch.run(
        f"""INSERT INTO routed_errors
        SELECT i, JSONExtractString(j, '_error'), JSONExtractString(j, '_input')
        FROM (SELECT i, dynamo_flatten(line) AS j FROM {bad_rows_source()}) WHERE {ERR}"""
    )
    assert ch.rows("SELECT id, age, version, is_deleted FROM routed_people FINAL ORDER BY id") == [
        ("ok1", "1", "0", "0"),
        ("ok2", "2", "0", "0"),
    ]
    assert ch.col("SELECT i FROM routed_errors ORDER BY i") == [str(i) for i in range(1, 10)]


@pytest.mark.parametrize("fn", ["df_fail", "df_exec_fail"])
def test_on_error_fail_fails_the_query_with_the_reason(ch, fn):
    good = "concat('{\"id\":{\"S\":\"', toString(number), '\"}}')"
    sql = (
        f"SELECT sum(length({fn}(if(number = 2500, '{{\"id\":{{\"Q\":\"x\"}}}}', {good})))) "
        "FROM numbers(5000) SETTINGS max_block_size = 1000"
    )
    with pytest.raises(Exception) as exc:
        ch.run(sql)
    msg = str(exc.value)
    assert "Executable generates stderr: dynamo-flatten: row" in msg
    assert 'unknown type tag "Q" (expected S, N, B, BOOL, NULL, M, L, SS, NS or BS) at byte 7' in msg
    assert "input starts: " in msg
    # The failed process is gone; the function still works for good rows.
    assert ch.one(f"SELECT count() FROM (SELECT {fn}({good}) j FROM numbers(3000) WHERE NOT {ERR}) "
                  "SETTINGS max_block_size = 1000") == "3000"


def test_chunk_header_mismatch_is_reported(ch):
    with pytest.raises(Exception) as exc:
        ch.run("SELECT dynamo_flatten_header_probe FROM (SELECT df_header_mismatch('{\"id\":{\"S\":\"a\"}}') "
               "AS dynamo_flatten_header_probe)")
    msg = str(exc.value)
    assert "dynamo-flatten: block 1: expected a chunk header (row count and newline)" in msg
    assert "send_chunk_header in the function config and --chunk-header must agree" in msg


# --- rows ClickHouse cannot parse ----------------------------------------------------------

RANGE = ("at most 38 significant digits, magnitude 0 or 1E-130 to "
         "9.9999999999999999999999999999999999999E+125")
D39 = "123456789012345678901234567890123456789"
UNSTORABLE_ROWS = [
    # (key, line, expected _error or None)
    ("surrogate", r'''{"id":{"S":"s"},"t":{"S":"x\ud800"}}''',
     (r"string has a \u escape that is not valid Unicode (a lone surrogate); "
     "DynamoDB cannot store such a string at byte 27")),
    ("pair", r'''{"id":{"S":"p"},"t":{"S":"x\ud83d\ude00"}}''', None),
    ("big", '{"id":{"S":"b"},"n":{"N":"1e400"}}',
     f'N value "1e400" is outside DynamoDB\'s range ({RANGE}) at byte 26'),
    ("digits39", f'{{"id":{{"S":"d"}},"n":{{"N":"{D39}"}}}}',
     f'N value "{D39}" is outside DynamoDB\'s range ({RANGE}) at byte 26'),
    ("item", '{"id":{"S":"a"},"Records":{"N":"1"}}', None),
    ("reordered", '{"Records":{"N":"1"},"id":{"S":"a"}}', None),
]


def test_every_output_row_is_json_clickhouse_parses(ch):
    items = ", ".join(f"({quote(k)}, {quote(line)})" for k, line, _ in UNSTORABLE_ROWS)
    src = f"(SELECT t.1 AS k, t.2 AS line FROM (SELECT arrayJoin([{items}]) AS t))"
    rows = ch.rows(
        f"""SELECT k, isValidJSON(line), isValidJSON(j), {ERR}, JSONExtractString(j, '_error'), j,
                   toString(JSONExtract(j, 'Tuple(id String, Records Int64, version UInt64, is_deleted UInt8)'))
            FROM (SELECT k, line, dynamo_flatten(line) AS j FROM {src})"""
    )
    got = {r[0]: r[1:] for r in rows}
    assert len(rows) == len(UNSTORABLE_ROWS)
    # The lone surrogate is not JSON to ClickHouse even as input; the others are.
    assert {k: r[0] for k, r in got.items()} == {k: "0" if k == "surrogate" else "1" for k in got}
    for k, _, expected in UNSTORABLE_ROWS:
        _, out_valid, is_err, err, j, _ = got[k]
        assert out_valid == "1", (k, j)
        if expected is None:
            assert (is_err, err) == ("0", ""), k
        else:
            assert (is_err, err) == ("1", expected), k
    # A valid surrogate pair is copied as it is.
    assert got["pair"][4] == r'''{"id":"p","t":"x\ud83d\ude00","version":0,"is_deleted":0}'''
    # The item's key order does not change what it is read as, nor its row.
    assert got["item"][4] == '{"id":"a","Records":1,"version":0,"is_deleted":0}'
    assert got["reordered"][4] == '{"Records":1,"id":"a","version":0,"is_deleted":0}'
    assert got["reordered"][5] == got["item"][5] == "('a',1,0,0)"


# --- numbers ---------------------------------------------------------------------------------

NUMBERS = {
    "dec38": "12345678901234567890123456789.123456789",
    "negdec": "-0.000000001",
    "int38": "99999999999999999999999999999999999999",
    "negint38": "-99999999999999999999999999999999999999",
    "u64max": "18446744073709551615",
    "pi": "3.141592653589793238462643383279502884",
    "tiny": "1E-130",
    "big": "9.9999999999999999999999999999999999999E+125",
}


def numbers_source() -> str:
    items = ", ".join(
        f"('{k}', '{{\"id\":{{\"S\":\"{k}\"}},\"v\":{{\"N\":\"{v}\"}}}}')" for k, v in NUMBERS.items()
    )
    return (
        "(SELECT k, dynamo_flatten(line) AS jn, dynamo_flatten_exact(line) AS je "
        f"FROM (SELECT t.1 AS k, t.2 AS line FROM (SELECT arrayJoin([{items}]) AS t)))"
    )


def test_numbers_exact_decimal_and_string(ch):
    src = numbers_source()
    assert ch.rows(
        f"SELECT k, JSONExtract(je, 'v', 'Decimal(38, 9)') FROM {src} "
        "WHERE k IN ('dec38', 'negdec') ORDER BY k"
    ) == [("dec38", NUMBERS["dec38"]), ("negdec", NUMBERS["negdec"])]
    # An unquoted number goes through Float64 on its way to a Decimal: that is what the
    # exact function avoids.
    assert ch.one(f"SELECT JSONExtract(jn, 'v', 'Decimal(38, 9)') FROM {src} WHERE k = 'dec38'") \
        != NUMBERS["dec38"]
    # A String column keeps the exact text.
    assert dict(ch.rows(f"SELECT k, JSONExtract(je, 'v', 'String') FROM {src}")) == NUMBERS
    # Into a table.
    ch.run("DROP TABLE IF EXISTS numbers_exact")
    ch.run("CREATE TABLE numbers_exact (k String, d Decimal(38, 9), s String) ENGINE = MergeTree ORDER BY k")
    ch.run(
        f"INSERT INTO numbers_exact SELECT k, JSONExtract(je, 'v', 'Decimal(38, 9)'), "
        f"JSONExtract(je, 'v', 'String') FROM {src} WHERE k IN ('dec38', 'negdec')"
    )
    assert ch.one("SELECT toString(sum(d)) FROM numbers_exact") == "12345678901234567890123456789.123456788"


@pytest.mark.parametrize("col", ["jn", "je"])
def test_numbers_int128_uint64_float64(ch, col):
    src = numbers_source()
    assert ch.rows(
        f"SELECT k, JSONExtract({col}, 'v', 'Int128') FROM {src} "
        "WHERE k IN ('int38', 'negint38', 'u64max') ORDER BY k"
    ) == [("int38", NUMBERS["int38"]), ("negint38", NUMBERS["negint38"]), ("u64max", NUMBERS["u64max"])]
    assert ch.one(f"SELECT JSONExtract({col}, 'v', 'UInt64') FROM {src} WHERE k = 'u64max'") \
        == "18446744073709551615"
    # Float64: the nearest double, bit for bit (Python's float() rounds correctly).
    rows = ch.rows(
        f"SELECT k, reinterpretAsUInt64(JSONExtract({col}, 'v', 'Float64')) FROM {src} "
        "WHERE k IN ('dec38', 'negdec', 'pi', 'tiny', 'big') ORDER BY k"
    )
    expected = [(k, str(struct.unpack("<Q", struct.pack("<d", float(NUMBERS[k])))[0]))
                for k in sorted(("dec38", "negdec", "pi", "tiny", "big"))]
    assert rows == expected


# --- change records --------------------------------------------------------------------------


def kinesis_source(fixtures) -> str:
    return f"file({quote(str(fixtures / 'kinesis' / 'records.jsonl'))}, 'LineAsString')"


def streams_source(fixtures) -> str:
    # A Lambda event holds several records: one record per row.
    path = quote(str(fixtures / "streams" / "lambda-event.json"))
    return f"(SELECT arrayJoin(JSONExtractArrayRaw(raw_blob, 'Records')) AS line FROM file({path}, 'RawBLOB'))"


def incremental_source(fixtures) -> str:
    return f"file({quote(str(fixtures / 'export-incremental' / 'lines.jsonl'))}, 'LineAsString')"


def snapshot_source(fixtures) -> str:
    return f"file({quote(export_glob(fixtures))}, 'LineAsString')"


def flattened(ch, source: str):
    return ch.rows(
        f"""SELECT JSONExtractString(j, 'id'), JSONExtractRaw(j, 'age'), JSONExtractUInt(j, 'version'),
                   JSONExtractUInt(j, 'is_deleted'), {ERR}
            FROM (SELECT dynamo_flatten(line) AS j FROM {source})"""
    )


def test_kinesis_records(ch, fixtures):
    assert flattened(ch, kinesis_source(fixtures)) == [
        (BOB, "33", "1732406500123456", "0", "0"),     # INSERT, µs precision
        (SALLY, "27", "1732406501000000", "0", "0"),   # MODIFY, ms (no precision field)
        (ZOE, "41", "1732406502345678", "1", "0"),     # REMOVE: the old image
        (LI, "", "1732406503000001", "1", "0"),        # TTL REMOVE: keys only
    ]


def test_streams_records(ch, fixtures):
    assert flattened(ch, streams_source(fixtures)) == [
        (SALLY, "28", "1732406510000000", "0", "0"),   # seconds → µs
    ]
    # The whole event in one row is an error row that says what to do.
    path = quote(str(fixtures / "streams" / "lambda-event.json"))
    err = ch.one(f"SELECT JSONExtractString(dynamo_flatten(raw_blob), '_error') FROM file({path}, 'RawBLOB')")
    assert err.startswith("a Lambda event with a Records array; pass one record per row")


def test_incremental_export_lines(ch, fixtures):
    assert flattened(ch, incremental_source(fixtures)) == [
        (SALLY, "29", "1732406600000123", "0", "0"),
        (BOB, "33", "1732406600500000", "1", "0"),     # delete: no NewImage
    ]


def test_snapshot_version_flag(ch, fixtures):
    versions = ch.col(
        f"SELECT DISTINCT JSONExtractUInt(df_snap_v(line), 'version') FROM {snapshot_source(fixtures)}"
    )
    assert versions == ["1700000000000000"]


def test_snapshot_then_changes_final_state(ch, fixtures):
    create_people(ch, "cdc_people")
    final = "SELECT id, first_name, age, version FROM cdc_people FINAL ORDER BY id"

    load_people(ch, "cdc_people", snapshot_source(fixtures))
    assert ch.rows(final) == [
        (SALLY, "sally", "26", "0"),
        (ZOE, "Zoë \"zee\" O'Neil", "41", "0"),
        (LI, "李雷 🚀", "100", "0"),
    ]
    load_people(ch, "cdc_people", kinesis_source(fixtures))
    assert ch.rows(final) == [
        (SALLY, "sally", "27", "1732406501000000"),
        (BOB, "bob", "33", "1732406500123456"),
    ]
    load_people(ch, "cdc_people", streams_source(fixtures))
    assert ch.rows(final) == [
        (SALLY, "sally", "28", "1732406510000000"),
        (BOB, "bob", "33", "1732406500123456"),
    ]
    load_people(ch, "cdc_people", incremental_source(fixtures))
    assert ch.rows(final) == [(SALLY, "sally", "29", "1732406600000123")]


def test_changes_in_any_order_give_the_same_state(ch, fixtures):
    create_people(ch, "cdc_people_rev")
    for src in (incremental_source(fixtures), streams_source(fixtures), kinesis_source(fixtures),
                snapshot_source(fixtures)):
        load_people(ch, "cdc_people_rev", src)
    assert ch.rows("SELECT id, first_name, age, version, is_deleted FROM cdc_people_rev FINAL") == [
        (SALLY, "sally", "29", "1732406600000123", "0"),
    ]
    # Without FINAL the delete markers are still there (before a CLEANUP merge).
    assert ch.rows(
        "SELECT id, max(version), argMax(is_deleted, version) FROM cdc_people_rev "
        "GROUP BY id ORDER BY id"
    ) == [
        (SALLY, "1732406600000123", "0"),
        (ZOE, "1732406502345678", "1"),
        (LI, "1732406503000001", "1"),
        (BOB, "1732406600500000", "1"),
    ]


# --- the column-aware function ----------------------------------------------------------------

COLUMNS = "id String, qty UInt8, price Decimal(38, 2), tags Array(String), `odd name` Nullable(Int64)"


def test_columns_function_converts_exactly_and_keeps_misfits(ch):
    lines = [
        ('{"Item":{"id":{"S":"a"},"qty":{"N":"200"},"price":{"N":"12.50"},"tags":{"SS":["x"]},'
        '"odd name":{"NULL":true}}}'),
        ('{"Item":{"id":{"S":"b"},"qty":{"N":"300"},"price":{"N":"12.505"},"tags":{"L":[{"N":"1"}]},'
        '"odd name":{"S":"7"},"note":{"S":"new"}}}'),
    ]
    rows = ch.rows(
        f"""SELECT isValidJSON(j), t.1, t.2, toString(t.3), t.4, t.5, t.6, t.7
        FROM (SELECT j, JSONExtract(j, {quote(f'Tuple({COLUMNS}, _extra String, version UInt64, is_deleted UInt8)')}) AS t
              FROM (SELECT dynamo_flatten_columns(line, {quote(COLUMNS)}) AS j
                    FROM (SELECT arrayJoin({'[' + ','.join(quote(x) for x in lines) + ']'}) AS line)))
        ORDER BY t.1"""
    )
    assert rows == [
        ("1", "a", "200", "12.5", "['x']", None, "{}", "0"),
        ("1", "b", "0", "0", "[]", None,
         ('{"qty":{"N":"300"},"price":{"N":"12.505"},"tags":{"L":[{"N":"1"}]},'
         '"odd name":{"S":"7"},"note":{"S":"new"}}'), "0"),
    ]


def test_columns_function_refuses_a_bad_list_naming_the_column(ch):
    with pytest.raises(Exception) as e:
        ch.run("""SELECT dynamo_flatten_columns('{"id":{"S":"a"}}', 'id String, qty UUID')""")
    assert "column list: column `qty`: type UUID is not supported" in str(e.value)
