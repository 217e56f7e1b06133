"""A restatement does not rewrite the ledger's past (README, "Model health"): a late load for the
first business date clears staging and everything downstream, but the models that record what a
run knew on its business date (tagged as_known: the ledger, the model-health history, the at-risk
history) are left alone, and the next business date's run adds its own rows beside the earlier
ones, which stay what those days' runs predicted, value for value. (Clearing their latest interval
instead would re-evaluate it with the new run's business date, which writes nothing for it: the
previous day's rows would be erased.)"""

from __future__ import annotations

import datetime as dt
import shutil

import pytest

from clv import transform
from tests.conftest import END

pytestmark = pytest.mark.slow
DAY2 = END + dt.timedelta(days=2)
DAY3 = END + dt.timedelta(days=3)
AS_KNOWN = (
    "intermediate.int_prediction_ledger",
    "intermediate.int_model_performance",
    "intermediate.int_at_risk_history",
)
KEY = "business_date, customer_id"
LEDGER = (
    "SELECT * FROM intermediate.int_prediction_ledger WHERE business_date = DATE '{day}' ORDER BY customer_id"
)
AT_RISK = (
    "SELECT * FROM intermediate.int_at_risk_history WHERE business_date = DATE '{day}' ORDER BY customer_id"
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
    queries = (LEDGER, PERFORMANCE, AT_RISK)
    before = {day: [fetch(q.format(day=day)) for q in queries] for day in (END, DAY2)}
    assert all(len(frame) for frames in before.values() for frame in frames)
    # a load of orders for END that lands after SQLMesh processed END: the next run restates it
    ctx.engine_adapter.execute(
        f"""INSERT INTO ops.load_manifest (load_id, batch, batch_date, source, source_file, rows_loaded,
        status, started_at, finished_at)
        SELECT max(load_id) + 1, 'late', DATE '{END}', 'orders', 'late/orders.csv', 1, 'loaded',
               now(), now() FROM ops.load_manifest"""
    )
    outcome = transform.run(ctx, DAY3)
    assert outcome and outcome.restatement is not None
    assert "staging.stg_orders" in outcome.restatement.staging_models
    assert "intermediate.int_revenue_risk" in outcome.restatement.models
    assert not set(AS_KNOWN) & set(outcome.restatement.models)
    for day in (END, DAY2):
        after = [fetch(q.format(day=day)) for q in queries]
        assert all(a.equals(b) for a, b in zip(after, before[day], strict=True)), day
    for model in AS_KNOWN:
        (dates,) = ctx.engine_adapter.fetchone(
            f"SELECT list(DISTINCT business_date ORDER BY business_date) FROM {model}"
        )
        assert list(dates) == [END, DAY2, DAY3], model
