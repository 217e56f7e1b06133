"""A small generated business, loaded and run through SQLMesh once per test session (per worker)."""

from __future__ import annotations

import datetime as dt

import pytest

from clv import ingest, transform
from clv.contract import SOURCES
from clv.settings import Paths
from generator import runner
from tests.conftest import END


def _counts(ctx) -> dict[str, int]:
    return {t: ctx.engine_adapter.fetchone(f"SELECT count(*) FROM staging.stg_{t}")[0] for t in SOURCES}


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
    counts_after_plan = _counts(ctx)
    ctx.close()
    for i in (1, 2):
        runner.day(paths, END + dt.timedelta(days=i), chaos="heavy")
    ingest.load(paths.data_dir)
    ctx = transform.context(paths.data_dir)
    assert transform.run(ctx, END + dt.timedelta(days=2))
    yield paths, ctx, counts_after_plan
    ctx.close()
