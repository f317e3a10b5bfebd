"""The few `aws kinesis …` commands of the local stack's docs, as the
AWS CLI v2 reads them, carried out with boto3.

It lets the tests run the commands of README.md ("Local stack") and of docker-compose.yml's
header as written, against a real local Kinesis server, where the AWS CLI itself (a separate
installer, not a Python package) is not installed. It is not the AWS CLI: it knows one
command, and refuses everything else with the CLI's exit statuses.

    python -m harness.aws_cli_shim [--endpoint-url URL] [--region R] \\
        [--cli-binary-format raw-in-base64-out|base64] [--output json] \\
        kinesis put-record --stream-name S --partition-key K --data D \\
        [--explicit-hash-key H] [--sequence-number-for-ordering N]

What it takes from the CLI v2:

* the endpoint from --endpoint-url, else AWS_ENDPOINT_URL_KINESIS, else AWS_ENDPOINT_URL;
  the region from --region, AWS_REGION or AWS_DEFAULT_REGION; the keys from
  AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY. No region: exit 253 ("You must specify a
  region."); no keys: exit 253 ("Unable to locate credentials").
* --data is a blob: base64 text unless --cli-binary-format raw-in-base64-out, as in the
  CLI v2 (v1 sent the text as is). Text that is not base64: exit 252 ("Invalid base64").
* unknown options, commands or a missing required option: exit 252, as the CLI's parser;
  an error answer of the service: exit 254 with "An error occurred (Type) when calling the
  PutRecord operation: message".
* the answer printed as JSON (4-space indent), as `--output json`, the default.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import sys

GLOBAL = {"--endpoint-url", "--region", "--cli-binary-format", "--output"}
PUT_RECORD = {"--stream-name": "StreamName", "--partition-key": "PartitionKey", "--data": "Data",
              "--explicit-hash-key": "ExplicitHashKey",
              "--sequence-number-for-ordering": "SequenceNumberForOrdering"}
REQUIRED = ("--stream-name", "--partition-key", "--data")


def fail(status: int, message: str) -> int:
    sys.stderr.write(message.rstrip("\n") + "\n")
    return status


def main(argv: list[str]) -> int:
    opts: dict[str, str] = {}
    words: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("--"):
            name, eq, value = a.partition("=")
            if not eq:
                if i + 1 >= len(argv):
                    return fail(252, f"aws: error: argument {name}: expected one argument")
                value = argv[i + 1]
                i += 1
            if name not in GLOBAL and name not in PUT_RECORD:
                return fail(252, f"\nUnknown options: {name}\n")
            opts[name] = value
        else:
            words.append(a)
        i += 1
    if words != ["kinesis", "put-record"]:
        return fail(252, f"aws: error: this stand-in knows `kinesis put-record` only, not {' '.join(words)!r}")
    missing = [r for r in REQUIRED if r not in opts]
    if missing:
        return fail(252, f"aws: error: the following arguments are required: {', '.join(missing)}")
    if opts.get("--output", "json") != "json":
        return fail(252, "aws: error: this stand-in prints --output json only")

    region = opts.get("--region") or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        return fail(253, "You must specify a region. You can also configure your region by running \"aws configure\".")
    key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if not key or not secret:
        return fail(253, "Unable to locate credentials. You can configure credentials by running \"aws configure\".")
    endpoint = (opts.get("--endpoint-url") or os.environ.get("AWS_ENDPOINT_URL_KINESIS")
                or os.environ.get("AWS_ENDPOINT_URL"))

    binary_format = opts.get("--cli-binary-format", "base64")
    text = opts["--data"]
    if binary_format == "raw-in-base64-out":
        data = text.encode()
    elif binary_format == "base64":
        try:
            data = base64.b64decode(text, validate=True)
        except binascii.Error:
            return fail(252, f"\nInvalid base64: \"{text[:60]}\"\n")
    else:
        return fail(252, f"aws: error: argument --cli-binary-format: invalid choice: {binary_format!r}")

    import boto3
    import botocore.exceptions

    client = boto3.client("kinesis", endpoint_url=endpoint, region_name=region,
                          aws_access_key_id=key, aws_secret_access_key=secret)
    request = {PUT_RECORD[k]: v for k, v in opts.items() if k in PUT_RECORD}
    request["Data"] = data
    try:
        answer = client.put_record(**request)
    except botocore.exceptions.ClientError as e:
        err = e.response.get("Error", {})
        return fail(254, f"\nAn error occurred ({err.get('Code')}) when calling the PutRecord operation: "
                         f"{err.get('Message')}\n")
    except botocore.exceptions.EndpointConnectionError as e:
        return fail(255, f"\n{e}\n")
    answer.pop("ResponseMetadata", None)
    sys.stdout.write(json.dumps(answer, indent=4) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
