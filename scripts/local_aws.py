"""Local stand-ins for AWS services on 127.0.0.1, for the demo and the tests.

    with LocalS3() as s3:                      # moto, from the project's .venv
        s3.upload_tree(Path("export"), "bucket", "prefix")
        url = s3.url("bucket", "prefix/AWSDynamoDB/<id>/data/*.json.gz")

    with LocalKinesis() as k:                  # kinesalite, from the project's node_modules/
        client = k.client()                    # a boto3 Kinesis client for it
        k.endpoint                             # http://127.0.0.1:<port>, for --endpoint-url

Both take any access key and secret (LocalServer.KEY, LocalServer.SECRET); moto answers
unsigned requests with 403, so always sign. scripts/setup installs both.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


class LocalServer:
    """A server process on a free loopback port, started and stopped as a context manager."""

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

    def __enter__(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        cmd = self.command()
        if not Path(cmd[0]).exists():
            raise RuntimeError(f"{cmd[0]} not found: run scripts/setup")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.__exit__(None, None, None)
                    raise RuntimeError(f"the local {self.name} did not start")
                time.sleep(0.05)

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def _client(self, service: str, **kw):
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint, region_name=self.REGION,
                            aws_access_key_id=self.KEY, aws_secret_access_key=self.SECRET, **kw)


class LocalS3(LocalServer):
    name = "S3 server (moto)"

    def command(self) -> list[str]:
        return [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)]

    def client(self):
        from botocore.config import Config

        return self._client("s3", config=Config(s3={"addressing_style": "path"}))

    def upload_tree(self, root: Path, bucket: str, prefix: str) -> int:
        """Uploads every file below ``root`` to ``bucket/prefix/…``; returns the count."""
        c = self.client()
        c.create_bucket(Bucket=bucket)
        n = 0
        for p in sorted(root.rglob("*")):
            if p.is_file():
                c.upload_file(str(p), bucket, f"{prefix}/{p.relative_to(root).as_posix()}")
                n += 1
        return n

    def url(self, bucket: str, key: str) -> str:
        return f"{self.endpoint}/{bucket}/{key}"


class LocalKinesis(LocalServer):
    """kinesalite, in memory; streams are created, split and merged without delay."""

    name = "Kinesis server (kinesalite)"

    def command(self) -> list[str]:
        return [str(REPO / "node_modules" / ".bin" / "kinesalite"), "--host", "127.0.0.1",
                "--port", str(self.port), "--createStreamMs", "0", "--deleteStreamMs", "0",
                "--updateStreamMs", "0", "--shardLimit", "100"]

    def client(self):
        return self._client("kinesis")

    def wait_active(self, stream: str) -> None:
        c = self.client()
        for _ in range(200):
            summary = c.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]
            if summary["StreamStatus"] == "ACTIVE":
                return
            time.sleep(0.02)
        raise RuntimeError(f"stream {stream} did not become ACTIVE")
