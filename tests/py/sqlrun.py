"""Running the sql/ scripts as written in chDB, and a local S3 server for them to read from.

How the scripts are run: each file is split into statements (comments, strings and quoted
identifiers are respected, see `split_statements`) and every statement is sent unchanged.
Query parameters are NOT substituted here: chDB's `Session.query(sql, fmt, params={...})`
hands them to the engine, which replaces `{name:Type}` itself, the same mechanism as
`clickhouse-client --param_name=…`. Like clickhouse-client with `--multiquery`, every
statement of a file gets all parameters, and the first failing statement stops the file.

The S3 server is moto (`moto_server` from the venv) on 127.0.0.1 at a free port
(`moto_server()`; the `s3_endpoint` fixture in conftest.py runs one per test process). The
same endpoint serves moto's DynamoDB and DynamoDB Streams (`aws_client`).
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from conftest import REPO, _tsv_lines, _unescape_tsv

SQL_DIR = REPO / "sql"


def split_statements(sql: str, keep_comments: bool = True) -> list[str]:
    """The statements of a script, split at `;` outside comments, strings and quoted names.

    `-- …` and `/* … */` are comments; '…', "…" and `…` may contain `;`, backslash escapes
    and doubled quotes. Comment-only pieces are dropped; statements keep their own comments
    unless keep_comments is false.
    """
    out: list[str] = []
    buf: list[str] = []
    i, n, has_code = 0, len(sql), False
    while i < n:
        c = sql[i]
        if sql.startswith("--", i):
            end = sql.find("\n", i)
            j = n if end < 0 else end + 1
            buf.append(sql[i:j] if keep_comments else "\n")
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            if end < 0:
                raise ValueError(f"unterminated comment at {i}")
            j = end + 2
            buf.append(sql[i:j] if keep_comments else " ")
        elif c in "'\"`":
            j = i + 1
            while True:
                if j >= n:
                    raise ValueError(f"unterminated {c} at {i}")
                if sql[j] == "\\" or sql[j] == c and sql.startswith(c + c, j):
                    j += 2
                elif sql[j] == c:
                    break
                else:
                    j += 1
            j += 1
            buf.append(sql[i:j])
            has_code = True
        elif c == ";":
            if has_code:
                out.append("".join(buf).strip())
            buf, has_code, j = [], False, i + 1
        else:
            buf.append(c)
            has_code = has_code or not c.isspace()
            j = i + 1
        i = j
    if has_code:
        out.append("".join(buf).strip())
    return out


def query(ch, sql: str, params: dict | None = None) -> str:
    res = ch.session.query(sql, "TabSeparated", params=params or None)
    return res.bytes().decode() if hasattr(res, "bytes") else str(res)


def run_script(ch, sql: str, params: dict | None = None) -> list[str]:
    """Runs a script statement by statement; returns each statement's TSV output."""
    return [query(ch, stmt, params) for stmt in split_statements(sql)]


def run_file(ch, name: str, params: dict | None = None) -> list[str]:
    """Runs sql/<name> statement by statement; returns each statement's TSV output."""
    return run_script(ch, (SQL_DIR / name).read_text(), params)


def schema_sql(binary, *args: str, stdin: str | None = None) -> str:
    """What `dynamo-flatten schema <args…>` prints (`stdin`: what it reads when given no file).

    Raises RuntimeError with the program's stderr when it fails.
    """
    out = subprocess.run([str(binary), "schema", *args], input=stdin, capture_output=True,
                         text=True, timeout=60, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"dynamo-flatten schema exited with {out.returncode}: {out.stderr}")
    return out.stdout


def run_generated(ch, sql: str) -> list[str]:
    """Runs the SQL of `dynamo-flatten schema` as printed, except its last statement, the
    snapshot load: its s3(URL, 'LineAsString') reads the local file URL with file() instead
    (same arguments; generate it with --s3-auth server and the file path as --s3-url)."""
    stmts = split_statements(sql, keep_comments=False)
    snapshot = stmts.pop()
    assert snapshot.startswith("INSERT INTO ") and "FROM s3(" in snapshot, snapshot
    return [query(ch, s) for s in stmts] + [query(ch, snapshot.replace("FROM s3(", "FROM file("))]


