"""The CLV and churn steps behind the SQLMesh Python models (`sqlmesh_project/models/intermediate/
int_clv_model_fit.py`, `int_clv_predictions.py`, `int_churn_model.py`, `int_churn_scoring.py`).

The features arrive as data frames, one row per customer: the BTYD purchase summary
(int_purchase_summary) and the behavioural signals (int_churn_features), computed in SQL by the
macros of `sqlmesh_project/macros/features.py` on the business date and on the training cutoff,
the same definitions the intermediate SQL models use. Here `clv.stats.btyd` and `clv.stats.churn`
only do the statistics, so training and scoring features cannot drift apart.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from clv.stats import btyd, churn, pareto_nbd, purchase_models, uncertainty

CHURN_MODEL_NAME = "bgnbd-behaviour-mixture-logit-v2"


def training_cutoff(business_date: dt.date, window_days: int) -> dt.date:
    """The churn model's training cutoff: its features are as of this date, its outcome is a
    purchase in the `window_days` after it, up to the business date. The feature models compute
    their second as-of date with it (``@churn_training_cutoff``), the Python models read it."""
    if window_days < 1:
        raise churn.ChurnModelError(f"the churn label window must be at least one day, got {window_days}")
    return business_date - dt.timedelta(days=window_days)


# --------------------------------------------------------------------------------------------
# CLV


PURCHASE_MODELS = ("bgnbd", "pareto_nbd")  # the SQLMesh variable clv_purchase_model


@dataclass(frozen=True)
class ClvFit:
    as_of: dt.date
    time_unit: str
    bg: btyd.BGNBD
    gg: btyd.GammaGamma
    refund_share: float
    summary: pd.DataFrame
    # the purchase model the predictions use: `bg` itself (bgnbd) or a Pareto/NBD fit (pareto_nbd)
    purchase: btyd.BGNBD | pareto_nbd.ParetoNBD | None = None

    @property
    def purchase_model(self) -> str:
        return purchase_models.of(self.purchase if self.purchase is not None else self.bg).key


def purchase_model_key(value) -> str:
    """The clv_purchase_model variable, checked: bgnbd or pareto_nbd."""
    key = str(value).strip().lower().replace("-", "_")
    if key not in PURCHASE_MODELS:
        raise btyd.BtydError(
            f"clv_purchase_model {value!r} is not a purchase model: use one of {', '.join(PURCHASE_MODELS)}"
        )
    return key


SUMMARY_COLUMNS = (
    "customer_id",
    "frequency",
    "recency",
    "age",
    "monetary_value",
    "has_purchased",
    "refund_share",
)


def _require(frame: pd.DataFrame, columns, what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise btyd.BtydError(f"{what} has no column {', '.join(missing)}")


def fit_clv(summary: pd.DataFrame, as_of: dt.date, time_unit: str, purchase_model: str = "bgnbd") -> ClvFit:
    """BG/NBD and Gamma-Gamma on the purchase summary as of `as_of` (int_purchase_summary's rows
    of that date: every customer signed up by then; the fits take those with a purchase) and the
    refund share of that date (a column, the same on every row). With `purchase_model`
    pareto_nbd, Pareto/NBD too: the predictions use it, and BG/NBD stays fitted because the
    dropout-per-purchase columns (bgnbd_a, bgnbd_b: int_revenue_risk) and the totals' intervals
    (mart_value_intervals) are BG/NBD's."""
    key = purchase_model_key(purchase_model)
    _require(summary, SUMMARY_COLUMNS, f"the purchase summary as of {as_of}")
    buyers = summary[summary["has_purchased"].astype(bool)]
    try:
        bg = btyd.fit_bgnbd(buyers["frequency"], buyers["recency"], buyers["age"])
        gg = btyd.fit_gamma_gamma(buyers["frequency"], buyers["monetary_value"])
        purchase = bg
        if key == "pareto_nbd":
            purchase = pareto_nbd.fit(buyers["frequency"], buyers["recency"], buyers["age"])
    except btyd.BtydError as e:
        raise btyd.BtydError(f"CLV models on the purchases up to {as_of}: {e}") from None
    share = float(summary["refund_share"].iloc[0] or 0.0)
    return ClvFit(as_of, time_unit, bg, gg, min(max(share, 0.0), 1.0), summary, purchase)


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
# each parameter's standard error and 95% interval (clv.stats.uncertainty), and the covariance of
# the log-parameters the predictions draw from (JSON, a list of rows in the parameters' order)
PARAMETER_COLUMNS = [f"bgnbd_{n}" for n in btyd.BGNBD.names] + [f"gg_{n}" for n in btyd.GammaGamma.names]
for _c in PARAMETER_COLUMNS:
    FIT_COLUMNS |= {f"{_c}_se": "DOUBLE", f"{_c}_lower_95": "DOUBLE", f"{_c}_upper_95": "DOUBLE"}
