"""The fault-injecting proxies (harness/fault_proxy.py) with real traffic: boto3 through
the Kinesis proxy to kinesalite, HTTP clients through the ClickHouse proxy to the HTTP front.
Every fault kind is checked as the client sees it, and counted once."""

from __future__ import annotations

import http.client
import random
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError

from harness import wait_until
from harness.aws import LocalKinesis
from harness.forwarder import (
    Database,
)

# isort: split
from harness.fault_proxy import (
    ClickHouseFaultProxy,
    KinesisFaultProxy,
    make_tls_files,
    max_in_window,
)


def kinesis_client(endpoint: str):
    """A boto3 Kinesis client that does not retry: each call is one request."""
    return boto3.client("kinesis", endpoint_url=endpoint, region_name=LocalKinesis.REGION,
                        aws_access_key_id=LocalKinesis.KEY, aws_secret_access_key=LocalKinesis.SECRET,
                        config=Config(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=10))


@pytest.fixture(scope="module")
def stream(kinesis):
    """A two-shard stream holding 40 records; returns its name and each shard's data in order."""
    c = kinesis.client()
    c.create_stream(StreamName="proxied", ShardCount=2)
    kinesis.wait_active("proxied")
    data: dict[str, list[bytes]] = {s["ShardId"]: [] for s in c.list_shards(StreamName="proxied")["Shards"]}
    for i in range(40):
        r = c.put_record(StreamName="proxied", Data=f"r{i}".encode(), PartitionKey=f"k{i}")
        data[r["ShardId"]].append(f"r{i}".encode())
    assert all(len(v) >= 5 for v in data.values()), data
    return "proxied", data


def iterator(c, stream: str, shard: str) -> str:
    return c.get_shard_iterator(StreamName=stream, ShardId=shard,
                                ShardIteratorType="TRIM_HORIZON")["ShardIterator"]


def test_kinesis_proxy_forwards_and_traces_iterators_to_shards(kinesis, stream):
    name, data = stream
    with KinesisFaultProxy(kinesis.port) as proxy:
        c = kinesis_client(proxy.endpoint)
        calls = Counter()
        for shard, expected in data.items():
            it, got = iterator(c, name, shard), []
            while True:  # pages of 7: the next iterators must be traced as well
                r = c.get_records(ShardIterator=it, Limit=7)
                calls[shard] += 1
                got += [rec["Data"] for rec in r["Records"]]
                it = r["NextShardIterator"]
                if not r["Records"]:
                    break
            assert got == expected
        assert proxy.shards_called() == calls
        assert proxy.calls == Counter({"GetShardIterator": 2, "GetRecords": sum(calls.values())})
        assert min(calls.values()) >= 2
        assert proxy.injected == Counter()
        assert all(s.fault is None and s.method == "POST" for s in proxy.log)


