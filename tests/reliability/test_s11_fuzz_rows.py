"""Scenario 11: property-based fuzzing (hypothesis) of malformed CSV rows through the real loader.

Each example is an orders file of good rows and malformed ones (wrong field counts, values of the
wrong type, invalid UTF-8, stray and unbalanced quotes, line breaks inside fields, empty lines,
NUL bytes, a field over the 2 MB line limit, random bytes, CRLF endings) in a landed batch. The
loader must never crash, and every line must be accounted for exactly once: each good row in
raw with its own line number as lineage, each line that breaks the contract in quarantine with a
reason, and the reconciliation exact.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clv import ingest
from clv.contract import SOURCES
from clv.settings import Paths

pytestmark = pytest.mark.slow

HEADER = ",".join(SOURCES["orders"].column_names)
GOOD_FIELDS = [
    None,  # order_id: the row's line number, so lineage can be checked
    "C000000001",
    "2024-01-05 10:00:00",
    "P010001",
    "electronics",
    "1",
    "19.99",
    "web",
    "site",
    "Berlin",
    "DE",
    "19",
]


def good(line: int, fields: list[str] | None = None) -> bytes:
    values = list(fields or GOOD_FIELDS)
    values[0] = f"L{line}"
    return ",".join(values).encode()


def with_field(index: int, value: str):
    def make(line: int) -> bytes:
        fields = list(GOOD_FIELDS)
        fields[index] = value
        return good(line, fields)

    return make


#: Malformed kinds that the contract rejects: the line must end in quarantine.
REJECTED = {
    "too few fields": lambda n: good(n).rsplit(b",", 3)[0],
    "too many fields": lambda n: good(n) + b",extra,fields",
    "unparseable timestamp": with_field(2, "2024-02-30 25:61:00"),
    "unparseable quantity": with_field(5, "three"),
    "unparseable price": with_field(6, "12,5"),  # an unquoted comma: one field too many
    "out of range quantity": with_field(5, "99999"),
    "invalid enum": with_field(7, "smartwatch"),
    "missing id": with_field(1, ""),
    "invalid UTF-8": lambda n: good(n).replace(b"Berlin", b"Berl\xff\xfein"),
    "unterminated quote": lambda n: good(n).replace(b"Berlin", b'"Berlin'),
    "text after a closing quote": lambda n: good(n).replace(b"Berlin", b'"Ber"lin'),
    "line break inside a quoted field": lambda n: good(n).replace(b"Berlin", b'"Ber\nlin"'),
    "carriage return inside a field": lambda n: good(n).replace(b"Berlin", b"Ber\rlin"),
    "empty line": lambda n: b"",
    "only separators": lambda n: b"," * 11,
    "field over the line limit": lambda n: good(n).replace(b"Berlin", b"x" * 2_100_000),
    "header repeated as a row": lambda n: HEADER.encode(),
}
#: Odd but legal: the row loads (quoted fields, CRLF line ending, spaces around an enum).
ACCEPTED = {
    "quoted fields": lambda n: good(n).replace(b"Berlin", b'"Berlin, Mitte"'),
    "escaped quotes": lambda n: good(n).replace(b"Berlin", b'"Ber""lin"'),
    "CRLF line ending": lambda n: good(n) + b"\r",
    "enum in other case": with_field(7, " WEB "),
}
#: Either outcome is right, as long as the line is accounted for.
EITHER = {
    "NUL bytes": lambda n: good(n).replace(b"Berlin", b"Ber\x00lin"),
}
KINDS = sorted(REJECTED) + sorted(ACCEPTED) + sorted(EITHER) + ["good"] * 6 + ["random bytes"]


@st.composite
def orders_files(draw):
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=0, max_size=25))
    # the field over the line limit is costly: at most one per file
    seen_big = False
    rows, expected = [], []
    i = 0
    for kind in kinds:
        i += 1
        if kind == "field over the line limit":
            if seen_big:
                kind = "good"
            seen_big = True
        if kind == "random bytes":
            blob = draw(st.binary(min_size=1, max_size=60)).replace(b"\n", b" ")
            rows.append(blob)
        elif kind == "good":
            rows.append(good(i))
        else:
            rows.append({**REJECTED, **ACCEPTED, **EITHER}[kind](i))
        if kind == "line break inside a quoted field":
            i += 1  # the row takes two lines
        expected.append(kind)
    trailing_newline = draw(st.booleans())
    data = b"\n".join([HEADER.encode(), *rows]) + (b"\n" if trailing_newline or not rows else b"")
    return data, expected


def file_lines(data: bytes) -> int:
    """Data lines of the file, counted the contract's way (a line break inside a quoted field
    makes two lines)."""
    lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    return lines - 1


@pytest.mark.scenario(11, "property-based fuzzing of malformed CSV rows", chaos="fuzzed rows")
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
    derandomize=True,
)
@given(orders_files())
def test_malformed_rows_never_crash_the_loader_and_every_line_is_accounted_for(ledger, case):
    data, kinds = case
    with tempfile.TemporaryDirectory() as tmp:
        paths = Paths(Path(tmp) / "data")
        batch = paths.landing / "2024-01-05"
        batch.mkdir(parents=True)
        (batch / "orders.csv").write_bytes(data)
        (batch / "_manifest.json").write_text(json.dumps({"batch_date": "2024-01-05"}))

        summary = ingest.load(paths.data_dir)  # never raises

        (result,) = summary.files
        n = file_lines(data)
        assert result.status == "loaded" and result.rows_in_file == n
        con = duckdb.connect(str(paths.warehouse))
        try:
            loaded = dict(con.sql("SELECT _row_number, order_id FROM raw.orders").fetchall())
            quarantined = dict(con.sql("SELECT _row_number, _reason FROM raw_invalid.orders").fetchall())
            counts = con.sql(
                "SELECT (SELECT count(*) FROM raw.orders), (SELECT count(*) FROM raw_invalid.orders)"
            ).fetchone()
            rows = ingest.reconcile(con)
        finally:
            con.close()
        # every line exactly once: in raw or in quarantine, numbered as in the file
        assert counts == (len(loaded), len(quarantined)), "a line number appears twice"
        assert set(loaded) | set(quarantined) == set(range(1, n + 1))
        assert not set(loaded) & set(quarantined)
        assert all(r["reconciled"] for r in rows), rows
        assert all(reason for reason in quarantined.values())
        line = 1
        for kind in kinds:
            if kind == "good" or kind in ACCEPTED:
                assert loaded.get(line) == f"L{line}", (kind, line, loaded.get(line), quarantined.get(line))
            elif kind == "line break inside a quoted field":
                assert {line, line + 1} <= set(quarantined), (kind, line, loaded.get(line))
                line += 1
            elif kind in REJECTED:
                assert line in quarantined, (kind, line, loaded.get(line))
            line += 1
            if kind != "good":
                ledger.fault(f"fuzzed row: {kind}")
        ledger.account(paths)
