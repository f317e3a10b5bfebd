"""A stand-in for a ClickHouse server's HTTP interface, over chDB, for tests and the demo.

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
  (harness.codec).
* ``compress=1``: the response body is sent in the same framing. Error bodies are sent
  uncompressed.
* Chunked request bodies (``Transfer-Encoding: chunked``) and ``Content-Encoding:
  gzip``/``deflate``.
* Errors: status 500 (a real server uses 400/404 for some error codes), the
  ``Code: N. DB::Exception: …`` text as body, and ``X-ClickHouse-Exception-Code: N``.

Not implemented: authentication, sessions (``session_id``), progress headers, HTTP response
compression (``enable_http_compression``), ``INSERT`` from multipart forms, external tables.

Use in tests::

    front = ClickHouseHTTPFront(session)          # a chdb Connection or Session
    front.start_in_thread()                        # 127.0.0.1, a free port: front.port
    front.query("SELECT 1", database="db")         # the session, between requests
    front.stop()                                   # and front.start_in_thread(front.port) again

From the shell (a fresh chDB database at PATH, optionally with the UDF folder DIR)::

    python -m harness.http_front --port 8123 --db PATH [--udf-dir DIR]

chDB allows one database path per process: pass an already open session when the
process has one.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self
from urllib.parse import parse_qsl, urlencode, urlsplit

from harness import free_port
from harness.codec import CodecError, compress_blocks, decompress_blocks
from harness.engine import open_session
from harness.sql import quote


class ProtocolError(Exception):
    """A request the front cannot take; ``code`` is the ClickHouse error code to report."""

    def __init__(self, code: int, name: str, message: str):
        super().__init__(f"Code: {code}. DB::Exception: {message}. ({name})")
        self.code = code


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


def _with_settings(sql: str, settings: dict[str, str]) -> str:
    if not settings:
        return sql
    clause = ", ".join(f"{k} = {quote(v)}" for k, v in settings.items())
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
        self.port = 0
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
            sql = f"{pre} FROM INFILE {quote(f.name)}{settings} FORMAT {fmt}"
            res = self.session.query(sql, "TabSeparated")
        written = getattr(res, "rows_written", 0)
        return int((written() if callable(written) else written) or 0)

    def query(self, sql: str, params: dict | None = None, database: str | None = None) -> str:
        """Runs one statement on the session between requests (TSV output), in `database`
        if given."""
        return self.run_in(database, [sql], params)[0]

    def run_in(self, database: str | None, stmts: list[str], params: dict | None = None) -> list[str]:
        """Runs `stmts` one after the other, each with the query parameters `params`, with
        `database` (if given) as the current database; returns each one's TSV output."""
        with self.lock:
            if database:
                self._run(f"USE `{database}`", "TabSeparated")
            try:
                return [self._run(s, "TabSeparated", params).decode() for s in stmts]
            finally:
                if database:
                    self._run("USE default", "TabSeparated")

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
            try:
                body = decompress_blocks(body, verify)
            except CodecError as e:
                raise ProtocolError(e.code, e.name, str(e)) from None
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
        self.port = server.server_address[1]
        return server, self.port

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


class FrontProcess:
    """The front in a process of its own (``python -m harness.http_front``) on a fixed port,
    with its own chDB database folder: one to stop and start again, or one with other server
    settings (chDB takes one database path per process). `query` and `run_in` work as those of
    ClickHouseHTTPFront, over HTTP."""

    def __init__(self, db: Path, udf_dir: Path | None = None, config_file: Path | None = None):
        self.db, self.udf_dir, self.config_file = db, udf_dir, config_file
        self.port, self.proc = free_port(), None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        cmd = [sys.executable, "-m", "harness.http_front", "--port", str(self.port), "--db", str(self.db)]
        if self.udf_dir:
            cmd += ["--udf-dir", str(self.udf_dir)]
        if self.config_file:
            cmd += ["--config-file", str(self.config_file)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.proc.stdout.readline().decode()
        if "listening on" not in line:
            raise RuntimeError(f"the front did not start: {line}{self.proc.stderr.read().decode()[-2000:]}")
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc.stdout.close()
            self.proc.stderr.close()
            self.proc = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def query(self, sql: str, params: dict | None = None, database: str | None = None) -> str:
        """Runs one statement (TSV output); RuntimeError with the server's message on an error."""
        args = {f"param_{k}": v for k, v in (params or {}).items()}
        if database:
            args["database"] = database
        req = urllib.request.Request(f"{self.url}/?{urlencode(args)}", data=sql.encode(), method="POST")
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return r.read().decode()
        except urllib.error.HTTPError as e:
            raise RuntimeError(e.read().decode(errors="replace")) from None

    def run_in(self, database: str | None, stmts: list[str], params: dict | None = None) -> list[str]:
        return [self.query(s, params, database) for s in stmts]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="A stand-in for ClickHouse's HTTP interface over chDB.")
    ap.add_argument("--port", type=int, default=8123)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--db", required=True, help="chDB database folder (kept between runs)")
    ap.add_argument("--udf-dir", help="chDB udf_path folder (see harness.engine)")
    ap.add_argument("--config-file", help="server settings for chDB (see harness.engine.cluster_config)")
    args = ap.parse_args(argv)
    front = ClickHouseHTTPFront(open_session(args.db, args.udf_dir, args.config_file), host=args.host)
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
