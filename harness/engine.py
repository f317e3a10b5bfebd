"""chDB (embedded ClickHouse) with the dynamo-flatten UDF, configured as shipped.

chDB loads executable UDFs from one folder, ``udf_path``: every ``*.xml`` there is a function
config, and ``<command>`` is resolved relative to that folder. `build_udf_dir` makes such a
folder from the files a real server would get:

* ``clickhouse-config/dynamo_flatten_function.xml`` (copied unchanged), and
* the ``dynamo-flatten`` binary (copied next to it),

and can add *variants* of the shipped functions (other ``type``, ``format``,
``send_chunk_header`` or program flags) generated from the shipped XML, so that every
other setting stays exactly as shipped. `Engine` is a session on such a folder, with the
sql/ scripts run as clickhouse-client runs them (see harness.sql)::

    udf = build_udf_dir("/tmp/udf", variants=[
        Variant("df_exec_tsv", type="executable", format="TabSeparated"),
    ])
    ch = Engine.open("/tmp/db", udf)
    ch.rows("SELECT dynamo_flatten('{\"id\":{\"S\":\"a\"}}')")

chDB allows one database path per process: open one session and reuse it.

From the shell, ``python -m harness.engine "SELECT dynamo_flatten('…')"`` runs one query in a
scratch session that has the shipped functions and the eight ``mode_variants()``.
"""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
import stat
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness import BINARY_ENV, RELEASE, REPO, SQL_DIR
from harness.sql import split_statements, tsv

SHIPPED_CONFIG = REPO / "clickhouse-config" / "dynamo_flatten_function.xml"
DEFAULT_BINARY = RELEASE / "dynamo-flatten"
VARIANTS_FILE = "dynamo_flatten_variants_function.xml"

FUNCTION_TYPES = ("executable", "executable_pool")
FORMATS = ("RowBinary", "TabSeparated")


def binary_path(path: str | os.PathLike | None = None) -> Path:
    """The program to install: ``path``, else ``$DYNAMO_FLATTEN_BIN``, else the release build.

    A relative path is taken from the current directory, or else from the repository root.
    Raises FileNotFoundError when it does not exist (build it with ``cargo build --release``).
    """
    p = Path(path or os.environ.get(BINARY_ENV) or DEFAULT_BINARY)
    if not p.is_absolute():
        p = p.resolve() if p.exists() else REPO / p
    if not p.is_file():
        raise FileNotFoundError(f"dynamo-flatten binary not found at {p}; run `cargo build --release`")
    return p


def load_functions(config: str | os.PathLike = SHIPPED_CONFIG) -> dict[str, ET.Element]:
    """The ``<function>`` elements of a config file, by name."""
    root = ET.parse(config).getroot()
    out = {}
    for fn in root.iter("function"):
        out[fn.findtext("name")] = fn
    return out


def _set(fn: ET.Element, key: str, value: str) -> None:
    el = fn.find(key)
    if el is None:
        el = ET.SubElement(fn, key)
    el.text = value


def _set_flag(words: list[str], flag: str, value: str | None) -> list[str]:
    """Sets ``flag value`` (or a bare ``flag`` when value is None) in a command's words.

    An existing occurrence is replaced where it stands; otherwise the flag is appended.
    """
    new = [flag] if value is None else [flag, value]
    out, i, done = [], 0, False
    while i < len(words):
        w = words[i]
        if w == flag or w.startswith(flag + "="):
            if w == flag and value is not None and i + 1 < len(words):
                i += 1  # skip the old value
            if not done:
                out.extend(new)
                done = True
            i += 1
            continue
        out.append(w)
        i += 1
    if not done:
        out.extend(new)
    return out


def _drop_flag(words: list[str], flag: str) -> list[str]:
    return [w for w in words if w != flag]


