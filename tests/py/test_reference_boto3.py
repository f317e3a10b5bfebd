"""dynamo-flatten against boto3's own DynamoDB type marshalling.

Items are generated with hypothesis, marshalled with
``boto3.dynamodb.types.TypeSerializer`` into DynamoDB JSON (binary as base64
text, as DynamoDB's JSON exports write it) and written as full-export lines
``{"Item":{...}}``. All lines of an example go through one run of the binary
in ``--lines`` mode, and every output line must equal what
``TypeDeserializer`` makes of the same item:

* numbers as Decimal values (``--numbers string`` keeps the exact text, which
  is checked too);
* sets as multisets (the output keeps the input order, a Python set has none);
* binary as base64 text.

The binary is $DYNAMO_FLATTEN_BIN, else target/release/dynamo-flatten; the
tests are skipped when it has not been built.
"""

from __future__ import annotations

import base64
import json
import os
import random
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("DYNAMO_FLATTEN_BIN") or REPO / "target" / "release" / "dynamo-flatten")

pytestmark = pytest.mark.skipif(
    not BIN.exists(),
    reason=f"{BIN} does not exist: build it with `cargo build --release` "
    "or point DYNAMO_FLATTEN_BIN at the binary",
)

SERIALIZER = TypeSerializer()
DESERIALIZER = TypeDeserializer()

# The metadata fields the binary adds by default; item attributes with these
# names come out as item_<name>.
METADATA = ("version", "is_deleted")

# ---------------------------------------------------------------------------
# Values within DynamoDB's limits.


@st.composite
def dynamodb_decimals(draw) -> Decimal:
    """Up to 38 significant digits, magnitude 1E-130 to 9.99…E+125, or zero."""
    ndigits = draw(st.integers(1, 38))
    coefficient = draw(st.integers(10 ** (ndigits - 1) if ndigits > 1 else 0, 10**ndigits - 1))
    sign = draw(st.integers(0, 1))
    if coefficient == 0:
        exponent = draw(st.integers(-130, 89))
        return Decimal((sign, (0,), exponent))
    # Below 1E-128 boto3's context is subnormal: fewer digits fit.
    lowest = max(-130, ndigits - 166)
    adjusted = draw(st.one_of(st.integers(lowest, 125), st.integers(max(lowest, -10), 40)))
    digits = tuple(int(c) for c in str(coefficient))
    return Decimal((sign, digits, adjusted - len(digits) + 1))


numbers = st.one_of(
    dynamodb_decimals(),
    st.integers(-(10**38) + 1, 10**38 - 1),
    st.sampled_from(
        [
            Decimal("9.9999999999999999999999999999999999999E+125"),
            Decimal("-9.9999999999999999999999999999999999999E+125"),
            Decimal("1E-130"),
            Decimal("-1E-130"),
            Decimal(0),
            Decimal("-0"),
            Decimal("0.000"),
            Decimal("12345678901234567890123456789.123456789"),
        ]
    ),
)

strings = st.text(max_size=20)
names = st.one_of(
    st.text(max_size=10),
    st.sampled_from(
        ["id", "Item", "Keys", "NewImage", "Metadata", "dynamodb", "eventName", "S", "N", "M"]
    ),
)
binaries = st.binary(max_size=24)

leaves = st.one_of(
    strings,
    numbers,
    binaries,
    st.booleans(),
    st.none(),
    st.frozensets(strings, min_size=1, max_size=5),
    st.frozensets(numbers, min_size=1, max_size=5),
    st.frozensets(binaries, min_size=1, max_size=5),
)

values = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(names, inner, max_size=4),
    ),
    max_leaves=10,
)

items = st.dictionaries(
    st.one_of(names, st.sampled_from(METADATA)),
    values,
    min_size=1,
    max_size=6,
).filter(lambda d: not any(f"item_{m}" in d for m in METADATA))

