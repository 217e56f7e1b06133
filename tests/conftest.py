"""Shared fixtures: small generated datasets, made once per test session (per xdist worker)."""

from __future__ import annotations

import datetime as dt
import os

import pytest

os.environ.setdefault("SQLMESH__DISABLE_ANONYMIZED_ANALYTICS", "1")
os.environ.setdefault("MAX_FORK_WORKERS", "1")  # see clv/transform.py

from clv import ingest, transform
from clv.contract import SOURCES
from clv.settings import Paths
from generator import runner

END = dt.date(2023, 12, 31)
START = dt.date(2023, 1, 1)
DAYS = [END + dt.timedelta(days=i) for i in range(1, 6)]


def make_dataset(root, customers: int, chaos: str, days: list[dt.date], seed: int = 7) -> Paths:
    paths = Paths(root)
    runner.history(paths, customers, START, END, seed=seed, chaos=chaos, progress=False, workers=1)
    for d in days:
        runner.day(paths, d, chaos=chaos)
    return paths


@pytest.fixture(scope="session")
def clean_data(tmp_path_factory) -> Paths:
    """1,500 customers, one year of history and five day batches, no injected faults."""
    return make_dataset(tmp_path_factory.mktemp("clean"), 1_500, "none", DAYS)


@pytest.fixture(scope="session")
def heavy_data(tmp_path_factory) -> Paths:
    """4,000 customers under heavy chaos: every fault kind at a measurable rate."""
    return make_dataset(tmp_path_factory.mktemp("heavy"), 4_000, "heavy", DAYS)


@pytest.fixture(scope="session")
def project(tmp_path_factory):
    """History loaded and planned at END, then two heavy-chaos day batches loaded and run."""
    paths = Paths(tmp_path_factory.mktemp("sqlmesh") / "data")
    runner.history(
        paths, 1_200, dt.date(2023, 1, 1), END, seed=9, chaos="realistic", progress=False, workers=1
    )
    ingest.load(paths.data_dir)
    ctx = transform.context(paths.data_dir)
    transform.plan_prod(ctx, END)
    counts_after_plan = {
        t: ctx.engine_adapter.fetchone(f"SELECT count(*) FROM staging.stg_{t}")[0] for t in SOURCES
    }
    ctx.close()
    for i in (1, 2):
        runner.day(paths, END + dt.timedelta(days=i), chaos="heavy")
    ingest.load(paths.data_dir)
    ctx = transform.context(paths.data_dir)
    with pytest.MonkeyPatch.context() as mp:
        # The fits of the run's business date, not the stored ones of END: tests read them
        # (tests/sqlmesh/test_clv_models.py); the cadence has its own test (test_refit_cadence.py).
        mp.setenv("CLV_FORCE_REFIT", "1")
        assert transform.run(ctx, END + dt.timedelta(days=2))
    yield paths, ctx, counts_after_plan
    ctx.close()