FIT_COLUMNS |= {"bgnbd_log_covariance": "TEXT", "gg_log_covariance": "TEXT"}
# which purchase model the predictions use, and the Pareto/NBD fit (null under bgnbd)
FIT_COLUMNS |= {"purchase_model": "TEXT"}
PNBD_COLUMNS = [f"pnbd_{n}" for n in pareto_nbd.ParetoNBD.names]
FIT_COLUMNS |= {c: "DOUBLE" for c in PNBD_COLUMNS}
FIT_COLUMNS |= {"pnbd_log_likelihood": "DOUBLE", "pnbd_iterations": "INT", "pnbd_gradient_norm": "DOUBLE"}
for _c in PNBD_COLUMNS:
    FIT_COLUMNS |= {f"{_c}_se": "DOUBLE", f"{_c}_lower_95": "DOUBLE", f"{_c}_upper_95": "DOUBLE"}
FIT_COLUMNS |= {"pnbd_log_covariance": "TEXT"}


def _covariance_json(cov) -> str | None:
    return None if cov is None else json.dumps(np.asarray(cov).tolist())


def _covariance(text) -> np.ndarray | None:
    if text is None or (isinstance(text, float) and np.isnan(text)) or text == "":
        return None
    return np.array(json.loads(text), dtype=float)


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
        "bgnbd_log_covariance": _covariance_json(bg.log_covariance),
        "gg_log_covariance": _covariance_json(gg.log_covariance),
    }
    row["purchase_model"] = fit.purchase_model
    fitted = [("bgnbd", bg), ("gg", gg)]
    if isinstance(fit.purchase, pareto_nbd.ParetoNBD):
        pn = fit.purchase
        row |= {f"pnbd_{n}": v for n, v in pn.params().items()}
        row |= {"pnbd_log_likelihood": pn.log_likelihood, "pnbd_iterations": pn.report.iterations,
                "pnbd_gradient_norm": pn.report.gradient_norm,
                "pnbd_log_covariance": _covariance_json(pn.log_covariance)}  # fmt: skip
        fitted.append(("pnbd", pn))
    for prefix, m in fitted:
        for pi in uncertainty.parameter_intervals(m):
            row[f"{prefix}_{pi.name}_se"] = pi.standard_error
            row[f"{prefix}_{pi.name}_lower_95"] = pi.lower_95
            row[f"{prefix}_{pi.name}_upper_95"] = pi.upper_95
    return pd.DataFrame([row], columns=list(FIT_COLUMNS))


