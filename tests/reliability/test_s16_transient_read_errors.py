"""Scenario 16: a transient I/O error while reading. Out of memory in DuckDB's reader, an I/O error
(``EIO``) and a full disk (``ENOSPC``) in the line-by-line reader part-way through a file, a file
replaced by a directory between its scan and its read: each file is recorded as failed and
retriable — never quarantined, nothing of it kept —, the load step raises a retriable error, and the
retry loads every file whole.

The errors are real errors of the real readers, provoked where they happen (monkeypatching only
the fault in: DuckDB's ``memory_limit``, the fallback's ``open``, a rename)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import duckdb
import pytest

from clv import csv_lines, ingest, pipeline
from tests.conftest import DAYS
from tests.ingest.helpers import copy_batch, relist
from tests.reliability import ledger as ledger_mod


def with_blank_line(path: Path) -> None:
    """A blank line after the tenth row (the delivering system's, listed in its manifest): DuckDB's
    reader skips it, so the file is read again line by line, where the I/O errors are injected."""
    lines = path.read_bytes().split(b"\n")
    path.write_bytes(b"\n".join([*lines[:11], b"", *lines[11:]]))
    relist(path)


class FailingFile:
    """A file whose reads fail after ``after`` lines, with ``code``."""

    def __init__(self, fh, after: int, code: int):
        self.fh, self.after, self.code, self.lines = fh, after, code, 0

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
        if self.lines > self.after:
            raise OSError(self.code, os.strerror(self.code))
        return next(self.fh)


@pytest.mark.scenario(16, "transient I/O errors while reading", chaos="heavy (one day batch)")
def test_transient_read_errors_fail_files_and_the_retry_loads_them(heavy_data, tmp_path, monkeypatch, ledger):
    day = DAYS[2]
    paths = copy_batch(heavy_data, tmp_path / "data", day.isoformat())
    folder = paths.landing / day.isoformat()
    for name in ("orders.csv", "support_tickets.csv"):
        with_blank_line(folder / name)
    faults = {
        "orders.csv": "I/O error (EIO) in the line-by-line reader",
        "support_tickets.csv": "disk full (ENOSPC) in the line-by-line reader",
        "device_sessions.csv": "out of memory in DuckDB's reader",
        "loyalty_balances.csv": "file replaced by a directory between scan and read",
    }
    saved = (folder / "loyalty_balances.csv").read_bytes()
    codes = {"orders.csv": errno.EIO, "support_tickets.csv": errno.ENOSPC}

    def failing_open(path, mode="r"):
        fh = open(path, mode)  # noqa: SIM115 - closed by FailingFile.__exit__
        name = Path(path).name
        return FailingFile(fh, 5, codes[name]) if name in codes else fh

    stage = ingest.Loader._stage

    def faulty_stage(self, load_id, f, plan):
        if f.path.name == "loyalty_balances.csv":
            f.path.unlink()
            f.path.mkdir()
        if f.path.name != "device_sessions.csv":
            return stage(self, load_id, f, plan)
        limit = self.con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
        self.con.execute("SET memory_limit = '256KB'")
        try:
            return stage(self, load_id, f, plan)
        finally:
            self.con.execute(f"SET memory_limit = '{limit}'")

    with monkeypatch.context() as m:
        m.setattr(csv_lines, "open", failing_open, raising=False)
        m.setattr(ingest.Loader, "_stage", faulty_stage)
        with pytest.raises(pipeline.SourceNotReady, match="could not be read yet"):
            pipeline.load(day, data_dir=paths.data_dir)
    for kind in faults.values():
        ledger.fault(kind)

    con = duckdb.connect(str(paths.warehouse))
    try:
        failed = dict(
            con.sql(
                "SELECT regexp_extract(source_file, '[^/]+$'), message FROM ops.load_manifest "
                "WHERE status = 'failed'"
            ).fetchall()
        )
        assert set(failed) == set(faults), failed
        assert all(m.startswith("cannot read file") and "retried" in m for m in failed.values())
        assert os.strerror(errno.EIO) in failed["orders.csv"]
        assert os.strerror(errno.ENOSPC) in failed["support_tickets.csv"]
        assert "Out of Memory" in failed["device_sessions.csv"]
        assert "not a regular file" in failed["loyalty_balances.csv"]
        whole = con.sql("SELECT regexp_extract(source_file, '[^/]+$') FROM raw_invalid.files").fetchall()
        assert not {n for (n,) in whole} & set(faults)
        for name in faults:  # never quarantined, nothing of them kept
            source = name[:-4]
            kept = con.sql(
                f"SELECT (SELECT count(*) FROM raw_data.{source}) + (SELECT count(*) FROM raw_invalid.{source})"
            ).fetchone()[0]
            assert kept == 0, name
        pending = {r["source_file"].rsplit("/", 1)[-1] for r in ingest.reconcile(con) if r["pending_retry"]}
        assert pending == set(faults)
        first_run = con.sql("SELECT max(load_id) FROM ops.load_manifest").fetchone()[0]
    finally:
        con.close()

    # The disk is back, memory is free, the file is in place again: the retry loads them whole.
    (folder / "loyalty_balances.csv").rmdir()
    (folder / "loyalty_balances.csv").write_bytes(saved)
    pipeline.load(day, data_dir=paths.data_dir)
    ledger.recovery("load retried after transient read errors")
    drifted = {f["source"] for f in ledger_mod.read_faults(paths) if f["fault"] == "schema_drift"}
    con = duckdb.connect(str(paths.warehouse))
    try:
        retried = dict(
            con.sql(
                "SELECT regexp_extract(source_file, '[^/]+$'), status FROM ops.load_manifest WHERE load_id > ?",
                params=[first_run],
            ).fetchall()
        )
        assert retried == {n: "quarantined" if n[:-4] in drifted else "loaded" for n in faults}, retried
        blank = con.sql(
            "SELECT count(*) FROM raw_invalid.orders WHERE _reason LIKE 'empty line%'"
        ).fetchone()[0]
        assert blank == (0 if "orders" in drifted else 1)
        assert all(r["reconciled"] and not r["pending_retry"] for r in ingest.reconcile(con))
        ledger.faults_from_truth(paths)
        ledger.account(paths, con)
    finally:
        con.close()
