"""The subscriptions section (dashboard/subscriptions.py) with Streamlit's AppTest against the
serving file the pipeline built: its figures are the marts', and it copes with a renewal model
curve joined later and with a serving file published before the subscription marts existed."""

from __future__ import annotations

import json

from tests.dashboard.conftest import execute, query
from tests.dashboard.test_app import chart_data, metrics


def charts(at) -> list[tuple[dict, object]]:
    return [(json.loads(c.proto.spec), c) for c in at.get("vega_lite_chart")]


def titled(at, title: str):
    found = [c for spec, c in charts(at) if spec.get("title") == title]
    assert len(found) == 1, [spec.get("title") for spec, _ in charts(at)]
    return chart_data(found[0])


def test_mrr_bridge_and_history_are_the_marts_figures(pipeline_data, run_app):
    at = run_app(pipeline_data)
    # the business date is 2024-12-31: December is the latest complete month
    ((month, opening, new, expansion, contraction, churned, reactivated, closing, subscribers),) = query(
        pipeline_data,
        "SELECT mrr_month, opening_mrr_usd, new_mrr_usd, expansion_mrr_usd, contraction_mrr_usd, "
        "churned_mrr_usd, reactivated_mrr_usd, closing_mrr_usd, closing_subscriber_count "
        "FROM mart_mrr_movements WHERE is_complete_month ORDER BY mrr_month DESC LIMIT 1",
    )
    assert f"{month:%Y-%m}" == "2024-12" and closing > 0 and new > 0
    m = metrics(at)
    assert m["MRR at month end"] == f"${closing:,.0f}"
    assert m["New + reactivated MRR"] == f"${new + reactivated:,.0f}"
    assert m["Churned MRR"] == f"${churned:,.0f}"
    assert m["Subscribers at month end"] == f"{subscribers:,}"
    assert "Monthly recurring revenue, December 2024" in [s.value for s in at.subheader]
    bridge = titled(at, "MRR bridge, December 2024")
    assert list(bridge["step"]) == [
        "Opening",
        "New",
        "Expansion",
        "Reactivated",
        "Contraction",
        "Churned",
        "Closing",
    ]
    expected = [opening, new, expansion, reactivated, -contraction, -churned, closing]
    assert bridge["amount"].round(2).tolist() == [float(x) for x in expected]
    # the movements walk from the opening level to the closing level
    assert round(bridge["end"].iloc[-2], 2) == float(closing) == round(bridge["end"].iloc[-1], 2)
    history = [chart_data(c) for spec, c in charts(at) if spec["encoding"]["x"].get("title") == "Month"]
    (history,) = history
    months = query(
        pipeline_data,
        "SELECT closing_mrr_usd FROM mart_mrr_movements WHERE is_complete_month ORDER BY mrr_month",
    )
    assert history["closing_mrr_usd"].round(2).tolist() == [float(r[0]) for r in months]
    assert len(months) >= 6  # the history starts on 2024-06-01


def test_retention_curves_are_the_marts_all_cohort_rows(pipeline_data, run_app):
    at = run_app(pipeline_data)
    (curves,) = [
        chart_data(c) for spec, c in charts(at) if spec["encoding"]["x"].get("title") == "Months since start"
    ]
    expected = query(
        pipeline_data,
        "SELECT plan_id, months_since_start, survival FROM mart_subscription_retention "
        "WHERE cohort = 'all' AND subscriptions_at_risk >= 10 ORDER BY plan_id, months_since_start",
    )
    assert len(expected) > 6 and any(r[2] < 1 for r in expected)
    # the renewal model's curve (int_subscription_model_curve) is drawn beside the observed one
    assert set(curves["curve"]) == {"observed", "renewal model"}
    modelled = curves[curves["curve"] == "renewal model"]
    fitted = query(
        pipeline_data,
        "SELECT plan_id, months_since_start, model_survival FROM mart_subscription_retention "
        "WHERE cohort = 'all' AND subscriptions_at_risk >= 10 AND model_survival IS NOT NULL "
        "ORDER BY plan_id, months_since_start",
    )
    assert len(fitted) > 6
    got = modelled[["plan_id", "months_since_start", "share"]].itertuples(index=False, name=None)
    assert [(p, k, round(v, 6)) for p, k, v in got] == [(p, k, float(v)) for p, k, v in fitted]
    curves = curves[curves["curve"] == "observed"]
    got = curves[["plan_id", "months_since_start", "survival"]].itertuples(index=False, name=None)
    assert [(p, k, round(s, 6)) for p, k, s in got] == [(p, k, float(s)) for p, k, s in expected]
    (table,) = [d.value for d in at.dataframe if "survival_1m" in d.value.columns]
    one_month = dict(
        query(
            pipeline_data,
            "SELECT plan_id, survival FROM mart_subscription_retention "
            "WHERE cohort = 'all' AND months_since_start = 1",
        )
    )
    assert dict(zip(table["plan_id"], table["survival_1m"].round(6))) == {
        k: float(v) for k, v in one_month.items()
    }


def test_the_renewal_model_curve_shows_beside_the_observed_one(serving_copy, run_app):
    execute(serving_copy, "UPDATE mart_subscription_retention SET model_survival = survival * 0.9")
    at = run_app(serving_copy)
    (curves,) = [
        chart_data(c) for spec, c in charts(at) if spec["encoding"]["x"].get("title") == "Months since start"
    ]
    assert set(curves["curve"]) == {"observed", "renewal model"}
    observed = curves[curves["curve"] == "observed"]["share"].to_numpy()
    modelled = curves[curves["curve"] == "renewal model"]["share"].to_numpy()
    assert len(observed) == len(modelled) and abs(modelled - observed * 0.9).max() < 1e-9


def test_a_serving_file_without_the_subscription_marts_still_opens(serving_copy, run_app):
    execute(serving_copy, "DROP TABLE mart_subscription_retention", "DROP TABLE mart_mrr_movements")
    at = run_app(serving_copy)
    assert "Customers" in metrics(at) and "MRR at month end" not in metrics(at)
    assert any("no subscription marts yet" in i.value for i in at.info)
