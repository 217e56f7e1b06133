"""Transient errors do not condemn good files: out of memory, a full disk or an I/O error while a
file is read (by DuckDB's reader or the line-by-line fallback, ``clv.csv_lines``) record the file
as failed and retriable, never as quarantined; the next run loads it whole.

The faults are real errors of the real components, provoked where they happen: DuckDB under a tiny
``memory_limit``, a file replaced by a directory between discovery and the read, and the fallback's
``open`` handing out a file whose reads fail with ``EIO`` or ``ENOSPC`` part-way."""

from __future__ import annotations

import errno
import os

import pytest

from clv import csv_lines, ingest
from tests.ingest.helpers import GOOD, HEADER, by_file, load, make_delivery

ROWS = 2_000
# An empty line in the middle: DuckDB's reader skips it, so the file is read again line by line.
WITH_EMPTY_LINE = (
    HEADER
    + "\n"
    + "".join(GOOD.replace("O1,", f"O{i},") + "\n" for i in range(1, ROWS // 2))
    + "\n"
    + "".join(GOOD.replace("O1,", f"O{i},") + "\n" for i in range(ROWS // 2, ROWS))
).encode()


def nothing_of_orders_kept(con) -> bool:
    return con.sql(
        "SELECT (SELECT count(*) FROM raw_data.orders) + (SELECT count(*) FROM raw_invalid.orders) "
        "+ (SELECT count(*) FROM raw_invalid.files)"
    ).fetchone() == (0,)


def assert_failed_then_loaded(paths, summary, con, why: str) -> None:
    f = by_file(summary)["orders.csv"]
    assert f.status == "failed", f
    assert f.message.startswith("cannot read file") and why in f.message, f.message
    assert by_file(summary)["customers.csv"].status == "loaded"
    assert nothing_of_orders_kept(con)
    (row,) = [r for r in ingest.reconcile(con) if r["source_file"].endswith("orders.csv")]
    assert row["pending_retry"] and row["status"] == "failed"
    con.close()
    summary, con = load(paths)  # the world recovered: the next run loads the file whole
    f = by_file(summary)["orders.csv"]
    assert (f.status, f.rows_loaded, f.rows_quarantined) == ("loaded", ROWS - 1, 1), f
    assert f.reasons == {"empty line": 1}
    assert all(r["reconciled"] and not r["pending_retry"] for r in ingest.reconcile(con))
    con.close()


def test_out_of_memory_while_parsing_fails_the_file(tmp_path, monkeypatch):
    """DuckDB runs out of memory in the fast path (and would in the fallback too)."""
    paths = make_delivery(tmp_path, {"orders.csv": WITH_EMPTY_LINE})

    def starved(original):
        def stage(self, load_id, f, plan):
            if f.path.name != "orders.csv":
                return original(self, load_id, f, plan)
            limit = self.con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
            self.con.execute("SET memory_limit = '256KB'")
            try:
                return original(self, load_id, f, plan)
            finally:
                self.con.execute(f"SET memory_limit = '{limit}'")

        return stage

    monkeypatch.setattr(ingest.Loader, "_stage", starved(ingest.Loader._stage))
    monkeypatch.setattr(ingest.Loader, "_stage_lines", starved(ingest.Loader._stage_lines))
    summary, con = load(paths)
    monkeypatch.undo()
    assert_failed_then_loaded(paths, summary, con, "Out of Memory")


@pytest.mark.parametrize("code", [errno.EIO, errno.ENOSPC], ids=["EIO", "ENOSPC"])
def test_an_io_error_in_the_line_by_line_reader_fails_the_file(tmp_path, monkeypatch, code):
    paths = make_delivery(tmp_path, {"orders.csv": WITH_EMPTY_LINE})

    class Failing:
        """A file whose reads fail after some lines, as a dying disk or a full spill disk does."""

        def __init__(self, fh):
            self.fh, self.lines = fh, 0

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def readline(self):
            return self.fh.readline()

        def __iter__(self):
            return self

        def __next__(self):
            self.lines += 1
            if self.lines > ROWS // 3:
                raise OSError(code, os.strerror(code))
            return next(self.fh)

    def failing_open(path, mode="r"):
        return Failing(open(path, mode))  # closed by Failing.__exit__

    monkeypatch.setattr(csv_lines, "open", failing_open, raising=False)
    summary, con = load(paths)
    monkeypatch.undo()
    assert_failed_then_loaded(paths, summary, con, os.strerror(code))


def test_a_file_replaced_by_a_directory_mid_load_fails(tmp_path, monkeypatch):
    """Hashed and counted, then gone (a directory in its place) when DuckDB comes to read it."""
    paths = make_delivery(tmp_path, {"orders.csv": WITH_EMPTY_LINE})
    target = paths.landing / "2024-01-05" / "orders.csv"
    original = ingest.Loader._stage

    def swap(self, load_id, f, plan):
        if f.path.name == "orders.csv":
            target.unlink()
            target.mkdir()
        return original(self, load_id, f, plan)

    monkeypatch.setattr(ingest.Loader, "_stage", swap)
    summary, con = load(paths)
    monkeypatch.undo()
    target.rmdir()
    target.write_bytes(WITH_EMPTY_LINE)
    assert_failed_then_loaded(paths, summary, con, "not a regular file")