def models_from_frame(fit_row: pd.DataFrame) -> tuple[btyd.BGNBD, btyd.GammaGamma, str, float]:
    if len(fit_row) != 1:
        raise btyd.BtydError(f"expected one row of fitted CLV parameters, found {len(fit_row)}")
    f = fit_row.iloc[0]
    bg = btyd.BGNBD(
        float(f.bgnbd_r), float(f.bgnbd_alpha), float(f.bgnbd_a), float(f.bgnbd_b), 0.0, int(f.customers),
        log_covariance=_covariance(f.get("bgnbd_log_covariance")),
    )  # fmt: skip
    gg = btyd.GammaGamma(
        float(f.gg_p), float(f.gg_q), float(f.gg_v), 0.0, int(f.repeat_customers),
        log_covariance=_covariance(f.get("gg_log_covariance")),
    )  # fmt: skip
    return bg, gg, str(f.time_unit), float(f.refund_share)


def purchase_model_from_frame(fit_row: pd.DataFrame) -> btyd.BGNBD | pareto_nbd.ParetoNBD:
    """The purchase model int_clv_model_fit says the predictions use (BG/NBD when the row
    predates the purchase_model column)."""
    bg, _, _, _ = models_from_frame(fit_row)
    f = fit_row.iloc[0]
    key = f.get("purchase_model")
    if key is None or (isinstance(key, float) and np.isnan(key)) or key == "bgnbd":
        return bg
    purchase_model_key(key)
    return pareto_nbd.ParetoNBD(
        float(f.pnbd_r), float(f.pnbd_alpha), float(f.pnbd_s), float(f.pnbd_beta), 0.0, int(f.customers),
        log_covariance=_covariance(f.get("pnbd_log_covariance")),
    )  # fmt: skip


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
    "p_purchase_90d": "DOUBLE",
    "p_purchase_365d": "DOUBLE",
    "clv_12m_p10_usd": "DOUBLE",
    "clv_12m_p50_usd": "DOUBLE",
    "clv_12m_p90_usd": "DOUBLE",
}


def predictions_frame(
    summary: pd.DataFrame,
    bg: btyd.BGNBD | pareto_nbd.ParetoNBD,
    gg: btyd.GammaGamma,
    time_unit: str,
    refund_share: float,
    discount_rate: float = 0.0,
) -> pd.DataFrame:
    """Per-customer predictions over the next 365 days (values net of the refund share) by the
    purchase model given (`bg`: BG/NBD or Pareto/NBD, `purchase_model_from_frame`). Customers who
    never bought get no predicted purchases: the models describe customers from their first
    purchase on, and say nothing about when a first purchase comes."""
    pm = purchase_models.of(bg)
    s = pm.score(
        bg,
        gg,
        summary["frequency"].to_numpy(dtype=float),
        summary["recency"].to_numpy(dtype=float),
        summary["age"].to_numpy(dtype=float),
        pd.to_numeric(summary["monetary_value"], errors="coerce").to_numpy(dtype=float),
        time_unit=time_unit,
        horizon_days=365.0,
        discount_rate=discount_rate,
        value_factor=1 - refund_share,
    )
    bought = summary["has_purchased"].astype(bool).to_numpy()
    unit = btyd.TIME_UNITS[time_unit]
    x, tx, T = (summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "age"))
    m = pd.to_numeric(summary["monetary_value"], errors="coerce").to_numpy(dtype=float)
    buy90 = pm.p_purchase(bg, 90 / unit, x, tx, T)
    buy365 = pm.p_purchase(bg, 365 / unit, x, tx, T)
    bands = np.zeros((len(summary), len(uncertainty.LEVELS)))
    if bought.any():
        vd = pm.value_distribution(bg, gg, 365 / unit, x[bought], T[bought], m[bought])
        bands[bought] = uncertainty.customer_quantiles(
            vd, x[bought], T[bought], m[bought], s.p_alive[bought], s.remaining_clv[bought]
        )
    return pd.DataFrame(
        {
            "customer_id": summary["customer_id"].to_numpy(),
            "frequency": summary["frequency"].astype(int).to_numpy(),
            "recency": summary["recency"].astype(float).to_numpy(),
            "age": summary["age"].astype(float).to_numpy(),
            "monetary_value_usd": pd.to_numeric(summary["monetary_value"], errors="coerce").to_numpy(),
            "p_alive": s.p_alive,
            "expected_purchases_90d": np.where(bought, s.expected_purchases_90d, 0.0),
            "expected_purchases_365d": np.where(bought, s.expected_purchases_365d, 0.0),
            "expected_spend_per_purchase_usd": s.expected_spend,
            "predicted_remaining_clv_usd": np.where(bought, s.remaining_clv, 0.0),
            "bgnbd_clv_12m_usd": np.where(bought, s.predicted_clv, 0.0),
            "p_purchase_90d": np.where(bought, buy90, 0.0),
            "p_purchase_365d": np.where(bought, buy365, 0.0),
            "clv_12m_p10_usd": bands[:, 0],
            "clv_12m_p50_usd": bands[:, 1],
            "clv_12m_p90_usd": bands[:, 2],
        },
        columns=list(PREDICTION_COLUMNS),
    )


