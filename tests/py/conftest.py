"""Shared fixtures: one chDB session per test process, with the shipped UDF config installed.

The binary comes from $DYNAMO_FLATTEN_BIN, else target/release/dynamo-flatten (build it first
with `cargo build --release`). chDB accepts a single database path per process, so every test
shares the session-scoped `ch` fixture and uses its own table names. The helpers are in the
`harness` package at the repository's root.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import FIXTURES
from harness.aws import LocalKinesis, Moto
from harness.engine import Engine, Variant, binary_path, build_udf_dir, mode_variants
from harness.http_front import ClickHouseHTTPFront

# Every variant keeps the shipped settings and changes only what its name says.
MODE_VARIANTS = mode_variants(base="dynamo_flatten", prefix="df")
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


@pytest.fixture(scope="session")
def binary() -> Path:
    try:
        return binary_path()
    except FileNotFoundError as e:
        pytest.fail(str(e))


@pytest.fixture(scope="session")
def udf_dir(tmp_path_factory, binary) -> Path:
    return build_udf_dir(tmp_path_factory.mktemp("udf"), binary=binary, variants=MODE_VARIANTS + EXTRA_VARIANTS)


@pytest.fixture(scope="session")
def ch(tmp_path_factory, udf_dir) -> Engine:
    engine = Engine.open(tmp_path_factory.mktemp("chdb") / "db", udf_dir)
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def moto():
    """A moto server on 127.0.0.1 (S3, DynamoDB, DynamoDB Streams), shared by the test modules
    that need one; each module uses its own buckets and tables."""
    try:
        server = Moto().start()
    except RuntimeError as e:
        pytest.fail(str(e))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def kinesis():
    """A kinesalite server on 127.0.0.1 for one test module."""
    with LocalKinesis() as k:
        yield k


@pytest.fixture(scope="module")
def front(ch):
    """The ClickHouse HTTP front over the session's chDB for one test module; `front.port` is
    its port."""
    f = ClickHouseHTTPFront(ch.session)
    f.start_in_thread()
    yield f
    f.stop()
