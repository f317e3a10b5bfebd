"""A local S3 server (moto) on 127.0.0.1 for running the flow without AWS.

    with LocalS3() as s3:
        s3.upload_tree(Path("export"), "bucket", "prefix")
        url = s3.url("bucket", "prefix/AWSDynamoDB/<id>/data/*.json.gz")

moto answers unsigned requests with 403: give ClickHouse's s3() any key and secret
(LocalS3.KEY, LocalS3.SECRET).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


class LocalS3:
    KEY = "local"
    SECRET = "local-secret"

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.port = 0

    def __enter__(self) -> "LocalS3":
        moto = Path(sys.executable).parent / "moto_server"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc = subprocess.Popen(
            [str(moto), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=1)
                return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.__exit__(None, None, None)
                    raise RuntimeError("the local S3 server (moto_server) did not start")
                time.sleep(0.1)

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3", endpoint_url=f"http://127.0.0.1:{self.port}", region_name="us-east-1",
            aws_access_key_id=self.KEY, aws_secret_access_key=self.SECRET,
            config=Config(s3={"addressing_style": "path"}),
        )

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
        return f"http://127.0.0.1:{self.port}/{bucket}/{key}"