def value_quantiles_with_subscriptions(
    fit_row: pd.DataFrame,
    predictions: pd.DataFrame,
    customer_ids: np.ndarray,
    subscription_draws: np.ndarray,
    seed: int = 0,
) -> np.ndarray:
    """P10, P50 and P90 (columns) of what each of `customer_ids` may bring over the next 12
    months, orders and running subscriptions together: the order part's distribution as
    `predictions_frame` gives its quantiles (the purchase model's P(alive), purchases, spend per
    purchase, parameter uncertainty; net of refunds and discounted), read at the same stratified
    levels as `subscription_draws` (`renewal.value_samples`, one row per customer), the two paired
    at random (independent given the customer's history: a permutation per customer, fixed by
    `seed`) and added. A customer with no order history brings their subscriptions alone. The
    columns clv_12m_p10/p50/p90_usd of `predictions` (the order part's own quantiles) are lower
    bounds of the result."""
    ids = np.asarray(customer_ids).astype(str)
    n, samples = subscription_draws.shape
    p = predictions.assign(customer_id=predictions["customer_id"].astype(str)).set_index("customer_id")
    p = p.reindex(ids)
    value = p["predicted_remaining_clv_usd"].fillna(0.0).to_numpy(dtype=float)
    has = value > 0
    x, T, alive = (p[c].fillna(0.0).to_numpy(dtype=float) for c in ("frequency", "age", "p_alive"))
    m = pd.to_numeric(p["monetary_value_usd"], errors="coerce").to_numpy(dtype=float)
    vd = None
    if has.any():
        bg = purchase_model_from_frame(fit_row)
        _, gg, time_unit, _ = models_from_frame(fit_row)
        pm = purchase_models.of(bg)
        vd = pm.value_distribution(bg, gg, 365 / btyd.TIME_UNITS[time_unit], x[has], T[has], m[has])
    levels = (np.arange(samples) + 0.5) / samples
    rng = np.random.default_rng(seed)
    out = np.zeros((n, len(uncertainty.LEVELS)))
    for lo in range(0, n, 20_000):  # (customer, sample) arrays of 20,000 rows at a time
        rows = slice(lo, min(lo + 20_000, n))
        total = rng.permuted(np.asarray(subscription_draws[rows], dtype=float), axis=1)
        h = has[rows]
        if vd is not None and h.any():
            r = np.arange(lo, rows.stop)[h]
            total[h] += uncertainty.customer_quantiles(
                vd, x[r], T[r], m[r], alive[r], value[r], levels=levels
            )
        out[rows] = np.quantile(total, uncertainty.LEVELS, axis=1).T
    # both parts are never negative, so the whole is at least either part at every level: the sums
    # are at least their subscription draws one by one, so their quantiles are at least the draws'
    # own; the order part's tabulated quantiles, which the 200 levels' reading could miss by a
    # level's width, are held here
    order_bands = (
        p[["clv_12m_p10_usd", "clv_12m_p50_usd", "clv_12m_p90_usd"]].fillna(0.0).to_numpy(dtype=float)
    )
    return np.maximum(out, np.where(has[:, None], order_bands, 0.0))


