"""DynamoDB JSON as AWS writes it: change records of Kinesis Data Streams for DynamoDB, and
exports to S3 (the files of one export, manifests included)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import random
from datetime import UTC, datetime

TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


def dumps(doc, ascii_only: bool = False) -> str:
    """Compact JSON, as DynamoDB and Kinesis write it (non-ASCII raw unless ascii_only)."""
    return json.dumps(doc, ensure_ascii=ascii_only, separators=(",", ":"))


def kds_value(av: dict) -> dict:
    """An attribute value as Kinesis Data Streams writes it: B and BS base64-encoded a second
    time, inside M and L too."""
    (tag, v), = av.items()
    if tag == "B":
        return {"B": base64.b64encode(v.encode()).decode()}
    if tag == "BS":
        return {"BS": [base64.b64encode(b.encode()).decode() for b in v]}
    if tag == "M":
        return {"M": kds_image(v)}
    if tag == "L":
        return {"L": [kds_value(x) for x in v]}
    return av


def kds_image(image: dict) -> dict:
    """An image (attribute name -> value) as Kinesis Data Streams writes it (see kds_value)."""
    return {name: kds_value(av) for name, av in image.items()}


def change_record(event: str, keys: dict, stamp: int, new: dict | None = None, old: dict | None = None,
                  *, precision: str | None = "MICROSECOND", table: str = "people",
                  event_id: str | None = None, identity: dict | None = None,
                  size: int | None = None, ascii_only: bool = False) -> str:
    """A Kinesis Data Streams for DynamoDB record of an INSERT, MODIFY or REMOVE.

    `keys`, `new` and `old` are DynamoDB JSON as the table holds it (B as base64 text); the
    record carries them as Kinesis writes them (see kds_image). `stamp` is
    ApproximateCreationDateTime in the unit of `precision` (None: a record without the
    precision field, in milliseconds). `event_id` defaults to the first key value and the
    stamp, `size` (SizeBytes) to the length of the image; `identity` is userIdentity
    (TTL_IDENTITY for a delete by TTL).
    """
    d: dict = {"ApproximateCreationDateTime": stamp, "Keys": kds_image(keys)}
    if new is not None:
        d["NewImage"] = kds_image(new)
    if old is not None:
        d["OldImage"] = kds_image(old)
    d["SizeBytes"] = size if size is not None else len(dumps(new or old or keys).encode())
    if precision is not None:
        d["ApproximateCreationDateTimePrecision"] = precision
    if event_id is None:
        event_id = "-".join(str(next(iter(v.values()))) for v in keys.values()) + f"-{stamp}"
    return dumps({"awsRegion": "us-east-1", "eventID": event_id, "eventName": event,
                  "userIdentity": identity, "recordFormat": "application/json", "tableName": table,
                  "dynamodb": d, "eventSource": "aws:dynamodb"}, ascii_only)


def iso(us: int) -> str:
    """A time in µs since the epoch as the export manifests write it (milliseconds, Z)."""
    return datetime.fromtimestamp(us / 1e6, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def export_tree(export_id: str, parts: list[list[bytes]], rng: random.Random, *, bucket: str,
                prefix: str, time_us: int, incremental: tuple[int, int] | None = None,
                table: str = "people") -> tuple[dict[str, bytes], int]:
    """The files of one export of `table` with these data parts (JSON lines, gzipped here), by
    S3 key, and its item count. `_started`, manifest-files.json (JSON lines) and
    manifest-summary.json go under <prefix>/AWSDynamoDB/<export id>/; the data files of a full
    export into its data/ there, those of an incremental export (`incremental`: its
    ExportFromTime and ExportToTime in µs) into <prefix>/AWSDynamoDB/data/, the data folder
    all incremental exports under the prefix share. An empty part is an empty partition."""
    base = f"{prefix}/AWSDynamoDB/{export_id}"
    data = f"{prefix}/AWSDynamoDB/data" if incremental else f"{base}/data"

    def name() -> str:
        return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz234567") for _ in range(26))

    files: dict[str, bytes] = {f"{base}/_started": b""}
    manifest = []
    for lines in parts:
        body = gzip.compress(b"".join(line + b"\n" for line in lines), compresslevel=6, mtime=0)
        key = f"{data}/{name()}.json.gz"
        files[key] = body
        manifest.append({"itemCount": len(lines),
                         "md5Checksum": base64.b64encode(hashlib.md5(body).digest()).decode(),
                         "etag": hashlib.md5(body).hexdigest(), "dataFileS3Key": key})
    files[f"{base}/manifest-files.json"] = "".join(dumps(m) + "\n" for m in manifest).encode()
    total = sum(m["itemCount"] for m in manifest)
    times = ({"exportFromTime": iso(incremental[0]), "exportToTime": iso(incremental[1])}
             if incremental else {"exportTime": iso(time_us)})
    table_arn = f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}"
    files[f"{base}/manifest-summary.json"] = dumps({
        "version": "2020-06-30",
        "exportArn": f"{table_arn}/export/{export_id}",
        "startTime": iso(time_us), "endTime": iso(time_us + 300_000_000),
        "tableArn": table_arn,
        "tableId": "5f0c6a9e-2b7d-4c1e-8a3f-9d2e4b6c8a10", **times,
        "s3Bucket": bucket, "s3Prefix": prefix, "s3SseAlgorithm": "AES256", "s3SseKmsKeyId": None,
        "manifestFilesS3Key": f"{base}/manifest-files.json",
        "billedSizeBytes": sum(len(b) for b in files.values()), "itemCount": total,
        "outputFormat": "DYNAMODB_JSON",
        **({"outputView": "NEW_AND_OLD_IMAGES", "exportType": "INCREMENTAL_EXPORT"} if incremental else {}),
    }).encode()
    return files, total
