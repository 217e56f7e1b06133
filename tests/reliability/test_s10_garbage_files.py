"""Scenario 10: garbage input files (random bytes, non-UTF-8, empty, header only, a 10 MB single
line) are quarantined with a reason, and the rest of their batch loads."""

from __future__ import annotations

import os
import random

import duckdb
import pytest

from clv import ingest
from clv.contract import SOURCES
from tests.conftest import DAYS
from tests.ingest.conftest import copy_data
from tests.ingest.helpers import GOOD, HEADER, by_file, load, make_batch, relist
from tests.reliability.ledger import read_faults

TEN_MB = 10 * 2**20


def latin1_names(data: bytes) -> bytes:
    """The customers file re-exported in Latin-1 with accented first names on every other row."""
    header, *rows = data.decode("utf-8").split("\n")
    rows = [r.replace(",", ",Zoë-", 1) if i % 2 == 0 and r else r for i, r in enumerate(rows)]
    return "\n".join([header, *rows]).encode("latin-1", errors="replace")


def with_long_line(data: bytes) -> bytes:
    """A 10 MB line slipped in as the fourth row of the file."""
    lines = data.split(b"\n")
    return b"\n".join([*lines[:4], b"O-LONG," + b"x" * TEN_MB, *lines[4:]])


@pytest.mark.slow
@pytest.mark.scenario(10, "garbage input files")
def test_garbage_files_among_heavy_chaos_batches(heavy_data, tmp_path, ledger):
    paths = copy_data(heavy_data, tmp_path / "data")
    rng = random.Random(10)
    landing = paths.landing

    def original(day, name) -> bytes:
        return (landing / day.isoformat() / name).read_bytes()

    # (batch, file) -> (kind, bytes, expected status, expected reason)
    garbage = {
        (DAYS[0], "customers.csv"): (
            "random bytes",
            b"\xff" + rng.randbytes(65_536),
            "quarantined",
            "header is not valid UTF-8",
        ),
        (DAYS[1], "orders.csv"): (
            "non-UTF-8 file (UTF-16)",
            original(DAYS[1], "orders.csv").decode().encode("utf-16"),
            "quarantined",
            "header is not valid UTF-8",
        ),
        (DAYS[2], "customers.csv"): (
            "non-UTF-8 rows (Latin-1)",
            latin1_names(original(DAYS[2], "customers.csv")),
            "loaded",
            "",
        ),
        (DAYS[2], "subscriptions.csv"): ("empty file", b"", "quarantined", "empty file: no header"),
        (DAYS[3], "support_tickets.csv"): (
            "header only",
            (",".join(SOURCES["support_tickets"].column_names) + "\n").encode(),
            "loaded",
            "",
        ),
        (DAYS[3], "device_sessions.csv"): (
            "10 MB single line",
            b"garbage," * (TEN_MB // 8),
            "quarantined",
            "schema drift",
        ),
        (DAYS[4], "orders.csv"): (
            "10 MB line among the rows",
            with_long_line(original(DAYS[4], "orders.csv")),
            "loaded",
            "",
        ),
        (DAYS[4], "notes.bin"): (
            "unknown file of random bytes",
            rng.randbytes(4096),
            "quarantined",
            "not a file of the source contract",
        ),
    }
    for (day, name), (kind, data, _, _) in garbage.items():
        (landing / day.isoformat() / name).write_bytes(data)
        relist(landing / day.isoformat() / name)  # delivered so, as its manifest says
        ledger.fault(f"garbage file: {kind}")

    summary = ingest.load(paths.data_dir)

    results = {(f.batch, os.path.basename(f.path)): f for f in summary.files}
    for (day, name), (kind, _, status, reason) in garbage.items():
        f = results[(day.isoformat(), name)]
        assert f.status == status and f.message.startswith(reason), (kind, f.status, f.message)
        assert len(f.message) < 1000, "a one-line reason, even for a 10 MB header"
    # the rest of every batch loads (but for the files heavy chaos drifted itself)
    drifted = {(f["batch"], f["source"]) for f in read_faults(paths) if f["fault"] == "schema_drift"}
    for day in DAYS:
        for src in SOURCES.values():
            if (day, src.filename) in garbage:
                continue
            f = results[(day.isoformat(), src.filename)]
            if (day.isoformat(), src.name) in drifted:
                assert f.status == "quarantined" and f.message.startswith("schema drift")
                continue
            assert f.status == "loaded" and f.rows_loaded + f.rows_quarantined == f.rows_in_file
            assert f.rows_loaded > 0 or f.rows_in_file == 0, (day, src.name)
    # row-level garbage inside loaded files: exactly the bad lines are quarantined
    latin = results[(DAYS[2].isoformat(), "customers.csv")]
    bad_lines = 0
    for line in garbage[(DAYS[2], "customers.csv")][1].split(b"\n")[1:]:
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            bad_lines += 1
    assert bad_lines > 0 and latin.reasons.get("not UTF-8") == bad_lines
    long = results[(DAYS[4].isoformat(), "orders.csv")]
    assert long.reasons.get(f"line longer than {ingest.MAX_LINE_BYTES:,} bytes") == 1
    assert long.rows_loaded > 100
    con = duckdb.connect(str(paths.warehouse))
    try:
        assert all(r["reconciled"] for r in ingest.reconcile(con))
        ledger.faults_from_truth(paths)
        ledger.account(paths, con)
    finally:
        con.close()


@pytest.mark.scenario(10, "garbage input files", chaos="none (a hand-made batch)")
@pytest.mark.parametrize(
    "name,data,status,reason",
    [
        ("orders.csv", b"", "quarantined", "empty file: no header"),
        (
            "orders.csv",
            b"\xff" + random.Random(4).randbytes(4096) + b"\xff\xfe",
            "quarantined",
            "header is not valid UTF-8",
        ),
        ("orders.csv", b"\x00\x01garbage,more\n1,2\n", "quarantined", "schema drift"),
        ("orders.csv", (HEADER + "\n").encode(), "loaded", ""),
        ("notes.csv", b"hello\n", "quarantined", "not a file of the source contract"),
    ],
    ids=["empty", "random-bytes", "binary-header", "header-only", "unknown-file"],
)
def test_whole_file_cases(tmp_path, name, data, status, reason, ledger):
    paths = make_batch(tmp_path, {name: data})
    summary, con = load(paths)
    try:
        f = by_file(summary)[name]
        assert f.status == status and f.message.startswith(reason)
        assert by_file(summary)["customers.csv"].rows_loaded == 1  # the rest of the batch loads
        assert all(r["reconciled"] for r in ingest.reconcile(con))
        ledger.fault(f"garbage file: {status} {reason or 'header only'}")
        ledger.account(paths, con)
    finally:
        con.close()


@pytest.mark.scenario(10, "garbage input files", chaos="none (a hand-made batch)")
def test_row_level_garbage_is_quarantined_and_the_good_rows_load(tmp_path, ledger):
    lines = [
        HEADER,
        GOOD,
        GOOD.replace("O1,", "O2,").replace("Berlin", "Berl\xff\xfe"),  # not UTF-8 once encoded as latin-1
        "O3,C000000001,2024-01-05 10:00:00,P1,electronics",  # too few fields
        GOOD.replace("O1,", "O4,") + ",extra",  # too many fields
        "O5," + "x" * 3_000_000,  # a 3 MB line
        GOOD.replace("O1,", "O6,"),
        'O7,C000000001,2024-01-05 10:00:00,P1,"unterminated',  # truncated last line, no newline
    ]
    data = "\n".join(lines).encode("latin-1")
    paths = make_batch(tmp_path, {"orders.csv": data})
    summary, con = load(paths)
    try:
        f = by_file(summary)["orders.csv"]
        assert (f.status, f.rows_in_file, f.rows_loaded, f.rows_quarantined) == ("loaded", 7, 2, 5)
        got = dict(con.sql("SELECT _row_number, _reason FROM raw_invalid.orders ORDER BY 1").fetchall())
        assert set(got) == {2, 3, 4, 5, 7}
        assert "not UTF-8" in got[2]
        assert "too few fields" in got[3]
        assert "too many fields" in got[4]
        assert "line longer than" in got[5]
        assert "unterminated quote" in got[7] or "too few fields" in got[7]
        assert con.sql(
            "SELECT list(order_id ORDER BY _row_number), list(_row_number ORDER BY _row_number) FROM raw.orders"
        ).fetchone() == (["O1", "O6"], [1, 6])
        assert all(r["reconciled"] for r in ingest.reconcile(con))
        for kind in (
            "non-UTF-8 row",
            "too few fields",
            "too many fields",
            "3 MB line",
            "truncated last line",
        ):
            ledger.fault(f"garbage row: {kind}")
        ledger.account(paths, con)
    finally:
        con.close()
