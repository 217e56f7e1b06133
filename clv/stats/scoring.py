"""The CLV and churn steps behind the SQLMesh Python models (`sqlmesh_project/models/intermediate/
int_clv_model_fit.py`, `int_clv_predictions.py`, `int_churn_model.py`, `int_churn_scoring.py`).

Per-customer summaries and behavioural signals are computed in SQL on the warehouse (DuckDB);
only one row per customer reaches Python, where `clv.stats.btyd` and `clv.stats.churn` do the statistics. The
same SQL serves the scoring date and the churn model's training cutoff, so training and scoring
features cannot drift apart.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from clv.stats import btyd, churn

Fetch = Callable[[str], pd.DataFrame]
CHURN_MODEL_NAME = "bgnbd-behaviour-mixture-logit-v2"


@dataclass(frozen=True)
class Tables:
    """Physical names of the tables the SQL reads (SQLMesh resolves them per environment)."""

    customers: str  # core.dim_customers
    revenue: str  # core.fct_revenue
    sessions: str = ""  # core.fct_activity_logs
    tickets: str = ""  # core.fct_support_logs
    subscriptions: str = ""  # staging.stg_subscriptions


SOURCE_TABLES = {
    "customers": "core.dim_customers",
    "revenue": "core.fct_revenue",
    "sessions": "core.fct_activity_logs",
    "tickets": "core.fct_support_logs",
    "subscriptions": "staging.stg_subscriptions",
}


def resolve_tables(context, behaviour: bool = False) -> Tables:
    """The physical tables for a Python model's SQL (the model declares them in ``depends_on``):
    customers and revenue, plus the behavioural signals' tables with ``behaviour``."""
    names = SOURCE_TABLES if behaviour else {k: SOURCE_TABLES[k] for k in ("customers", "revenue")}
    return Tables(**{field: context.resolve_table(model) for field, model in names.items()})


@dataclass(frozen=True)
class Lifecycle:
    """The lifecycle thresholds of config.yaml (days)."""

    active_within_days: int = 90
    dormant_within_days: int = 180
    onboarding_days: int = 60


def engine_fetch(context) -> Fetch:
    """Run this module's SQL (written in DuckDB's dialect) through SQLMesh's engine adapter as a
    parsed expression: the adapter renders it in the gateway's dialect, so the Python models stay
    as portable as the SQL ones."""
    from sqlglot import parse_one

    return lambda sql: context.fetchdf(parse_one(sql, dialect="duckdb"))


def _date(d: dt.date) -> str:
    return f"DATE '{d.isoformat()}'"


# --------------------------------------------------------------------------------------------
# SQL


def summary_sql(t: Tables, as_of: dt.date, time_unit: str) -> str:
    """Every customer signed up by `as_of` with the BTYD summary of their orders up to it
    (refunds and subscription charges are not purchases). Customers without an order get
    frequency 0 and T from their signup (has_purchased false)."""
    unit = btyd.TIME_UNITS[time_unit]
    orders = (
        f"(SELECT customer_id, revenue_date, revenue_usd FROM {t.revenue} "
        f"WHERE revenue_type = 'order' AND revenue_date <= {_date(as_of)})"
    )
    inner = btyd.summary_sql(orders, as_of, time_unit, "customer_id", "revenue_date", "revenue_usd")
    return f"""
WITH customers AS (
  SELECT customer_id, signup_date FROM {t.customers} WHERE valid_to IS NULL AND signup_date <= {_date(as_of)}
), summary AS ({inner})
SELECT
  c.customer_id,
  COALESCE(s.frequency, 0) AS frequency,
  COALESCE(s.recency, 0) AS recency,
  COALESCE(s.T, GREATEST(DATE_DIFF('day', c.signup_date, {_date(as_of)}), 0) / {unit}) AS T,
  s.monetary_value,
  s.first_purchase_date IS NOT NULL AS has_purchased
FROM customers AS c
LEFT JOIN summary AS s
  ON s.customer_id = c.customer_id
ORDER BY c.customer_id
"""


def refund_share_sql(t: Tables, as_of: dt.date) -> str:
    """Refunds as a share of order revenue up to `as_of`: purchases are predicted gross, revenue
    net of this share."""
    return f"""
SELECT COALESCE(-SUM(revenue_usd) FILTER (WHERE revenue_type = 'refund')
                / NULLIF(SUM(revenue_usd) FILTER (WHERE revenue_type = 'order'), 0), 0)
FROM {t.revenue}
WHERE revenue_date <= {_date(as_of)}
"""


