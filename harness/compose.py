"""docker-compose.yml and the Dockerfile, read as Compose and BuildKit read them, and the stack
played here without Docker: each service's command run as a local process the way its
container would run it.

Reading (test_compose_file.py, test_compose_rehearsal.py):
  `compose()` the file as Compose reads it (YAML merge keys resolved), `compose_schema()` the
  Compose specification's JSON schema as the `dclint` package ships it, `stages()` the
  Dockerfile's stages with their instructions, `dockerignore()` its patterns and `ignored()`.

Playing (test_compose_rehearsal.py), `Stack(tmp)`:
  * host names and ports: every `http://SERVICE:PORT`, `127.0.0.1:PORT` (inside a service)
    and `0.0.0.0:PORT` in a command or environment of the file is rewritten to
    `127.0.0.1:<a free port>`, one per (service, container port), so that the processes find
    each other as the containers do on the Compose network;
  * paths: a container path is the file the Dockerfile COPYs there (the service's build
    target) or the file bind-mounted there; a named volume is a folder under tmp/volumes that
    outlives the processes, as a volume outlives `docker compose down`;
  * kinesis: `node_modules/.bin/kinesalite` with the service's command; its healthcheck and
    the create-stream service run scripts/kinesis_stream.js with node as their containers do;
  * clickhouse: the image's entrypoint rules (its docker/server/entrypoint.sh): when the
    data folder has no `data/` subfolder, a temporary server runs every
    /docker-entrypoint-initdb.d/*.sql in name order, each as one multi-statement script
    (clickhouse-client --multiquery: statement after statement, no query parameters, the
    first error stops the start-up), and stops; then the server starts for good. The
    server is the HTTP front over chDB (harness.http_front) in
    its own process, on the volume's folder, with the shipped function file and the
    release binary; the healthcheck's query goes to it over HTTP instead of the native
    protocol;
  * forwarder: the release kinesis-forwarder with the service's environment and command
    (the image's ENTRYPOINT is the program), and nothing else from this process's
    environment, as in a container;
  * aws (profile tools): harness.aws_cli_shim, a stand-in for the AWS CLI's
    `kinesis put-record`, with the service's environment.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from harness import REPO, free_port, release_binary
from harness.engine import build_udf_dir
from harness.sql import split_statements, tsv

COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
README = REPO / "README.md"
SCHEMA = REPO / "node_modules" / "dclint" / "schemas" / "compose.schema.json"
KINESALITE = REPO / "node_modules" / ".bin" / "kinesalite"
INITDB = "/docker-entrypoint-initdb.d/"


# -- reading the files -----------------------------------------------------------------------


def compose() -> dict:
    """docker-compose.yml as Compose reads it (merge keys `<<: *anchor` resolved)."""
    return yaml.safe_load(COMPOSE_FILE.read_text())


def compose_schema() -> dict:
    if not SCHEMA.is_file():
        raise FileNotFoundError(f"{SCHEMA} not found: run scripts/setup (dclint is in package.json)")
    return json.loads(SCHEMA.read_text())


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)  # (KEYWORD, arguments)

    def all(self, keyword: str) -> list[str]:
        return [args for k, args in self.instructions if k == keyword]

    def entrypoint(self) -> list[str]:
        (args,) = self.all("ENTRYPOINT")[-1:]
        return json.loads(args)

    def copies(self) -> list[tuple[list[str], str, str | None]]:
        """Each COPY as (sources, destination, --from stage or None)."""
        out = []
        for args in self.all("COPY"):
            words = shlex.split(args)
            flags = [w for w in words if w.startswith("--")]
            paths = [w for w in words if not w.startswith("--")]
            source = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None)
            out.append((paths[:-1], paths[-1], source))
        return out


def stages(text: str | None = None) -> dict[str, Stage]:
    """The Dockerfile's stages by name (`FROM base AS name`), with their instructions;
    continuation lines joined, comments dropped."""
    text = DOCKERFILE.read_text() if text is None else text
    logical, buf = [], ""
    for line in text.splitlines():
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        logical.append(buf + line)
        buf = ""
    out: dict[str, Stage] = {}
    current = None
    for line in logical:
        keyword, _, args = line.strip().partition(" ")
        keyword, args = keyword.upper(), " ".join(args.split())
        if keyword == "FROM":
            m = re.fullmatch(r"(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?", args, re.IGNORECASE)
            assert m, line
            current = Stage(m.group(2) or str(len(out)), m.group(1))
            out[current.name] = current
        elif current is not None:
            current.instructions.append((keyword, args))
    return out


def dockerignore() -> list[str]:
    return [line.strip() for line in DOCKERIGNORE.read_text().splitlines()
            if line.strip() and not line.startswith("#")]


def _pattern(pat: str) -> re.Pattern:
    """A .dockerignore pattern as a regular expression over paths relative to the context:
    `*` and `?` within one name, `**` across folders."""
    out, i = [], 0
    while i < len(pat):
        if pat.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pat.startswith("**", i):
            out.append(".*")
            i += 2
        elif pat[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pat[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pat[i]))
            i += 1
    return re.compile("".join(out))


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore's `patterns` leave `path` (relative to the context) out of the
    build context: a pattern matches the path or one of its parent folders; a later
    `!pattern` takes a match back."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    out = False
    for p in patterns:
        negate = p.startswith("!")
        regex = _pattern(p.lstrip("!").strip("/"))
        if any(regex.fullmatch(pre) for pre in prefixes):
            out = not negate
    return out


def published(service: dict) -> list[tuple[str, int, int]]:
    """The service's published ports as (host address, host port, container port); a port
    without an address is published on every interface ('')."""
    out = []
    for p in service.get("ports", []):
        parts = str(p).split(":")
        if len(parts) == 3:
            out.append((parts[0], int(parts[1]), int(parts[2])))
        elif len(parts) == 2:
            out.append(("", int(parts[0]), int(parts[1])))
        else:
            out.append(("", int(parts[0]), int(parts[0])))
    return out


def readme_section(title: str) -> str:
    """The text of README.md's `## title` section."""
    text = README.read_text()
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert m, f"README.md has no section '## {title}'"
    return m.group(1)