# ---------------------------------------------------------------------------
# Running the binary.


def _base64_default(o):
    if isinstance(o, Binary):
        o = o.value
    if isinstance(o, (bytes, bytearray)):
        return base64.b64encode(bytes(o)).decode("ascii")
    raise TypeError(f"cannot write {type(o)}")


def export_line(item: dict, ensure_ascii: bool, compact: bool) -> tuple[str, dict]:
    """The full-export line for `item`, and the item marshalled by boto3."""
    marshalled = {k: SERIALIZER.serialize(v) for k, v in item.items()}
    line = json.dumps(
        {"Item": marshalled},
        ensure_ascii=ensure_ascii,
        separators=(",", ":") if compact else (", ", ": "),
        default=_base64_default,
    )
    assert "\n" not in line
    return line, marshalled


def run_lines(lines: list[str], *args: str) -> list[str]:
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    proc = subprocess.run(
        [str(BIN), "--lines", *args],
        input=data,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")
    out = proc.stdout.decode("utf-8").split("\n")
    assert out[-1] == "", "output does not end with a newline"
    out = out[:-1]
    assert len(out) == len(lines), f"{len(lines)} lines in, {len(out)} lines out"
    return out


def loads(text: str):
    return json.loads(text, parse_float=Decimal, parse_int=Decimal)


# ---------------------------------------------------------------------------
# Comparison with TypeDeserializer's result.


def b64(b: Binary | bytes) -> str:
    return base64.b64encode(bytes(b.value if isinstance(b, Binary) else b)).decode("ascii")


def as_decimal(actual, numbers_as_strings: bool, path: str) -> Decimal:
    if numbers_as_strings:
        assert isinstance(actual, str), f"{path}: expected a number as a string, got {actual!r}"
        return Decimal(actual)
    assert isinstance(actual, Decimal), f"{path}: expected a number, got {actual!r}"
    return actual


def set_element(expected, actual, numbers_as_strings: bool, path: str):
    """One set element of the output, in the form of TypeDeserializer's elements."""
    if isinstance(expected, Decimal):
        return as_decimal(actual, numbers_as_strings, path)
    if isinstance(expected, Binary):
        assert isinstance(actual, str), f"{path}: {actual!r}"
        return actual
    assert isinstance(actual, str), f"{path}: {actual!r}"
    return actual


def assert_same(expected, actual, numbers_as_strings: bool, path: str = "$") -> None:
    """`actual` (the parsed output) holds what `expected` (TypeDeserializer's value) does."""
    if expected is None:
        assert actual is None, f"{path}: {actual!r} is not null"
    elif isinstance(expected, bool):
        assert actual is expected, f"{path}: {actual!r} != {expected!r}"
    elif isinstance(expected, Decimal):
        got = as_decimal(actual, numbers_as_strings, path)
        assert got == expected, f"{path}: {got!r} != {expected!r}"
    elif isinstance(expected, str):
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"
    elif isinstance(expected, Binary):
        assert actual == b64(expected), f"{path}: {actual!r} != base64 of {expected!r}"
    elif isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: {actual!r} is not an object"
        assert set(actual) == set(expected), f"{path}: keys {sorted(actual)} != {sorted(expected)}"
        for k, v in expected.items():
            assert_same(v, actual[k], numbers_as_strings, f"{path}.{k}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{path}: {actual!r} is not an array"
        assert len(actual) == len(expected), f"{path}: {len(actual)} != {len(expected)} elements"
        for i, (e, a) in enumerate(zip(expected, actual)):
            assert_same(e, a, numbers_as_strings, f"{path}[{i}]")
    elif isinstance(expected, (set, frozenset)):
        assert isinstance(actual, list), f"{path}: set {actual!r} is not an array"
        assert len(actual) == len(expected), f"{path}: {len(actual)} != {len(expected)} elements"
        sample = next(iter(expected))
        got = sorted(set_element(sample, a, numbers_as_strings, path) for a in actual)
        want = sorted(b64(e) if isinstance(e, Binary) else e for e in expected)
        assert got == want, f"{path}: {got!r} != {want!r}"
    else:
        raise AssertionError(f"{path}: unexpected reference value {expected!r}")


def assert_same_text(marshalled: dict, actual, path: str = "$") -> None:
    """With --numbers string, the output keeps every N text and the order of
    lists and sets exactly as in the input."""
    ((tag, v),) = marshalled.items()
    if tag == "N" or tag == "NS":
        assert actual == v, f"{path}: {actual!r} != {v!r}"
    elif tag == "B":
        assert actual == b64(v), f"{path}: {actual!r}"
    elif tag == "BS":
        assert actual == [b64(b) for b in v], f"{path}: {actual!r}"
    elif tag == "M":
        assert list(actual) == list(v), f"{path}: key order {list(actual)} != {list(v)}"
        for k, x in v.items():
            assert_same_text(x, actual[k], f"{path}.{k}")
    elif tag == "L":
        for i, (x, a) in enumerate(zip(v, actual)):
            assert_same_text(x, a, f"{path}[{i}]")
    elif tag in ("SS", "S"):
        assert actual == v, f"{path}: {actual!r} != {v!r}"


def expected_row(marshalled: dict) -> dict:
    """TypeDeserializer's item, with metadata-named attributes renamed."""
    item = {k: DESERIALIZER.deserialize(v) for k, v in marshalled.items()}
    return {(f"item_{k}" if k in METADATA else k): v for k, v in item.items()}


# Lines that must give an error row, each on its own line.
BAD_LINES = [
    "not json",
    "{}",
    '{"Item":{"a":{"N":"x"}}}',
    '{"Item":{"a":{"N":"1"}}',
    '{"Item":{"version":{"N":"1"},"item_version":{"N":"2"}}}',
    '{"Records":[]}',
    '{"Item":{"a":{"NULL":false}}}',
    '{"Item":{"a":{"S":"x","N":"1"}}}',
]

HYPOTHESIS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


@HYPOTHESIS
@given(
    batch=st.lists(items, min_size=1, max_size=300),
    ensure_ascii=st.booleans(),
    compact=st.booleans(),
    bad=st.lists(st.tuples(st.integers(0, 300), st.sampled_from(BAD_LINES)), max_size=3),
)
def test_export_lines_match_type_deserializer(batch, ensure_ascii, compact, bad):
    event(f"{len(batch) // 10 * 10}+ items")
    lines, marshalled = [], []
    for item in batch:
        line, m = export_line(item, ensure_ascii, compact)
        lines.append(line)
        marshalled.append(m)
    # Rows that cannot be read give an error row in their place.
    for at, line in bad:
        at = min(at, len(lines))
        lines.insert(at, line)
        marshalled.insert(at, None)

    for numbers_as_strings in (True, False):
        args = ["--numbers", "string"] if numbers_as_strings else []
        out = run_lines(lines, *args)
        for line, m, row_text in zip(lines, marshalled, out):
            if m is None:
                assert row_text.startswith('{"_error":'), f"{line} gave {row_text}"
                continue
            row = loads(row_text)
            try:
                # Export lines get version 0 (no --snapshot-version) and are not deletes.
                assert row.pop("version") == 0 and row.pop("is_deleted") == 0, "metadata"
                assert_same(expected_row(m), row, numbers_as_strings)
                if numbers_as_strings:
                    renamed = {(f"item_{k}" if k in METADATA else k): v for k, v in m.items()}
                    assert list(row) == list(renamed), "attribute order"
                    for k, v in renamed.items():
                        assert_same_text(v, row[k], f"$.{k}")
            except AssertionError as e:
                raise AssertionError(f"{e}\ninput:  {line}\noutput: {row_text}") from None


# ---------------------------------------------------------------------------
# Bulk: hypothesis keeps each example small (its per-example data budget holds
# a few dozen nested items), so a second test draws only a seed and builds a
# batch of hundreds of items from it, all through one run of the binary.

ALPHABET = (
    [chr(c) for c in range(0x20)]
    + list("azAZ09 \"\\/'{}[]:,")
    + ["é", "ß", "Ω", "中", "\u007f", "\u0080", "\u2028", "\u2029", "\ufeff", "\uffff"]
    + ["\U0001f680", "\U0010ffff"]
)


def random_char(rng) -> str:
    if rng.random() < 0.7:
        return rng.choice(ALPHABET)
    # Any scalar value (no surrogates: DynamoDB strings are UTF-8).
    return chr(rng.choice([rng.randrange(0x20, 0xD800), rng.randrange(0xE000, 0x110000)]))


def random_text(rng, n: int) -> str:
    return "".join(random_char(rng) for _ in range(rng.randrange(n + 1)))


def random_decimal(rng) -> Decimal:
    ndigits = rng.randrange(1, 39)
    digits = tuple([rng.randrange(1, 10)] + [rng.randrange(10) for _ in range(ndigits - 1)])
    adjusted = rng.randrange(max(-130, ndigits - 166), 126)
    return Decimal((rng.randrange(2), digits, adjusted - ndigits + 1))


def random_value(rng, depth: int):
    kinds = ["s", "n", "b", "bool", "null", "ss", "ns", "bs"] + (["l", "m"] * 2 if depth < 6 else [])
    kind = rng.choice(kinds)
    if kind == "s":
        return random_text(rng, 12)
    if kind == "n":
        return random_decimal(rng) if rng.random() < 0.8 else rng.randrange(-(10**38) + 1, 10**38)
    if kind == "b":
        return rng.randbytes(rng.randrange(20))
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "null":
        return None
    if kind == "ss":
        return {random_text(rng, 8) for _ in range(rng.randrange(1, 5))}
    if kind == "ns":
        return {random_decimal(rng) for _ in range(rng.randrange(1, 5))}
    if kind == "bs":
        return {rng.randbytes(rng.randrange(10)) for _ in range(rng.randrange(1, 5))}
    if kind == "l":
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {random_text(rng, 6): random_value(rng, depth + 1) for _ in range(rng.randrange(4))}


def random_item(rng) -> dict:
    item = {}
    for _ in range(rng.randrange(1, 7)):
        name = rng.choice(["id", "version", "is_deleted"]) if rng.random() < 0.1 else random_text(rng, 8)
        item[name] = random_value(rng, 1)
    return item


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**64 - 1), ensure_ascii=st.booleans())
def test_bulk_export_lines_match_type_deserializer(seed, ensure_ascii):
    rng = random.Random(seed)
    lines, marshalled = [], []
    for _ in range(600):
        line, m = export_line(random_item(rng), ensure_ascii, rng.random() < 0.5)
        lines.append(line)
        marshalled.append(m)
    for numbers_as_strings in (True, False):
        args = ["--numbers", "string"] if numbers_as_strings else []
        for line, m, row_text in zip(lines, marshalled, run_lines(lines, *args)):
            row = loads(row_text)
            try:
                assert row.pop("version") == 0 and row.pop("is_deleted") == 0, "metadata"
                assert_same(expected_row(m), row, numbers_as_strings)
            except AssertionError as e:
                raise AssertionError(f"{e}\ninput:  {line}\noutput: {row_text}") from None


def test_binary_smoke():
    out = run_lines(['{"Item":{"a":{"N":"1"}}}'])
    assert loads(out[0]) == {"a": 1, "version": 0, "is_deleted": 0}
    out = run_lines(['{"Item":{"a":{"N":"1"}}}'], "--numbers", "string")
    assert json.loads(out[0]) == {"a": "1", "version": 0, "is_deleted": 0}