def behaviour_sql(t: Tables, as_of: dt.date, life: Lifecycle) -> str:
    """Behavioural signals per customer as of a date, with the definitions of
    int_engagement_summary, int_support_summary, int_customer_base and int_lifecycle_stage
    (tests check that they agree on the business date)."""
    d = _date(as_of)
    return f"""
WITH customers AS (
  SELECT customer_id, signup_date FROM {t.customers} WHERE valid_to IS NULL AND signup_date <= {d}
), sessions AS (
  SELECT
    customer_id,
    COUNT(*) FILTER (WHERE session_date > {d} - INTERVAL 30 DAY) AS sessions_30d,
    COUNT(*) FILTER (WHERE session_date > {d} - INTERVAL 90 DAY) AS sessions_90d,
    COUNT(*) FILTER (WHERE session_date > {d} - INTERVAL 180 DAY AND session_date <= {d} - INTERVAL 90 DAY) AS sessions_prior_90d,
    MAX(session_date) AS last_session_date,
    COUNT(*) AS lifetime_sessions
  FROM {t.sessions}
  WHERE session_date <= {d}
  GROUP BY customer_id
), tickets AS (
  SELECT
    customer_id,
    COUNT(*) FILTER (WHERE opened_date > {d} - INTERVAL 90 DAY) AS tickets_90d,
    COUNT(*) FILTER (WHERE opened_date > {d} - INTERVAL 90 DAY AND issue_type = 'billing') AS billing_tickets_90d,
    COUNT(*) FILTER (WHERE opened_date > {d} - INTERVAL 90 DAY AND is_low_csat) AS low_csat_tickets_90d
  FROM {t.tickets}
  WHERE opened_date <= {d}
  GROUP BY customer_id
), subscriptions AS (
  SELECT
    customer_id,
    BOOL_OR(end_date IS NULL OR end_date > {d}) AS has_active_subscription,
    BOOL_OR(end_date > {d} - INTERVAL 90 DAY AND end_date <= {d}) AS ended_90d
  FROM {t.subscriptions}
  WHERE start_date <= {d}
  GROUP BY customer_id
), purchases AS (
  SELECT customer_id, MAX(revenue_date) AS last_purchase_date
  FROM {t.revenue}
  WHERE revenue_type = 'order' AND revenue_date <= {d}
  GROUP BY customer_id
), joined AS (
  SELECT
    c.customer_id,
    DATE_DIFF('day', c.signup_date, {d}) AS tenure_days,
    COALESCE(s.sessions_30d, 0) AS sessions_30d,
    COALESCE(s.sessions_90d, 0) AS sessions_90d,
    COALESCE(s.sessions_prior_90d, 0) AS sessions_prior_90d,
    DATE_DIFF('day', s.last_session_date, {d}) AS days_since_last_session,
    COALESCE(s.lifetime_sessions, 0) AS lifetime_sessions,
    COALESCE(k.tickets_90d, 0) AS tickets_90d,
    COALESCE(k.billing_tickets_90d, 0) AS billing_tickets_90d,
    COALESCE(k.low_csat_tickets_90d, 0) AS low_csat_tickets_90d,
    COALESCE(b.has_active_subscription, FALSE) AS has_active_subscription,
    COALESCE(b.ended_90d AND NOT b.has_active_subscription, FALSE) AS subscription_ended_90d,
    GREATEST(COALESCE(p.last_purchase_date, c.signup_date), COALESCE(s.last_session_date, c.signup_date)) AS last_activity_date
  FROM customers AS c
  LEFT JOIN sessions AS s ON s.customer_id = c.customer_id
  LEFT JOIN tickets AS k ON k.customer_id = c.customer_id
  LEFT JOIN subscriptions AS b ON b.customer_id = c.customer_id
  LEFT JOIN purchases AS p ON p.customer_id = c.customer_id
)
SELECT
  *,
  DATE_DIFF('day', last_activity_date, {d}) AS days_since_last_activity,
  CASE
    WHEN tenure_days < {int(life.onboarding_days)} THEN 'onboarding'
    WHEN DATE_DIFF('day', last_activity_date, {d}) <= {int(life.active_within_days)} THEN 'active'
    WHEN DATE_DIFF('day', last_activity_date, {d}) <= {int(life.dormant_within_days)} THEN 'dormant'
    ELSE 'churned'
  END AS lifecycle_stage
FROM joined
ORDER BY customer_id
"""