def shell_commands(text: str) -> list[str]:
    """The commands of the ```sh blocks of `text`: continuation lines joined, comments and
    blank lines dropped."""
    out = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.DOTALL):
        buf = ""
        for line in block.splitlines():
            code = line if buf else line.split("  #", 1)[0]
            if not buf and (not code.strip() or code.lstrip().startswith("#")):
                continue
            if code.rstrip().endswith("\\"):
                buf += code.rstrip()[:-1].rstrip() + " "
                continue
            out.append((buf + code.strip()).strip())
            buf = ""
    return out


# -- playing the stack -----------------------------------------------------------------------


class ServiceFailed(AssertionError):
    pass


@dataclass
class Proc:
    """A service's process, its output in a log file."""

    name: str
    proc: subprocess.Popen
    log_path: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 40) -> int:
        """`docker compose stop`: the signal, then SIGKILL after `timeout`; the exit status."""
        if self.alive():
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise ServiceFailed(f"{self.name} did not stop within {timeout}s:\n{self.log()[-3000:]}")

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise ServiceFailed(f"{self.name} still running after {timeout}s:\n{self.log()[-3000:]}")


class Stack:
    """The services of docker-compose.yml as local processes (see the module's doc)."""

    def __init__(self, tmp: Path, binary: Path):
        self.tmp, self.binary = tmp, binary
        self.file = compose()
        self.services = self.file["services"]
        self.stages = stages()
        self.ports: dict[tuple[str, int], int] = {}
        self.procs: list[Proc] = []
        self.runs = 0
        self.udf_dir = build_udf_dir(tmp / "udf", binary=binary)

    # -- names, ports and paths as a container sees them

    def port(self, service: str, container_port: int) -> int:
        """The local port that plays `service`'s `container_port` (also its published port)."""
        key = (service, container_port)
        if key not in self.ports:
            self.ports[key] = free_port()
        return self.ports[key]

    def rewrite(self, service: str, value: str) -> str:
        """`value` of `service`'s command or environment, its host:port references made local."""
        def sub(m: re.Match) -> str:
            host, port = m.group(1), int(m.group(2))
            if host in self.services:
                return f"127.0.0.1:{self.port(host, port)}"
            if host in ("localhost", "127.0.0.1", "0.0.0.0"):
                return f"127.0.0.1:{self.port(service, port)}"
            raise ValueError(f"{service}: {host}:{port} is neither a service nor the container itself")

        return re.sub(r"\b(localhost|127\.0\.0\.1|0\.0\.0\.0|[a-z][a-z0-9_-]*):(\d+)\b", sub, str(value))

    def volume_dir(self, name: str) -> Path:
        assert name in (self.file.get("volumes") or {}), f"volume {name} is not declared"
        d = self.tmp / "volumes" / name
        d.mkdir(parents=True, exist_ok=True)
        return d

    def host_path(self, service: str, container_path: str) -> Path:
        """What `service`'s container finds at `container_path`: a volume's folder, a
        bind-mounted file, or a file its image's stage COPYs there from the repository."""
        svc = self.services[service]
        for v in svc.get("volumes", []):
            src, dst = v.split(":")[:2]
            if container_path == dst or container_path.startswith(dst.rstrip("/") + "/"):
                rest = container_path[len(dst):].lstrip("/")
                base = REPO / src if src.startswith(".") else self.volume_dir(src)
                return base / rest if rest else base
        target = (svc.get("build") or {}).get("target")
        if target:
            for sources, dest, from_stage in self.stages[target].copies():
                if from_stage is None and dest == container_path and len(sources) == 1:
                    return REPO / sources[0]
        raise KeyError(f"{service}: nothing at {container_path} in the container")

    def environment(self, service: str) -> dict[str, str]:
        """The container's environment: the service's variables, rewritten; PATH and LANG
        from here so that the programs run."""
        env = {k: self.rewrite(service, v) for k, v in (self.services[service].get("environment") or {}).items()}
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", **env}

    def argv(self, service: str, programs: dict[str, Path]) -> list[str]:
        """The service's command line: its entrypoint (the service's, else its image stage's)
        with each program mapped by `programs` or to the file the container has there, then
        its command, rewritten."""
        svc = self.services[service]
        entry = svc.get("entrypoint") or self.stages[svc["build"]["target"]].entrypoint()
        out: list[str] = []
        for word in [*entry, *svc.get("command", [])]:
            if word in programs:
                out.append(str(programs[word]))
            elif word.startswith("/"):
                out.append(str(self.host_path(service, word)))
            elif out[-1:] == ["--port"] and word.isdigit():
                out.append(str(self.port(service, int(word))))
            else:
                out.append(self.rewrite(service, word))
        return out

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> Proc:
        self.runs += 1
        log_path = self.tmp / f"{name}.log"
        with open(log_path, "ab") as log:
            log.write(f"--- run {self.runs}: {shlex.join(argv)}\n".encode())
            log.flush()
            proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, cwd=REPO)
        p = Proc(name, proc, log_path)
        self.procs.append(p)
        return p

    def run(self, name: str, argv: list[str], env: dict[str, str], timeout: float = 60) -> tuple[int, str]:
        """A one-shot container: its exit status and output."""
        out = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                             timeout=timeout, cwd=REPO, check=False)
        return out.returncode, out.stdout + out.stderr

    def healthcheck(self, service: str, programs: dict[str, Path]) -> tuple[int, str]:
        """One try of the service's `CMD` healthcheck."""
        test = self.services[service]["healthcheck"]["test"]
        assert test[0] == "CMD", test
        argv = []
        for word in test[1:]:
            if word in programs:
                argv.append(str(programs[word]))
            elif word.startswith("/"):
                argv.append(str(self.host_path(service, word)))
            else:
                argv.append(self.rewrite(service, word))
        return self.run(f"{service}-healthcheck", argv, self.environment(service), timeout=30)

    # -- kinesis and create-stream

    def up_kinesis(self, in_memory: bool = False) -> Proc:
        """The kinesis service; `in_memory`: without its --path (as the stack once ran it)."""
        argv = self.argv("kinesis", {"kinesalite": KINESALITE})
        if in_memory:
            i = argv.index("--path")
            del argv[i:i + 2]
        p = self.start("kinesis", argv, self.environment("kinesis"))
        self.wait_healthy("kinesis", {"node": Path("node")}, p)
        return p

    def wait_healthy(self, service: str, programs: dict[str, Path], proc: Proc, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            rc, out = self.healthcheck(service, programs)
            if rc == 0:
                return
            if not proc.alive():
                raise ServiceFailed(f"{service} exited with {proc.proc.returncode}:\n{proc.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise ServiceFailed(f"{service} not healthy after {timeout}s: {out}")
            time.sleep(0.1)

    def create_stream(self) -> tuple[int, str]:
        return self.run("create-stream", self.argv("create-stream", {"node": Path("node")}),
                        self.environment("create-stream"))

    # -- clickhouse

    def init_files(self) -> list[tuple[str, Path]]:
        """The clickhouse service's /docker-entrypoint-initdb.d/ files, in the order the
        entrypoint runs them (name order)."""
        out = []
        for v in self.services["clickhouse"].get("volumes", []):
            src, dst = v.split(":")[:2]
            if dst.startswith(INITDB):
                out.append((dst[len(INITDB):], REPO / src))
        return sorted(out)

    def data_dir(self) -> Path:
        return self.host_path("clickhouse", "/var/lib/clickhouse")

    def _front(self) -> Proc:
        port = self.port("clickhouse", 8123)
        argv = [sys.executable, "-m", "harness.http_front", "--port", str(port), "--db", str(self.data_dir()),
                "--udf-dir", str(self.udf_dir)]
        p = self.start("clickhouse", argv, {**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as r:
                    if r.read() == b"Ok.\n":
                        return p
            except OSError:
                pass
            if not p.alive() or time.monotonic() > deadline:
                raise ServiceFailed(f"the ClickHouse front did not start:\n{p.log()[-3000:]}")
            time.sleep(0.1)

    def up_clickhouse(self, on_step=None) -> tuple[Proc, list[str]]:
        """The clickhouse container's start: the init scripts when the data folder is new,
        then the server. Returns the server and the init files run ([] when skipped).
        `on_step(name)` is called on the temporary server before the first file (None) and
        after each file."""
        ran: list[str] = []
        if not (self.data_dir() / "data").is_dir():
            temporary = self._front()
            try:
                if on_step:
                    on_step(None)
                for name, path in self.init_files():
                    assert name.endswith(".sql"), f"{name}: only .sql init files are played here"
                    for stmt in split_statements(path.read_text()):
                        status, out = self.http("clickhouse", stmt)
                        if status != 200:
                            raise ServiceFailed(f"init script {name} failed: {out}")
                    ran.append(name)
                    if on_step:
                        on_step(name)
            finally:
                temporary.stop(signal.SIGINT)
        return self._front(), ran

    def http(self, service: str, sql: str) -> tuple[int, str]:
        """`sql` over HTTP to the ClickHouse played for `service` (its 8123)."""
        url = f"http://127.0.0.1:{self.port(service, 8123)}/"
        req = urllib.request.Request(url, data=sql.encode(), method="POST")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def query(self, sql: str) -> list[tuple]:
        status, out = self.http("clickhouse", sql)
        assert status == 200, out
        return tsv(out)

    def clickhouse_healthcheck(self) -> tuple[int, str]:
        """The clickhouse healthcheck's query (`clickhouse-client --host H --query Q`), sent
        to the server that plays the host H."""
        test = self.services["clickhouse"]["healthcheck"]["test"]
        assert test[:2] == ["CMD", "clickhouse-client"], test
        args = dict(zip(test[2::2], test[3::2]))
        return self.http(args["--host"], args["--query"])

    # -- forwarder and aws

    def up_forwarder(self) -> Proc:
        return self.start("forwarder", self.argv("forwarder", {"kinesis-forwarder": release_binary("kinesis-forwarder")}),
                          self.environment("forwarder"))

    def aws(self, command: str) -> tuple[int, str]:
        """A shell command line as the docs write it, with `docker compose run --rm aws …`
        running the stand-in with the aws service's environment (from the repository's root,
        like the docs' commands)."""
        env = self.environment("aws")
        shim = f"{shlex.quote(sys.executable)} -m harness.aws_cli_shim"
        script = (f'docker() {{ if [ "$1 $2 $3 $4" = "compose run --rm aws" ]; then shift 4; {shim} "$@"; '
                  'else echo "docker: only compose run --rm aws is played here" >&2; return 127; fi; }\n'
                  + command)
        return self.run("aws", ["bash", "-c", script], env)

    def published_url(self, url: str) -> str:
        """A URL on a published port of the host (127.0.0.1:HOST_PORT), made local."""
        def sub(m: re.Match) -> str:
            host_port = int(m.group(1))
            for name, svc in self.services.items():
                for addr, hp, cp in published(svc):
                    if hp == host_port and addr == "127.0.0.1":
                        return f"127.0.0.1:{self.port(name, cp)}"
            raise KeyError(f"no service publishes 127.0.0.1:{host_port}")

        return re.sub(r"127\.0\.0\.1:(\d+)", sub, url)

    # -- down

    def down(self) -> dict[str, int]:
        """`docker compose down` without -v: the running processes stopped, dependents first
        (SIGTERM; the ClickHouse front, a test server, with SIGINT), the volumes kept.
        Returns each service's exit status."""
        statuses = {}
        for p in reversed(self.procs):
            if p.alive():
                statuses[p.name] = p.stop(signal.SIGINT if p.name == "clickhouse" else signal.SIGTERM)
        self.procs = [p for p in self.procs if p.alive()]
        return statuses

    def close(self) -> None:
        for p in self.procs:
            if p.alive():
                p.proc.kill()
                p.proc.wait()
        self.procs = []


@contextlib.contextmanager
def stack(tmp: Path, binary: Path):
    s = Stack(tmp, binary)
    try:
        yield s
    finally:
        s.close()


def url_query(url: str) -> str:
    """The query of a `?query=…` URL, decoded."""
    return urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["query"][0]
