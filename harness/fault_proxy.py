"""TEST INFRASTRUCTURE ONLY: HTTP/1.1 proxies on 127.0.0.1 that inject faults.

A proxy listens on a loopback port and forwards every request to one upstream
``127.0.0.1:<port>``; per request it may instead inject a fault, drawn from a seeded
``random.Random`` with a probability per fault kind. Rates change at run time, and every
injected fault is counted per kind, so that a test can check that each fault it meant to
cause really happened (``proxy.injected``).

    proxy = KinesisFaultProxy(kinesis.port, seed=1).start()    # in front of kinesalite
    proxy.set_faults({"throughput_exceeded": 0.2, "reset": 0.05})
    ...                                                       # --endpoint-url proxy.endpoint
    proxy.clear()
    assert proxy.injected["throughput_exceeded"] > 0
    proxy.stop()

Both proxies are context managers as well (``with ClickHouseFaultProxy(port) as proxy:``).

What a proxy offers (FaultProxy; the subclasses add their own, below)
    ``port``, ``endpoint``          where clients connect (the port is bound at construction)
    ``start()``, ``stop()``
    ``set_faults(rates, once_per=None)``, ``clear()``, ``rates``, ``spread(total, kinds)``
    ``refuse_for(seconds)``, ``refusing``, ``wait_listening()``
    ``injected``                    Counter of the faults injected, per kind
    ``calls``                       Counter of the requests received, per operation (for
                                    those the proxy names one)
    ``log``                         every request: ``Seen(t, op, fault, method, target,
                                    headers)``, in order of arrival

How requests travel
    Client connections are kept alive (HTTP/1.1); request bodies framed by Content-Length or
    chunked transfer coding are read whole, then sent unchanged on a new upstream
    connection, one per request, so that no fault leaves a half-used upstream connection
    behind. ``Expect: 100-continue`` is answered by the proxy itself. The upstream's answer
    (Content-Length, chunked or close-delimited) goes back to the client unchanged.
    When the upstream cannot be reached, the client's connection is reset.

Fault draws
    Each request the proxy may fault draws one number in [0, 1): the fault kinds, in the
    order of ``KINDS``, take consecutive slices of that interval, as wide as their rates
    (times the proxy's weight for the kind and the request's operation), and the rest of the
    interval forwards the request. The sequence of draws is fixed by the seed; which request
    gets which draw depends on the order in which concurrent requests arrive.

KinesisFaultProxy (in front of kinesalite)
    The AWS SDKs speak awsJson1.1 to Kinesis: ``POST /`` with
    ``X-Amz-Target: Kinesis_20131202.<Operation>`` and a JSON body
    (``Content-Type: application/x-amz-json-1.1``). Faults, on GetRecords and
    GetShardIterator (and on ListShards at a quarter of the rate):

    ``throughput_exceeded``  400 ProvisionedThroughputExceededException
    ``limit_exceeded``       400 LimitExceededException
    ``expired_iterator``     400 ExpiredIteratorException (GetRecords only)
    ``internal_failure``     500 InternalFailure
    ``reset``                the connection is reset (RST), no answer; not forwarded
    ``delay``                forwarded after ``delay`` seconds (2 by default)

    Every GetRecords call is recorded with its arrival time and its shard: shard iterators
    are traced from GetShardIterator (the request's ShardId, the answer's ShardIterator) and
    from each GetRecords answer (its NextShardIterator belongs to the same shard).
    ``max_calls_per_second(shard)`` is the most calls of one shard within any half-open
    one-second window [t, t + 1); ``get_records`` holds the calls as (time, shard), and
    ``shards_called()`` counts them per shard. The SDKs number their own retries of a call
    in the ``amz-sdk-request`` header (``attempt=2; max=3``), which ``log`` keeps.

ClickHouseFaultProxy (in front of a ClickHouse HTTP interface)
    Faults hit INSERT requests only (the statement is the ``query`` URL parameter, or starts
    the body: ``statement(req)``, ``insert_table(req)``); other requests are always
    forwarded. ``dedup_token(req)`` is a request's ``insert_deduplication_token``: with
    ``set_faults({...}, once_per=proxy.dedup_token)`` only the first attempt of each insert
    is faulted.

    ``lost_response``       forwarded and committed upstream, then the connection is closed
                            without an answer
    ``truncated_500``       not forwarded: a 500 whose Content-Length announces twice the
                            body sent before the connection closes (a server or balancer
                            dying while it answers)
    ``slow_response``       forwarded and committed, answered ``hold`` seconds later (3 by
                            default; a client whose timeout is shorter has gone by then)
    ``refuse``              the connection is reset and the proxy stops listening for
                            ``refuse_seconds`` (1 by default): new connections are refused
    ``reset``               the connection is reset (RST), no answer; not forwarded
    ``udf_timeout``         not forwarded: 500, Code 754 (UDF_EXECUTION_FAILED) around
                            Code 159 (TIMEOUT_EXCEEDED)
    ``unknown_identifier``  not forwarded: 404, Code 47 (UNKNOWN_IDENTIFIER)
    ``memory_limit``        not forwarded: 500, Code 241 (MEMORY_LIMIT_EXCEEDED)

    The error answers are those of a server: the HTTP status that ClickHouse gives the
    code (src/Server/HTTP/exceptionCodeToHTTPStatus.cpp), ``X-ClickHouse-Exception-Code``,
    and the exception text as the body. ``refuse_for(seconds)`` refuses connections on
    demand: the listening socket is closed (clients get ECONNREFUSED) and opened again on
    the same port.

TLS
    ``make_tls_files(directory)`` writes a self-signed CA and a server certificate for
    ``localhost`` and ``127.0.0.1`` signed by it (PEM files); a proxy built with
    ``tls=files`` serves HTTPS with them (``proxy.endpoint`` is then
    ``https://localhost:<port>``), in front of a plain HTTP upstream.
"""

