"""Local AWS on 127.0.0.1: moto (S3, DynamoDB, DynamoDB Streams) and kinesalite (Kinesis).

    with Moto() as moto:                       # moto_server, from the project's .venv
        moto.upload_tree(Path("export"), "bucket", "prefix")
        url = moto.url("bucket", "prefix/AWSDynamoDB/<id>/data/*.json.gz")
        ddb = moto.client("dynamodb")

    with LocalKinesis() as k:                  # kinesalite, from the project's node_modules/
        k.client().create_stream(StreamName="s", ShardCount=2)
        k.wait_active("s")
        k.endpoint                             # http://127.0.0.1:<port>, for --endpoint-url

Both take any access key and secret; every client signs with LocalServer.KEY and
LocalServer.SECRET in LocalServer.REGION (moto answers unsigned requests with 403).
scripts/setup installs both servers.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from harness import REPO, free_port

# A direct opener: the servers are on loopback, whatever proxy the environment names.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class LocalServer:
    """A server process on a free loopback port, started and stopped as a context manager;
    ready once it answers HTTP."""

    KEY = "local"
    SECRET = "local-secret"
    REGION = "us-east-1"
    name = "server"

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self, port: int = 0) -> LocalServer:
        """Starts the server on `port` (0: a free one); RuntimeError when it does not answer
        within 30 s."""
        self.port = port or free_port()
        cmd = self.command()
        if not Path(cmd[0]).exists():
            raise RuntimeError(f"{cmd[0]} not found: run scripts/setup")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                _DIRECT.open(self.endpoint + "/", timeout=1).close()
                return self
            except urllib.error.HTTPError:
                return self  # an answer, if not a happy one: it is listening
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"the local {self.name} did not start ({' '.join(cmd)})") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def client(self, service: str, **kw):
        """A boto3 client of `service` for this server."""
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint, region_name=self.REGION,
                            aws_access_key_id=self.KEY, aws_secret_access_key=self.SECRET, **kw)


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


class Moto(LocalServer):
    """moto_server: S3, DynamoDB, DynamoDB Streams and the rest of moto on one endpoint. With
    `stream_seconds`, its DynamoDB Streams records carry whole seconds."""

    name = "AWS server (moto)"

    def __init__(self, stream_seconds: bool = False) -> None:
        super().__init__()
        self.stream_seconds = stream_seconds

    def command(self) -> list[str]:
        moto = Path(sys.executable).parent / "moto_server"
        if self.stream_seconds and moto.exists():
            head = [sys.executable, "-c", _MOTO_WHOLE_SECONDS]
        else:
            head = [str(moto)]
        return [*head, "-H", "127.0.0.1", "-p", str(self.port)]

    def s3(self):
        """A boto3 S3 client with path-style addressing (bucket names in the path)."""
        from botocore.config import Config

        return self.client("s3", config=Config(s3={"addressing_style": "path"}))

    def upload_tree(self, root: Path, bucket: str, prefix: str) -> int:
        """Uploads every file below `root` to `bucket/prefix/…` (the bucket is created);
        returns the count."""
        return self.upload(bucket, {f"{prefix}/{p.relative_to(root).as_posix()}": p.read_bytes()
                                    for p in sorted(root.rglob("*")) if p.is_file()})

    def upload(self, bucket: str, files: dict[str, bytes]) -> int:
        """Puts `files` (bytes by key) into `bucket`, creating it if needed; returns the count."""
        c = self.s3()
        if bucket not in {b["Name"] for b in c.list_buckets()["Buckets"]}:
            c.create_bucket(Bucket=bucket)
        for key, body in files.items():
            c.put_object(Bucket=bucket, Key=key, Body=body)
        return len(files)

    def url(self, bucket: str, key: str) -> str:
        return f"{self.endpoint}/{bucket}/{key}"


class LocalKinesis(LocalServer):
    """kinesalite, in memory unless given a `path`; streams are created, split and merged
    without delay."""

    name = "Kinesis server (kinesalite)"

    def __init__(self, path: Path | None = None) -> None:
        super().__init__()
        self.path = path

    def command(self) -> list[str]:
        cmd = [str(REPO / "node_modules" / ".bin" / "kinesalite"), "--host", "127.0.0.1",
               "--port", str(self.port), "--createStreamMs", "0", "--deleteStreamMs", "0",
               "--updateStreamMs", "0", "--shardLimit", "100"]
        return cmd + (["--path", str(self.path)] if self.path else [])

    def client(self, service: str = "kinesis", **kw):
        return super().client(service, **kw)

    def wait_active(self, stream: str) -> None:
        c = self.client()
        for _ in range(200):
            summary = c.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]
            if summary["StreamStatus"] == "ACTIVE":
                return
            time.sleep(0.02)
        raise RuntimeError(f"stream {stream} did not become ACTIVE")