@dataclass(frozen=True)
class Variant:
    """A function derived from a shipped one.

    Every field left as None keeps the shipped value. ``format`` changes both the
    ``<format>`` key and the program's ``--format``; ``chunk_header`` changes both
    ``<send_chunk_header>`` and ``--chunk-header``, so they always agree.
    ``args`` are ``(flag, value)`` pairs set on the command line (value None for a bare
    flag), e.g. ``(("--on-error", "fail"),)``. ``settings`` overrides other keys, e.g.
    ``{"stderr_reaction": "throw"}``.
    """

    name: str
    base: str = "dynamo_flatten"
    type: str | None = None
    format: str | None = None
    chunk_header: bool | None = None
    args: tuple[tuple[str, str | None], ...] = ()
    settings: Mapping[str, str] = field(default_factory=dict)

    def element(self, shipped: Mapping[str, ET.Element]) -> ET.Element:
        """The ``<function>`` element of this variant."""
        if self.base not in shipped:
            raise KeyError(f"no function {self.base!r} in the shipped config")
        fn = copy.deepcopy(shipped[self.base])
        _set(fn, "name", self.name)
        words = fn.findtext("command", "").split(" ")
        if self.type is not None:
            if self.type not in FUNCTION_TYPES:
                raise ValueError(f"type must be one of {FUNCTION_TYPES}")
            _set(fn, "type", self.type)
        if self.format is not None:
            if self.format not in FORMATS:
                raise ValueError(f"format must be one of {FORMATS}")
            _set(fn, "format", self.format)
            words = _set_flag(words, "--format", self.format)
        if self.chunk_header is not None:
            _set(fn, "send_chunk_header", "1" if self.chunk_header else "0")
            words = (_set_flag(words, "--chunk-header", None) if self.chunk_header
                     else _drop_flag(words, "--chunk-header"))
        for flag, value in self.args:
            words = _set_flag(words, flag, value)
        _set(fn, "command", " ".join(words))
        for key, value in self.settings.items():
            _set(fn, key, str(value))
        return fn


def mode_variants(base: str = "dynamo_flatten", prefix: str = "df") -> list[Variant]:
    """The 8 combinations of type × format × chunk header, named e.g. ``df_pool_rb_hdr``."""
    out = []
    for t, ts in (("executable", "exec"), ("executable_pool", "pool")):
        for f, fs in (("RowBinary", "rb"), ("TabSeparated", "tsv")):
            for h, hs in ((True, "hdr"), (False, "nohdr")):
                out.append(Variant(f"{prefix}_{ts}_{fs}_{hs}", base=base, type=t, format=f, chunk_header=h))
    return out


def variants_xml(variants: Sequence[Variant], config: str | os.PathLike = SHIPPED_CONFIG) -> str:
    """A complete function config file holding ``variants``."""
    shipped = load_functions(config)
    root = ET.Element("functions")
    root.text = "\n    "
    for v in variants:
        root.append(v.element(shipped))
    ET.indent(root, space="    ")
    return '<?xml version="1.0"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def build_udf_dir(
    dest: str | os.PathLike,
    binary: str | os.PathLike | None = None,
    variants: Iterable[Variant] = (),
    config: str | os.PathLike = SHIPPED_CONFIG,
) -> Path:
    """Creates a chDB ``udf_path`` folder: the shipped config, the binary, and the variants.

    The program is copied under the name the shipped ``<command>`` uses.
    Returns the folder's absolute path.
    """
    dest = Path(dest).resolve()
    dest.mkdir(parents=True, exist_ok=True)
    config = Path(config)
    shipped = load_functions(config)
    program_names = {fn.findtext("command", "").split(" ")[0] for fn in shipped.values()}
    src = binary_path(binary)
    for name in program_names:
        target = dest / name
        shutil.copy2(src, target)
        target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    shutil.copy2(config, dest / config.name)
    variants = list(variants)
    if variants:
        (dest / VARIANTS_FILE).write_text(variants_xml(variants, config))
    return dest


def open_session(db_path: str | os.PathLike, udf_dir: str | os.PathLike | None = None,
                 config_file: str | os.PathLike | None = None):
    """A chDB Session on ``db_path`` with the UDFs of ``udf_dir`` and the server settings of
    ``config_file`` (see `cluster_config`).

    Only one database path can be used per process; keep the session and reuse it.
    """
    from chdb.session import Session

    options = [f"udf_path={Path(udf_dir).resolve()}"] if udf_dir else []
    if config_file:
        options.append(f"config-file={Path(config_file).resolve()}")
    return Session(f"{Path(db_path).resolve()}" + ("?" + "&".join(options) if options else ""))


def cluster_config(path: str | os.PathLike, cluster: str) -> Path:
    """Writes a config file for `open_session` that defines `cluster` as one shard on the
    engine itself: localhost at its own tcp_port, which ClickHouse takes for the local server,
    so that Distributed tables over the cluster read and write without a network. (ON CLUSTER
    and Replicated tables need Keeper, which chDB does not run.)"""
    path = Path(path)
    path.write_text(f"""<clickhouse>
    <tcp_port>9000</tcp_port>
    <remote_servers>
        <{cluster}><shard><replica><host>localhost</host><port>9000</port></replica></shard></{cluster}>
    </remote_servers>
</clickhouse>
""")
    return path


