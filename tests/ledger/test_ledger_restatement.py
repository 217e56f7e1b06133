"""A restatement does not rewrite the ledger's past (README, "Model health"): a late load for the
first business date clears staging and everything downstream; the ledger and the model-health
history (disable_restatement) re-evaluate only their latest business date, and the rows of the
earlier one are what that day's run predicted, value for value."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest

from clv import transform
from tests.conftest import END

pytestmark = pytest.mark.slow
DAY2 = END + dt.timedelta(days=2)
KEY = "business_date, customer_id"
LEDGER = (
    "SELECT * FROM intermediate.int_prediction_ledger WHERE business_date = DATE '{day}' ORDER BY customer_id"
)
PERFORMANCE = (
    "SELECT * FROM intermediate.int_model_performance WHERE business_date = DATE '{day}' "
    "ORDER BY evaluation, model, target, horizon_days, metric, decile"
)


@pytest.fixture
def copied(project, tmp_path):
    """A SQLMesh context on a copy of the shared warehouse (the shared one stays untouched)."""
    paths, ctx, _ = project
    ctx.close()
    data = tmp_path / "data"
    shutil.copytree(paths.data_dir, data, ignore=shutil.ignore_patterns("reports"))
    ctx = transform.context(data)
    yield ctx
    ctx.close()


def test_a_late_load_restates_staging_but_not_the_ledger_s_past(copied):
    ctx = copied
    fetch = ctx.engine_adapter.fetchdf
    before = {day: (fetch(LEDGER.format(day=day)), fetch(PERFORMANCE.format(day=day))) for day in (END, DAY2)}
    assert all(len(led) and len(perf) for led, perf in before.values())
    # a load of orders for END that lands after SQLMesh processed END: the run restates it
    ctx.engine_adapter.execute(
        f"""INSERT INTO ops.load_manifest (load_id, batch, batch_date, source, source_file, rows_loaded,
        status, started_at, finished_at)
        SELECT max(load_id) + 1, 'late', DATE '{END}', 'orders', 'late/orders.csv', 1, 'loaded',
               now(), now() FROM ops.load_manifest"""
    )
    outcome = transform.run(ctx, DAY2)
    assert outcome and outcome.restatement is not None
    assert "staging.stg_orders" in outcome.restatement.staging_models
    assert {"intermediate.int_prediction_ledger", "intermediate.int_model_performance"} <= set(
        outcome.restatement.models
    )
    led, perf = fetch(LEDGER.format(day=END)), fetch(PERFORMANCE.format(day=END))
    assert led.equals(before[END][0]) and perf.equals(before[END][1])
    # the latest business date was evaluated again, and on unchanged data it says the same
    led2 = fetch(LEDGER.format(day=DAY2))
    assert len(led2) == len(before[DAY2][0])
    assert (led2["churn_probability"] - before[DAY2][0]["churn_probability"]).abs().max() < 1e-6
    (dates,) = ctx.engine_adapter.fetchone(
        "SELECT list(DISTINCT business_date ORDER BY business_date) FROM intermediate.int_prediction_ledger"
    )
    assert list(dates) == [END, DAY2]