def merge_customers(left: pd.DataFrame, right: pd.DataFrame) -> pd.DataFrame:
    """The inner join of two frames of one row per customer, on customer_id, each side checked for
    one row per customer first (a hash check: pandas' own validate="one_to_one" took 6 s per
    merge of 1,000,000 customer ids with pandas 2.3, against 1.2 s for the merge)."""
    for side, frame in (("left", left), ("right", right)):
        ids = pd.Index(frame["customer_id"])
        if not ids.is_unique:
            raise ValueError(
                f"more than one row for customer {ids[ids.duplicated()][0]!r} on the {side} side of a "
                "join that expects one per customer"
            )
    return left.merge(right, on="customer_id", how="inner")


# --------------------------------------------------------------------------------------------
# intervals of totals (marts.mart_value_intervals)

VALUE_INTERVAL_COLUMNS = {
    "group_kind": "TEXT",
    "group_value": "TEXT",
    "measure": "TEXT",
    "customers": "INT",
    "expected_usd": "DOUBLE",
    "p10_usd": "DOUBLE",
    "p50_usd": "DOUBLE",
    "p90_usd": "DOUBLE",
}
INTERVAL_GROUPS = ("value_tier", "lifecycle_stage", "contract_segment")
MEASURES = {  # measure: the pipeline's expectation, per customer (int_revenue_risk)
    "clv_12m": "predicted_clv_12m_usd",  # orders + subscriptions
    "value_12m": "predicted_order_value_12m_usd",  # the order part
    "revenue_at_risk": "order_revenue_at_risk_usd",  # revenue_at_risk_usd - subscription_revenue_at_risk_usd
}


