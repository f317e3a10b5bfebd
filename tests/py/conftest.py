"""Shared fixtures: one chDB session per test process, with the shipped UDF config installed.

The binary comes from $DYNAMO_FLATTEN_BIN, else target/release/dynamo-flatten (build it first
with `cargo build --release`). chDB accepts a single database path per process, so every test
shares the session-scoped `ch` fixture and uses its own table names.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

import chdb_udf
from chdb_udf import Variant

FIXTURES = REPO / "tests" / "fixtures"

# Every variant keeps the shipped settings and changes only what its name says.
MODE_VARIANTS = chdb_udf.mode_variants(base="dynamo_flatten", prefix="df")
EXTRA_VARIANTS = [
    Variant("df_fail", args=(("--on-error", "fail"),)),
    Variant("df_exec_fail", type="executable", args=(("--on-error", "fail"),)),
    Variant("df_snap_v", args=(("--snapshot-version", "1700000000000000"),)),
    # A broken install: the program expects chunk headers that ClickHouse does not send.
    Variant("df_header_mismatch", chunk_header=False, args=(("--chunk-header", None),)),
    # Column-aware, parameterised: df_cols('<column list>')(line). Parameters work for
    # `executable` functions only; the value arrives as one single-quoted SQL literal.
    Variant("df_cols", type="executable", args=(("--columns", "{columns:String}"),)),
    # The column-aware function for a destination whose metadata columns are named v and d.
    Variant("df_columns_vd", base="dynamo_flatten_columns",
            args=(("--version-field", "v"), ("--deleted-field", "d"))),
]


def _tsv_lines(text: str) -> list[str]:
    """The rows of TSV output: split at "\n" only (str.splitlines would also split inside a
    value at the characters TSV leaves unescaped, such as U+2028 or \x1c)."""
    lines = text.split("\n")
    return lines[:-1] if lines[-1] == "" else lines


def _unescape_tsv(field: str) -> str | None:
    if field == "\\N":
        return None
    if "\\" not in field:
        return field
    out, i = [], 0
    table = {"t": "\t", "n": "\n", "r": "\r", "0": "\0", "b": "\b", "f": "\f", "\\": "\\", "'": "'", "a": "\a", "v": "\v"}
    while i < len(field):
        c = field[i]
        if c == "\\" and i + 1 < len(field):
            out.append(table.get(field[i + 1], field[i + 1]))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


class CH:
    """A thin wrapper over the chDB session: results as lists of string tuples (exact values)."""

    def __init__(self, session, udf_dir: Path):
        self.session = session
        self.udf_dir = udf_dir

    def run(self, sql: str) -> str:
        return chdb_udf.query(self.session, sql, "TabSeparated")

    def rows(self, sql: str) -> list[tuple]:
        text = self.run(sql)
        return [tuple(_unescape_tsv(f) for f in line.split("\t")) for line in _tsv_lines(text)]

    def one(self, sql: str):
        rows = self.rows(sql)
        assert len(rows) == 1 and len(rows[0]) == 1, rows
        return rows[0][0]

    def col(self, sql: str) -> list:
        return [r[0] for r in self.rows(sql)]


@pytest.fixture(scope="session")
def binary() -> Path:
    try:
        return chdb_udf.binary_path()
    except FileNotFoundError as e:
        pytest.fail(str(e))


@pytest.fixture(scope="session")
def udf_dir(tmp_path_factory, binary) -> Path:
    return chdb_udf.build_udf_dir(
        tmp_path_factory.mktemp("udf"), binary=binary, variants=MODE_VARIANTS + EXTRA_VARIANTS
    )


@pytest.fixture(scope="session")
def ch(tmp_path_factory, udf_dir) -> CH:
    session = chdb_udf.open_session(tmp_path_factory.mktemp("chdb") / "db", udf_dir)
    yield CH(session, udf_dir)
    session.close()


@pytest.fixture(scope="session")
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def s3_endpoint():
    """A moto S3 server on 127.0.0.1 (see sqlrun.moto_server), shared by the test modules that
    read from S3; each module uses its own bucket. Stopped at the end of the session."""
    import sqlrun

    try:
        server = sqlrun.moto_server()
        endpoint = server.__enter__()
    except RuntimeError as e:
        pytest.fail(str(e))
    try:
        yield endpoint
    finally:
        server.__exit__(None, None, None)


@pytest.fixture(scope="module")
def kinesis():
    """A kinesalite server on 127.0.0.1 for one test module."""
    from local_aws import LocalKinesis

    with LocalKinesis() as k:
        yield k


@pytest.fixture(scope="module")
def front(ch):
    """The ClickHouse HTTP front over the session's chDB (tests/support), for one test module;
    `front.port` is its port."""
    sys.path.insert(0, str(REPO / "tests" / "support"))
    import clickhouse_http_front as chf

    f = chf.ClickHouseHTTPFront(ch.session)
    _, port = f.start_in_thread()
    f.port = port
    yield f
    f.stop()

