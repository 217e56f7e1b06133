"""Scenario 7: a load killed mid-file (SIGKILL to the real `clv load` process) leaves no partial
file in raw; the rerun loads it; the reconciliation is exact."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import time

import duckdb
import pytest

from clv import ingest
from clv.contract import SOURCES
from clv.settings import PROJECT_ROOT, Paths
from generator import runner


@pytest.fixture(scope="module")
def landed(tmp_path_factory) -> Paths:
    paths = Paths(tmp_path_factory.mktemp("crash") / "data")
    runner.history(
        paths,
        15_000,
        dt.date(2023, 1, 1),
        dt.date(2023, 12, 31),
        seed=5,
        chaos="heavy",
        progress=False,
        workers=1,
    )
    runner.day(paths, dt.date(2024, 1, 1), chaos="heavy")
    return paths


def _counts(con) -> dict[str, int]:
    return {n: con.sql(f"SELECT count(*) FROM raw_data.{n}").fetchone()[0] for n in SOURCES}


def _assert_no_partial_file(con) -> int:
    ingest.ensure_schema(con)
    done = con.sql("SELECT count(*) FROM ops.load_manifest WHERE status = 'loaded'").fetchone()[0]
    for load_id, loaded, quarantined, src in con.sql(
        "SELECT load_id, rows_loaded, rows_quarantined, source FROM ops.load_manifest WHERE status = 'loaded'"
    ).fetchall():
        assert (
            con.sql(f"SELECT count(*) FROM raw_data.{src} WHERE _load_id = {load_id}").fetchone()[0] == loaded
        )
        assert (
            con.sql(f"SELECT count(*) FROM raw_invalid.{src} WHERE _load_id = {load_id}").fetchone()[0]
            == quarantined
        )
    for n in SOURCES:
        orphans = con.sql(
            f"SELECT count(*) FROM raw_data.{n} WHERE _load_id NOT IN (SELECT load_id FROM ops.load_manifest)"
        ).fetchone()[0]
        assert orphans == 0, f"rows of an uncommitted load in raw_data.{n}"
    return done


@pytest.mark.slow
@pytest.mark.scenario(7, "load killed mid-file")
def test_sigkill_mid_load_then_rerun(landed, tmp_path, ledger):
    reference = Paths(tmp_path / "ref")
    shutil.copytree(landed.data_dir, reference.data_dir)
    t0 = time.perf_counter()
    ingest.load(reference.data_dir)
    load_seconds = time.perf_counter() - t0
    ref = duckdb.connect(str(reference.warehouse))
    expected = _counts(ref)
    total_files = ref.sql("SELECT count(*) FROM ops.load_manifest").fetchone()[0]
    ref.close()

    # Kill a tenth, three tenths and six tenths of a load's time after the loader created the raw zone
    # (its first write to the warehouse's log): not after a fixed delay, which a busy machine
    # spends importing.
    interrupted = 0
    for fraction in (0.1, 0.3, 0.6):
        paths = Paths(tmp_path / f"kill-{fraction}")
        shutil.copytree(landed.data_dir, paths.data_dir)
        proc = subprocess.Popen(
            [sys.executable, "-m", "clv.cli", "load", "--data-dir", str(paths.data_dir)],
            env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wal = paths.warehouse.with_name(paths.warehouse.name + ".wal")
        deadline = time.monotonic() + 300
        while not wal.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(fraction * load_seconds)
        proc.send_signal(signal.SIGKILL)
        # 0: the load finished before the kill (a fast machine loads in less than the fraction of
        # the in-process time); counted below as a kill outside the load, never as an interruption.
        assert proc.wait() in (-signal.SIGKILL, 0)
        mid = False
        if paths.warehouse.exists():
            con = duckdb.connect(str(paths.warehouse))
            done = _assert_no_partial_file(con)
            mid = done < total_files
            con.close()
        interrupted += mid
        ledger.fault("SIGKILL to clv load, mid-load" if mid else "SIGKILL to clv load, outside the load")
        summary = ingest.load(paths.data_dir)  # the rerun
        assert not summary.failed
        con = duckdb.connect(str(paths.warehouse))
        assert _counts(con) == expected
        rows = ingest.reconcile(con)
        assert len(rows) == total_files and all(r["reconciled"] for r in rows)
        ledger.recovery("load rerun after SIGKILL completed")
        ledger.account(paths, con)
        con.close()
    assert interrupted >= 1, "at least one kill landed in the middle of the load"
    ledger.faults_from_truth(landed)