def value_interval_frame(
    fit_row: pd.DataFrame,
    predictions: pd.DataFrame,
    risk: pd.DataFrame,
    segments: pd.DataFrame,
    subscriptions: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """80% intervals of the next 12 months' total value (`clv_12m`: orders and subscriptions;
    `value_12m`: the order part) and of the total revenue at risk (its order part), for all
    customers, per value tier and per segment (`INTERVAL_GROUPS` columns of `segments`).

    The subscription part of `clv_12m` adds, per group, the expected subscription value
    (int_revenue_risk's predicted_subscription_value_12m_usd) and the variance of the running
    subscriptions' charges (`subscriptions`: customer_id, subscription_value_12m_sd_usd from
    int_subscription_value; customers independent), the same in every parameter draw.

    The value counts with the pipeline's probabilities (int_revenue_risk): the churn model's
    1 − churn_probability that the customer is still active, for the 12-month value, and the
    90-day leave probability of a reachable customer, for revenue at risk; what the customer then
    spends is BG/NBD x Gamma-Gamma's distribution given active, with the parameters' uncertainty
    (`uncertainty.total_quantiles`)."""
    bg, gg, time_unit, _ = models_from_frame(fit_row)
    frame = merge_customers(
        merge_customers(
            predictions[["customer_id", "frequency", "age", "monetary_value_usd", "predicted_remaining_clv_usd"]],
            risk[["customer_id", "churn_probability", "leave_probability_90d", "is_reachable",
                  "predicted_clv_12m_usd", "predicted_order_value_12m_usd",
                  "predicted_subscription_value_12m_usd", "revenue_at_risk_usd",
                  "subscription_revenue_at_risk_usd"]],
        ),
        segments[["customer_id", *INTERVAL_GROUPS]],
    )  # fmt: skip
    # value_12m and revenue_at_risk describe order value (the purchase model x Gamma-Gamma): the
    # expectations they sit beside are the order parts; clv_12m adds the subscriptions
    frame["order_revenue_at_risk_usd"] = frame["revenue_at_risk_usd"].astype(float) - frame[
        "subscription_revenue_at_risk_usd"
    ].astype(float)
    value = frame["predicted_remaining_clv_usd"].to_numpy(dtype=float)
    has = value > 0
    x, T = frame["frequency"].to_numpy(dtype=float), frame["age"].to_numpy(dtype=float)
    m = pd.to_numeric(frame["monetary_value_usd"], errors="coerce").to_numpy(dtype=float)
    active = 1 - frame["churn_probability"].to_numpy(dtype=float)
    leaving = np.where(
        frame["is_reachable"].astype(bool), frame["leave_probability_90d"].to_numpy(dtype=float), 0.0
    )
    kinds = [("all", np.zeros(len(frame), dtype=np.int64), ["all customers"])]
    for col in INTERVAL_GROUPS:
        labels = frame[col].fillna("unknown").astype(str)
        names = sorted(labels.unique())
        kinds.append((col, labels.map({n: i for i, n in enumerate(names)}).to_numpy(dtype=np.int64), names))
    rows = []
    vd = None
    if has.any():
        unit = btyd.TIME_UNITS[time_unit]
        vd = uncertainty.value_distribution(bg, gg, 365 / unit, x[has], T[has], m[has])
    sub_mean = frame["predicted_subscription_value_12m_usd"].astype(float).fillna(0.0).to_numpy()
    sub_sd = np.zeros(len(frame))
    if subscriptions is not None and len(subscriptions):
        sd = subscriptions.set_index(subscriptions["customer_id"].astype(str))[
            "subscription_value_12m_sd_usd"
        ]
        sub_sd = frame["customer_id"].astype(str).map(sd).astype(float).fillna(0.0).to_numpy()
    for measure, point in MEASURES.items():
        prob = leaving if measure == "revenue_at_risk" else active
        for kind, code, names in kinds:
            extra_mean = extra_var = None
            if measure == "clv_12m":
                extra_mean = np.bincount(code, weights=sub_mean, minlength=len(names))
                extra_var = np.bincount(code, weights=sub_sd**2, minlength=len(names))
            if vd is not None:
                tot = uncertainty.total_quantiles(
                    vd, x[has], T[has], m[has], prob[has], value[has], code[has], len(names),
                    extra_mean=extra_mean, extra_var=extra_var,
                ).quantiles  # fmt: skip
            elif extra_mean is not None:
                tot = uncertainty._mixture_quantiles(
                    extra_mean[None, :], np.sqrt(extra_var)[None, :], uncertainty.LEVELS
                )
            else:
                tot = np.zeros((len(names), 3))
            for i, name in enumerate(names):
                sel = code == i
                expected = float(frame.loc[sel, point].astype(float).sum())
                rows.append((kind, name, measure, int(sel.sum()), expected, *map(float, tot[i])))
    return pd.DataFrame(rows, columns=list(VALUE_INTERVAL_COLUMNS))


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
    summary: pd.DataFrame,
    signals: pd.DataFrame,
    purchases_later: pd.DataFrame,
    cutoff: dt.date,
    window_days: int,
    time_unit: str,
    purchase_model: str = "bgnbd",
) -> tuple[pd.DataFrame, churn.Outcome]:
    """Features as of the cutoff and the outcome after it: the purchase model (the one scoring
    uses, clv_purchase_model) refitted on the purchase `summary` as of the cutoff (for P(alive)),
    the behavioural `signals` as of the cutoff (int_churn_features), and the outcome, no purchase
    in the window, from the last purchase date in `purchases_later` (the purchase summary as of
    the business date)."""
    return training_frame(
        fit_clv(summary, cutoff, time_unit, purchase_model), signals, purchases_later, window_days
    )


