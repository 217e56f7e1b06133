"""The prediction ledger, the backtest and the model-health mart on the shared SQLMesh-built
warehouse (tests/conftest.py `project`: planned at END, then a run up to END + 2). Counts come from
the warehouse's own tables and the churn model's holdout rule, independently of clv.stats.backtest."""

from __future__ import annotations

import datetime as dt
import zlib

import pytest

from clv import quality
from tests.conftest import END

pytestmark = pytest.mark.slow
DAY2 = END + dt.timedelta(days=2)
WINDOW = 180  # churn_label_window_days


def rows(ctx, sql: str) -> list[tuple]:
    return ctx.engine_adapter.fetchall(sql)


def test_the_ledger_keeps_each_run_s_predictions_under_its_business_date(project):
    _, ctx, _ = project
    dates = rows(
        ctx, "SELECT business_date, count(*) FROM intermediate.int_prediction_ledger GROUP BY 1 ORDER BY 1"
    )
    # the plan recorded END; the run up to END + 2 recorded END + 2 only (END + 1 was not predicted)
    assert [d for d, _ in dates] == [END, DAY2]
    signed_up = {
        day: rows(
            ctx,
            f"SELECT count(*) FROM core.dim_customers WHERE valid_to IS NULL AND signup_date <= DATE '{day}'",
        )[0][0]
        for day in (END, DAY2)
    }
    assert dict(dates) == signed_up
    # today's rows are today's predictions, value for value
    mismatched = rows(
        ctx,
        f"""SELECT count(*) FROM intermediate.int_prediction_ledger AS l
        JOIN intermediate.int_revenue_risk AS r USING (customer_id)
        WHERE l.business_date = DATE '{DAY2}' AND (
          abs(l.churn_probability - r.churn_probability) > 1e-6
          OR abs(l.predicted_order_value_12m_usd - r.predicted_order_value_12m_usd)
             > 1e-4 * greatest(1, r.predicted_order_value_12m_usd))""",
    )[0][0]
    assert mismatched == 0
    # END's rows were not rewritten by the later run: they name the churn model fitted for END
    trained = rows(
        ctx, "SELECT business_date, min(churn_trained_as_of), max(churn_trained_as_of) FROM "
        "intermediate.int_prediction_ledger GROUP BY 1 ORDER BY 1",
    )  # fmt: skip
    assert trained == [
        (END, END - dt.timedelta(days=WINDOW), END - dt.timedelta(days=WINDOW)),
        (DAY2, DAY2 - dt.timedelta(days=WINDOW), DAY2 - dt.timedelta(days=WINDOW)),
    ]


def test_the_backtest_is_the_churn_model_s_holdout_read_as_a_forecast(project):
    _, ctx, _ = project
    cutoff = DAY2 - dt.timedelta(days=WINDOW)
    metric = {
        (model, target, name): (value, customers)
        for model, target, name, value, customers in rows(
            ctx,
            f"""SELECT model, target, metric, value, customers FROM intermediate.int_model_performance
            WHERE business_date = DATE '{DAY2}' AND evaluation = 'backtest' AND decile = 0""",
        )
    }
    auc, auc_bg, held = rows(
        ctx,
        "SELECT max(holdout_auc), max(holdout_auc_bgnbd), max(holdout_customers) FROM intermediate.int_churn_model",
    )[0]
    assert metric[("churn_model", "no_purchase", "roc_auc")] == (pytest.approx(auc, abs=1e-9), held)
    assert metric[("bgnbd", "no_purchase", "roc_auc")][0] == pytest.approx(auc_bg, abs=1e-9)
    # the realised revenue: held-out customers (crc32 % 5 == 0) who had bought by the cutoff, their
    # net order revenue (orders and refunds) in (cutoff, business date]
    buyers = [
        c
        for (c,) in rows(
            ctx,
            f"SELECT customer_id FROM intermediate.int_purchase_summary WHERE as_of_date = DATE '{cutoff}' "
            "AND has_purchased",
        )
        if zlib.crc32(c.encode()) % 5 == 0
    ]
    revenue = dict(
        rows(
            ctx,
            f"""SELECT customer_id, sum(revenue_usd) FROM core.fct_revenue
            WHERE revenue_type IN ('order', 'refund') AND revenue_date > DATE '{cutoff}'
              AND revenue_date <= DATE '{DAY2}' GROUP BY 1""",
        )
    )
    actual = float(sum(revenue.get(c, 0) for c in buyers))
    for model in ("churn_model", "bgnbd"):
        assert metric[(model, "order_revenue", "actual_total_usd")] == (
            pytest.approx(actual, abs=0.01),
            len(buyers),
        )
        predicted, _ = metric[(model, "order_revenue", "predicted_total_usd")]
        error, _ = metric[(model, "order_revenue", "aggregate_error")]
        assert error == pytest.approx(predicted / actual - 1)
    deciles = rows(
        ctx,
        f"""SELECT decile, customers FROM intermediate.int_model_performance
        WHERE business_date = DATE '{DAY2}' AND evaluation = 'backtest' AND model = 'churn_model'
          AND metric = 'decile_observed' ORDER BY decile""",
    )
    assert [d for d, _ in deciles] == list(range(1, 11)) and sum(n for _, n in deciles) == held
    # one backtest per run: the plan's (END) and the run's (END + 2), each with its own cutoff
    origins = rows(
        ctx, "SELECT DISTINCT business_date, origin_date FROM intermediate.int_model_performance ORDER BY 1"
    )
    assert origins == [(END, END - dt.timedelta(days=WINDOW)), (DAY2, cutoff)]


def test_model_health_is_judged_and_the_checks_run(project):
    paths, ctx, _ = project
    gated = rows(
        ctx,
        f"""SELECT model, target, metric, gate, customers, health_status, health_explanation
        FROM marts.mart_model_performance WHERE business_date = DATE '{DAY2}' AND gate IS NOT NULL
        ORDER BY 1, 2, 3""",
    )
    assert [(m, t, n, g) for m, t, n, g, *_ in gated] == [
        ("bgnbd", "order_revenue", "aggregate_error", "value_error"),
        ("churn_model", "no_purchase", "calibration_gap", "calibration"),
        ("churn_model", "no_purchase", "roc_auc", "auc"),
        ("churn_model", "order_revenue", "aggregate_error", "value_error"),
    ]
    # 1,200 customers: far fewer held out than health_min_customers (300), so nothing is judged
    assert all(n < 300 and status == "too_few" for *_, n, status, _ in gated)
    assert all(
        f" {metric} = " in text and "recent history: 1 runs" in text for _, _, metric, *_, text in gated
    )
    for layer, names in (
        (
            "intermediate",
            {
                "int_prediction_ledger recorded the business date's predictions",
                "int_prediction_ledger holds every customer scored on the business date",
                "int_prediction_ledger has no predictions dated after the business date",
                "int_model_performance has the business date's backtest",
            },
        ),
        (
            "marts",
            {
                "model health outside its fail thresholds",
                "model health outside its warn thresholds",
                "mart_model_performance measured the business date",
            },
        ),
    ):
        result = quality.scan(
            ctx.engine_adapter.connection, layer, DAY2, data_dir=paths.data_dir, raise_on_failure=False
        )
        outcome = {c["name"]: c["outcome"] for c in result.checks}
        assert names <= set(outcome), names - set(outcome)
        assert {outcome[n] for n in names} == {"pass"}, {n: outcome[n] for n in names}