def text(result) -> str:
    """A chDB query result as text."""
    if result is None:
        return ""
    return result.bytes().decode() if hasattr(result, "bytes") else str(result)


class Engine:
    """A chDB session and its UDF folder. Results come as text, or as rows of strings (the
    exact values, see harness.sql.tsv); a failing statement raises chDB's error."""

    def __init__(self, session, udf_dir: Path | None = None):
        self.session = session
        self.udf_dir = udf_dir

    @classmethod
    def open(cls, db_path: str | os.PathLike, udf_dir: str | os.PathLike) -> Engine:
        return cls(open_session(db_path, udf_dir), Path(udf_dir))

    def close(self) -> None:
        self.session.close()

    def run(self, sql: str, params: dict | None = None, fmt: str = "TabSeparated") -> str:
        """Runs one statement; `params` are query parameters (`{name:Type}` in the SQL)."""
        return text(self.session.query(sql, fmt, params=params or None))

    def rows(self, sql: str, params: dict | None = None) -> list[tuple]:
        return tsv(self.run(sql, params))

    def one(self, sql: str, params: dict | None = None):
        rows = self.rows(sql, params)
        assert len(rows) == 1 and len(rows[0]) == 1, rows
        return rows[0][0]

    def col(self, sql: str) -> list:
        return [r[0] for r in self.rows(sql)]

    def count(self, sql_from: str) -> int:
        return int(self.run(f"SELECT count() FROM {sql_from}"))

    def run_script(self, sql: str, params: dict | None = None) -> list[str]:
        """Runs a script statement by statement, as `clickhouse-client --multiquery` does:
        every statement gets all `params`, the first failing one stops it. Returns each
        statement's TSV output."""
        return [self.run(stmt, params) for stmt in split_statements(sql)]

    def run_file(self, name: str, params: dict | None = None) -> list[str]:
        """Runs sql/<name> as written (see run_script)."""
        return self.run_script((SQL_DIR / name).read_text(), params)

    def run_generated(self, sql: str) -> list[str]:
        """Runs the SQL of `dynamo-flatten schema` as printed, except its last statement, the
        snapshot load: its s3(URL, 'LineAsString') reads the local file URL with file()
        instead (same arguments; generate it with --s3-auth server and the file path as
        --s3-url)."""
        stmts = split_statements(sql, keep_comments=False)
        snapshot = stmts.pop()
        assert snapshot.startswith("INSERT INTO ") and "FROM s3(" in snapshot, snapshot
        return [self.run(s) for s in stmts] + [self.run(snapshot.replace("FROM s3(", "FROM file("))]

    def insert_lines(self, table: str, lines: list[str]) -> None:
        """One INSERT … FORMAT LineAsString with one row per line: what a forwarder sends."""
        assert all("\n" not in line for line in lines)
        self.run(f"INSERT INTO {table} FORMAT LineAsString\n" + "".join(line + "\n" for line in lines))

    @contextlib.contextmanager
    def in_database(self, name: str) -> Iterator[Engine]:
        """A fresh database `name` (dropped first if it exists) as the current one, until the
        block ends; then `default` again."""
        self.run(f"DROP DATABASE IF EXISTS {name}")
        self.run(f"CREATE DATABASE {name}")
        self.run(f"USE {name}")
        try:
            yield self
        finally:
            self.run("USE default")


def schema_sql(binary, *args: str, stdin: str | None = None) -> str:
    """What `dynamo-flatten schema <args…>` prints (`stdin`: what it reads when given no file).

    Raises RuntimeError with the program's stderr when it fails.
    """
    out = subprocess.run([str(binary), "schema", *args], input=stdin, capture_output=True,
                         text=True, timeout=60, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"dynamo-flatten schema exited with {out.returncode}: {out.stderr}")
    return out.stdout


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one query in a scratch chDB session with the shipped functions and mode variants."""
    import argparse
    import tempfile

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("sql", help="the query")
    ap.add_argument("--format", default="PrettyCompactMonoBlock", help="chDB output format")
    ap.add_argument("--binary", help=f"the program (default: ${BINARY_ENV} or {DEFAULT_BINARY})")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="chdb-udf-") as tmp:
        udf = build_udf_dir(Path(tmp) / "udf", binary=args.binary, variants=mode_variants())
        ch = Engine.open(Path(tmp) / "db", udf)
        try:
            print(ch.run(args.sql, fmt=args.format), end="")
        finally:
            ch.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
