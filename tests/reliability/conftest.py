"""Fixtures of the reliability scenarios: the ledger, and small warehouses built once.

``base`` is a realistic-chaos history (800 customers, 2024) taken through the whole daily refresh
(load, checks, every SQLMesh layer, publish): prod exists, the serving file exists. Scenarios copy
it and deliver heavy-chaos day batches on top. (A whole history at heavy chaos stops at the staging
gate by design: about 2% of its rows belong to customers whose own row was quarantined, above the
1% the staging checks allow.)

``heavy_project`` is a heavy-chaos history (1,500 customers, 2024) with three
heavy-chaos day batches, each loaded and run through SQLMesh the way the daily refresh does (the
Soda gates are left out: see above). Heavy chaos in the history matters for late events: lateness
is drawn when events are simulated, so only a heavy history delivers events up to the maximum
lateness (7 days) in its day batches. ``next_day_loaded`` adds a fourth day, loaded but not yet
transformed; ``next_day_clean`` is that day run cleanly, the reference for scenarios 4 and 6.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clv import ingest, pipeline, settings, transform
from clv.airflow import home as airflow_home
from clv.names import DEFAULT_HISTORY_END
from clv.settings import Paths
from generator import runner
from tests.reliability.ledger import Ledger, out_dir

END = DEFAULT_HISTORY_END
START = dt.date(2024, 1, 1)
CUSTOMERS = 800


def day(n: int) -> dt.date:
    return END + dt.timedelta(days=n)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    setattr(item, f"rep_{rep.when}", rep)
    return rep


@pytest.fixture
def ledger(request, tmp_path_factory):
    """The scenario's record; written at teardown with the test's outcome."""
    marker = request.node.get_closest_marker("scenario")
    assert marker, "a reliability test declares @pytest.mark.scenario(number, name)"
    number, name = marker.args[:2]
    led = Ledger(number, name, request.node.nodeid, chaos=marker.kwargs.get("chaos", "heavy"))
    yield led
    rep = getattr(request.node, "rep_call", None)
    outcome = "passed" if rep is not None and rep.passed else "failed"
    led.write(outcome, out_dir(tmp_path_factory.getbasetemp() / "reliability"))


@pytest.fixture(scope="session", autouse=True)
def refit_every_run():
    """The scenarios compare data paths (a daily run against a rebuild from raw, a restated day
    against one delivered whole): the churn and renewal models refit on every run here, as they
    did before their cadence, so both sides are fitted on the same business date. The cadence has
    its own test (tests/sqlmesh/test_refit_cadence.py)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLV_FORCE_REFIT", "1")
        yield


def copy_data(src: Paths, dst) -> Paths:
    shutil.copytree(src.data_dir, dst, ignore=shutil.ignore_patterns("*.tmp"))
    return Paths(dst)


@pytest.fixture(scope="session")
def base(tmp_path_factory) -> Paths:
    """History at END through the daily refresh, in this process (the same steps as the DAG)."""
    paths = Paths(tmp_path_factory.mktemp("reliability-base") / "data")
    runner.history(paths, CUSTOMERS, START, END, seed=11, chaos="realistic", progress=False, workers=1)
    pipeline.daily(END, "base", data_dir=paths.data_dir, echo=lambda _line: None)
    assert paths.serving.exists()
    return paths


@pytest.fixture(scope="session")
def airflow_base(base, tmp_path_factory) -> Paths:
    """``base`` with its Airflow home bootstrapped (metadata database, the warehouse pool)."""
    paths = copy_data(base, tmp_path_factory.mktemp("reliability-airflow") / "data")
    airflow_home.bootstrap(paths.data_dir)
    return paths


HEAVY_START = START  # a year: the churn model trains on the purchases before the last 180 days
HEAVY_CUSTOMERS = 1_500
HEAVY_DAYS = 3


def run_models(paths: Paths, business_date: dt.date) -> None:
    ctx = transform.context(paths.data_dir)
    try:
        assert transform.run(ctx, business_date)
    finally:
        ctx.close()


@pytest.fixture(scope="session")
def heavy_project(tmp_path_factory) -> Paths:
    paths = Paths(tmp_path_factory.mktemp("reliability-heavy") / "data")
    runner.history(
        paths, HEAVY_CUSTOMERS, HEAVY_START, END, seed=21, chaos="heavy", progress=False, workers=1
    )
    ingest.load(paths.data_dir)
    ctx = transform.context(paths.data_dir)
    try:
        transform.plan_prod(ctx, END)
    finally:
        ctx.close()
    for i in range(1, HEAVY_DAYS + 1):
        runner.day(paths, day(i), chaos="heavy")
        ingest.load(paths.data_dir)
        run_models(paths, day(i))
    return paths


@pytest.fixture(scope="session")
def next_day_loaded(heavy_project, tmp_path_factory) -> Paths:
    paths = copy_data(heavy_project, tmp_path_factory.mktemp("reliability-next-day") / "data")
    runner.day(paths, day(HEAVY_DAYS + 1), chaos="heavy")
    ingest.load(paths.data_dir)
    return paths


@pytest.fixture(scope="session")
def next_day_clean(next_day_loaded, tmp_path_factory) -> Paths:
    """The fourth day run cleanly by the real `clv transform` process. The peak size of the
    warehouse's write-ahead log during that run is kept beside it (``wal_peak``), so that
    scenario 6 knows how far into a run a given amount of written data is."""
    paths = copy_data(next_day_loaded, tmp_path_factory.mktemp("reliability-clean-run") / "data")
    cmd = [sys.executable, "-m", "clv.cli", "transform", "--data-dir", str(paths.data_dir)]
    env = {**os.environ, "PYTHONPATH": str(settings.PROJECT_ROOT)}
    proc = subprocess.Popen(
        [*cmd, "--business-date", day(HEAVY_DAYS + 1).isoformat()],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    wal, peak = paths.warehouse.with_name(paths.warehouse.name + ".wal"), 0
    while proc.poll() is None:
        with contextlib.suppress(OSError):
            peak = max(peak, wal.stat().st_size)
        time.sleep(0.02)
    assert proc.returncode == 0, proc.stdout.read()[-3000:]
    wal_peak(paths).write_text(str(peak))
    return paths


def wal_peak(paths: Paths) -> Path:
    return paths.data_dir.parent / "wal_peak.txt"
