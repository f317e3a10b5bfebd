"""SQL text: string literals, the statements of a script, and TSV results.

How scripts are run (harness.engine): each file is split into statements (comments, strings
and quoted identifiers are respected, see `split_statements`) and every statement is sent
unchanged. Query parameters are NOT substituted: chDB's `Session.query(sql, fmt,
params={...})` hands them to the engine, which replaces `{name:Type}` itself, the same
mechanism as `clickhouse-client --param_name=…`.
"""

from __future__ import annotations


def quote(s: str) -> str:
    """A ClickHouse string literal."""
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def split_statements(sql: str, keep_comments: bool = True) -> list[str]:
    """The statements of a script, split at `;` outside comments, strings and quoted names.

    `-- …` and `/* … */` are comments; '…', "…" and `…` may contain `;`, backslash escapes
    and doubled quotes. Comment-only pieces are dropped; statements keep their own comments
    unless keep_comments is false.
    """
    out: list[str] = []
    buf: list[str] = []
    i, n, has_code = 0, len(sql), False
    while i < n:
        c = sql[i]
        if sql.startswith("--", i):
            end = sql.find("\n", i)
            j = n if end < 0 else end + 1
            buf.append(sql[i:j] if keep_comments else "\n")
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            if end < 0:
                raise ValueError(f"unterminated comment at {i}")
            j = end + 2
            buf.append(sql[i:j] if keep_comments else " ")
        elif c in "'\"`":
            j = i + 1
            while True:
                if j >= n:
                    raise ValueError(f"unterminated {c} at {i}")
                if sql[j] == "\\" or sql[j] == c and sql.startswith(c + c, j):
                    j += 2
                elif sql[j] == c:
                    break
                else:
                    j += 1
            j += 1
            buf.append(sql[i:j])
            has_code = True
        elif c == ";":
            if has_code:
                out.append("".join(buf).strip())
            buf, has_code, j = [], False, i + 1
        else:
            buf.append(c)
            has_code = has_code or not c.isspace()
            j = i + 1
        i = j
    if has_code:
        out.append("".join(buf).strip())
    return out



_UNESCAPE = {"t": "\t", "n": "\n", "r": "\r", "0": "\0", "b": "\b", "f": "\f", "\\": "\\", "'": "'",
             "a": "\a", "v": "\v"}


def tsv_lines(text: str) -> list[str]:
    """The rows of TSV output: split at "\n" only (str.splitlines would also split inside a
    value at the characters TSV leaves unescaped, such as U+2028 or \x1c)."""
    lines = text.split("\n")
    return lines[:-1] if lines[-1] == "" else lines


def unescape_tsv(field: str) -> str | None:
    """One TabSeparated field as the value it stands for (\\N: None)."""
    if field == "\\N":
        return None
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        c = field[i]
        if c == "\\" and i + 1 < len(field):
            out.append(_UNESCAPE.get(field[i + 1], field[i + 1]))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def tsv(text: str) -> list[tuple]:
    """TabSeparated output as rows of values (strings, None for NULL)."""
    return [tuple(unescape_tsv(f) for f in line.split("\t")) for line in tsv_lines(text)]
