"""Tests of the ClickHouse HTTP front over chDB (harness/http_front.py).

The front under test runs in a subprocess started through its command line, with its own
chDB database folder: chDB accepts one database path per process and this pytest process
already has one (the `ch` fixture of conftest.py), and a subprocess is also what programs
under test will talk to (and what they will see stop and come back). One last test runs
the in-thread helpers (`start_in_thread`/`stop`) over the shared `ch` session.
"""

from __future__ import annotations

import http.client
import json
import struct
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from harness.codec import compress_blocks, decompress_blocks
from harness.http_front import ClickHouseHTTPFront, FrontProcess


@pytest.fixture(scope="module")
def front(tmp_path_factory, udf_dir):
    """The front as a process of its own, so that it can be stopped and started again."""
    with FrontProcess(tmp_path_factory.mktemp("front") / "db", udf_dir) as f:
        yield f


def call(front, params=None, body: bytes | None = None, headers=None, method=None):
    """(status, body bytes, headers) of one request; params is a dict or a list of pairs."""
    url = front.url + "/"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    req = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers


def ok(front, params=None, body=None, **kw) -> bytes:
    status, out, _ = call(front, params, body, **kw)
    assert status == 200, out.decode(errors="replace")
    return out


def test_ping(front):
    for method, body in (("GET", None), ("POST", b"")):
        req = urllib.request.Request(front.url + "/ping", data=body, method=method)
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200 and r.read() == b"Ok.\n"


def test_create_insert_select(front):
    ok(front, body=b"CREATE TABLE t1 (id UInt32, s String) ENGINE = MergeTree ORDER BY id")
    rows = b'{"id":2,"s":"b"}\n{"id":1,"s":"a\\tx"}\n'
    ok(front, {"query": "INSERT INTO t1 (id, s) FORMAT JSONEachRow"}, rows)
    # Query text in the body, with inline data after the FORMAT clause.
    ok(front, body=b'INSERT INTO t1 FORMAT JSONEachRow\n{"id":3,"s":"c"}\n')
    assert ok(front, {"query": "SELECT id, s FROM t1 ORDER BY id FORMAT TSV"}) == b"1\ta\\tx\n2\tb\n3\tc\n"
    # URL query + "\n" + body, and default_format.
    out = ok(front, {"query": "SELECT id FROM t1", "default_format": "JSONEachRow"}, b"WHERE id > 1 ORDER BY id")
    assert [json.loads(x) for x in out.splitlines()] == [{"id": 2}, {"id": 3}]
    status, _, headers = call(front, {"query": "SELECT 1", "default_format": "CSV"})
    assert status == 200 and headers["X-ClickHouse-Format"] == "CSV"


def test_rowbinary_is_binary_safe(front):
    ok(front, body=b"CREATE TABLE t2 (id UInt32, s String) ENGINE = MergeTree ORDER BY id")
    raw = b"a\x00b\xff\xfe\r\n\x80z"
    row = struct.pack("<I", 7) + bytes([len(raw)]) + raw
    ok(front, {"query": "INSERT INTO t2 (id, s) FORMAT RowBinary"}, row)
    assert ok(front, {"query": "SELECT id, s FROM t2 FORMAT RowBinary"}) == row
    assert ok(front, {"query": "SELECT hex(s) FROM t2 FORMAT TSV"}) == raw.hex().upper().encode() + b"\n"


def test_what_the_rust_crate_sends(front):
    """DESCRIBE with RowBinaryWithNamesAndTypes, an INSERT in that format, a POSTed SELECT."""
    ok(front, body=b"CREATE TABLE t3 (id UInt64, name String) ENGINE = MergeTree ORDER BY id")
    out = ok(front, [("default_format", "RowBinaryWithNamesAndTypes"), ("describe_include_subcolumns", "0"),
                     ("query", "DESCRIBE TABLE `t3`")])
    assert out[0] >= 7 and b"name" in out and b"UInt64" in out

    def s(b: bytes) -> bytes:
        return bytes([len(b)]) + b

    header = bytes([2]) + s(b"id") + s(b"name") + s(b"UInt64") + s(b"String")
    rows = b"".join(struct.pack("<Q", i) + s(f"n{i}".encode()) for i in range(3))
    ok(front, {"query": "INSERT INTO `t3`(`id`,`name`) FORMAT RowBinaryWithNamesAndTypes"}, header + rows)
    out = ok(front, {"default_format": "RowBinary", "readonly": "1"}, b"SELECT `id`,`name` FROM `t3` ORDER BY id")
    assert out == rows


def test_query_parameters(front):
    params = {"query": "SELECT {s:String}, {n:UInt32} + 1 FORMAT TSV", "param_s": "h\u00e9 llo", "param_n": "41"}
    assert ok(front, params) == "h\u00e9 llo\t42\n".encode()


def test_errors(front):
    status, body, headers = call(front, {"query": "SELECT nosuch_column"})
    assert status == 500 and body.startswith(b"Code: 47. DB::Exception:")
    assert headers["X-ClickHouse-Exception-Code"] == "47"
    # A bad row in an insert, then the connection must still be usable.
    ok(front, body=b"CREATE TABLE t4 (id UInt32) ENGINE = Memory")
    status, body, headers = call(front, {"query": "INSERT INTO t4 FORMAT JSONEachRow"}, b'{"id":"x"}\n')
    assert status == 500 and b"Code: " in body and headers["X-ClickHouse-Exception-Code"].isdigit()
    status, body, headers = call(front, {"query": "INSERT INTO no_such_table FORMAT RowBinary"}, b"\x00")
    assert status == 500 and headers["X-ClickHouse-Exception-Code"] == "60"
    status, body, headers = call(front, {"query": "SELECT 1", "no_such_setting_xyz": "1"})
    assert status == 500 and headers["X-ClickHouse-Exception-Code"] == "115"
    assert ok(front, {"query": "SELECT count() FROM t4"}) == b"0\n"


