"""The Python side of the project's tests, demo and benchmarks, in one package.

    harness.sql          SQL text: quoting, splitting a script into statements, TSV results
    harness.engine       chDB with the dynamo_flatten UDF folder (the shipped config and
                         variants of it), and running sql/ scripts in it
    harness.dynamodb     DynamoDB JSON as AWS writes it: exports, change records
    harness.aws          local AWS on 127.0.0.1: moto (S3, DynamoDB, DynamoDB Streams) and
                         kinesalite (Kinesis), started and stopped as context managers
    harness.http_front   a stand-in for ClickHouse's HTTP interface over a chDB session
    harness.codec        ClickHouse's compressed-block framing (LZ4, CityHash128)
    harness.fault_proxy  HTTP proxies that inject faults in front of the local servers
    harness.forwarder    the kinesis-forwarder process, a change model, streams, databases
    harness.compose      docker-compose.yml and the Dockerfile as Compose reads them, and the
                         stack played as local processes
    harness.aws_cli_shim the `aws kinesis put-record` of the local stack's docs, on boto3

tests/py and scripts/ import it; it imports neither. scripts/setup puts the repository on
the path of the project's .venv.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SQL_DIR = REPO / "sql"
FIXTURES = REPO / "tests" / "fixtures"
RELEASE = REPO / "target" / "release"
BINARY_ENV = "DYNAMO_FLATTEN_BIN"


def release_binary(name: str) -> Path:
    """A program of the release build: next to $DYNAMO_FLATTEN_BIN when that is set, else in
    target/release. Raises FileNotFoundError when it is missing."""
    udf = os.environ.get(BINARY_ENV)
    p = (Path(udf).resolve().parent if udf else RELEASE) / name
    if not p.is_file():
        raise FileNotFoundError(f"{p} not found: run `cargo build --release`")
    return p


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout: float, what: str, interval: float = 0.1):
    """Calls `pred` until it returns something true, and returns that; AssertionError naming
    `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
