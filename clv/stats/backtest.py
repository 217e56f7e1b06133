"""Predictions that answer for themselves: the rolling-origin backtest and the ledger's scores.

**The backtest** is the churn model's own time split, read as a forecast (no second mechanism):
with business date D and label window w (``churn_label_window_days``), the purchase model is
refitted on the purchases up to the cutoff t0 = D − w (`scoring.fit_clv`), the features are those
of t0 (`scoring.training_frame`, the rows int_churn_model trains on), and the window (t0, D] is
what happened next. The customers held out of the churn model's fit (`churn.holdout_mask`, one in
five by a hash of the id) are scored, so the churn model is judged on customers it never saw:

- ``no_purchase`` (a probability): P(no purchase in the window) by the churn model,
  π + (1 − π)·q(κ), and by BG/NBD alone, 1 − P(alive) + P(alive)·q
  (`churn.outcome_probabilities`: the quantities int_churn_model's holdout log-loss and AUC are
  computed on), against whether the customer bought;
- ``order_revenue`` (a value, customers with a purchase by t0): the window's net order revenue
  the purchase model expects if the customer is active (BG/NBD x Gamma-Gamma, net of the refund
  share), times 1 − π for the churn model (as the pipeline's predicted_order_value_12m_usd) or
  P(alive) for BG/NBD alone (as bgnbd_clv_12m_usd), against the net order revenue (orders and
  refunds) the customer brought in (t0, D].

Each run adds a new origin (D moves on by a day, t0 with it): a rolling origin. The coefficients
are int_churn_model's as they stand: refitted less often than daily, they are the ones in use,
still applied only to customers the hash kept out of every fit.

**The ledger's scores**: the predictions recorded on business date D − h (int_prediction_ledger)
against the h days that followed, h = 90 (P(a purchase), the 90-day order and subscription values)
and h = 365 (the 12-month values).

Everything arrives as data frames; `clv.stats.model_metrics` computes the numbers. One row per
(evaluation, model, target, horizon, metric, decile), decile 0 for the metrics of all customers.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from clv.stats import churn, purchase_models, scoring
from clv.stats import model_metrics as mm

PERFORMANCE_COLUMNS = {
    "business_date": "DATE",
    "evaluation": "TEXT",
    "model": "TEXT",
    "target": "TEXT",
    "origin_date": "DATE",
    "horizon_days": "INT",
    "metric": "TEXT",
    "decile": "INT",
    "value": "DOUBLE",
    "customers": "INT",
}
LEDGER_HORIZONS = (90, 365)
CHURN_MODEL = "churn_model"  # the churn probability the pipeline publishes
BGNBD = "bgnbd"  # the purchase model alone (BG/NBD, or Pareto/NBD under clv_purchase_model)
SUBSCRIPTIONS = "sbg"  # the renewal model


def _rows(
    metrics: list[mm.Metric],
    business: dt.date,
    evaluation: str,
    model: str,
    target: str,
    origin: dt.date,
    horizon: int,
) -> list[tuple]:
    return [
        (business, evaluation, model, target, origin, horizon, m.metric, m.decile or 0, m.value, m.customers)
        for m in metrics
    ]


def frame(rows: list[tuple]) -> pd.DataFrame:
    out = pd.DataFrame(rows, columns=list(PERFORMANCE_COLUMNS))
    return out.astype({"decile": "int64", "horizon_days": "int64", "customers": "int64", "value": "float64"})


def backtest(
    summary_cutoff: pd.DataFrame,
    signals_cutoff: pd.DataFrame,
    purchases_later: pd.DataFrame,
    revenue_after: pd.DataFrame,
    coefficients: pd.DataFrame,
    business: dt.date,
    window_days: int,
    time_unit: str,
    purchase_model: str = "bgnbd",
) -> pd.DataFrame:
    """The backtest of business date `business` (see the module's docstring). `revenue_after`:
    per customer, ``order_revenue_usd`` in (cutoff, business] (net of refunds; customers without
    any may be absent). `coefficients`: int_churn_model's rows."""
    cutoff = scoring.training_cutoff(business, window_days)
    fit = scoring.fit_clv(summary_cutoff, cutoff, time_unit, purchase_model)
    data, outcome = scoring.training_frame(fit, signals_cutoff, purchases_later, window_days)
    model = scoring.churn_model_from_frame(coefficients)
    X = churn.design(data)
    held = churn.holdout_mask(data["customer_id"])
    p_model, p_bgnbd = churn.outcome_probabilities(model, X[held], outcome.subset(held))
    y = outcome.no_purchase[held]
    rows = []
    for name, p in ((CHURN_MODEL, p_model), (BGNBD, p_bgnbd)):
        rows += _rows(
            mm.probability_metrics(p, y), business, "backtest", name, "no_purchase", cutoff, window_days
        )

    # value: customers held out who had bought by the cutoff
    s = summary_cutoff.set_index("customer_id")
    h = data.loc[held, ["customer_id", "frequency", "recency", "age"]].reset_index(drop=True)
    bought = s.loc[h["customer_id"], "has_purchased"].astype(bool).to_numpy()
    pi = model.probability(X[held])[bought]
    h = h[bought]
    monetary = pd.to_numeric(s.loc[h["customer_id"], "monetary_value"], errors="coerce").to_numpy()
    pm = purchase_models.of(fit.purchase)
    scores = pm.score(
        fit.purchase,
        fit.gg,
        h["frequency"].to_numpy(dtype=float),
        h["recency"].to_numpy(dtype=float),
        h["age"].to_numpy(dtype=float),
        monetary,
        time_unit=time_unit,
        horizon_days=float(window_days),
        value_factor=1 - fit.refund_share,
    )
    actual = (
        h[["customer_id"]]
        .merge(revenue_after[["customer_id", "order_revenue_usd"]], on="customer_id", how="left")[
            "order_revenue_usd"
        ]
        .astype(float)
        .fillna(0.0)
        .to_numpy()
    )
    for name, value in ((CHURN_MODEL, (1 - pi) * scores.remaining_clv), (BGNBD, scores.predicted_clv)):
        rows += _rows(
            mm.value_metrics(value, actual), business, "backtest", name, "order_revenue", cutoff, window_days
        )
    return frame(rows)


def score_ledger(
    ledger: pd.DataFrame, realised: pd.DataFrame, business: dt.date, horizon: int
) -> pd.DataFrame:
    """Score the ledger's rows of one business date (``business - horizon``) against what the
    customers did in the `horizon` days after it. `realised`: per customer, ``order_revenue_usd``
    (net of refunds), ``subscription_revenue_usd`` and ``purchased`` (an order in the window);
    customers without any revenue may be absent. Purchase probabilities and order values are
    scored on the customers who had bought by then (``has_purchased``): the purchase models say
    nothing about a first purchase. Empty when the ledger has no rows of that date."""
    origin = business - dt.timedelta(days=horizon)
    if ledger.empty:
        return frame([])
    got = ledger.merge(realised, on="customer_id", how="left")
    for c in ("order_revenue_usd", "subscription_revenue_usd"):
        got[c] = got[c].astype(float).fillna(0.0)
    got["purchased"] = got["purchased"].astype("boolean").fillna(False).astype(bool)
    buyers = got[got["has_purchased"].astype(bool)]
    rows = []
    ev = "ledger"
    if horizon == 90:
        no_purchase = (~buyers["purchased"]).astype(float).to_numpy()
        p_alive = buyers["p_alive"].astype(float).to_numpy()
        p90 = buyers["p_purchase_90d"].astype(float).to_numpy()
        c = buyers["churn_probability"].astype(float).to_numpy()
        # the churn model's P(a purchase in 90 days): active (1 - c) and buying given active
        buy_if_active = np.divide(p90, p_alive, out=np.zeros_like(p90), where=p_alive > 0)
        probabilities = ((CHURN_MODEL, 1 - (1 - c) * np.clip(buy_if_active, 0, 1)), (BGNBD, 1 - p90))
        for name, p in probabilities:
            rows += _rows(
                mm.probability_metrics(p, no_purchase), business, ev, name, "no_purchase", origin, horizon
            )
        values = (
            (CHURN_MODEL, "predicted_order_value_90d_usd"),
            (BGNBD, "bgnbd_order_value_90d_usd"),
        )
        subscription = "predicted_subscription_value_90d_usd"
    else:
        values = ((CHURN_MODEL, "predicted_order_value_12m_usd"),)
        subscription = "predicted_subscription_value_12m_usd"
    actual = buyers["order_revenue_usd"].to_numpy()
    for name, col in values:
        predicted = buyers[col].astype(float).to_numpy()
        rows += _rows(
            mm.value_metrics(predicted, actual), business, ev, name, "order_revenue", origin, horizon
        )
    rows += _rows(
        mm.value_metrics(
            got[subscription].astype(float).to_numpy(), got["subscription_revenue_usd"].to_numpy()
        ),
        business,
        ev,
        SUBSCRIPTIONS,
        "subscription_revenue",
        origin,
        horizon,
    )
    return frame(rows)


def days_in_interval(start, end) -> list[dt.date]:
    """The business dates of a SQLMesh interval [start, end] as a Python model receives it (end
    inclusive to the microsecond, or exclusive at midnight), time zones ignored."""
    s, e = (pd.Timestamp(v) for v in (start, end))
    s, e = (v.tz_localize(None) if v.tzinfo is not None else v for v in (s, e))
    last = (e - pd.Timedelta(days=1)).date() if e == e.normalize() and e > s else e.date()
    first = s.date()
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