def test_settings_and_database(front):
    assert ok(front, {"query": "SELECT getSetting('max_threads')", "max_threads": "3"}) == b"3\n"
    ok(front, body=b"CREATE DATABASE IF NOT EXISTS other")
    ok(front, {"database": "other", "wait_end_of_query": "1"}, b"CREATE TABLE t5 (x UInt8) ENGINE = Memory")
    assert ok(front, {"query": "SELECT database FROM system.tables WHERE name = 't5'"}) == b"other\n"
    assert ok(front, {"query": "SELECT currentDatabase()"}) == b"default\n"


def test_insert_deduplication_token(front):
    ok(front, body=b"CREATE TABLE t6 (id UInt32) ENGINE = MergeTree ORDER BY id "
                   b"SETTINGS non_replicated_deduplication_window = 100")
    for i, token in ((1, "tok-a"), (2, "tok-a"), (3, "tok-b")):
        ok(front, {"query": "INSERT INTO t6 (id) FORMAT JSONEachRow", "insert_deduplication_token": token},
           json.dumps({"id": i}).encode() + b"\n")
    # The second insert reused tok-a: dropped although its data differ.
    assert ok(front, {"query": "SELECT groupArray(id) FROM (SELECT id FROM t6 ORDER BY id)"}) == b"[1,3]\n"


def test_chunked_body(front):
    ok(front, body=b"CREATE TABLE t7 (id UInt32) ENGINE = Memory")
    conn = http.client.HTTPConnection("127.0.0.1", front.port, timeout=30)
    q = urllib.parse.quote("INSERT INTO t7 FORMAT JSONEachRow")
    parts = [b'{"id":1}\n{"i', b'd":2}\n', b'{"id":3}\n']
    conn.request("POST", f"/?query={q}", body=iter(parts), encode_chunked=True)
    r = conn.getresponse()
    assert r.status == 200, r.read()
    r.read()
    conn.close()
    assert ok(front, {"query": "SELECT sum(id) FROM t7"}) == b"6\n"


def test_compressed_insert_and_response(front):
    """decompress=1 bodies made by ClickHouse itself: the LZ4 blocks of a MergeTree column file
    (same framing, real matches and checksums) are valid RowBinary for a one-UInt64-column table."""
    ok(front, body=b"CREATE TABLE src (x UInt64 CODEC(LZ4)) ENGINE = MergeTree ORDER BY tuple() "
                   b"SETTINGS min_bytes_for_wide_part = 0")
    ok(front, body=b"INSERT INTO src SELECT number * 7 % 1000 FROM numbers(20000)")
    part = ok(front, {"query": "SELECT path FROM system.parts WHERE table = 'src' AND active"}).decode().strip()
    blocks = (Path(part) / "x.bin").read_bytes()
    ok(front, body=b"CREATE TABLE dst (x UInt64) ENGINE = MergeTree ORDER BY tuple()")
    ok(front, {"query": "INSERT INTO dst FORMAT RowBinary", "decompress": "1"}, blocks)
    assert ok(front, {"query": "SELECT count(), sum(x) FROM dst"}) == ok(
        front, {"query": "SELECT count(), sum(x) FROM src"})
    # The front's own framing (as a client would send it), and a corrupted checksum.
    ok(front, {"query": "INSERT INTO dst FORMAT RowBinary", "decompress": "1"},
       compress_blocks(struct.pack("<Q", 123456789)))
    assert ok(front, {"query": "SELECT count() FROM dst WHERE x = 123456789"}) == b"1\n"
    bad = bytearray(compress_blocks(struct.pack("<Q", 5)))
    bad[0] ^= 1
    status, _body, headers = call(front, {"query": "INSERT INTO dst FORMAT RowBinary", "decompress": "1"}, bytes(bad))
    assert status == 500 and headers["X-ClickHouse-Exception-Code"] == "40"
    # compress=1: the response comes back in the same framing.
    plain = ok(front, {"query": "SELECT x FROM src FORMAT RowBinary"})
    packed = ok(front, {"query": "SELECT x FROM src FORMAT RowBinary", "compress": "1"})
    assert packed != plain and decompress_blocks(packed) == plain


def test_udf_over_http(front):
    doc = '{"id":{"S":"a"},"n":{"N":"5"}}'
    out = ok(front, {"query": "SELECT dynamo_flatten({d:String}) FORMAT TSV", "param_d": doc})
    assert b"5" in out and b"a" in out, out


def test_restart_on_same_port(front):
    ok(front, body=b"CREATE TABLE t8 (id UInt32) ENGINE = MergeTree ORDER BY id")
    ok(front, {"query": "INSERT INTO t8 FORMAT JSONEachRow"}, b'{"id":1}\n')
    front.stop()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(front.url + "/ping", timeout=2)
    front.start()
    assert ok(front, {"query": "SELECT count() FROM t8"}) == b"1\n"


def test_in_thread_start_stop_restart(ch):
    f = ClickHouseHTTPFront(ch.session)
    _, port = f.start_in_thread()
    try:
        url = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(url + "/?query=SELECT%2041", timeout=10) as r:
            assert r.read() == b"41\n"
        f.stop()
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(url + "/ping", timeout=2)
        f.start_in_thread(port)
        with urllib.request.urlopen(url + "/ping", timeout=10) as r:
            assert r.read() == b"Ok.\n"
    finally:
        f.stop()
