"""kinesis-forwarder over HTTPS: a TLS proxy (harness/fault_proxy.py, no faults) in front
of the HTTP front, with a server certificate for localhost that a self-signed CA signed.

The forwarder trusts the system's root certificates and those of --clickhouse-ca-file: with
the CA file both flatten paths give the change model; without it the TLS handshake fails and
the forwarder stops instead of retrying; a CA file that cannot be used is a bad flag.
"""

from __future__ import annotations

import random

import pytest

from harness.forwarder import (
    BAD_RECORDS,
    Changes,
    Database,
    Forwarder,
    Stream,
    assert_both_paths_agree,
    disorder,
)

# isort: split
from harness.fault_proxy import ClickHouseFaultProxy, TLSFiles, make_tls_files


@pytest.fixture(scope="module")
def tls(tmp_path_factory) -> TLSFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def https(front, tls):
    with ClickHouseFaultProxy(front.port, tls=tls) as proxy:
        yield proxy


def forwarder(tmp_path, kinesis, stream: str, https: ClickHouseFaultProxy, db: str, *extra: str) -> Forwarder:
    """A forwarder whose --clickhouse-url is the proxy's https://localhost:<port>."""
    f = Forwarder(tmp_path, kinesis, stream, https.port, db, *extra)
    f.args[f.args.index("--clickhouse-url") + 1] = https.endpoint
    return f


def test_with_the_ca_file_both_flatten_paths_give_the_model(tmp_path, kinesis, https, tls, front):
    assert https.endpoint.startswith("https://localhost:")
    rng = random.Random(11)
    model = Changes()
    model.run(rng, 2_000, 300)
    stream = Stream(kinesis, "tls-two-shards", 2)
    stream.put(disorder(model.records, rng) + BAD_RECORDS)

    server = Database(front, "tls_server")
    local = Database(front, "tls_local")
    ca = ("--clickhouse-ca-file", str(tls.ca))
    forwarder(tmp_path, kinesis, stream.name, https, server.name, *ca).run_once()
    inserts = https.calls["INSERT"]
    assert inserts > 0
    forwarder(tmp_path, kinesis, stream.name, https, local.name, "--flatten", "local", *ca).run_once()
    assert https.calls["INSERT"] > inserts

    expected = model.expected()
    assert len(expected) > 100
    assert_both_paths_agree(server, local, stream, expected)


def test_the_system_roots_are_trusted(tmp_path, kinesis, https, tls, front):
    """The CA as the system's root certificates (SSL_CERT_FILE), without --clickhouse-ca-file."""
    rng = random.Random(12)
    model = Changes()
    model.run(rng, 300, 100)
    stream = Stream(kinesis, "tls-system-roots", 1)
    stream.put(model.records)
    db = Database(front, "tls_system_roots")
    f = forwarder(tmp_path, kinesis, stream.name, https, db.name)
    f.env["SSL_CERT_FILE"] = str(tls.ca)
    f.run_once()
    assert db.state() == model.expected()


def test_without_the_ca_file_the_forwarder_stops(tmp_path, kinesis, https, front):
    stream = Stream(kinesis, "tls-untrusted", 1)
    db = Database(front, "tls_untrusted")
    inserts = https.calls["INSERT"]
    f = forwarder(tmp_path, kinesis, stream.name, https, db.name)
    f.start("--once")
    rc = f.wait(timeout=60)
    log = f.log()
    assert rc == 3, log  # start-up: no retry can fix it
    assert "invalid peer certificate: UnknownIssuer" in log, log
    assert "--clickhouse-ca-file" in log, log
    assert "retrying" not in log, log
    assert https.calls["INSERT"] == inserts
    assert db.rows("SELECT count() FROM tls_untrusted.people") == [("0",)]


@pytest.mark.parametrize("case", ["missing", "empty", "key"])
def test_a_ca_file_that_cannot_be_used_is_a_bad_flag(tmp_path, kinesis, https, tls, case):
    path, message = {
        "missing": (tmp_path / "nonexistent", "cannot read it: No such file or directory"),
        "empty": (tmp_path / "empty.pem", "the file is empty"),
        "key": (tls.key, "it holds no certificate"),
    }[case]
    if case == "empty":
        path.write_text("")
    f = forwarder(tmp_path, kinesis, "tls-bad-flag", https, "default", "--clickhouse-ca-file", str(path))
    f.start("--once")
    rc = f.wait(timeout=60)
    log = f.log()
    assert rc == 2, log
    assert f"--clickhouse-ca-file {path}: {message}" in log, log