# --------------------------------------------------------------------------------------------
# CLV


@dataclass(frozen=True)
class ClvFit:
    as_of: dt.date
    time_unit: str
    bg: btyd.BGNBD
    gg: btyd.GammaGamma
    refund_share: float
    summary: pd.DataFrame


def fit_clv(fetch: Fetch, t: Tables, as_of: dt.date, time_unit: str) -> ClvFit:
    """BG/NBD and Gamma-Gamma on the purchases up to `as_of` (customers with at least one)."""
    summary = fetch(summary_sql(t, as_of, time_unit))
    buyers = summary[summary["has_purchased"].astype(bool)]
    try:
        bg = btyd.fit_bgnbd(buyers["frequency"], buyers["recency"], buyers["T"])
        gg = btyd.fit_gamma_gamma(buyers["frequency"], buyers["monetary_value"])
    except btyd.BtydError as e:
        raise btyd.BtydError(f"CLV models on the purchases up to {as_of}: {e}") from None
    share = float(fetch(refund_share_sql(t, as_of)).iloc[0, 0] or 0.0)
    return ClvFit(as_of, time_unit, bg, gg, min(max(share, 0.0), 1.0), summary)


FIT_COLUMNS = {
    "business_date": "DATE",
    "time_unit": "TEXT",
    "customers": "INT",
    "repeat_customers": "INT",
    "bgnbd_r": "DOUBLE",
    "bgnbd_alpha": "DOUBLE",
    "bgnbd_a": "DOUBLE",
    "bgnbd_b": "DOUBLE",
    "bgnbd_log_likelihood": "DOUBLE",
    "bgnbd_iterations": "INT",
    "bgnbd_gradient_norm": "DOUBLE",
    "gg_p": "DOUBLE",
    "gg_q": "DOUBLE",
    "gg_v": "DOUBLE",
    "gg_log_likelihood": "DOUBLE",
    "gg_iterations": "INT",
    "gg_gradient_norm": "DOUBLE",
    "mean_spend_usd": "DOUBLE",
    "refund_share": "DOUBLE",
}


def fit_frame(fit: ClvFit) -> pd.DataFrame:
    bg, gg = fit.bg, fit.gg
    row = {
        "business_date": fit.as_of,
        "time_unit": fit.time_unit,
        "customers": bg.customers,
        "repeat_customers": gg.customers,
        "bgnbd_r": bg.r,
        "bgnbd_alpha": bg.alpha,
        "bgnbd_a": bg.a,
        "bgnbd_b": bg.b,
        "bgnbd_log_likelihood": bg.log_likelihood,
        "bgnbd_iterations": bg.report.iterations,
        "bgnbd_gradient_norm": bg.report.gradient_norm,
        "gg_p": gg.p,
        "gg_q": gg.q,
        "gg_v": gg.v,
        "gg_log_likelihood": gg.log_likelihood,
        "gg_iterations": gg.report.iterations,
        "gg_gradient_norm": gg.report.gradient_norm,
        "mean_spend_usd": gg.mean_spend,
        "refund_share": fit.refund_share,
    }
    return pd.DataFrame([row], columns=list(FIT_COLUMNS))


def models_from_frame(fit_row: pd.DataFrame) -> tuple[btyd.BGNBD, btyd.GammaGamma, str, float]:
    if len(fit_row) != 1:
        raise btyd.BtydError(f"expected one row of fitted CLV parameters, found {len(fit_row)}")
    f = fit_row.iloc[0]
    bg = btyd.BGNBD(
        float(f.bgnbd_r), float(f.bgnbd_alpha), float(f.bgnbd_a), float(f.bgnbd_b), 0.0, int(f.customers)
    )
    gg = btyd.GammaGamma(float(f.gg_p), float(f.gg_q), float(f.gg_v), 0.0, int(f.repeat_customers))
    return bg, gg, str(f.time_unit), float(f.refund_share)


PREDICTION_COLUMNS = {
    "customer_id": "TEXT",
    "frequency": "INT",
    "recency": "DOUBLE",
    "age": "DOUBLE",
    "monetary_value_usd": "DOUBLE",
    "p_alive": "DOUBLE",
    "expected_purchases_90d": "DOUBLE",
    "expected_purchases_365d": "DOUBLE",
    "expected_spend_per_purchase_usd": "DOUBLE",
    "predicted_remaining_clv_usd": "DOUBLE",
    "bgnbd_clv_12m_usd": "DOUBLE",
}


