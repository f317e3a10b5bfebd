"""docker-compose.yml and the Dockerfile, checked without a Docker engine: the file against the
Compose specification's JSON schema (and dclint's rules), then one rule per defect the layout
avoids, the files the build and the stack use, and the init scripts parsed by ClickHouse.

test_compose_rehearsal.py runs the services' commands; README.md "Local stack" says what is
and is not checked.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import xml.etree.ElementTree as ET
from fnmatch import fnmatch
from pathlib import Path

import jsonschema
import pytest

from harness import compose as ce
from harness.sql import split_statements

SERVICES = {"clickhouse", "kinesis", "create-stream", "forwarder", "aws"}
# What the forwarder needs from ClickHouse at start-up: sql/01, 02, 05 and 10's tables and the
# function the stream view calls.
FORWARDER_TABLES = {"people", "people_flat", "people_stream", "dynamo_errors", "kinesis_checkpoints"}


@pytest.fixture(scope="module")
def doc() -> dict:
    return ce.compose()


@pytest.fixture(scope="module")
def stages() -> dict[str, ce.Stage]:
    return ce.stages()


def schema_errors(doc: dict) -> list[str]:
    validator = jsonschema.Draft7Validator(ce.compose_schema())
    return sorted(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc))


def test_the_file_follows_the_compose_specification(doc):
    assert schema_errors(doc) == []
    # The schema does refuse what Compose would refuse: a misspelt key, a wrong type, a
    # condition that does not exist.
    for path, value in [(("services", "kinesis", "healthchek"), {"test": ["CMD", "true"]}),
                        (("services", "forwarder", "restart"), 3),
                        (("services", "forwarder", "depends_on", "clickhouse", "condition"), "service_ready")]:
        bad = copy.deepcopy(doc)
        target = bad
        for k in path[:-1]:
            target = target[k]
        target[path[-1]] = value
        assert schema_errors(bad), path


def dclint(path: Path) -> dict:
    out = subprocess.run(["node", str(ce.REPO / "node_modules" / "dclint" / "bin" / "dclint.cjs"),
                          "--formatter", "json", str(path)],
                         capture_output=True, text=True, timeout=60, check=False, cwd=ce.REPO)
    (report,) = json.loads(out.stdout)
    return report


def test_dclint_finds_no_error(tmp_path):
    report = dclint(ce.COMPOSE_FILE)
    errors = [m for m in report["messages"] if m["type"] == "error"]
    assert errors == [] and report["errorCount"] == 0, errors
    # Its error rules do run: a port on every interface and an image without a tag are errors.
    bad = tmp_path / "docker-compose.yml"
    bad.write_text(ce.COMPOSE_FILE.read_text().replace('"127.0.0.1:8123:8123"', '"8123:8123"')
                   .replace("amazon/aws-cli:2.17.0", "amazon/aws-cli"))
    rules = sorted(m["rule"] for m in dclint(bad)["messages"] if m["type"] == "error")
    assert rules == ["no-unbound-port-interfaces", "service-image-require-explicit-tag"]


def test_services_build_their_images_or_pull_pinned_ones(doc, stages):
    services = doc["services"]
    assert set(services) == SERVICES  # no build-only or copy-only helper services
    for name, svc in services.items():
        if "build" in svc:
            # Built here: never pulled (no "pull access denied" for a name only built locally),
            # and no image name shared with a service that would pull it.
            assert svc.get("pull_policy") == "build", name
            assert "image" not in svc, name
            assert svc["build"]["context"] == "."
            assert svc["build"]["target"] in stages, name
        else:
            assert re.fullmatch(r"[a-z0-9./-]+:\d+(\.\d+)+", svc["image"]), name
    for name, stage in stages.items():
        tag = stage.base.partition(":")[2]
        assert tag and tag not in ("latest", "stable", "lts"), (name, stage.base)


def test_ports_are_published_on_loopback_only(doc):
    seen = []
    for name, svc in doc["services"].items():
        for addr, host_port, container_port in ce.published(svc):
            assert addr == "127.0.0.1", (name, addr, host_port)
            seen.append((name, host_port, container_port))
    assert sorted(seen) == [("clickhouse", 8123, 8123), ("forwarder", 9464, 9464), ("kinesis", 4567, 4567)]
    assert "0.0.0.0:9464" == doc["services"]["forwarder"]["environment"]["FORWARDER_METRICS_ADDR"]


def test_start_order_waits_for_what_each_service_needs(doc):
    s = doc["services"]
    assert s["forwarder"]["depends_on"] == {"clickhouse": {"condition": "service_healthy"},
                                           "create-stream": {"condition": "service_completed_successfully"}}
    assert s["create-stream"]["depends_on"] == {"kinesis": {"condition": "service_healthy"}}
    assert s["aws"]["depends_on"] == {"kinesis": {"condition": "service_healthy"}}
    assert s["aws"]["profiles"] == ["tools"]
    for name in ("clickhouse", "kinesis"):
        assert s[name]["healthcheck"]["test"][0] == "CMD", name
        assert s[name]["healthcheck"]["retries"] >= 10, name

    # ClickHouse: the query goes to the service's own name, the address the forwarder uses,
    # where the image's temporary init server (listening on 127.0.0.1) cannot answer.
    test = s["clickhouse"]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "clickhouse-client"]
    args = dict(zip(test[2::2], test[3::2]))
    assert args["--host"] == "clickhouse"
    assert "localhost" not in test and "127.0.0.1" not in test
    query = args["--query"]
    names = set(re.findall(r"'(\w+)'", query.split("name IN", 1)[1].split(")", 1)[0]))
    assert names == FORWARDER_TABLES
    assert f"!= {len(FORWARDER_TABLES)}" in query and "throwIf(" in query
    assert "'dynamo_flatten_columns'" in query

    # The forwarder reads the stream create-stream makes, on the hosts of the other services.
    env = s["forwarder"]["environment"]
    assert s["create-stream"]["command"] == ["ensure", env["KINESIS_STREAM"], "2"]
    assert env["CLICKHOUSE_URL"] == "http://clickhouse:8123"
    assert env["KINESIS_ENDPOINT_URL"] == s["create-stream"]["environment"]["KINESIS_ENDPOINT_URL"] \
        == s["aws"]["environment"]["AWS_ENDPOINT_URL"] == "http://kinesis:4567"
    for name in ("create-stream", "forwarder", "aws"):
        e = s[name]["environment"]
        assert e["AWS_ACCESS_KEY_ID"] and e["AWS_SECRET_ACCESS_KEY"] and e["AWS_REGION"] == "us-east-1", name


def test_stream_and_checkpoints_live_on_named_volumes(doc):
    s, volumes = doc["services"], doc["volumes"]
    command = s["kinesis"]["command"]
    path = command[command.index("--path") + 1]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in s["kinesis"]["volumes"]}
    assert mounts[path] in volumes  # a named volume: `down` keeps it, `down -v` removes it
    ch_mounts = {v.split(":")[1]: v.split(":")[0] for v in s["clickhouse"]["volumes"]}
    assert ch_mounts["/var/lib/clickhouse"] in volumes
    assert set(volumes) == {mounts[path], ch_mounts["/var/lib/clickhouse"]}
    assert doc["name"] == "dynamo-flatten"  # the same volumes from any checkout folder
    # Nothing replaces the binary under a running server: no volume over user_scripts.
    assert not any("user_scripts" in v for svc in s.values() for v in svc.get("volumes", []))


def test_restarts_are_bounded(doc):
    for name, svc in doc["services"].items():
        restart = svc.get("restart", "no")
        m = re.fullmatch(r"on-failure:(\d+)", restart)
        assert restart == "no" or (m and 1 <= int(m.group(1)) <= 5), (name, restart)
    assert doc["services"]["forwarder"]["restart"] == "on-failure:3"
    # Longer than the forwarder's --shutdown-timeout (30 s): SIGTERM sends the open batch.
    grace = doc["services"]["forwarder"]["stop_grace_period"]
    assert re.fullmatch(r"\d+s", grace) and int(grace[:-1]) > 30
    assert doc["services"]["kinesis"]["init"] is True


def test_no_step_hides_its_failure(doc):
    text = "\n".join(line.split("#", 1)[0] for line in ce.COMPOSE_FILE.read_text().splitlines())
    for bad in ("|| true", "||:", "|| :", "sleep "):
        assert bad not in text, bad
    for name, svc in doc["services"].items():
        for key in ("command", "entrypoint"):
            words = svc.get(key, [])
            assert isinstance(words, list), (name, key)  # exec form: no shell in between
            assert "sh" not in words[:1] and "-c" not in words, (name, key)


def test_clickhouse_image_is_the_release_the_engine_tests_run(stages, ch):
    base = stages["clickhouse"].base
    m = re.fullmatch(r"clickhouse/clickhouse-server:(\d+)\.(\d+)\.\d+\.\d+", base)
    assert m, base
    engine = ch.one("SELECT version()")
    assert engine.split(".")[:2] == [m.group(1), m.group(2)], (base, engine)


def test_every_file_the_build_copies_or_the_stack_mounts_exists(doc, stages):
    patterns = ce.dockerignore()
    for name, stage in stages.items():
        for sources, dest, from_stage in stage.copies():
            if from_stage:
                assert from_stage in stages, (name, from_stage)
                continue
            for src in sources:
                if src == ".":
                    continue
                assert (ce.REPO / src).exists(), (name, src)
                assert not ce.ignored(src, patterns), (name, src)
    # What the build stage compiles from is in the context.
    for path in ("Cargo.toml", "Cargo.lock", "src/lib.rs", "benches", "examples", "tests/common"):
        assert (ce.REPO / path).exists() and not ce.ignored(path, patterns), path
    for name, svc in doc["services"].items():
        for v in svc.get("volumes", []):
            src = v.split(":")[0]
            if src.startswith("."):
                assert (ce.REPO / src).is_file(), (name, src)


def test_dockerignore_leaves_out_build_output_and_local_state():
    patterns = ce.dockerignore()
    for entry in (".git", "target", ".venv", "node_modules", ".work", ".hypothesis", "**/__pycache__",
                  "fuzz/target", "fuzz/corpus", "fuzz/artifacts"):
        assert entry in patterns, entry
    for path in (".git/HEAD", "target/release/dynamo-flatten", ".venv/bin/python", "node_modules/kinesalite/cli.js",
                 ".work/x", ".hypothesis/examples/x", "__pycache__/x.pyc", "tests/py/__pycache__/conftest.pyc",
                 "fuzz/artifacts/flatten/crash-1", "fuzz/corpus/flatten/1", "fuzz/target/x"):
        assert ce.ignored(path, patterns), path
    for path in ("Cargo.toml", "src/lib.rs", "fuzz/Cargo.toml", "scripts/kinesis_stream.js",
                 "clickhouse-config/docker/dynamo_flatten.xml", "tests/fixtures/README.md"):
        assert not ce.ignored(path, patterns), path


def test_the_build_caches_cargo_and_copies_the_binaries_out(stages):
    (run,) = stages["build"].all("RUN")
    cache = re.findall(r"--mount=type=cache,target=(\S+)", run)
    assert set(cache) == {"/usr/local/cargo/registry", "/usr/local/cargo/git", "/src/target"}
    assert "cargo build --release --locked --bins" in run
    assert "cp target/release/dynamo-flatten target/release/kinesis-forwarder /out/" in run
    for name in ("clickhouse", "forwarder"):
        froms = [(srcs, dest) for srcs, dest, frm in stages[name].copies() if frm == "build"]
        assert froms and all(src.startswith("/out/") for srcs, _ in froms for src in srcs), name
    assert ce.DOCKERFILE.read_text().startswith("# syntax=docker/dockerfile:1\n")


def test_the_image_installs_the_function_where_its_config_points(stages):
    copies = {dest: (srcs, frm) for srcs, dest, frm in stages["clickhouse"].copies()}
    config_file = ce.REPO / "clickhouse-config" / "docker" / "dynamo_flatten.xml"
    assert copies["/etc/clickhouse-server/config.d/dynamo_flatten.xml"] == (
        ["clickhouse-config/docker/dynamo_flatten.xml"], None)
    config = ET.parse(config_file).getroot()
    scripts = config.findtext("user_scripts_path")
    assert scripts == "/opt/dynamo-flatten/user_scripts/"
    assert not scripts.startswith("/var/lib/clickhouse")  # the data volume
    function_file = "/etc/clickhouse-server/dynamo_flatten_function.xml"
    assert copies[function_file] == (["clickhouse-config/dynamo_flatten_function.xml"], None)
    assert fnmatch(Path(function_file).name, config.findtext("user_defined_executable_functions_config"))
    programs = {fn.findtext("command").split(" ")[0]
                for fn in ET.parse(ce.REPO / "clickhouse-config" / "dynamo_flatten_function.xml").iter("function")}
    assert {f"{scripts}{p}" for p in programs} == {d for d, (_, frm) in copies.items() if frm == "build"}
    # The server config.d of a plain install (user_scripts_path in /var/lib/clickhouse) is not
    # in the image: the two would disagree.
    assert all("clickhouse-config/config.d" not in src for srcs, _ in copies.values() for src in srcs)


def test_kinesalite_is_the_version_the_tests_run(stages):
    (arg,) = [a for a in stages["kinesalite"].all("ARG") if a.startswith("KINESALITE_VERSION=")]
    package = json.loads((ce.REPO / "package.json").read_text())
    assert arg.split("=", 1)[1] == package["devDependencies"]["kinesalite"]
    assert any("kinesalite@${KINESALITE_VERSION}" in r for r in stages["kinesalite"].all("RUN"))
    assert stages["kinesalite"].entrypoint() == ["kinesalite"]
    assert stages["forwarder"].entrypoint() == ["kinesis-forwarder"]


def test_the_udf_binary_needs_no_glibc_newer_than_the_image(binary):
    """The ClickHouse image is Ubuntu 22.04 (glibc 2.35); the build stage and this machine are
    Debian 12 (glibc 2.36): the release binary built here asks for no symbol version above 2.35."""
    versions = {tuple(int(x) for x in v.split(b".")) for v in re.findall(rb"GLIBC_(\d+\.\d+(?:\.\d+)?)", binary.read_bytes())}
    assert versions and max(versions) <= (2, 35), sorted(versions)[-3:]


def test_init_scripts_parse_and_take_no_parameters(ch, doc):
    files = [v.split(":")[0] for v in doc["services"]["clickhouse"]["volumes"] if ce.INITDB in v]
    assert files == ["./sql/01_destination.sql", "./sql/02_flat_and_errors.sql", "./sql/05_stream.sql",
                     "./sql/10_kinesis_checkpoints.sql"]
    created = set()
    for f in files:
        stmts = split_statements((ce.REPO / f).read_text(), keep_comments=False)
        assert stmts, f
        for stmt in stmts:
            # clickhouse-client --multiquery gets no --param_…: a {name:Type} would fail.
            assert not re.search(r"\{\s*\w+\s*:\s*\w", stmt), (f, stmt[:200])
            formatted = ch.one("SELECT formatQuery(" + "'" + stmt.replace("\\", "\\\\").replace("'", "\\'") + "')")
            created |= set(re.findall(r"^CREATE (?:TABLE|MATERIALIZED VIEW) IF NOT EXISTS (\w+)", formatted))
    assert FORWARDER_TABLES <= created


def test_kinesis_stream_js_signs_as_the_aws_sdk_does():
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    js = ("const {signedHeaders} = require(process.argv[1]);"
          "console.log(JSON.stringify(signedHeaders(new URL('http://kinesis:4567'), 'DescribeStreamSummary',"
          " '{\"StreamName\":\"people-changes\"}', new Date(Date.UTC(2026, 0, 2, 3, 4, 5)))))")
    out = subprocess.run(["node", "-e", js, str(ce.REPO / "scripts" / "kinesis_stream.js")],
                         env={"PATH": "/usr/local/bin:/usr/bin:/bin", "AWS_ACCESS_KEY_ID": "AKID",
                              "AWS_SECRET_ACCESS_KEY": "secret", "AWS_REGION": "eu-west-1"},
                         capture_output=True, text=True, timeout=30, check=True)
    headers = json.loads(out.stdout)
    req = AWSRequest(method="POST", url="http://kinesis:4567/", data=b'{"StreamName":"people-changes"}',
                     headers={"Content-Type": "application/x-amz-json-1.1", "Host": "kinesis:4567",
                              "X-Amz-Target": "Kinesis_20131202.DescribeStreamSummary",
                              "X-Amz-Date": "20260102T030405Z"})
    req.context["timestamp"] = "20260102T030405Z"
    auth = SigV4Auth(Credentials("AKID", "secret"), "kinesis", "eu-west-1")
    signature = auth.signature(auth.string_to_sign(req, auth.canonical_request(req)), req)
    assert headers["x-amz-date"] == "20260102T030405Z"
    assert headers["authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKID/20260102/eu-west-1/kinesis/aws4_request, "
        f"SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature={signature}")


def test_the_docs_give_the_stack_commands(doc):
    readme = ce.shell_commands(ce.readme_section("Local stack"))
    header = "\n".join(line[4:] for line in ce.COMPOSE_FILE.read_text().splitlines() if line.startswith("#   "))
    header_cmds = ce.shell_commands(f"```sh\n{header}\n```")
    for cmds in (readme, header_cmds):
        assert cmds[0] == "docker compose up --build -d"
        (put,) = [c for c in cmds if "put-record" in c]
        assert put.startswith("docker compose run --rm aws kinesis put-record --stream-name people-changes ")
        assert "--cli-binary-format raw-in-base64-out" in put
        assert "curl 'http://127.0.0.1:8123/?query=SELECT+*+FROM+people+FINAL'" in cmds
        assert "docker compose down" in cmds and "docker compose down -v" in cmds
        for c in cmds:
            assert not c.startswith("aws "), c  # the host's CLI has neither keys nor region
            m = re.match(r"docker compose (?:run --rm|logs) (\S+)", c)
            assert not m or m.group(1) in doc["services"], c
    section = ce.readme_section("Local stack")
    assert "has not been run with a Docker engine" in section
