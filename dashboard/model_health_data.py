"""What the dashboard's model-health section shows, as DataFrames read from the serving file:
``mart_model_performance`` (the backtest and the scored ledger, with thresholds and verdicts) and
``mart_model_parameters`` (churn coefficients, fitted parameters with their intervals).

Same style as ``dashboard/data.py``: each function takes an open ``data.Serving`` and runs one
query. Both marts are optional: a serving file published before they existed still opens, and
``available`` says whether the section has anything to show.
"""

from __future__ import annotations

import pandas as pd

from dashboard.data import Serving

PERFORMANCE = "mart_model_performance"
PARAMETERS = "mart_model_parameters"
# The trends drawn, one chart each: gate -> (metric, chart title, y axis title)
TRENDS = {
    "auc": ("roc_auc", "Churn model ROC AUC", "ROC AUC of P(no purchase)"),
    "calibration": (
        "calibration_gap",
        "Churn model calibration gap",
        "Mean |predicted - observed| over deciles",
    ),
    "value_error": ("aggregate_error", "Value error", "Predicted / actual revenue - 1"),
}


def available(s: Serving) -> dict[str, bool]:
    return {"performance": s.has(PERFORMANCE), "parameters": s.has(PARAMETERS)}


def latest_date(s: Serving):
    """The latest business date with a backtest, or None."""
    (day,) = s.con.execute(
        f"SELECT max(business_date) FROM {PERFORMANCE} WHERE evaluation = 'backtest'"
    ).fetchone()
    return day


def verdicts(s: Serving) -> pd.DataFrame:
    """The gated metrics of the latest business date, failures first."""
    return s.df(
        "SELECT health_status, evaluation, model, target, horizon_days, metric, value, customers, "
        "warn_threshold, fail_threshold, history_mean, health_explanation "
        f"FROM {PERFORMANCE} WHERE gate IS NOT NULL AND business_date = "
        f"(SELECT max(business_date) FROM {PERFORMANCE}) "
        "ORDER BY list_position(['fail', 'warn', 'ok', 'too_few'], health_status), evaluation, model, target, metric"
    )


def trend(s: Serving, gate: str) -> pd.DataFrame:
    """One gate's metric over business dates, a series per evaluation, model and target, and its
    thresholds as series of their own (both signs for the value error's band), long format:
    business_date, series, kind (metric or threshold), value."""
    metric = s.df(
        "SELECT business_date, evaluation || ' ' || model || ' ' || target || ' ' || horizon_days || 'd' AS series, "
        "'metric' AS kind, value, health_status "
        f"FROM {PERFORMANCE} WHERE gate = ? AND value IS NOT NULL ORDER BY series, business_date",
        [gate],
    )
    signs = (1, -1) if gate == "value_error" else (1,)
    limits = s.df(
        "SELECT business_date, avg(warn_threshold) AS warn, avg(fail_threshold) AS fail "
        f"FROM {PERFORMANCE} WHERE gate = ? GROUP BY business_date ORDER BY business_date",
        [gate],
    )
    parts = [metric]
    for level in ("warn", "fail"):
        for sign in signs:
            parts.append(
                pd.DataFrame(
                    {
                        "business_date": limits["business_date"],
                        "series": f"{level} threshold" + (" (below)" if sign < 0 else ""),
                        "kind": "threshold",
                        "value": sign * limits[level],
                        "health_status": None,
                    }
                )
            )
    return pd.concat(parts, ignore_index=True)


def calibration(s: Serving) -> pd.DataFrame:
    """The latest backtest's decile calibration of P(no purchase), per model: mean predicted and
    observed share, and each decile's lift (observed over the base rate)."""
    return s.df(
        "WITH d AS (SELECT model, decile, customers, "
        "max(value) FILTER (metric = 'decile_predicted') AS predicted, "
        "max(value) FILTER (metric = 'decile_observed') AS observed "
        f"FROM {PERFORMANCE} WHERE evaluation = 'backtest' AND target = 'no_purchase' AND decile > 0 "
        f"AND business_date = (SELECT max(business_date) FROM {PERFORMANCE} WHERE evaluation = 'backtest') "
        "GROUP BY model, decile, customers), "
        "b AS (SELECT model, sum(observed * customers) / sum(customers) AS base_rate FROM d GROUP BY model) "
        "SELECT d.model, d.decile, d.customers, d.predicted, d.observed, d.observed / b.base_rate AS lift "
        "FROM d JOIN b USING (model) ORDER BY d.model, d.decile"
    )


def value_deciles(s: Serving) -> pd.DataFrame:
    """The latest backtest's value deciles, per model: mean predicted and actual revenue."""
    return s.df(
        "SELECT model, decile, customers, "
        "max(value) FILTER (metric = 'decile_predicted_usd') AS predicted_usd, "
        "max(value) FILTER (metric = 'decile_actual_usd') AS actual_usd "
        f"FROM {PERFORMANCE} WHERE evaluation = 'backtest' AND target = 'order_revenue' AND decile > 0 "
        f"AND business_date = (SELECT max(business_date) FROM {PERFORMANCE} WHERE evaluation = 'backtest') "
        "GROUP BY model, decile, customers ORDER BY model, decile"
    )


def coefficients(s: Serving) -> pd.DataFrame:
    """The churn model's coefficients, largest effect first (the intercept left out)."""
    return s.df(
        "SELECT parameter AS feature, estimate AS coefficient, description, fitted_as_of "
        f"FROM {PARAMETERS} WHERE model = 'churn_model' AND parameter <> 'intercept' "
        "ORDER BY abs(estimate) DESC, parameter"
    )


def parameters(s: Serving) -> pd.DataFrame:
    """The purchase and spend models' parameters with their standard errors and 95% intervals."""
    return s.df(
        "SELECT model, parameter, estimate, standard_error, lower_95, upper_95, description, fitted_as_of "
        f"FROM {PARAMETERS} WHERE model <> 'churn_model' ORDER BY model, list_position(['r', 'alpha', 'a', 'b', "
        "'p', 'q', 'v'], parameter)"
    )