def predictions_frame(
    summary: pd.DataFrame,
    bg: btyd.BGNBD,
    gg: btyd.GammaGamma,
    time_unit: str,
    refund_share: float,
    discount_rate: float = 0.0,
) -> pd.DataFrame:
    """Per-customer predictions over the next 365 days (values net of the refund share).
    Customers who never bought get no predicted purchases: the models describe customers from
    their first purchase on, and say nothing about when a first purchase comes."""
    s = btyd.score(
        bg,
        gg,
        summary["frequency"].to_numpy(dtype=float),
        summary["recency"].to_numpy(dtype=float),
        summary["T"].to_numpy(dtype=float),
        pd.to_numeric(summary["monetary_value"], errors="coerce").to_numpy(dtype=float),
        time_unit=time_unit,
        horizon_days=365.0,
        discount_rate=discount_rate,
        value_factor=1 - refund_share,
    )
    bought = summary["has_purchased"].astype(bool).to_numpy()
    return pd.DataFrame(
        {
            "customer_id": summary["customer_id"].to_numpy(),
            "frequency": summary["frequency"].astype(int).to_numpy(),
            "recency": summary["recency"].astype(float).to_numpy(),
            "age": summary["T"].astype(float).to_numpy(),
            "monetary_value_usd": pd.to_numeric(summary["monetary_value"], errors="coerce").to_numpy(),
            "p_alive": s.p_alive,
            "expected_purchases_90d": np.where(bought, s.expected_purchases_90d, 0.0),
            "expected_purchases_365d": np.where(bought, s.expected_purchases_365d, 0.0),
            "expected_spend_per_purchase_usd": s.expected_spend,
            "predicted_remaining_clv_usd": np.where(bought, s.remaining_clv, 0.0),
            "bgnbd_clv_12m_usd": np.where(bought, s.predicted_clv, 0.0),
        },
        columns=list(PREDICTION_COLUMNS),
    )


# --------------------------------------------------------------------------------------------
# churn


@dataclass(frozen=True)
class ChurnTraining:
    model: churn.ChurnModel
    holdout: churn.Evaluation
    train: churn.Evaluation
    cutoff: dt.date
    window_days: int


def training_data(
    fetch: Fetch, t: Tables, business: dt.date, window_days: int, time_unit: str, life: Lifecycle
) -> tuple[pd.DataFrame, churn.Outcome]:
    """Features as of the cutoff (business date − window) and the outcome after it."""
    cutoff = business - dt.timedelta(days=window_days)
    fit = fit_clv(fetch, t, cutoff, time_unit)
    s = fit.summary
    frame = s[["customer_id", "frequency", "recency", "T"]].copy()
    frame["p_alive"] = btyd.p_alive(fit.bg, s["frequency"], s["recency"], s["T"])
    behaviour = fetch(behaviour_sql(t, cutoff, life))
    frame = frame.merge(behaviour, on="customer_id", how="inner", validate="one_to_one")
    bought = fetch(
        f"SELECT DISTINCT customer_id FROM {t.revenue} WHERE revenue_type = 'order' "
        f"AND revenue_date > {_date(cutoff)} AND revenue_date <= {_date(business)}"
    )
    frame["no_purchase"] = (~frame["customer_id"].isin(bought["customer_id"])).astype(float)
    outcome = churn.Outcome(
        frame["no_purchase"].to_numpy(),
        frame["frequency"].to_numpy(dtype=float),
        frame["T"].to_numpy(dtype=float),
        fit.bg.r,
        fit.bg.alpha,
        window_days / btyd.TIME_UNITS[time_unit],
    )
    return frame, outcome


def train_churn(
    fetch: Fetch, t: Tables, business: dt.date, window_days: int, time_unit: str, life: Lifecycle
) -> ChurnTraining:
    """Fit the churn model on the history with a time split; one customer in five held out."""
    if window_days < 1:
        raise churn.ChurnModelError(f"the churn label window must be at least one day, got {window_days}")
    frame, outcome = training_data(fetch, t, business, window_days, time_unit, life)
    X = churn.design(frame)
    held = churn.holdout_mask(frame["customer_id"])
    model = churn.fit(X[~held], outcome.subset(~held))
    return ChurnTraining(
        model,
        churn.evaluate(model, X[held], outcome.subset(held)),
        churn.evaluate(model, X[~held], outcome.subset(~held)),
        business - dt.timedelta(days=window_days),
        window_days,
    )


