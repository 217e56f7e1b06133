"""Scenario 6: a transform killed mid-run. The real `clv transform` process (SQLMesh evaluating the
day's intervals into the DuckDB warehouse) gets SIGKILL while it writes; the rerun completes and
every fact and mart equals a clean run's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import duckdb
import pytest

from clv.settings import PROJECT_ROOT
from tests.reliability.compare import FACTS, MARTS, layer_diff, snapshot_copy
from tests.reliability.conftest import HEAVY_DAYS, copy_data, day, wal_peak

# one worker builds the shared warehouse fixture (with `--dist loadgroup`)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("reliability-heavy")]


def transform_cmd(paths, business_date) -> list[str]:
    return [
        sys.executable,
        "-m",
        "clv.cli",
        "transform",
        "--data-dir",
        str(paths.data_dir),
        "--business-date",
        business_date.isoformat(),
    ]


def kill_while_writing(paths, business_date, written: int, extra_seconds: float) -> int:
    """Start the transform, wait until SQLMesh has written ``written`` bytes of model data to the
    warehouse's write-ahead log (the evaluation is under way), wait a little more, SIGKILL it.
    Returns the WAL size at the kill."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "SQLMESH__DISABLE_ANONYMIZED_ANALYTICS": "1"}
    proc = subprocess.Popen(
        transform_cmd(paths, business_date), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wal = paths.warehouse.with_name(paths.warehouse.name + ".wal")
    deadline = time.monotonic() + 300
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if wal.exists() and wal.stat().st_size >= written:
                time.sleep(extra_seconds)
                break
            time.sleep(0.02)
        size = wal.stat().st_size if wal.exists() else 0
        assert proc.poll() is None, "the transform finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return size


@pytest.mark.scenario(6, "transform killed mid-run")
# Kill once the first models' data is being written (100 KB in the log), and halfway through the
# log a clean run of the same day reaches.
@pytest.mark.parametrize("fraction", [0.0, 0.5], ids=["early", "halfway"])
def test_sigkill_mid_transform_then_rerun(next_day_loaded, next_day_clean, tmp_path, fraction, ledger):
    today = day(HEAVY_DAYS + 1)
    peak = int(wal_peak(next_day_clean).read_text())
    written = max(100_000, int(peak * fraction))
    assert peak > 2 * 100_000, peak
    paths = copy_data(next_day_loaded, tmp_path / "data")
    at = kill_while_writing(paths, today, written, 0.0)
    ledger.fault("SIGKILL to the SQLMesh run (clv transform)")
    clean = snapshot_copy(next_day_clean.warehouse, tmp_path / "clean.duckdb")
    # The kill left the warehouse behind the clean run (the day was not finished) ...
    con = duckdb.connect(str(paths.warehouse))
    try:
        con.execute(f"ATTACH '{clean}' AS clean (READ_ONLY)")
        behind = sum(layer_diff(con, f"marts.{m}", "warehouse", "clean")[1] for m in MARTS)
        con.execute("DETACH clean")
    finally:
        con.close()
    assert behind > 0, f"killed at {at:,} WAL bytes, yet the marts were complete"

    rerun = subprocess.run(
        transform_cmd(paths, today),
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-3000:]
    ledger.recovery("transform rerun after SIGKILL completed")
    # ... and the rerun caught up exactly: facts and marts equal the clean run's.
    con = duckdb.connect(str(paths.warehouse))
    try:
        con.execute(f"ATTACH '{clean}' AS clean (READ_ONLY)")
        for table in (*(f"core.{f}" for f in FACTS), *(f"marts.{m}" for m in MARTS)):
            n, diff = layer_diff(con, table, "warehouse", "clean")
            assert n > 0 and diff == 0, (table, n, diff)
        con.execute("DETACH clean")
        ledger.account(paths, con)
    finally:
        con.close()
