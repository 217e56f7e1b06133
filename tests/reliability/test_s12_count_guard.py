"""Scenario 12: runaway work. A count guard (``CLV_MAX_ROWS_PER_FILE`` or ``--max-rows-per-file``)
refuses a batch far larger than expected with a one-line error, before any of the batch loads,
reading the file in constant memory; with the guard raised, the batch loads and nothing is lost."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import subprocess
import sys
import time

import psutil
import pytest

from clv import ingest
from clv.settings import PROJECT_ROOT
from generator import runner
from tests.airflow.helpers import query
from tests.conftest import DAYS
from tests.ingest.conftest import copy_data
from tests.ingest.helpers import GOOD, HEADER, by_file, make_batch, relist

pytestmark = pytest.mark.slow
GUARD = 50_000


def clv_load(data, *args, env=None) -> tuple[int, str, str, float]:
    """`clv load` in its own process: exit code, stdout, stderr and its peak RSS in MB, sampled
    from outside (a forked child's own maxrss starts at its parent's)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "clv.cli", "load", "--data-dir", str(data), *args],
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak = 0
    watched = psutil.Process(proc.pid)
    while proc.poll() is None:
        with contextlib.suppress(psutil.Error):
            peak = max(peak, watched.memory_info().rss)
        time.sleep(0.01)
    out, err = proc.communicate()
    return proc.returncode, out, err, peak / 2**20


def runaway_orders(rows: int) -> bytes:
    """An orders export gone wrong upstream: far more rows than any day delivers."""
    line = GOOD.replace("O1,", "R{},") + "\n"
    return (HEADER + "\n" + "".join(line.format(i) for i in range(rows))).encode()


@pytest.mark.scenario(12, "runaway batch refused by the count guard")
def test_a_runaway_batch_is_refused_whole_then_loads_with_a_raised_guard(heavy_data, tmp_path, ledger):
    paths = copy_data(heavy_data, tmp_path / "data")
    rc, _, err, _ = clv_load(paths.data_dir)
    assert rc == 0, err
    largest = query(
        paths.data_dir, "SELECT max(rows_in_file) FROM ops.load_manifest WHERE batch_date > ?", [DAYS[0]]
    )
    assert largest[0][0] * 20 < GUARD, "the guard sits far above a normal day batch"
    runaway_day, next_day = DAYS[-1] + dt.timedelta(days=1), DAYS[-1] + dt.timedelta(days=2)
    runner.day(paths, runaway_day, chaos="heavy")
    runner.day(paths, next_day, chaos="heavy")
    target = paths.landing / runaway_day.isoformat() / "orders.csv"
    manifest_rows = query(paths.data_dir, "SELECT count(*) FROM ops.load_manifest")[0][0]

    # A runaway file a little over the guard, then one twenty times larger: both refused in
    # one line, nothing of the batch (or after it) loaded, and memory does not grow with the file.
    peaks = {}
    for rows in (GUARD + 10_000, 1_000_000):
        target.write_bytes(runaway_orders(rows))
        relist(target)  # the upstream system announces what it (wrongly) exported
        rc, out, err, peaks[rows] = clv_load(paths.data_dir, env={"CLV_MAX_ROWS_PER_FILE": str(GUARD)})
        assert rc == 2, (out, err)
        assert err.count("\n") == 1 and f"has {rows:,} rows, more than the guard of {GUARD:,}" in err
        assert f"refusing to load batch {runaway_day.isoformat()}" in err and "orders.csv" in err
        assert query(paths.data_dir, "SELECT count(*) FROM ops.load_manifest")[0][0] == manifest_rows
        ledger.fault("runaway file over the count guard")
    grown = target.stat().st_size - len(runaway_orders(GUARD + 10_000))
    assert peaks[1_000_000] - peaks[GUARD + 10_000] < grown / 2**20 / 2, (peaks, grown)

    # The delivery was right after all: raise the guard for this run; everything loads.
    rc, out, err, _ = clv_load(paths.data_dir, "--max-rows-per-file", "2000000")
    assert rc == 0, err
    assert "0 failed" in out
    loaded = dict(
        query(
            paths.data_dir,
            "SELECT batch, sum(rows_loaded + rows_quarantined) FROM ops.load_manifest "
            "WHERE batch IN (?, ?) GROUP BY 1",
            [runaway_day.isoformat(), next_day.isoformat()],
        )
    )
    assert loaded[runaway_day.isoformat()] > 1_000_000 and loaded[next_day.isoformat()] > 0
    ledger.recovery("load rerun with the guard raised")
    ledger.faults_from_truth(paths)
    ledger.account(paths)


@pytest.mark.scenario(12, "runaway batch refused by the count guard", chaos="none (a hand-made batch)")
def test_the_guard_stops_the_whole_batch_in_process(tmp_path, ledger):
    paths = make_batch(tmp_path, {"orders.csv": (HEADER + "\n" + (GOOD + "\n") * 50).encode()})
    with pytest.raises(ingest.RunawayBatch, match="more than the guard of 10"):
        ingest.load(paths.data_dir, max_rows_per_file=10)
    ledger.fault("runaway file over the count guard")
    # customers.csv comes first in the batch and is small, yet nothing of the batch loaded
    assert query(paths.data_dir, "SELECT count(*) FROM ops.load_manifest")[0][0] == 0
    summary = ingest.load(paths.data_dir, max_rows_per_file=50)
    assert by_file(summary)["orders.csv"].rows_loaded == 50
    ledger.recovery("load rerun with the guard raised")
    ledger.account(paths)
