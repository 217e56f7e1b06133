"""clv.stats.scoring on data frames (the rows the feature models hold), without a warehouse: the
training cutoff, the churn outcome read from the later purchase summary, and clear errors."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from clv.stats import btyd, churn, scoring

BUSINESS = dt.date(2024, 3, 31)
CUTOFF = dt.date(2023, 10, 3)


def summary(n: int = 600, seed: int = 3) -> pd.DataFrame:
    """A purchase summary as int_purchase_summary holds it, drawn from BG/NBD and Gamma-Gamma."""
    rng = np.random.default_rng(seed)
    sim = btyd.simulate(
        rng, rng.uniform(30, 300, n), {"r": 0.75, "alpha": 25, "a": 0.8, "b": 5}, {"p": 4, "q": 4, "v": 60}
    )
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:04d}" for i in range(n)],
            "frequency": sim["frequency"].astype(int),
            "recency": sim["recency"],
            "age": sim["T"],
            "monetary_value": sim["monetary"],
            "has_purchased": True,
            "refund_share": 0.04,
        }
    )


def signals(ids) -> pd.DataFrame:
    """Behavioural signals as int_churn_features holds them (quiet customers)."""
    return pd.DataFrame(
        {
            "customer_id": ids,
            "tenure_days": 200,
            "sessions_30d": 0,
            "sessions_90d": 1,
            "sessions_prior_90d": 2,
            "days_since_last_session": 40,
            "lifetime_sessions": 5,
            "tickets_90d": 0,
            "billing_tickets_90d": 0,
            "low_csat_tickets_90d": 0,
            "has_active_subscription": False,
            "subscription_ended_90d": False,
            "lifecycle_stage": "active",
        }
    )


def test_training_cutoff_is_the_business_date_minus_the_window():
    assert scoring.training_cutoff(BUSINESS, 180) == CUTOFF
    with pytest.raises(churn.ChurnModelError, match="at least one day, got 0"):
        scoring.training_cutoff(BUSINESS, 0)


def test_the_outcome_is_a_purchase_after_the_cutoff_in_the_later_summary():
    s = summary()
    later = pd.DataFrame(
        {
            "customer_id": s["customer_id"],
            # the first third bought after the cutoff; the next third last bought on the cutoff
            # day itself, which is before the window: no purchase; the rest never bought
            "last_purchase_date": [CUTOFF + dt.timedelta(days=5)] * 200 + [CUTOFF] * 200 + [None] * 200,
        }
    )
    frame, outcome = scoring.training_data(s, signals(s["customer_id"]), later, CUTOFF, 180, "day")
    assert frame["customer_id"].tolist() == s["customer_id"].tolist()
    assert frame["no_purchase"].tolist() == [0.0] * 200 + [1.0] * 400
    np.testing.assert_array_equal(outcome.no_purchase, frame["no_purchase"].to_numpy())
    np.testing.assert_array_equal(outcome.T, s["age"].to_numpy())
    assert outcome.window == 180
    assert ((frame["p_alive"] > 0) & (frame["p_alive"] <= 1)).all()


def test_fit_clv_names_the_missing_columns():
    with pytest.raises(btyd.BtydError, match="as of 2024-03-31 has no column refund_share"):
        scoring.fit_clv(summary().drop(columns="refund_share"), BUSINESS, "day")
    fit = scoring.fit_clv(summary(), BUSINESS, "day")
    assert fit.refund_share == 0.04 and 0.3 < fit.bg.r < 2


def test_pareto_nbd_through_the_pipeline_functions():
    """clv_purchase_model = pareto_nbd: the fit row carries Pareto/NBD next to BG/NBD, the
    predictions come from Pareto/NBD, and the churn model trains on the same model's P(alive)."""
    from clv.stats import pareto_nbd

    s = summary(1500)
    fit = scoring.fit_clv(s, BUSINESS, "day", "pareto_nbd")
    row = scoring.fit_frame(fit)
    assert list(row.columns) == list(scoring.FIT_COLUMNS)
    f = row.iloc[0]
    assert f.purchase_model == "pareto_nbd" and f.bgnbd_r == fit.bg.r  # BG/NBD stays fitted
    assert f.pnbd_s == fit.purchase.s and f.pnbd_s_lower_95 < f.pnbd_s < f.pnbd_s_upper_95
    model = scoring.purchase_model_from_frame(row)
    assert isinstance(model, pareto_nbd.ParetoNBD) and model.params() == pytest.approx(fit.purchase.params())
    assert model.log_covariance is not None
    _, gg, unit, share = scoring.models_from_frame(row)
    pred = scoring.predictions_frame(s, model, gg, unit, share)
    assert list(pred.columns) == list(scoring.PREDICTION_COLUMNS)
    x, tx, T = (s[c].to_numpy(float) for c in ("frequency", "recency", "age"))
    np.testing.assert_allclose(pred["p_alive"], pareto_nbd.p_alive(model, x, tx, T))
    # unlike BG/NBD, a customer without repeat purchases may have left
    assert (pred.loc[s["frequency"] == 0, "p_alive"] < 1).all()
    assert (pred["clv_12m_p10_usd"] <= pred["clv_12m_p50_usd"] + 1e-9).all()
    assert (pred["clv_12m_p50_usd"] <= pred["clv_12m_p90_usd"] + 1e-9).all()
    assert (pred["p_purchase_365d"] <= pred["p_alive"] + 1e-12).all()
    # the default stays BG/NBD, and a row without the column reads as BG/NBD
    bg_row = scoring.fit_frame(scoring.fit_clv(s, BUSINESS, "day"))
    assert bg_row.iloc[0].purchase_model == "bgnbd" and bg_row.iloc[0][scoring.PNBD_COLUMNS].isna().all()
    assert isinstance(scoring.purchase_model_from_frame(bg_row.drop(columns="purchase_model")), btyd.BGNBD)
    later = pd.DataFrame({"customer_id": s["customer_id"], "last_purchase_date": [None] * len(s)})
    frame, outcome = scoring.training_data(
        s, signals(s["customer_id"]), later, CUTOFF, 180, "day", "pareto_nbd"
    )
    np.testing.assert_allclose(frame["p_alive"], pareto_nbd.p_alive(fit.purchase, x, tx, T))
    assert outcome.r == fit.purchase.r and outcome.alpha == fit.purchase.alpha
    with pytest.raises(btyd.BtydError, match="clv_purchase_model 'weibull' is not a purchase model"):
        scoring.fit_clv(s, BUSINESS, "day", "weibull")


