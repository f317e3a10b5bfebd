"""A local Kinesis server (kinesalite, installed by scripts/setup into node_modules/) on
127.0.0.1, for tests.

    with LocalKinesis() as k:
        client = k.client()          # a boto3 Kinesis client for it
        k.endpoint                   # http://127.0.0.1:<port>, for --endpoint-url

kinesalite keeps streams in memory; streams are created, split and merged without delay.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KINESALITE = REPO / "node_modules" / ".bin" / "kinesalite"


class LocalKinesis:
    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "LocalKinesis":
        if not KINESALITE.exists():
            raise RuntimeError(f"{KINESALITE} not found: run scripts/setup")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc = subprocess.Popen(
            [str(KINESALITE), "--host", "127.0.0.1", "--port", str(self.port), "--createStreamMs", "0",
             "--deleteStreamMs", "0", "--updateStreamMs", "0", "--shardLimit", "100"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.__exit__(None, None, None)
                    raise RuntimeError("kinesalite did not start")
                time.sleep(0.05)

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def client(self):
        import boto3

        return boto3.client("kinesis", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="local", aws_secret_access_key="local-secret")

    def wait_active(self, stream: str) -> None:
        c = self.client()
        for _ in range(200):
            if c.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE":
                return
            time.sleep(0.02)
        raise RuntimeError(f"stream {stream} did not become ACTIVE")