from __future__ import annotations

import bisect
import datetime
import errno
import ipaddress
import json
import random
import re
import select
import socket
import ssl
import struct
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Self
from urllib.parse import parse_qsl, urlsplit

__all__ = [
    "Answer", "ClickHouseFaultProxy", "FaultProxy", "Forward", "KinesisFaultProxy",
    "LoseResponse", "Request", "Reset", "Response", "Seen", "TLSFiles", "make_tls_files",
    "max_in_window",
]

MAX_LINE = 65536

# --------------------------------------------------------------------------------------------
# HTTP/1.1 messages.


@dataclass
class Message:
    """A request or response as it was received: the head (start line, headers and the blank
    line), the body with its transfer framing (``raw_body``) and without it (``body``)."""

    start: str
    headers: list[tuple[str, str]]
    head: bytes
    raw_body: bytes = b""
    body: bytes = b""

    def header(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def has_token(self, name: str, token: str) -> bool:
        """Whether the comma-separated header ``name`` holds ``token`` (case-insensitive)."""
        value = self.header(name) or ""
        return token.lower() in (t.strip().lower() for t in value.split(","))

    def is_chunked(self) -> bool:
        return self.has_token("Transfer-Encoding", "chunked")


@dataclass
class Request(Message):
    method: str = ""
    target: str = ""
    version: str = "HTTP/1.1"

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def params(self) -> dict[str, str]:
        """The URL query parameters (the first value of each)."""
        out: dict[str, str] = {}
        for k, v in parse_qsl(urlsplit(self.target).query, keep_blank_values=True):
            out.setdefault(k, v)
        return out

    def keep_alive(self) -> bool:
        if self.has_token("Connection", "close"):
            return False
        return self.version != "HTTP/1.0" or self.has_token("Connection", "keep-alive")


@dataclass
class Response(Message):
    status: int = 0
    close_delimited: bool = False  # the body ended when the upstream closed

    def keep_alive(self) -> bool:
        return not (self.close_delimited or self.has_token("Connection", "close"))

    def encode(self) -> bytes:
        return self.head + self.raw_body


def _read_line(rfile) -> bytes:
    line = rfile.readline(MAX_LINE + 1)
    if len(line) > MAX_LINE:
        raise ValueError("header line too long")
    return line


def _read_head(rfile) -> tuple[str, list[tuple[str, str]], bytes] | None:
    """Start line, headers and the raw head; None when the peer closed before a message."""
    line = _read_line(rfile)
    while line in (b"\r\n", b"\n"):  # empty lines before a request are allowed
        line = _read_line(rfile)
    if not line:
        return None
    raw = [line]
    headers: list[tuple[str, str]] = []
    while True:
        h = _read_line(rfile)
        if not h:
            raise ConnectionError("connection closed inside a message head")
        raw.append(h)
        if h in (b"\r\n", b"\n"):
            break
        name, sep, value = h.decode("latin-1").partition(":")
        if not sep:
            raise ValueError(f"bad header line {h!r}")
        headers.append((name.strip(), value.strip()))
    return line.decode("latin-1").rstrip("\r\n"), headers, b"".join(raw)


def _read_exact(rfile, n: int) -> bytes:
    data = rfile.read(n)
    if len(data) != n:
        raise ConnectionError(f"connection closed after {len(data)} of {n} body bytes")
    return data


def _read_chunked(rfile) -> tuple[bytes, bytes]:
    raw, body = [], []
    while True:
        line = _read_line(rfile)
        if not line:
            raise ConnectionError("connection closed inside a chunked body")
        raw.append(line)
        size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while True:  # trailers, up to the blank line
                t = _read_line(rfile)
                if not t:
                    raise ConnectionError("connection closed inside chunked trailers")
                raw.append(t)
                if t in (b"\r\n", b"\n"):
                    return b"".join(raw), b"".join(body)
        data = _read_exact(rfile, size)
        crlf = _read_line(rfile)
        raw += [data, crlf]
        body.append(data)


def _read_body(rfile, msg: Message, *, until_close: bool) -> None:
    """Fills ``msg.raw_body`` and ``msg.body`` by the message's framing; without any, the body
    runs to the end of the connection when ``until_close`` (responses) and is empty otherwise."""
    if msg.is_chunked():
        msg.raw_body, msg.body = _read_chunked(rfile)
    elif msg.header("Content-Length") is not None:
        msg.raw_body = msg.body = _read_exact(rfile, int(msg.header("Content-Length")))
    elif until_close:
        msg.raw_body = msg.body = rfile.read()
        if isinstance(msg, Response):
            msg.close_delimited = True


def _status_line_and_headers(status: int, reason: str, headers: Mapping[str, str], length: int) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


# --------------------------------------------------------------------------------------------
# What the proxy does with a request.


@dataclass(frozen=True)
class Forward:
    """Forward after ``delay`` seconds; send the answer ``hold`` seconds after it came."""

    delay: float = 0.0
    hold: float = 0.0


@dataclass(frozen=True)
class LoseResponse:
    """Forward (the upstream acts on the request), then close without answering."""


@dataclass(frozen=True)
class Reset:
    """Reset the connection (SO_LINGER 0, so the peer gets an RST) without forwarding; then
    refuse new connections for ``refuse`` seconds."""

    refuse: float = 0.0


@dataclass(frozen=True)
class Answer:
    """Answer in the upstream's place. With ``announce`` above the body's length the
    Content-Length promises more than is sent, and the connection closes after the body."""

    status: int
    reason: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    announce: int | None = None

    def encode(self) -> bytes:
        length = len(self.body) if self.announce is None else self.announce
        return _status_line_and_headers(self.status, self.reason, self.headers, length) + self.body

    @property
    def truncated(self) -> bool:
        return self.announce is not None and self.announce > len(self.body)


Action = Forward | LoseResponse | Reset | Answer


@dataclass(frozen=True)
class Seen:
    """One request the proxy received: when (time.monotonic()), its operation, the fault
    injected (None when forwarded as is), its method, target and headers."""

    t: float
    op: str | None
    fault: str | None
    method: str
    target: str
    headers: tuple[tuple[str, str], ...] = ()

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


def max_in_window(times: list[float], width: float = 1.0) -> int:
    """The most of ``times`` within any half-open window [t, t + width)."""
    ts = sorted(times)
    best = 0
    for i, t in enumerate(ts):
        best = max(best, bisect.bisect_left(ts, t + width, lo=i) - i)
    return best


# --------------------------------------------------------------------------------------------
# The proxy.


class FaultProxy:
    """A threaded HTTP/1.1 proxy from 127.0.0.1:<port> to 127.0.0.1:<upstream_port>.

    Subclasses name their fault kinds (``KINDS``) and say what a request's operation is
    (``operation``), how much of a kind's rate applies to it (``weight``), what each kind
    does (``fault``), and what to note when a request arrives or is answered
    (``arrived``, ``answered``).

    ``seed``: seeds the fault draws. ``faults``: initial rates (see ``set_faults``).
    ``tls``: serve HTTPS with these files (see ``make_tls_files``). ``port``: listen on this
    port (0: a free one). ``upstream_timeout``: seconds an upstream exchange may take.
    """

    KINDS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, upstream_port: int, *, seed: int = 0, faults: Mapping[str, float] | None = None,
                 tls: TLSFiles | None = None, port: int = 0, upstream_host: str = "127.0.0.1",
                 upstream_timeout: float = 60.0):
        self.upstream = (upstream_host, upstream_port)
        self.upstream_timeout = upstream_timeout
        self.host = "127.0.0.1"
        self.tls = tls
        self._ssl = tls.server_context() if tls else None
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._rates: dict[str, float] = {}
        self._once_per: Callable[[Request], str | None] | None = None
        self._faulted_keys: set[str] = set()
        self.injected: Counter[str] = Counter()  # faults injected, per kind
        self.calls: Counter[str] = Counter()  # requests received, per operation
        self.log: list[Seen] = []
        self._stopping = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._refuse_until = 0.0
        self._listening = threading.Event()  # set while the listening socket is open
        self._closed = threading.Event()  # set once the accept loop closed it for a refusal
        self._conns: set[socket.socket] = set()  # open client connections
        self._idle: set[socket.socket] = set()  # those waiting for their next request
        self._closing: set[socket.socket] = set()  # those to close after their current answer
        self._listener = self._bind(port)
        self.port = self._listener.getsockname()[1]
        self._thread: threading.Thread | None = None
        if faults:
            self.set_faults(faults)

    # -- what subclasses define ----------------------------------------------------------------

    def operation(self, req: Request) -> str | None:
        """The request's operation, for counting and weights; None: never faulted."""
        return None

    def weight(self, kind: str, op: str) -> float:
        """The share of ``kind``'s rate that applies to operation ``op`` (0 = never)."""
        return 1.0

    def fault(self, kind: str, req: Request, op: str) -> Action:
        raise NotImplementedError(kind)

    def arrived(self, req: Request, op: str | None, fault: str | None, t: float) -> None:
        """Called for every request, before it is handled."""

    def answered(self, req: Request, op: str | None, resp: Response) -> None:
        """Called with the upstream's answer to every forwarded request."""

    # -- public API -------------------------------------------------------------------------------

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def endpoint(self) -> str:
        """The URL to give clients: http://127.0.0.1:<port>, or https://localhost:<port>
        with TLS (the name the certificate is for)."""
        host = "localhost" if self.tls else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError("already started")
        self._thread = threading.Thread(target=self._accept_loop, name=f"fault-proxy-{self.port}", daemon=True)
        self._thread.start()
        self._listening.wait(5)
        return self

    def stop(self) -> None:
        """Stops listening and closes every client connection."""
        self._stopping.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            _shutdown(c)
        self._wake_r.close()
        self._wake_w.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def set_faults(self, rates: Mapping[str, float], *, once_per: Callable[[Request], str | None] | None = None) -> None:
        """Faults from now on: ``{kind: probability}`` per eligible request (kinds of
        ``KINDS``; the probabilities add up to at most 1). With ``once_per``, a request is
        faulted only if ``once_per(request)`` is a key that no faulted request had before
        (None: never), so that each key's first attempt is faulted and its retries are not."""
        unknown = set(rates) - set(self.KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {list(self.KINDS)}")
        if any(r < 0 for r in rates.values()) or sum(rates.values()) > 1 + 1e-9:
            raise ValueError(f"rates must be >= 0 and add up to at most 1: {dict(rates)}")
        with self._lock:
            self._rates = {k: float(v) for k, v in rates.items() if v}
            self._once_per = once_per
            self._faulted_keys = set()

    def clear(self) -> None:
        """No more faults: every request is forwarded."""
        self.set_faults({})

    @property
    def rates(self) -> dict[str, float]:
        with self._lock:
            return dict(self._rates)

    def spread(self, total: float, kinds: tuple[str, ...] | None = None) -> dict[str, float]:
        """Rates that share ``total`` equally among ``kinds`` (default: all)."""
        kinds = kinds or self.KINDS
        return {k: total / len(kinds) for k in kinds}

    def refuse_for(self, seconds: float) -> None:
        """Closes the listening socket for ``seconds``, so that connections are refused, and
        ends the open connections (each after the answer it is sending, if any). Returns once
        the socket is closed."""
        if self._stopping.is_set():
            return
        with self._lock:
            self._refuse_until = max(self._refuse_until, time.monotonic() + seconds)
            self._closed.clear()
        self._wake()
        self._closed.wait(5)
        with self._lock:
            self._closing |= self._conns
            idle = list(self._idle)
        for c in idle:
            _shutdown(c)

    @property
    def refusing(self) -> bool:
        return not self._listening.is_set()

    def wait_listening(self, timeout: float = 10.0) -> bool:
        return self._listening.wait(timeout)

    # -- accepting ----------------------------------------------------------------------------

    def _bind(self, port: int) -> socket.socket:
        deadline = time.monotonic() + 10
        while True:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((self.host, port))
                s.listen(128)
                return s
            except OSError as e:
                s.close()
                # Reopening after a refusal: another socket may hold the port for a moment.
                if e.errno != errno.EADDRINUSE or port == 0 or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def _accept_loop(self) -> None:
        listener: socket.socket | None = self._listener
        self._listening.set()
        try:
            while not self._stopping.is_set():
                with self._lock:
                    wait = self._refuse_until - time.monotonic()
                if wait > 0:
                    if listener is not None:
                        self._listening.clear()
                        listener.close()
                        listener = None
                    self._closed.set()
                    if select.select([self._wake_r], [], [], wait)[0]:
                        self._wake_r.recv(64)
                    continue
                if listener is None:
                    listener = self._bind(self.port)
                    self._listening.set()
                ready = select.select([listener, self._wake_r], [], [])[0]
                if self._wake_r in ready:
                    self._wake_r.recv(64)
                    continue
                try:
                    conn, _ = listener.accept()
                except OSError:
                    continue
                threading.Thread(target=self._serve, args=(conn,), daemon=True).start()
        finally:
            self._listening.clear()
            if listener is not None:
                listener.close()

    # -- one client connection ----------------------------------------------------------------

    def _serve(self, conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._ssl is not None:
            try:
                conn.settimeout(10)
                conn = self._ssl.wrap_socket(conn, server_side=True)
                conn.settimeout(None)
            except (OSError, ssl.SSLError):
                conn.close()
                return
        with self._lock:
            self._conns.add(conn)
        rfile = conn.makefile("rb")
        keep = True
        try:
            while keep and not self._stopping.is_set():
                with self._lock:
                    if conn in self._closing:
                        break
                    self._idle.add(conn)
                parsed = _read_head(rfile)
                with self._lock:
                    self._idle.discard(conn)
                if parsed is None:
                    break
                keep = self._handle(conn, rfile, *parsed)
        except (OSError, ValueError, ConnectionError):
            keep = False
        finally:
            with self._lock:
                self._conns.discard(conn)
                self._idle.discard(conn)
                self._closing.discard(conn)
            rfile.close()
            conn.close()

    def _handle(self, conn: socket.socket, rfile, start: str, headers: list, head: bytes) -> bool:
        """Handles one request; returns whether the connection stays open."""
        parts = start.split(" ", 2)
        if len(parts) != 3:
            raise ValueError(f"bad request line {start!r}")
        req = Request(start, headers, head, method=parts[0], target=parts[1], version=parts[2])
        if req.has_token("Expect", "100-continue"):
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            req.headers = [(k, v) for k, v in headers if k.lower() != "expect"]
            req.head = b"".join(
                line for line in head.splitlines(keepends=True) if not line.lower().startswith(b"expect:"))
        _read_body(rfile, req, until_close=False)

        t = time.monotonic()
        op = self.operation(req)
        kind = self._draw(req, op)
        self.arrived(req, op, kind, t)
        with self._lock:
            self.log.append(Seen(t, op, kind, req.method, req.target, tuple(req.headers)))
        action = self.fault(kind, req, op) if kind else Forward()

        if isinstance(action, Reset):
            if action.refuse:  # refused first: a client that reconnects at once is refused too
                self.refuse_for(action.refuse)
            _reset(conn)
            return False
        if isinstance(action, Answer):
            conn.sendall(action.encode())
            return not action.truncated and req.keep_alive()
        if isinstance(action, Forward) and action.delay and self._stopping.wait(action.delay):
            return False
        try:
            resp = self._exchange(req)
        except (OSError, ValueError, ConnectionError):
            _reset(conn)  # the upstream is gone: so is the connection
            return False
        self.answered(req, op, resp)
        if isinstance(action, LoseResponse):
            return False
        if action.hold and self._stopping.wait(action.hold):
            return False
        conn.sendall(resp.encode())
        return req.keep_alive() and resp.keep_alive()

    def _exchange(self, req: Request) -> Response:
        """Sends the request to the upstream on a new connection; returns its final answer."""
        with socket.create_connection(self.upstream, timeout=self.upstream_timeout) as up:
            up.sendall(req.head + req.raw_body)
            with up.makefile("rb") as rfile:
                while True:
                    parsed = _read_head(rfile)
                    if parsed is None:
                        raise ConnectionError("the upstream closed without answering")
                    start, headers, head = parsed
                    status = int(start.split(" ", 2)[1])
                    resp = Response(start, headers, head, status=status)
                    if 100 <= status < 200:
                        continue  # interim answers stay between the proxy and the upstream
                    if req.method != "HEAD" and status not in (204, 304):
                        _read_body(rfile, resp, until_close=True)
                    return resp

    def _draw(self, req: Request, op: str | None) -> str | None:
        with self._lock:
            if op is not None:
                self.calls[op] += 1
            if op is None or not self._rates:
                return None
            key = None
            if self._once_per is not None:
                key = self._once_per(req)
                if key is None or key in self._faulted_keys:
                    return None
            r = self._rng.random()
            acc = 0.0
            for kind in self.KINDS:
                acc += self._rates.get(kind, 0.0) * self.weight(kind, op)
                if r < acc:
                    self.injected[kind] += 1
                    if key is not None:
                        self._faulted_keys.add(key)
                    return kind
            return None


def _reset(conn: socket.socket) -> None:
    """Closes with SO_LINGER 0: the peer gets an RST, not a FIN."""
    try:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    _shutdown(conn, how=None)


def _shutdown(conn: socket.socket, how: int | None = socket.SHUT_RDWR) -> None:
    """Ends a connection that another thread may be reading: shutdown (which wakes that
    thread) or, with ``how=None``, close. On a TLS connection the shutdown is the TCP
    socket's: ``SSLSocket.shutdown`` would also drop the TLS state under that thread."""
    try:
        if how is None:
            conn.close()
        else:
            socket.socket.shutdown(conn, how)
    except OSError:
        pass


# --------------------------------------------------------------------------------------------
# Kinesis.


class KinesisFaultProxy(FaultProxy):
    """In front of a Kinesis endpoint (awsJson1.1). See the module's documentation.

    ``delay``: seconds of the ``delay`` fault. ``op_weights``: the share of every rate that
    applies to each operation (default: GetRecords and GetShardIterator 1, ListShards 0.25,
    any other 0). ``expired_iterator`` applies to GetRecords only.
    """

    KINDS = ("throughput_exceeded", "limit_exceeded", "expired_iterator", "internal_failure", "reset", "delay")
    TARGET_PREFIX = "Kinesis_20131202."
    OP_WEIGHTS: ClassVar[dict[str, float]] = {"GetRecords": 1.0, "GetShardIterator": 1.0, "ListShards": 0.25}
    ACCOUNT = "000000000000"

    def __init__(self, upstream_port: int, *, delay: float = 2.0, op_weights: Mapping[str, float] | None = None,
                 **kw):
        self.delay = delay
        self.op_weights = dict(self.OP_WEIGHTS if op_weights is None else op_weights)
        self._shard_of: dict[str, tuple[str, str]] = {}  # shard iterator -> (stream, shard id)
        self.get_records: list[tuple[float, str | None]] = []  # (arrival time, shard id)
        super().__init__(upstream_port, **kw)

    def operation(self, req: Request) -> str | None:
        target = req.header("X-Amz-Target") or ""
        return target[len(self.TARGET_PREFIX):] if target.startswith(self.TARGET_PREFIX) else None

    def weight(self, kind: str, op: str) -> float:
        if kind == "expired_iterator" and op != "GetRecords":
            return 0.0
        return self.op_weights.get(op, 0.0)

    @staticmethod
    def _json(msg: Message) -> dict:
        try:
            doc = json.loads(msg.body or b"{}")
        except ValueError:
            return {}
        return doc if isinstance(doc, dict) else {}

    def stream_and_shard(self, req: Request) -> tuple[str | None, str | None]:
        """The stream (name or ARN) and shard a request is about: from its StreamName,
        StreamARN and ShardId, or from the shard iterator it holds (None: unknown)."""
        doc = self._json(req)
        stream = doc.get("StreamName") or doc.get("StreamARN")
        if "ShardId" in doc:
            return stream, doc["ShardId"]
        with self._lock:
            traced = self._shard_of.get(doc.get("ShardIterator", ""))
        return traced if traced else (stream, None)

    def shard_of(self, req: Request) -> str | None:
        """The shard a GetRecords or GetShardIterator request is about (None: unknown)."""
        return self.stream_and_shard(req)[1]

    def arrived(self, req: Request, op: str | None, fault: str | None, t: float) -> None:
        if op == "GetRecords":
            shard = self.shard_of(req)
            with self._lock:
                self.get_records.append((t, shard))

    def answered(self, req: Request, op: str | None, resp: Response) -> None:
        if resp.status != 200 or op not in ("GetShardIterator", "GetRecords"):
            return
        stream, shard = self.stream_and_shard(req)
        nxt = self._json(resp).get("ShardIterator" if op == "GetShardIterator" else "NextShardIterator")
        if stream and shard and nxt:
            with self._lock:
                self._shard_of[nxt] = (stream, shard)

    def fault(self, kind: str, req: Request, op: str) -> Action:
        stream, shard = self.stream_and_shard(req)
        stream = (stream or "").rpartition("/")[2] or "the stream"
        shard = shard or "the shard"
        if kind == "throughput_exceeded":
            return self.error(400, "ProvisionedThroughputExceededException",
                              f"Rate exceeded for shard {shard} in stream {stream} under account {self.ACCOUNT}.")
        if kind == "limit_exceeded":
            return self.error(400, "LimitExceededException",
                              f"Rate exceeded for stream {stream} under account {self.ACCOUNT}.")
        if kind == "expired_iterator":
            now = datetime.datetime.now(datetime.UTC)
            created = now - datetime.timedelta(minutes=5, seconds=1)
            fmt = "%a %b %d %H:%M:%S UTC %Y"
            return self.error(400, "ExpiredIteratorException",
                              f"Iterator expired. The iterator was created at time {created.strftime(fmt)} while "
                              f"right now it is {now.strftime(fmt)} which is further in the future than the "
                              "tolerated delay of 300000 milliseconds.")
        if kind == "internal_failure":
            return self.error(500, "InternalFailure", "Internal service failure.")
        if kind == "reset":
            return Reset()
        if kind == "delay":
            return Forward(delay=self.delay)
        raise ValueError(kind)

    @staticmethod
    def error(status: int, type_: str, message: str) -> Answer:
        """An awsJson1.1 error answer."""
        body = json.dumps({"__type": type_, "message": message}).encode()
        reason = {400: "Bad Request", 500: "Internal Server Error"}.get(status, "Error")
        return Answer(status, reason, body, {"Content-Type": "application/x-amz-json-1.1",
                                             "x-amzn-RequestId": str(uuid.uuid4())})

    def max_calls_per_second(self, shard: str | None = None) -> int:
        """The most GetRecords calls of one shard (``shard``, or the busiest) within any
        half-open one-second window [t, t + 1)."""
        with self._lock:
            calls = list(self.get_records)
        by_shard: dict[str, list[float]] = {}
        for t, s in calls:
            if s is not None:
                by_shard.setdefault(s, []).append(t)
        if shard is not None:
            return max_in_window(by_shard.get(shard, []))
        return max((max_in_window(ts) for ts in by_shard.values()), default=0)

    def shards_called(self) -> Counter[str | None]:
        """GetRecords calls per shard (None: an iterator the proxy did not see issued)."""
        with self._lock:
            return Counter(s for _, s in self.get_records)


# --------------------------------------------------------------------------------------------
# ClickHouse.

_INSERT = re.compile(r"\s*INSERT\s+INTO\s+(?:TABLE\s+)?((?:`(?:[^`\\]|\\.)*`|[\w.])+)", re.IGNORECASE)
VERSION = "26.9.1.1"


class ClickHouseFaultProxy(FaultProxy):
    """In front of a ClickHouse HTTP interface. See the module's documentation.

    ``hold``: seconds a ``slow_response`` answer is held. ``refuse_seconds``: how long the
    ``refuse`` fault refuses connections.
    """

    KINDS = ("lost_response", "truncated_500", "slow_response", "refuse", "reset", "udf_timeout",
             "unknown_identifier", "memory_limit")

    # (code, HTTP status, reason, body) of the errors a sick server answers.
    SERVER_ERRORS: ClassVar[dict[str, tuple[int, int, str, str]]] = {
        "udf_timeout": (
            754, 500, "Internal Server Error",
            ("Code: 754. DB::Exception: UDF returned an error while executing the command of function "
            "dynamo_flatten_columns. Original error: Code: 159. DB::Exception: Timeout exceeded: "
            f"elapsed 10.0 seconds, maximum: 10. (TIMEOUT_EXCEEDED) (version {VERSION}): while pushing to "
            f"view people_stream_mv. (UDF_EXECUTION_FAILED) (version {VERSION})")),
        "unknown_identifier": (
            47, 404, "Not Found",
            ("Code: 47. DB::Exception: Unknown expression identifier 'x' in scope SELECT 'stream' AS source, "
            "record AS line, dynamo_flatten_columns(record, x) AS j FROM people_stream: while pushing to view "
            f"people_stream_mv. (UNKNOWN_IDENTIFIER) (version {VERSION})")),
        "memory_limit": (
            241, 500, "Internal Server Error",
            ("Code: 241. DB::Exception: Memory limit (total) exceeded: would use 14.21 GiB (attempt to "
            "allocate chunk of 4.00 MiB bytes), current RSS: 13.95 GiB, maximum: 14.18 GiB. "
            "OvercommitTracker decision: Query was selected to stop by OvercommitTracker: while pushing to "
            f"view people_stream_mv. (MEMORY_LIMIT_EXCEEDED) (version {VERSION})")),
    }

    def __init__(self, upstream_port: int, *, hold: float = 3.0, refuse_seconds: float = 1.0, **kw):
        self.hold = hold
        self.refuse_seconds = refuse_seconds
        super().__init__(upstream_port, **kw)

    @staticmethod
    def statement(req: Request) -> str:
        """The request's SQL: the ``query`` URL parameter, else the start of the body."""
        q = req.params.get("query")
        if q:
            return q
        return req.body[:4096].decode("utf-8", "replace")

    @classmethod
    def insert_table(cls, req: Request) -> str | None:
        """The table an INSERT request writes to, as written (None: not an INSERT)."""
        m = _INSERT.match(cls.statement(req))
        return m.group(1) if m else None

    @staticmethod
    def dedup_token(req: Request) -> str | None:
        """The request's ``insert_deduplication_token`` (a key for ``set_faults(once_per=…)``)."""
        return req.params.get("insert_deduplication_token")

    def operation(self, req: Request) -> str | None:
        return "INSERT" if self.insert_table(req) else None

    def fault(self, kind: str, req: Request, op: str) -> Action:
        if kind == "lost_response":
            return LoseResponse()
        if kind == "slow_response":
            return Forward(hold=self.hold)
        if kind == "reset":
            return Reset()
        if kind == "refuse":
            return Reset(refuse=self.refuse_seconds)
        if kind == "truncated_500":
            body = b"Code: 210. DB::NetException: Connection reset by peer, while writing to socket"
            return Answer(500, "Internal Server Error", body[: len(body) // 2],
                          {"Content-Type": "text/plain; charset=UTF-8"}, announce=len(body))
        if kind in self.SERVER_ERRORS:
            code, status, reason, text = self.SERVER_ERRORS[kind]
            return Answer(status, reason, (text + "\n").encode(), {
                "Content-Type": "text/plain; charset=UTF-8",
                "X-ClickHouse-Server-Display-Name": "clickhouse",
                "X-ClickHouse-Exception-Code": str(code),
                "X-ClickHouse-Query-Id": str(uuid.uuid4()),
            })
        raise ValueError(kind)


# --------------------------------------------------------------------------------------------
# TLS.


@dataclass(frozen=True)
class TLSFiles:
    """PEM files: the CA certificate, and the server's certificate and key."""

    ca: Path
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts the CA (and nothing else)."""
        return ssl.create_default_context(cafile=str(self.ca))


def make_tls_files(directory: Path | str | None = None,
                   hosts: tuple[str, ...] = ("localhost", "127.0.0.1"), days: int = 7) -> TLSFiles:
    """Writes ``ca.pem``, ``server.pem`` and ``server.key`` into ``directory`` (default: a new
    temporary one): a self-signed CA, and a certificate for ``hosts`` (names and IP
    addresses, as subject alternative names) signed by it. EC P-256 keys, SHA-256."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    out = Path(directory) if directory is not None else Path(tempfile.mkdtemp(prefix="fault-proxy-tls-"))
    out.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=days)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fault-proxy test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (x509.CertificateBuilder()
          .subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(ca_ski, critical=False)
          .sign(ca_key, hashes.SHA256()))

    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for h in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            names.append(x509.DNSName(h))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
            .sign(ca_key, hashes.SHA256()))

    files = TLSFiles(out / "ca.pem", out / "server.pem", out / "server.key")
    files.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    files.key.chmod(0o600)
    return files