def test_kinesis_faults_as_the_client_sees_them(kinesis, stream):
    name, data = stream
    shard = next(iter(data))
    with KinesisFaultProxy(kinesis.port, delay=0.3, seed=7) as proxy:
        c = kinesis_client(proxy.endpoint)
        it = iterator(c, name, shard)
        errors = {"throughput_exceeded": (400, "ProvisionedThroughputExceededException", shard),
                  "limit_exceeded": (400, "LimitExceededException", name),
                  "expired_iterator": (400, "ExpiredIteratorException", "Iterator expired"),
                  "internal_failure": (500, "InternalFailure", "Internal service failure")}
        for kind, (status, code, text) in errors.items():
            proxy.set_faults({kind: 1.0})
            with pytest.raises(ClientError) as e:
                c.get_records(ShardIterator=it, Limit=5)
            err = e.value.response
            assert (err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Code"]) == (status, code)
            assert text in err["Error"]["Message"]
        proxy.set_faults({"reset": 1.0})
        with pytest.raises(ConnectionClosedError):
            c.get_records(ShardIterator=it, Limit=5)
        proxy.set_faults({"delay": 1.0})
        t = time.monotonic()
        assert [r["Data"] for r in c.get_records(ShardIterator=it, Limit=5)["Records"]] == data[shard][:5]
        assert time.monotonic() - t >= 0.3
        # An expired iterator is a GetRecords answer only; operations without a weight (here
        # DescribeStreamSummary) are never faulted.
        proxy.set_faults({"expired_iterator": 1.0})
        assert iterator(c, name, shard)
        proxy.set_faults({"internal_failure": 1.0})
        assert c.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["OpenShardCount"] == 2
        proxy.clear()
        assert c.get_records(ShardIterator=it, Limit=1)["Records"][0]["Data"] == data[shard][0]
        assert proxy.injected == Counter({k: 1 for k in proxy.KINDS})
        assert [s.fault for s in proxy.log if s.fault] == list(proxy.KINDS)


def test_faults_follow_the_seed_and_the_weights(kinesis, stream):
    name, data = stream
    shard = next(iter(data))
    with KinesisFaultProxy(kinesis.port, seed=3, faults={"internal_failure": 0.5}) as proxy:
        c = kinesis_client(proxy.endpoint)
        it = None
        while it is None:
            try:
                it = iterator(c, name, shard)
            except ClientError:
                pass
        failed = 0
        for _ in range(40):
            try:
                c.get_records(ShardIterator=it, Limit=1)
            except ClientError:
                failed += 1
        proxy.set_faults({"internal_failure": 1.0})
        for _ in range(40):
            try:
                c.list_shards(StreamName=name)
            except ClientError:
                failed += 1
        # One draw per request, in order: the seed decides which ones fail, and ListShards
        # takes a quarter of the rate.
        replay = random.Random(3)
        rate = {"GetShardIterator": 0.5, "GetRecords": 0.5, "ListShards": 0.25}
        expected = [replay.random() < rate[s.op] for s in proxy.log]
        assert [s.fault == "internal_failure" for s in proxy.log] == expected
        assert proxy.injected["internal_failure"] == sum(expected) == failed + proxy.calls["GetShardIterator"] - 1
        assert 0 < failed < 80


def test_max_calls_per_second_counts_half_open_windows(kinesis, stream):
    assert max_in_window([]) == 0
    assert max_in_window([0.0, 1.0]) == 1  # 1.0 is outside [0, 1)
    assert max_in_window([0.0, 0.5, 0.999, 1.0, 1.5, 3.0]) == 3
    assert max_in_window([2.0, 0.1, 0.2, 0.3, 0.4, 1.05]) == 5
    assert max_in_window([0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.2], width=1.0) == 5
    name, data = stream
    a, b = list(data)
    with KinesisFaultProxy(kinesis.port) as proxy:
        c = kinesis_client(proxy.endpoint)
        it_a, it_b = iterator(c, name, a), iterator(c, name, b)
        for _ in range(6):
            c.get_records(ShardIterator=it_a, Limit=1)
        for _ in range(2):
            c.get_records(ShardIterator=it_b, Limit=1)
        assert proxy.get_records[-1][0] - proxy.get_records[0][0] < 1.0  # a burst within one second
        assert proxy.shards_called() == Counter({a: 6, b: 2})
        assert (proxy.max_calls_per_second(a), proxy.max_calls_per_second(b)) == (6, 2)
        assert proxy.max_calls_per_second() == 6
        assert proxy.max_calls_per_second("shardId-000000000042") == 0


# -- ClickHouse ------------------------------------------------------------------------------


@pytest.fixture
def db(front):
    return Database(front, "fault_proxy", "CREATE TABLE t (x UInt32) ENGINE = MergeTree ORDER BY x",
                    sql_files=())


def post(port: int, sql: str, body: bytes = b"", timeout: float = 5, **params) -> tuple[int, dict, bytes]:
    """One request on a new connection: POST /?query=sql&database=fault_proxy."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        q = urllib.parse.urlencode({"database": "fault_proxy", "query": sql, **params})
        conn.request("POST", f"/?{q}", body=body)
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


def count(db: Database) -> int:
    return int(db.rows("SELECT count() FROM fault_proxy.t")[0][0])


def test_clickhouse_proxy_keeps_connections_alive_and_passes_chunked_bodies(front, db):
    with ClickHouseFaultProxy(front.port) as proxy:
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
        q = urllib.parse.urlencode({"database": "fault_proxy", "query": "INSERT INTO t FORMAT TSV"})
        conn.request("POST", f"/?{q}", body=iter([b"1\n", b"2\n3\n"]), encode_chunked=True,
                     headers={"Transfer-Encoding": "chunked", "Expect": "100-continue"})
        assert conn.getresponse().read() == b""
        conn.request("POST", "/?database=fault_proxy", body=b"SELECT sum(x) FROM t")
        assert conn.getresponse().read() == b"6\n"
        conn.request("GET", "/ping")
        assert conn.getresponse().read() == b"Ok.\n"
        conn.close()
        assert len(proxy.log) == 3 and proxy.calls == Counter({"INSERT": 1})


def test_clickhouse_faults_as_the_client_sees_them(front, db):
    with ClickHouseFaultProxy(front.port, hold=2.0, refuse_seconds=0.3, seed=1) as proxy:
        port = proxy.port
        insert = "INSERT INTO t FORMAT TSV"
        # Only INSERTs are faulted: a query goes through whatever the rates.
        proxy.set_faults(proxy.spread(1.0))
        assert post(port, "SELECT 1")[::2] == (200, b"1\n")
        assert proxy.injected == Counter()

        proxy.set_faults({"lost_response": 1.0})
        with pytest.raises(http.client.RemoteDisconnected):
            post(port, insert, b"1\n")
        assert count(db) == 1  # committed all the same

        proxy.set_faults({"truncated_500": 1.0})
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("POST", "/?" + urllib.parse.urlencode({"database": "fault_proxy", "query": insert}), b"2\n")
        r = conn.getresponse()
        assert r.status == 500 and r.getheader("X-ClickHouse-Exception-Code") is None
        with pytest.raises(http.client.IncompleteRead) as e:
            r.read()
        assert e.value.partial.startswith(b"Code: 210.") and e.value.expected == len(e.value.partial)
        conn.close()

        proxy.set_faults({"slow_response": 1.0})
        t = time.monotonic()
        with pytest.raises(TimeoutError):
            post(port, insert, b"3\n", timeout=1.0)
        assert time.monotonic() - t < 2.0
        wait_until(lambda: count(db) == 2, 5, "the held insert committed")

        proxy.set_faults({"reset": 1.0})
        with pytest.raises(ConnectionResetError):
            post(port, insert, b"4\n")

        proxy.set_faults({"refuse": 1.0})
        with pytest.raises(ConnectionResetError):
            post(port, insert, b"5\n")
        with pytest.raises(ConnectionRefusedError):
            post(port, "SELECT 1")
        proxy.clear()
        assert proxy.wait_listening(5)
        assert post(port, "SELECT 1")[2] == b"1\n"

        for kind, (code, status, name) in {"udf_timeout": (754, 500, "UDF_EXECUTION_FAILED"),
                                           "unknown_identifier": (47, 404, "UNKNOWN_IDENTIFIER"),
                                           "memory_limit": (241, 500, "MEMORY_LIMIT_EXCEEDED")}.items():
            proxy.set_faults({kind: 1.0})
            got_status, headers, body = post(port, insert, b"6\n")
            assert (got_status, headers["X-ClickHouse-Exception-Code"]) == (status, str(code))
            text = body.decode()
            assert text.startswith(f"Code: {code}. DB::Exception: ")
            assert text.endswith(f"({name}) (version 26.9.1.1)\n")
            if kind == "udf_timeout":
                assert "Original error: Code: 159. DB::Exception: Timeout exceeded: " in text
        assert count(db) == 2  # nothing that was not forwarded arrived
        assert proxy.injected == Counter({k: 1 for k in proxy.KINDS})


def test_refuse_for_closes_the_port_and_idle_connections(front):
    with ClickHouseFaultProxy(front.port) as proxy:
        idle = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
        idle.request("GET", "/ping")
        assert idle.getresponse().read() == b"Ok.\n"
        t = time.monotonic()
        proxy.refuse_for(0.5)
        assert proxy.refusing
        with pytest.raises(ConnectionRefusedError):
            post(proxy.port, "SELECT 1")
        with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)):
            idle.request("GET", "/ping")
            idle.getresponse()
        wait_until(lambda: not proxy.refusing, 5, "the port open again")
        assert time.monotonic() - t >= 0.5
        assert post(proxy.port, "SELECT 1")[2] == b"1\n"


def test_once_per_key_faults_each_key_once(front, db):
    with ClickHouseFaultProxy(front.port) as proxy:
        proxy.set_faults({"lost_response": 1.0}, once_per=proxy.dedup_token)
        for token in ("a", "b"):
            with pytest.raises(http.client.RemoteDisconnected):
                post(proxy.port, "INSERT INTO t FORMAT TSV", b"1\n", insert_deduplication_token=token)
            assert post(proxy.port, "INSERT INTO t FORMAT TSV", b"1\n", insert_deduplication_token=token)[0] == 200
        assert post(proxy.port, "INSERT INTO t FORMAT TSV", b"1\n")[0] == 200  # no token: never
        assert proxy.injected == Counter({"lost_response": 2})
        assert count(db) == 5  # t has no deduplication window: every insert that arrived is there


def test_tls_proxy_in_front_of_the_http_front(front, tmp_path):
    files = make_tls_files(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"ca.pem", "server.pem", "server.key"}
    no_proxy = urllib.request.ProxyHandler({})
    with ClickHouseFaultProxy(front.port, tls=files) as proxy:
        assert proxy.endpoint == f"https://localhost:{proxy.port}"
        trusted = urllib.request.build_opener(no_proxy, urllib.request.HTTPSHandler(context=files.client_context()))
        assert trusted.open(proxy.endpoint + "/ping", timeout=5).read() == b"Ok.\n"
        by_ip = f"https://127.0.0.1:{proxy.port}/?query=SELECT%201"
        assert trusted.open(by_ip, timeout=5).read() == b"1\n"
        default = urllib.request.build_opener(no_proxy, urllib.request.HTTPSHandler(
            context=ssl.create_default_context()))
        with pytest.raises(urllib.error.URLError) as e:
            default.open(proxy.endpoint + "/ping", timeout=5)
        assert isinstance(e.value.reason, ssl.SSLCertVerificationError)
        # The server sends its own certificate only: without the CA there is no chain.
        assert e.value.reason.verify_message == "unable to get local issuer certificate"
