"""Prove the gate: customers' purchase rates halve midway (generator.model.BehaviourChange), the
pipeline is built across the change, and the backtest's value error and BG/NBD's calibration move
and the model-health check fails the marts layer (its alert names the metric); the same history
without the change passes every model-health check.

Small on purpose: 3,000 customers, 18 months of history, the change 5.5 months before the business
date (after the backtest's cutoff, business date - 180 days). What was injected is counted from the
warehouse, independently of the code under test: the order days before the change are identical
in both runs, those after it about half."""

from __future__ import annotations

import datetime as dt

import pytest

from clv import ingest, ops, pipeline, quality, transform
from clv.settings import Paths
from generator import runner
from generator.model import BehaviourChange

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ledger-drift")]

START, END = dt.date(2023, 1, 1), dt.date(2024, 6, 30)
CHANGE = BehaviourChange("2024-01-15", 0.5)
CUSTOMERS = 3_000


def _build(root, behaviour: BehaviourChange | None):
    paths = Paths(root / "data")
    runner.history(
        paths, CUSTOMERS, START, END, seed=11, chaos="none", progress=False, workers=1, behaviour=behaviour
    )
    ingest.load(paths.data_dir)
    ctx = transform.context(paths.data_dir)
    transform.plan_prod(ctx, END)
    return paths, ctx


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    built = {
        "control": _build(tmp_path_factory.mktemp("control"), None),
        "drift": _build(tmp_path_factory.mktemp("drift"), CHANGE),
    }
    yield built
    for _, ctx in built.values():
        ctx.close()


def _metrics(ctx) -> dict[tuple[str, str, str], tuple[float, str | None]]:
    return {
        (model, target, metric): (value, status)
        for model, target, metric, value, status in ctx.engine_adapter.fetchall(
            f"""SELECT model, target, metric, value, health_status FROM marts.mart_model_performance
            WHERE business_date = DATE '{END}' AND evaluation = 'backtest' AND decile = 0"""
        )
    }


def _order_days(ctx, after: bool) -> int:
    op = ">=" if after else "<"
    return ctx.engine_adapter.fetchone(
        f"""SELECT count(*) FROM (SELECT DISTINCT customer_id, revenue_date FROM core.fct_revenue
        WHERE revenue_type = 'order' AND revenue_date {op} DATE '{CHANGE.on}')"""
    )[0]


def test_the_change_is_in_the_warehouse(runs):
    (_, control), (_, drift) = runs["control"], runs["drift"]
    assert _order_days(drift, after=False) == _order_days(control, after=False)
    ratio = _order_days(drift, after=True) / _order_days(control, after=True)
    assert 0.45 < ratio < 0.75  # repeats halve; first purchases of new customers do not


def test_the_backtest_moves_with_the_change(runs):
    control, drift = _metrics(runs["control"][1]), _metrics(runs["drift"][1])
    for model in ("churn_model", "bgnbd"):
        key = (model, "order_revenue", "aggregate_error")
        assert abs(control[key][0]) < 0.2  # the unchanged history: within the warn band
        assert drift[key][0] > 0.5  # fitted before the change, the models expect the old rate
        assert drift[key][0] - control[key][0] > 0.4
    calibration = ("bgnbd", "no_purchase", "calibration_gap")
    assert drift[calibration][0] > control[calibration][0] + 0.05
    base_rate = ("churn_model", "no_purchase", "base_rate")
    assert drift[base_rate][0] > control[base_rate][0] + 0.05  # more customers without a purchase


def test_the_gate_fails_on_the_change_and_not_without_it(runs):
    control, drift = _metrics(runs["control"][1]), _metrics(runs["drift"][1])
    judged = {k: v for k, v in control.items() if v[1] is not None}
    assert len(judged) == 4 and {s for _, s in judged.values()} == {"ok"}, judged
    assert drift[("churn_model", "order_revenue", "aggregate_error")][1] == "fail"
    assert drift[("bgnbd", "order_revenue", "aggregate_error")][1] == "fail"

    paths, ctx = runs["control"]
    passed = quality.scan(ctx.engine_adapter.connection, "marts", END, data_dir=paths.data_dir)
    health = {c["name"]: c["outcome"] for c in passed.checks if c["name"].startswith("model health")}
    assert health == {
        "model health outside its fail thresholds": "pass",
        "model health outside its warn thresholds": "pass",
    }

    paths, ctx = runs["drift"]
    with pytest.raises(quality.ScanFailed) as failed:
        quality.scan(ctx.engine_adapter.connection, "marts", END, data_dir=paths.data_dir)
    message = str(failed.value)
    assert "model health outside its fail thresholds [" in message
    assert "backtest churn_model order_revenue 180d aggregate_error = " in message
    assert "fail outside +-0.35" in message and "recent history: none" in message


def test_the_daily_marts_step_stops_on_the_change_and_its_alert_names_the_metric(runs):
    """The pipeline's marts step (what `make run` and the daily DAG call before publishing): it
    raises CheckFailed on the changed history, and the one line the Airflow failure alert carries
    (ops.summarize_error) names the metric, its value, the rule and its history."""
    for _, ctx in runs.values():
        ctx.close()  # one writer: the step opens the warehouse itself
    paths, _ = runs["control"]
    assert pipeline.transform_layer(END, "marts", data_dir=paths.data_dir)["transform"] == "ran"
    paths, _ = runs["drift"]
    with pytest.raises(pipeline.CheckFailed) as failed:
        pipeline.transform_layer(END, "marts", data_dir=paths.data_dir)
    line = ops.summarize_error(failed.value)
    assert line.startswith("CheckFailed: marts checks failed: model health outside its fail thresholds [")
    for model in ("churn_model", "bgnbd"):
        assert f"backtest {model} order_revenue 180d aggregate_error = " in line
    assert "fail outside +-0.35); recent history: none" in line and "(report: " in line
