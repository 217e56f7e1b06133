"""The model-health section (dashboard/model_health.py) with Streamlit's AppTest against the
serving file the pipeline built: its verdicts, trends, calibration and lift, value deciles,
coefficients and parameters are the marts' (mart_model_performance, mart_model_parameters), and a
serving file published before those marts existed still opens."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.dashboard.conftest import execute, query
from tests.dashboard.test_app import chart_data


def titled(at, title: str) -> pd.DataFrame:
    found = [c for c in at.get("vega_lite_chart") if json.loads(c.proto.spec).get("title") == title]
    assert len(found) == 1, [json.loads(c.proto.spec).get("title") for c in at.get("vega_lite_chart")]
    return chart_data(found[0])


def test_verdicts_and_trends_are_the_marts_rows(pipeline_data, run_app):
    at = run_app(pipeline_data)
    (verdicts,) = [d.value for d in at.dataframe if "Verdict" in d.value.columns]
    expected = query(
        pipeline_data,
        "SELECT health_status, health_explanation FROM mart_model_performance WHERE gate IS NOT NULL "
        "AND business_date = (SELECT max(business_date) FROM mart_model_performance)",
    )
    assert len(expected) == 4  # AUC, calibration gap, the two models' value error
    assert sorted(verdicts["Metric, rule and recent history"]) == sorted(e for _, e in expected)
    # 800 customers: the backtest holds far fewer than health_min_customers, so nothing is judged
    assert (
        set(verdicts["Verdict"])
        == {"⚪ too few customers"}
        == {"⚪ too few customers" for s, _ in expected if s == "too_few"}
    )
    auc = titled(at, "Churn model ROC AUC")
    rows = query(
        pipeline_data,
        "SELECT business_date, value, warn_threshold, fail_threshold FROM mart_model_performance "
        "WHERE gate = 'auc' ORDER BY business_date",
    )
    line = auc[auc["kind"] == "metric"].sort_values("business_date")
    assert line["value"].round(9).tolist() == [round(r[1], 9) for r in rows]
    limits = auc[auc["kind"] == "threshold"]
    assert set(limits.loc[limits["series"] == "warn threshold", "value"]) == {rows[0][2]} == {0.75}
    assert set(limits.loc[limits["series"] == "fail threshold", "value"]) == {rows[0][3]} == {0.65}
    error = titled(at, "Value error")
    assert set(error["series"]) == {
        "backtest bgnbd order_revenue 180d", "backtest churn_model order_revenue 180d",
        "warn threshold", "warn threshold (below)", "fail threshold", "fail threshold (below)",
    }  # fmt: skip
    assert set(error.loc[error["series"] == "fail threshold (below)", "value"]) == {-0.35}


def test_calibration_lift_and_value_deciles_are_the_latest_backtest(pipeline_data, run_app):
    at = run_app(pipeline_data)
    calibration = titled(at, "Calibration by decile (latest backtest)")
    observed = query(
        pipeline_data,
        "SELECT model, decile, value FROM mart_model_performance WHERE evaluation = 'backtest' "
        "AND metric = 'decile_observed' AND business_date = (SELECT max(business_date) FROM mart_model_performance) "
        "ORDER BY model, decile",
    )
    assert len(observed) >= 10
    got = calibration.sort_values(["model", "decile"])
    assert list(zip(got["model"], got["decile"])) == [(m, d) for m, d, _ in observed]
    assert got["observed"].round(9).tolist() == [round(v, 9) for *_, v in observed]
    # the lift is each decile's share over the base rate, the base rate its customers' share
    (base,) = query(
        pipeline_data,
        "SELECT value FROM mart_model_performance WHERE evaluation = 'backtest' AND model = 'churn_model' "
        "AND metric = 'base_rate' AND business_date = (SELECT max(business_date) FROM mart_model_performance)",
    )
    churn = got[got["model"] == "churn_model"]
    assert (churn["lift"] * base[0]).round(9).tolist() == churn["observed"].round(9).tolist()
    deciles = titled(at, "Predicted vs actual revenue by decile (latest backtest)")
    (total,) = query(
        pipeline_data,
        "SELECT value FROM mart_model_performance WHERE evaluation = 'backtest' AND model = 'bgnbd' "
        "AND metric = 'actual_total_usd' AND business_date = (SELECT max(business_date) FROM mart_model_performance)",
    )
    actual = deciles[deciles["series"] == "bgnbd actual"]
    sizes = query(
        pipeline_data,
        "SELECT decile, customers FROM mart_model_performance WHERE evaluation = 'backtest' AND model = 'bgnbd' "
        "AND metric = 'decile_actual_usd' AND business_date = (SELECT max(business_date) FROM mart_model_performance) "
        "ORDER BY decile",
    )
    # the decile means, weighted by their customers, add up to the backtest's actual total
    assert sum(actual.sort_values("decile")["usd"].to_numpy() * [n for _, n in sizes]) == pytest.approx(
        total[0]
    )


def test_coefficients_and_parameters_are_the_fitted_models(pipeline_data, run_app):
    at = run_app(pipeline_data)
    coef = titled(at, "Churn model coefficients")
    expected = query(
        pipeline_data,
        "SELECT parameter, estimate FROM mart_model_parameters WHERE model = 'churn_model' AND parameter <> 'intercept' "
        "ORDER BY abs(estimate) DESC, parameter",
    )
    assert len(expected) == 16
    assert list(coef["feature"]) == [p for p, _ in expected]
    assert coef["coefficient"].round(9).tolist() == [round(e, 9) for _, e in expected]
    (params,) = [d.value for d in at.dataframe if "lower_95" in d.value.columns]
    assert list(zip(params["model"], params["parameter"])) == [
        ("bgnbd", "r"), ("bgnbd", "alpha"), ("bgnbd", "a"), ("bgnbd", "b"),
        ("gamma_gamma", "p"), ("gamma_gamma", "q"), ("gamma_gamma", "v"),
    ]  # fmt: skip
    ok = params.dropna(subset=["lower_95"])
    assert len(ok) >= 5 and ((ok["lower_95"] < ok["estimate"]) & (ok["estimate"] < ok["upper_95"])).all()


def test_a_serving_file_without_the_model_health_marts_still_opens(serving_copy, run_app):
    execute(serving_copy, "DROP TABLE mart_model_performance", "DROP TABLE mart_model_parameters")
    at = run_app(serving_copy)
    assert "This serving file has no model-health marts yet: run `make run` with this version." in [
        i.value for i in at.info
    ]
    titles = [json.loads(c.proto.spec).get("title") for c in at.get("vega_lite_chart")]
    assert "Churn model ROC AUC" not in titles and "Churn model coefficients" not in titles