def test_the_whole_value_interval_adds_the_subscription_draws_to_the_order_part():
    """No subscription value: the whole interval is the order interval (read at 200 stratified
    levels instead of tabulated ones, so close, not equal, and never below it). A fixed
    subscription value c shifts every quantile by c. A customer with no order history brings their subscriptions alone."""
    s = summary(800)
    row = scoring.fit_frame(scoring.fit_clv(s, BUSINESS, "day"))
    bg, gg, unit, share = scoring.models_from_frame(row)
    pred = scoring.predictions_frame(s, bg, gg, unit, share)
    ids = pred["customer_id"].to_numpy()
    zero = scoring.value_quantiles_with_subscriptions(row, pred, ids, np.zeros((len(ids), 200)))
    orders = pred[["clv_12m_p10_usd", "clv_12m_p50_usd", "clv_12m_p90_usd"]].to_numpy()
    scale = np.maximum(orders[:, 2], 1.0)
    error = np.abs(zero - orders).max(axis=1) / scale
    # (a customer whose P(alive) sits at a level has a jump there: the two readings straddle it)
    assert np.median(error) < 0.02 and np.quantile(error, 0.95) < 0.04
    assert (zero >= orders - 1e-9).all()  # the whole is never below its order part
    shifted = scoring.value_quantiles_with_subscriptions(row, pred, ids, np.full((len(ids), 200), 120.0))
    moved = np.abs(shifted - 120.0 - orders).max(axis=1) / scale
    assert np.median(moved) < 0.02 and np.quantile(moved, 0.95) < 0.04
    assert (shifted >= 120.0 - 1e-9).all() and (shifted >= orders - 1e-9).all()
    draws = np.tile(np.linspace(0, 300, 200), (2, 1))
    alone = scoring.value_quantiles_with_subscriptions(row, pred, np.array(["nobody", "else"]), draws)
    np.testing.assert_allclose(alone, np.quantile(draws, [0.1, 0.5, 0.9], axis=1).T)
