"""TEST INFRASTRUCTURE ONLY: a stand-in for a ClickHouse server's HTTP interface, over chDB.

This is not ClickHouse and not part of the shipped product. It lets tests of programs that
talk to ClickHouse over HTTP (for example with the Rust ``clickhouse`` crate) run where no
ClickHouse server can be installed. It serves one embedded chDB session (one connection,
used under a lock, so requests are executed one at a time) and implements only the subset
of the HTTP interface that the project's tools use:

* ``GET``/``POST /ping`` (also ``HEAD``) answers ``Ok.\\n``.
* ``/?query=…`` with an optional request body. For non-INSERT statements the query is
  the URL query, then ``\\n``, then the body (as ClickHouse does); a POST body alone is a
  query too.
* ``INSERT INTO t [(cols)] [SETTINGS …] FORMAT X`` (in the URL, or at the start of the body)
  with the data in the body. The data is written to a temporary file and inserted with
  ``INSERT … FROM INFILE``, so binary formats (RowBinary, RowBinaryWithNamesAndTypes,
  Native) are safe, and an exception in a materialized view fails the INSERT as on a
  server (chDB's streaming ``send_insert`` drops such exceptions and the block with them).
* A trailing ``FORMAT X`` selects the output format; otherwise ``default_format``, else
  ``TabSeparated``. The response carries ``X-ClickHouse-Format``.
* ``param_<name>=…`` URL parameters are passed as query parameters (``{name:Type}``).
* Other URL parameters that are ClickHouse settings (names from ``system.settings``) are
  added to the statement as a ``SETTINGS`` clause, for SELECT-like statements (SELECT,
  WITH, DESCRIBE, SHOW, EXPLAIN, EXISTS) and for ``INSERT … FORMAT``. They are ignored for
  other statements (DDL, ``INSERT … VALUES/SELECT``, …). ``insert_deduplication_token`` is
  honoured by chDB for MergeTree tables with ``non_replicated_deduplication_window`` > 0.
  An unknown name is an error (Code 115), as on a server. HTTP-only parameters
  (``database``, ``wait_end_of_query``, ``query_id``, ``session_id``, ``compress``, …)
  are accepted; ``database`` switches the current database for that request only.
* ``decompress=1``: the body is ClickHouse's native compressed framing (16-byte
  CityHash128 v1.0.2 checksum, method byte 0x82 = LZ4 or 0x02 = none, 4-byte compressed
  size including the 9-byte header, 4-byte decompressed size, block). Checksums are
  verified unless ``http_native_compression_disable_checksumming_on_decompress=1``.
  LZ4 blocks are decoded in pure Python.
* ``compress=1``: the response body is sent in the same framing (LZ4 blocks holding
  literals only, with a real CityHash128 checksum). Error bodies are sent uncompressed.
* Chunked request bodies (``Transfer-Encoding: chunked``) and ``Content-Encoding:
  gzip``/``deflate``.
* Errors: status 500 (a real server uses 400/404 for some error codes), the
  ``Code: N. DB::Exception: …`` text as body, and ``X-ClickHouse-Exception-Code: N``.

Not implemented: authentication, sessions (``session_id``), progress headers, HTTP response
compression (``enable_http_compression``), ``INSERT`` from multipart forms, external tables.

Use in tests::

    front = ClickHouseHTTPFront(session)          # a chdb Connection or Session
    server, port = front.start_in_thread()         # 127.0.0.1, free port
    ...
    front.stop()                                   # and front.start_in_thread(port) again

From the shell (a fresh chDB database at PATH, optionally with the UDF folder DIR)::

    python tests/support/clickhouse_http_front.py --port 8123 --db PATH [--udf-dir DIR]

chDB allows one database path per process: pass an already open session when the
process has one.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import struct
import sys
import tempfile
import threading
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

# --------------------------------------------------------------------------------------------
# CityHash128 v1.0.2 (the version ClickHouse uses for compressed-block checksums).

_M64 = 0xFFFFFFFFFFFFFFFF
_K0 = 0xC3A5C85C97CB3127
_K1 = 0xB492B66FBE98F273
_K2 = 0x9AE16A3B2F90404F
_K3 = 0xC949D7C7509E6557
_KMUL = 0x9DDFEA08EB382D69


def _f64(s: bytes, i: int) -> int:
    return int.from_bytes(s[i : i + 8], "little")


def _f32(s: bytes, i: int) -> int:
    return int.from_bytes(s[i : i + 4], "little")


def _rot(v: int, shift: int) -> int:
    return v if shift == 0 else ((v >> shift) | (v << (64 - shift))) & _M64


def _smix(v: int) -> int:
    return v ^ (v >> 47)


def _hash16(u: int, v: int) -> int:
    a = ((u ^ v) * _KMUL) & _M64
    a ^= a >> 47
    b = ((v ^ a) * _KMUL) & _M64
    b ^= b >> 47
    return (b * _KMUL) & _M64


def _hash0to16(s: bytes, off: int, n: int) -> int:
    if n > 8:
        a = _f64(s, off)
        b = _f64(s, off + n - 8)
        return _hash16(a, _rot((b + n) & _M64, n)) ^ b
    if n >= 4:
        a = _f32(s, off)
        return _hash16((n + (a << 3)) & _M64, _f32(s, off + n - 4))
    if n > 0:
        a, b, c = s[off], s[off + (n >> 1)], s[off + n - 1]
        y = (a + (b << 8)) & 0xFFFFFFFF
        z = (n + (c << 2)) & 0xFFFFFFFF
        return (_smix(((y * _K2) ^ (z * _K3)) & _M64) * _K2) & _M64
    return _K2


def _murmur(s: bytes, off: int, n: int, lo: int, hi: int) -> tuple[int, int]:
    a, b, c, d = lo, hi, 0, 0
    left = n - 16
    if left <= 0:
        a = (_smix((a * _K1) & _M64) * _K1) & _M64
        c = (b * _K1 + _hash0to16(s, off, n)) & _M64
        d = _smix((a + (_f64(s, off) if n >= 8 else c)) & _M64)
    else:
        c = _hash16((_f64(s, off + n - 8) + _K1) & _M64, a)
        d = _hash16((b + n) & _M64, (c + _f64(s, off + n - 16)) & _M64)
        a = (a + d) & _M64
        while True:
            a ^= (_smix((_f64(s, off) * _K1) & _M64) * _K1) & _M64
            a = (a * _K1) & _M64
            b ^= a
            c ^= (_smix((_f64(s, off + 8) * _K1) & _M64) * _K1) & _M64
            c = (c * _K1) & _M64
            d ^= c
            off += 16
            left -= 16
            if left <= 0:
                break
    a = _hash16(a, c)
    b = _hash16(d, b)
    return a ^ b, _hash16(b, a)


def _weak32(s: bytes, off: int, a: int, b: int) -> tuple[int, int]:
    w, x, y, z = _f64(s, off), _f64(s, off + 8), _f64(s, off + 16), _f64(s, off + 24)
    a = (a + w) & _M64
    b = _rot((b + a + z) & _M64, 21)
    c = a
    a = (a + x + y) & _M64
    b = (b + _rot(a, 44)) & _M64
    return (a + z) & _M64, (b + c) & _M64


def _city128_seed(s: bytes, off: int, n: int, lo: int, hi: int) -> tuple[int, int]:
    if n < 128:
        return _murmur(s, off, n, lo, hi)
    x, y, z = lo, hi, (n * _K1) & _M64
    v0 = (_rot(y ^ _K1, 49) * _K1 + _f64(s, off)) & _M64
    v1 = (_rot(v0, 42) * _K1 + _f64(s, off + 8)) & _M64
    w0 = (_rot((y + z) & _M64, 35) * _K1 + x) & _M64
    w1 = (_rot((x + _f64(s, off + 88)) & _M64, 53) * _K1) & _M64
    while True:
        for _ in range(2):
            x = (_rot((x + y + v0 + _f64(s, off + 16)) & _M64, 37) * _K1) & _M64
            y = (_rot((y + v1 + _f64(s, off + 48)) & _M64, 42) * _K1) & _M64
            x ^= w1
            y ^= v0
            z = _rot(z ^ w0, 33)
            v0, v1 = _weak32(s, off, (v1 * _K1) & _M64, (x + w0) & _M64)
            w0, w1 = _weak32(s, off + 32, (z + w1) & _M64, y)
            z, x = x, z
            off += 64
        n -= 128
        if n < 128:
            break
    y = (y + _rot(w0, 37) * _K0 + z) & _M64
    x = (x + _rot((v0 + z) & _M64, 49) * _K0) & _M64
    done = 0
    while done < n:
        done += 32
        y = (_rot((y - x) & _M64, 42) * _K0 + v1) & _M64
        w0 = (w0 + _f64(s, off + n - done + 16)) & _M64
        x = (_rot(x, 49) * _K0 + w0) & _M64
        w0 = (w0 + v0) & _M64
        v0, v1 = _weak32(s, off + n - done, v0, v1)
    x = _hash16(x, v0)
    y = _hash16(y, w0)
    return (_hash16((x + v1) & _M64, w1) + y) & _M64, _hash16((x + w1) & _M64, (y + v1) & _M64)


def cityhash128(data: bytes) -> bytes:
    """CityHash128 v1.0.2 of ``data`` as ClickHouse writes it: low 64 bits, then high, LE."""
    s = bytes(data)
    n = len(s)
    if n >= 16:
        lo, hi = _city128_seed(s, 16, n - 16, _f64(s, 0) ^ _K3, _f64(s, 8))
    elif n >= 8:
        lo, hi = _city128_seed(b"", 0, 0, _f64(s, 0) ^ ((n * _K0) & _M64), _f64(s, n - 8) ^ _K1)
    else:
        lo, hi = _city128_seed(s, 0, n, _K0, _K1)
    return struct.pack("<QQ", lo, hi)


# --------------------------------------------------------------------------------------------
# LZ4 block format and ClickHouse's compressed-block framing.

METHOD_NONE = 0x02
METHOD_LZ4 = 0x82


class ProtocolError(Exception):
    """A request the front cannot take; ``code`` is the ClickHouse error code to report."""

    def __init__(self, code: int, name: str, message: str):
        super().__init__(f"Code: {code}. DB::Exception: {message}. ({name})")
        self.code = code


def lz4_block_decompress(src: bytes, size: int) -> bytes:
    """Decodes one raw LZ4 block whose decompressed size is ``size``."""
    out = bytearray()
    i, n = 0, len(src)
    while i < n:
        token = src[i]
        i += 1
        lit = token >> 4
        if lit == 15:
            while True:
                b = src[i]
                i += 1
                lit += b
                if b != 255:
                    break
        out += src[i : i + lit]
        i += lit
        if i >= n:
            break
        offset = src[i] | (src[i + 1] << 8)
        i += 2
        if offset == 0 or offset > len(out):
            raise ProtocolError(271, "CANNOT_DECOMPRESS", "LZ4 block has an invalid match offset")
        mlen = token & 15
        if mlen == 15:
            while True:
                b = src[i]
                i += 1
                mlen += b
                if b != 255:
                    break
        mlen += 4
        start = len(out) - offset
        if offset >= mlen:
            out += out[start : start + mlen]
        else:
            for k in range(mlen):
                out.append(out[start + k])
    if len(out) != size:
        raise ProtocolError(271, "CANNOT_DECOMPRESS", f"LZ4 block decoded to {len(out)} bytes, expected {size}")
    return bytes(out)


def lz4_block_literals(data: bytes) -> bytes:
    """A valid LZ4 block holding ``data`` as literals only (no matches)."""
    n = len(data)
    if n < 15:
        return bytes([n << 4]) + data
    rest = n - 15
    ext = b"\xff" * (rest // 255) + bytes([rest % 255])
    return b"\xf0" + ext + data


def decompress_blocks(body: bytes, verify: bool = True) -> bytes:
    """Decodes a sequence of ClickHouse compressed blocks (the ``decompress=1`` body)."""
    out = bytearray()
    i, n = 0, len(body)
    while i < n:
        if n - i < 25:
            raise ProtocolError(33, "CANNOT_READ_ALL_DATA", "Cannot read all data: truncated compressed block header")
        checksum = body[i : i + 16]
        method = body[i + 16]
        csize, dsize = struct.unpack_from("<II", body, i + 17)
        if csize < 9 or i + 16 + csize > n:
            raise ProtocolError(33, "CANNOT_READ_ALL_DATA", "Cannot read all data: truncated compressed block")
        block = body[i + 16 : i + 16 + csize]
        if verify and cityhash128(block) != checksum:
            raise ProtocolError(40, "CHECKSUM_DOESNT_MATCH", "Checksum doesn't match: corrupted data")
        payload = block[9:]
        if method == METHOD_LZ4:
            out += lz4_block_decompress(payload, dsize)
        elif method == METHOD_NONE:
            out += payload
        else:
            raise ProtocolError(89, "UNKNOWN_COMPRESSION_METHOD", f"Unknown compression method 0x{method:02x}")
        i += 16 + csize
    return bytes(out)


def compress_blocks(data: bytes, block_size: int = 1 << 20) -> bytes:
    """``data`` in ClickHouse compressed-block framing (LZ4, literals only)."""
    out = bytearray()
    for start in range(0, len(data), block_size):
        chunk = data[start : start + block_size]
        payload = lz4_block_literals(chunk)
        block = struct.pack("<BII", METHOD_LZ4, 9 + len(payload), len(chunk)) + payload
        out += cityhash128(block) + block
    return bytes(out)


# --------------------------------------------------------------------------------------------
# Query handling.

# URL parameters that belong to the HTTP interface rather than to settings.
HTTP_PARAMS = {
    "query", "database", "default_format", "compress", "decompress", "query_id", "session_id",
    "session_timeout", "session_check", "user", "password", "quota_key", "buffer_size",
    "wait_end_of_query", "enable_http_compression", "send_progress_in_http_headers",
    "http_headers_progress_interval_ms", "add_http_cors_header", "stacktrace",
    "http_native_compression_disable_checksumming_on_decompress", "role", "log_comment_http",
}

_SETTINGS_TAIL = re.compile(r"\s+SETTINGS\s+.*$", re.IGNORECASE | re.DOTALL)
_FORMAT_TAIL = re.compile(r"\s+FORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE | re.DOTALL)
_INSERT_URL = re.compile(r"^\s*(INSERT\s+INTO\s+.+?)\s+FORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE | re.DOTALL)
_INSERT_BODY = re.compile(rb"^\s*(INSERT\s+INTO\s+.+?)\s+FORMAT\s+(\w+)(?:\r?\n|[ \t]|$)", re.IGNORECASE | re.DOTALL)
_SELECT_LIKE = re.compile(r"^\s*\(?\s*(SELECT|WITH|DESCRIBE|DESC|SHOW|EXPLAIN|EXISTS)\b", re.IGNORECASE)
_CODE = re.compile(r"Code: (\d+)\.")


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _with_settings(sql: str, settings: dict[str, str]) -> str:
    if not settings:
        return sql
    clause = ", ".join(f"{k} = {_quote(v)}" for k, v in settings.items())
    sql = sql.rstrip().rstrip(";")
    joiner = ", " if re.search(r"\bSETTINGS\b", sql, re.IGNORECASE) else " SETTINGS "
    return sql + joiner + clause


def _error_text(exc: BaseException) -> tuple[int, str]:
    text = str(exc)
    m = _CODE.search(text)
    if m:
        # chDB prefixes streaming-insert errors ("Streaming insert append failed: Code: …").
        text = text[m.start():]
        return int(m.group(1)), text
    return 1001, f"Code: 1001. DB::Exception: {text}. (STD_EXCEPTION)"


class ClickHouseHTTPFront:
    """Serves one chDB connection/session over (a subset of) ClickHouse's HTTP interface."""

    def __init__(self, session, host: str = "127.0.0.1"):
        self.session = session
        self.host = host
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None
        self.requests: list[str] = []  # queries seen, for test assertions
        self.stopped: list[ThreadingHTTPServer] = []  # servers that stop() shut down
        with self.lock:
            names = self._run("SELECT name FROM system.settings", "TabSeparated")
        self.setting_names = set(names.decode().split())

    # -- chDB calls (lock held) ---------------------------------------------------------------

    def _run(self, sql: str, fmt: str, params: dict | None = None) -> bytes:
        res = self.session.query(sql, fmt, params=params or {})
        if res is None:
            return b""
        if hasattr(res, "bytes"):
            return res.bytes()
        return res if isinstance(res, bytes) else str(res).encode()

    def _insert(self, head: str, fmt: str, data: bytes) -> int:
        # The body goes through a temporary file and ``INSERT … FROM INFILE``: binary-safe,
        # and unlike chDB's streaming ``send_insert``, an exception raised in a materialized
        # view of the table fails the INSERT, as on a server (send_insert drops it silently).
        m = _SETTINGS_TAIL.search(head)
        pre, settings = (head[: m.start()], head[m.start():]) if m else (head, "")
        with tempfile.NamedTemporaryFile(prefix="ch-front-insert-", suffix=".bin") as f:
            f.write(data)
            f.flush()
            sql = f"{pre} FROM INFILE {_quote(f.name)}{settings} FORMAT {fmt}"
            res = self.session.query(sql, "TabSeparated")
        written = getattr(res, "rows_written", 0)
        return int((written() if callable(written) else written) or 0)

    # -- request execution --------------------------------------------------------------------

    def execute(self, params: list[tuple[str, str]], body: bytes) -> tuple[bytes, dict[str, str]]:
        """Runs one request; returns (response body, extra headers). Raises on errors."""
        opts: dict[str, str] = {}
        qparams: dict[str, str] = {}
        settings: dict[str, str] = {}
        for k, v in params:
            if k.startswith("param_"):
                qparams[k[len("param_"):]] = v
            elif k in HTTP_PARAMS:
                opts[k] = v
            elif k in self.setting_names:
                settings[k] = v
            else:
                raise ProtocolError(115, "UNKNOWN_SETTING", f"Unknown setting '{k}'")
        if opts.get("decompress") in ("1", "true"):
            verify = opts.get("http_native_compression_disable_checksumming_on_decompress") not in ("1", "true")
            body = decompress_blocks(body, verify)
        url_query = opts.get("query", "")
        fmt = opts.get("default_format") or "TabSeparated"
        headers = {"X-ClickHouse-Query-Id": opts.get("query_id") or str(uuid.uuid4())}

        insert_head = insert_fmt = None
        data = b""
        m = _INSERT_URL.match(url_query) if url_query else None
        if m:
            insert_head, insert_fmt, data = m.group(1), m.group(2), body
        elif not url_query.strip():
            mb = _INSERT_BODY.match(body[:65536])
            if mb:
                insert_head, insert_fmt = mb.group(1).decode(), mb.group(2).decode()
                data = body[mb.end():]

        with self.lock:
            database = opts.get("database")
            switched = bool(database) and database != "default"
            if switched:
                self._run(f"USE `{database}`", "TabSeparated")
            try:
                if insert_head is not None:
                    head = _with_settings(insert_head, settings)
                    self.requests.append(f"{head} FORMAT {insert_fmt}")
                    rows = self._insert(head, insert_fmt, data)
                    headers["X-ClickHouse-Summary"] = json.dumps(
                        {"written_rows": str(rows), "result_rows": str(rows)}
                    )
                    return b"", headers
                sql = url_query
                if body:
                    sql = f"{sql}\n{body.decode()}" if sql else body.decode()
                if not sql.strip():
                    raise ProtocolError(62, "SYNTAX_ERROR", "Empty query")
                mf = _FORMAT_TAIL.search(sql)
                if mf:
                    fmt = mf.group(1)
                    sql = sql[: mf.start()]
                sql = sql.strip().rstrip(";")
                if _SELECT_LIKE.match(sql):
                    sql = _with_settings(sql, settings)
                self.requests.append(sql)
                out = self._run(sql, fmt, qparams)
                headers["X-ClickHouse-Format"] = fmt
                if opts.get("compress") in ("1", "true"):
                    out = compress_blocks(out)
                return out, headers
            finally:
                if switched:
                    self._run("USE default", "TabSeparated")

    # -- server lifecycle ---------------------------------------------------------------------

    def start_in_thread(self, port: int = 0) -> tuple[ThreadingHTTPServer, int]:
        """Starts serving on ``host:port`` (0 = a free port) in a daemon thread."""
        if self.server is not None:
            raise RuntimeError("already started")
        server = make_server(self, self.host, port)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        self.server, self.thread = server, thread
        return server, server.server_address[1]

    def stop(self) -> None:
        """Stops serving and frees the port; ``start_in_thread(port)`` may be called again."""
        server, self.server = self.server, None
        if server is not None:
            self.stopped.append(server)
            server.shutdown()
            server.server_close()
        if self.thread is not None:
            self.thread.join(timeout=5)
            self.thread = None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    front: ClickHouseHTTPFront

    def log_message(self, fmt, *args):  # quiet
        pass

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts = []
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            body = b"".join(parts)
        else:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
        enc = (self.headers.get("Content-Encoding") or "").lower()
        if enc == "gzip":
            body = gzip.decompress(body)
        elif enc == "deflate":
            body = zlib.decompress(body)
        elif enc not in ("", "identity"):
            raise ProtocolError(48, "NOT_IMPLEMENTED", f"Content-Encoding {enc} is not supported by the test front")
        return body

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self) -> None:
        if self.server in self.front.stopped:
            # Stopped: a kept-alive connection from before the stop gets no answer either,
            # as from a server that went away.
            self.close_connection = True
            return
        url = urlsplit(self.path)
        try:
            body = self._read_body() if self.command == "POST" else b""
        except ProtocolError as e:
            self._send(500, (str(e) + "\n").encode(), {"X-ClickHouse-Exception-Code": str(e.code)})
            return
        if url.path == "/ping":
            self._send(200, b"Ok.\n")
            return
        if url.path != "/":
            self._send(404, b"There is no handle " + url.path.encode() + b"\n")
            return
        params = parse_qsl(url.query, keep_blank_values=True)
        if not params and not body:
            self._send(200, b"Ok.\n")  # like the server's root handler
            return
        try:
            out, headers = self.front.execute(params, body)
        except Exception as e:  # noqa: BLE001 - every failure is reported like ClickHouse does
            code, text = _error_text(e)
            self._send(500, (text.rstrip("\n") + "\n").encode(), {"X-ClickHouse-Exception-Code": str(code)})
            return
        self._send(200, out, headers)

    do_GET = do_POST = do_HEAD = _handle


def make_server(front: ClickHouseHTTPFront, host: str, port: int) -> ThreadingHTTPServer:
    handler = type("Handler", (_Handler,), {"front": front})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def open_chdb(db: str | Path, udf_dir: str | Path | None = None):
    """A chDB connection on ``db`` (created if missing), with the UDFs of ``udf_dir``."""
    import chdb

    path = str(Path(db).resolve())
    if udf_dir:
        path += f"?udf_path={Path(udf_dir).resolve()}"
    Path(db).mkdir(parents=True, exist_ok=True)
    return chdb.connect(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Test-only ClickHouse HTTP front over chDB.")
    ap.add_argument("--port", type=int, default=8123)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--db", required=True, help="chDB database folder (kept between runs)")
    ap.add_argument("--udf-dir", help="chDB udf_path folder (see scripts/chdb_udf.py)")
    args = ap.parse_args(argv)
    front = ClickHouseHTTPFront(open_chdb(args.db, args.udf_dir), host=args.host)
    server = make_server(front, args.host, args.port)
    print(f"listening on http://{args.host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