def training_frame(
    fit: ClvFit, signals: pd.DataFrame, purchases_later: pd.DataFrame, window_days: int
) -> tuple[pd.DataFrame, churn.Outcome]:
    """`training_data` given the purchase model already fitted at the cutoff (`fit.as_of`): the
    backtest (clv.stats.backtest) reuses the fit for its value predictions."""
    cutoff, time_unit = fit.as_of, fit.time_unit
    s = fit.summary
    model = fit.purchase
    frame = s[["customer_id", "frequency", "recency", "age"]].copy()
    frame["p_alive"] = purchase_models.of(model).p_alive(model, s["frequency"], s["recency"], s["age"])
    frame = merge_customers(frame, signals)
    last = pd.to_datetime(purchases_later["last_purchase_date"])
    bought = purchases_later.loc[last > pd.Timestamp(cutoff), "customer_id"]
    frame["no_purchase"] = (~frame["customer_id"].isin(bought)).astype(float)
    outcome = churn.Outcome(
        frame["no_purchase"].to_numpy(),
        frame["frequency"].to_numpy(dtype=float),
        frame["age"].to_numpy(dtype=float),
        model.r,  # both models: an active customer's rate is Gamma(r + x, α + T)
        model.alpha,
        window_days / btyd.TIME_UNITS[time_unit],
    )
    return frame, outcome


def train_churn(
    summary: pd.DataFrame,
    signals: pd.DataFrame,
    purchases_later: pd.DataFrame,
    cutoff: dt.date,
    window_days: int,
    time_unit: str,
    purchase_model: str = "bgnbd",
) -> ChurnTraining:
    """Fit the churn model on the history with a time split (see `training_data`); one customer
    in five held out."""
    frame, outcome = training_data(
        summary, signals, purchases_later, cutoff, window_days, time_unit, purchase_model
    )
    X = churn.design(frame)
    held = churn.holdout_mask(frame["customer_id"])
    model = churn.fit(X[~held], outcome.subset(~held))
    return ChurnTraining(
        model,
        churn.evaluate(model, X[held], outcome.subset(held)),
        churn.evaluate(model, X[~held], outcome.subset(~held)),
        cutoff,
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
    "fit_date": "DATE",
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
    df["fit_date"] = tr.cutoff + dt.timedelta(days=tr.window_days)  # the business date of the fit
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
    "churn_reasons": "TEXT",
}


def churn_scores(
    predictions: pd.DataFrame,
    signals: pd.DataFrame,
    model: churn.ChurnModel,
    purchases: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Score every customer on the business date: p_alive and frequency from int_clv_predictions,
    the behavioural signals of the same date (int_churn_features), as in training. With the
    purchase summary of the same date (int_purchase_summary: as_of_date, has_purchased,
    last_purchase_date), each customer also gets the reasons behind the score in words
    (`churn.reasons`); without it, none."""
    frame = merge_customers(predictions[["customer_id", "p_alive", "frequency"]], signals)
    X = churn.design(frame)
    logit = model.logit(X)
    why = None
    if purchases is not None:
        p = purchases[["customer_id", "as_of_date", "has_purchased", "last_purchase_date"]]
        last = pd.to_datetime(p["last_purchase_date"])
        p = pd.DataFrame(
            {
                "customer_id": p["customer_id"],
                "days_since_last_purchase": (pd.to_datetime(p["as_of_date"]) - last).dt.days,
                "has_purchased": p["has_purchased"].astype(bool).astype(int),
            }
        )
        worded = frame.merge(p, on="customer_id", how="left")  # one row per customer: the model's grain
        worded["purchase_days"] = worded["frequency"] + worded["has_purchased"].fillna(0)
        why = churn.reasons(model, X, worded)
    return pd.DataFrame(
        {
            "customer_id": frame["customer_id"].to_numpy(),
            "churn_score": logit,
            "churn_probability": special.expit(logit),
            "bgnbd_churn_probability": 1 - frame["p_alive"].to_numpy(dtype=float),
            "churn_model": CHURN_MODEL_NAME,
            "churn_reasons": why,
        },
        columns=list(SCORING_COLUMNS),
    )