def tsv(text: str) -> list[tuple]:
    return [tuple(_unescape_tsv(f) for f in line.split("\t")) for line in _tsv_lines(text)]


def insert_lines(ch, table: str, lines: list[str]) -> None:
    """One INSERT … FORMAT LineAsString with one row per line: what a forwarder sends."""
    assert all("\n" not in line for line in lines)
    query(ch, f"INSERT INTO {table} FORMAT LineAsString\n" + "".join(line + "\n" for line in lines))


def dumps(doc, ascii_only: bool = False) -> str:
    """Compact JSON, as DynamoDB and Kinesis write it (non-ASCII raw unless ascii_only)."""
    return json.dumps(doc, ensure_ascii=ascii_only, separators=(",", ":"))


def kds_image(av):
    """An attribute value (or image) as Kinesis Data Streams writes it: B and BS
    base64-encoded a second time."""
    if isinstance(av, dict):
        if "B" in av and len(av) == 1:
            return {"B": base64.b64encode(av["B"].encode()).decode()}
        if "BS" in av and len(av) == 1:
            return {"BS": [base64.b64encode(b.encode()).decode() for b in av["BS"]]}
        return {k: kds_image(v) for k, v in av.items()}
    if isinstance(av, list):
        return [kds_image(v) for v in av]
    return av


def count(ch, sql_from: str) -> int:
    return int(query(ch, f"SELECT count() FROM {sql_from}"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# moto_server, with DynamoDB Streams records stamped in whole seconds as AWS stamps them
# (ApproximateCreationDateTime "rounded down to the second"); moto keeps milliseconds.
_MOTO_WHOLE_SECONDS = """
import sys
from moto.dynamodb.models import table
from moto.server import main

init = table.StreamRecord.__init__

def whole_seconds(self, *args, **kwargs):
    init(self, *args, **kwargs)
    d = self.record["dynamodb"]
    d["ApproximateCreationDateTime"] = d["ApproximateCreationDateTime"].replace(microsecond=0)

table.StreamRecord.__init__ = whole_seconds
sys.exit(main())
"""


@contextlib.contextmanager
def moto_server(stream_seconds: bool = False) -> Iterator[str]:
    """A moto server (S3, DynamoDB, DynamoDB Streams, …) on 127.0.0.1; yields its endpoint URL
    and stops it afterwards. With `stream_seconds`, its stream records carry whole seconds.

    Raises RuntimeError when it cannot be started.
    """
    moto = Path(sys.executable).parent / "moto_server"
    if not moto.exists():
        raise RuntimeError(f"{moto} not found: run scripts/setup (moto[server] is in requirements.txt)")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-c", _MOTO_WHOLE_SECONDS] if stream_seconds else [str(moto)]
    proc = subprocess.Popen([*command, "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                direct.open(endpoint + "/", timeout=1).close()
                break
            except (urllib.error.URLError, OSError):
                if proc.poll() is not None:
                    raise RuntimeError(f"moto_server exited with {proc.returncode}")
                if time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not answer within 20 s")
                time.sleep(0.05)
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# The dummy keys every client of the moto server signs with (moto takes any).
MOTO_KEY = MOTO_SECRET = "test"


def aws_client(service: str, endpoint: str, **kw):
    """A boto3 client of `service` (s3, dynamodb, dynamodbstreams, …) for the local moto
    server: us-east-1, the dummy keys."""
    import boto3

    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=MOTO_KEY, aws_secret_access_key=MOTO_SECRET, **kw)


def s3_client(endpoint: str):
    """A boto3 S3 client for the local server (path-style addressing, dummy keys)."""
    from botocore.config import Config

    return aws_client("s3", endpoint, config=Config(s3={"addressing_style": "path"}))


def own_database(ch, name: str) -> Iterator:
    """Runs a test module in its own database of the shared session (a fixture body)."""
    ch.run(f"DROP DATABASE IF EXISTS {name}")
    ch.run(f"CREATE DATABASE {name}")
    ch.run(f"USE {name}")
    try:
        yield ch
    finally:
        ch.run("USE default")