CHURN_MODEL_COLUMNS = {
    "feature": "TEXT",
    "coefficient": "DOUBLE",
    "rate_coefficient": "DOUBLE",
    "feature_mean": "DOUBLE",
    "feature_scale": "DOUBLE",
    "description": "TEXT",
    "churn_model": "TEXT",
    "trained_as_of": "DATE",
    "label_window_days": "INT",
    "train_customers": "INT",
    "holdout_customers": "INT",
    "holdout_no_purchase_share": "DOUBLE",
    "holdout_log_loss": "DOUBLE",
    "holdout_log_loss_bgnbd": "DOUBLE",
    "holdout_auc": "DOUBLE",
    "holdout_auc_bgnbd": "DOUBLE",
    "iterations": "INT",
}


def churn_model_frame(tr: ChurnTraining) -> pd.DataFrame:
    m, h = tr.model, tr.holdout
    rows = [
        (
            "intercept",
            m.intercept,
            m.rate_intercept,
            0.0,
            1.0,
            "churn log-odds and log rate factor at the training means",
        )
    ]
    rows += [
        (name, float(c), float(rc), float(mu), float(sd), desc)
        for (name, desc), c, rc, mu, sd in zip(churn.FEATURES.items(), m.coef, m.rate_coef, m.mean, m.scale)
    ]
    df = pd.DataFrame(
        rows,
        columns=[
            "feature",
            "coefficient",
            "rate_coefficient",
            "feature_mean",
            "feature_scale",
            "description",
        ],
    )
    df["churn_model"] = CHURN_MODEL_NAME
    df["trained_as_of"] = tr.cutoff
    df["label_window_days"] = tr.window_days
    df["train_customers"] = m.train_customers
    df["holdout_customers"] = h.customers
    df["holdout_no_purchase_share"] = h.no_purchase_share
    df["holdout_log_loss"] = h.log_loss
    df["holdout_log_loss_bgnbd"] = h.log_loss_bgnbd
    df["holdout_auc"] = h.auc
    df["holdout_auc_bgnbd"] = h.auc_bgnbd
    df["iterations"] = m.iterations
    return df[list(CHURN_MODEL_COLUMNS)]


def churn_model_from_frame(coefs: pd.DataFrame) -> churn.ChurnModel:
    by = coefs.set_index("feature")
    missing = [f for f in ("intercept", *churn.FEATURES) if f not in by.index]
    if missing:
        raise churn.ChurnModelError(f"the churn model has no coefficient for {', '.join(missing)}")
    feats = list(churn.FEATURES)
    return churn.ChurnModel(
        float(by.loc["intercept", "coefficient"]),
        by.loc[feats, "coefficient"].to_numpy(dtype=float),
        float(by.loc["intercept", "rate_coefficient"]),
        by.loc[feats, "rate_coefficient"].to_numpy(dtype=float),
        by.loc[feats, "feature_mean"].to_numpy(dtype=float),
        by.loc[feats, "feature_scale"].to_numpy(dtype=float),
        0,  # iterations and training size are reporting columns; scoring does not need them
        0,
    )


SCORING_COLUMNS = {
    "customer_id": "TEXT",
    "churn_score": "DOUBLE",
    "churn_probability": "DOUBLE",
    "bgnbd_churn_probability": "DOUBLE",
    "churn_model": "TEXT",
}


def churn_scores(predictions: pd.DataFrame, behaviour: pd.DataFrame, model: churn.ChurnModel) -> pd.DataFrame:
    """Score every customer on the business date: p_alive and frequency from int_clv_predictions,
    the behavioural signals from `behaviour_sql` on the same date."""
    frame = predictions[["customer_id", "p_alive", "frequency"]].merge(
        behaviour, on="customer_id", how="inner", validate="one_to_one"
    )
    X = churn.design(frame)
    logit = model.logit(X)
    return pd.DataFrame(
        {
            "customer_id": frame["customer_id"].to_numpy(),
            "churn_score": logit,
            "churn_probability": special.expit(logit),
            "bgnbd_churn_probability": 1 - frame["p_alive"].to_numpy(dtype=float),
            "churn_model": CHURN_MODEL_NAME,
        },
        columns=list(SCORING_COLUMNS),
    )
