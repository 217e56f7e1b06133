"""Scenario 17: missed days catch up. With delivered files (``CLV_SOURCE=landing``), a day whose
batch had not landed fails its run (`extract` gives up; scenario 1 shows the retries and the
alert). When the batch lands before the next run, that run processes the missed day as well:
SQLMesh runs every missing interval up to the business date, and the staging models, which read
raw by batch date, take in both days. When it lands only after a later day has run — the missed
day's interval was then processed empty — the next run restates it. Either way every mart equals
a run where each day arrived on time.

The first test runs the daily refresh's steps in this process (`clv.pipeline.daily`: extract,
load, raw checks, each layer and its checks, publish). The second, to stay small, runs `extract`,
`load` and the staging step, then the other layers in one SQLMesh run without their Soda gates
(scenario 3 covers the gates)."""

from __future__ import annotations

import pytest

from clv import ingest, ops, pipeline
from clv.settings import Paths
from generator import runner
from tests.airflow.helpers import query
from tests.reliability import ledger as ledger_mod
from tests.reliability.compare import snapshot_copy
from tests.reliability.conftest import copy_data, day, run_models
from tests.reliability.test_s13_landing_manifest import (
    assert_marts_equal,
    batch_rows_in_staging,
    deliver,
    on_time_day_1,
)

# one worker builds the shared warehouse fixture (with `--dist loadgroup`)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("reliability-base")]
D1, D2, D3 = day(1), day(2), day(3)


@pytest.fixture(scope="module")
def on_time(base, tmp_path_factory) -> dict:
    """The reference: ``base`` with days 1 to 3 each delivered before its run (day 1 is scenario
    13's reference). Keeps the generated data (``source``) and a copy of the warehouse after days
    2 and 3."""
    root = tmp_path_factory.mktemp("s17-on-time")
    paths = copy_data(on_time_day_1(base, tmp_path_factory), root / "data")
    out = {"source": paths}
    for d in (D2, D3):
        runner.day(paths, d, chaos="realistic")
        ingest.load(paths.data_dir)
        run_models(paths, d)
        out[d] = Paths(root / d.isoformat())
        out[d].data_dir.mkdir()
        snapshot_copy(paths.warehouse, out[d].warehouse)
    return out


def run_day(paths: Paths, business_date, run_id: str) -> None:
    pipeline.daily(business_date, run_id, data_dir=paths.data_dir, echo=lambda _line: None)


def run_day_lean(paths: Paths, business_date, run_id: str) -> None:
    """extract, load and the staging step (with its checks), then the other layers in one run."""
    for task_id, func, args in (
        ("extract", pipeline.extract, ()),
        ("load_raw", pipeline.load, ()),
        ("transform_staging", pipeline.transform_layer, ("staging",)),
    ):
        step = ops.StepRun(run_id=run_id, task_id=task_id, business_date=business_date)
        func(business_date, *args, data_dir=paths.data_dir, step=step)
    run_models(paths, business_date)


def missed(paths: Paths, business_date, ledger) -> None:
    """The day's run while its batch has not landed: `extract` stops it."""
    with pytest.raises(pipeline.SourceNotReady, match="no batch for"):
        run_day(paths, business_date, f"missed-{business_date}")
    assert not query(
        paths.data_dir,
        "SELECT task_id FROM ops.pipeline_runs WHERE business_date = ? AND task_id <> 'extract'",
        [business_date],
    )
    ledger.fault("day's batch not delivered by its run", 1)


@pytest.mark.scenario(17, "missed days catch up", chaos="realistic")
def test_the_next_run_processes_a_missed_day(base, on_time, tmp_path, monkeypatch, ledger):
    monkeypatch.setenv("CLV_SOURCE", "landing")
    paths = copy_data(base, tmp_path / "data")
    missed(paths, D1, ledger)
    batches = deliver(on_time["source"], paths, D1) + deliver(on_time["source"], paths, D2)
    run_day(paths, D2, "next-day")
    for d in (D1, D2):
        loaded, missing = batch_rows_in_staging(paths, d)
        assert loaded > 0 and missing == 0, (d, loaded, missing)
    assert_marts_equal(paths, on_time[D2], tmp_path, runs_differ=True)
    ledger.recovery("the next run processed the missed day: marts equal on-time runs")
    assert query(paths.data_dir, "SELECT count(*) FROM ops.restatements")[0][0] == 0  # nothing late
    ledger.faults_from_truth(paths, batches)
    ledger.account(paths)


@pytest.mark.scenario(17, "missed days catch up", chaos="realistic")
def test_a_missed_day_that_lands_after_a_later_day_ran_is_restated(
    base, on_time, tmp_path, monkeypatch, ledger
):
    monkeypatch.setenv("CLV_SOURCE", "landing")
    paths = copy_data(base, tmp_path / "data")
    missed(paths, D1, ledger)
    batches = deliver(on_time["source"], paths, D2)
    run_day_lean(paths, D2, "day-2")  # day 1's interval is processed without its rows
    assert batch_rows_in_staging(paths, D1)[0] == 0
    batches += deliver(on_time["source"], paths, D1) + deliver(on_time["source"], paths, D3)
    ledger.fault("missed day's batch landed after a later day ran", 1)
    run_day_lean(paths, D3, "day-3")
    for d in (D1, D2, D3):
        loaded, missing = batch_rows_in_staging(paths, d)
        assert loaded > 0 and missing == 0, (d, loaded, missing)
    # day 2's run knew day 2 without day 1's rows, so its record of who was at risk (what day 3
    # compares with) is not the on-time run's: the run-history columns differ by design
    assert_marts_equal(paths, on_time[D3], tmp_path, runs_differ=True)
    ledger.recovery("the late day was restated: marts equal on-time runs")
    assert query(paths.data_dir, "SELECT batch_dates FROM ops.restatements") == [([D1],)]
    warned = [
        a
        for a in ledger_mod.alerts(paths, "day-3")
        if a["task_id"] == "transform_staging" and a["severity"] == "warning"
    ]
    assert len(warned) == 1 and D1.isoformat() in warned[0]["summary"], warned
    ledger.alert(warned[0])
    ledger.faults_from_truth(paths, batches)
    ledger.account(paths)
