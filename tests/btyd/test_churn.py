"""The churn model's pieces: its likelihood's derivatives, recovery of a known model from
simulated customers whose dropout is hidden behind "no purchase", and the ROC AUC it reports."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import special

from clv.stats import churn


def test_roc_auc_matches_pairwise_counting():
    rng = np.random.default_rng(0)
    score = rng.integers(0, 5, 300).astype(float)  # many ties
    label = rng.random(300) < 0.4
    pos, neg = score[label], score[~label]
    wins = sum((p > n) + 0.5 * (p == n) for p, n in itertools.product(pos, neg))
    assert churn.roc_auc(score, label) == pytest.approx(wins / (len(pos) * len(neg)))
    assert churn.roc_auc(-score, label) == pytest.approx(1 - wins / (len(pos) * len(neg)))
    assert np.isnan(churn.roc_auc(score, np.zeros(300, bool)))


def test_mixture_derivatives_match_finite_differences():
    rng = np.random.default_rng(1)
    eta = rng.normal(0, 3, 500)
    q = rng.uniform(0.01, 0.99, 500)
    y = (rng.random(500) < 0.5).astype(float)
    _, deta, dq = churn._mixture(eta, y, q)
    h = 1e-6
    np.testing.assert_allclose(
        deta,
        (churn._mixture(eta + h, y, q)[0] - churn._mixture(eta - h, y, q)[0]) / (2 * h),
        rtol=1e-5,
        atol=1e-8,
    )
    np.testing.assert_allclose(
        dq,
        (churn._mixture(eta, y, q + h)[0] - churn._mixture(eta, y, q - h)[0]) / (2 * h),
        rtol=1e-5,
        atol=1e-7,
    )
    # probabilities of the two outcomes add up to one
    p1 = np.exp(churn._mixture(eta, np.ones(500), q)[0])
    p0 = np.exp(churn._mixture(eta, np.zeros(500), q)[0])
    np.testing.assert_allclose(p1 + p0, 1.0)


def test_fit_recovers_a_known_churn_model_through_the_no_purchase_outcome():
    """Customers have left with probability σ(β·z); those still active make no purchase in the
    window with BG/NBD's probability q, scaled by an engagement-driven rate factor. Only "no
    purchase" is observed. The fit recovers β and ranks the hidden dropout as well as the truth."""
    rng = np.random.default_rng(2)
    n = 40_000
    X = rng.normal(size=(n, 3))
    X[:, 0] = special.logit(rng.uniform(0.05, 0.95, n))  # plays BG/NBD's log-odds
    beta = np.array([0.8, 1.5, -1.0])
    intercept = -0.5
    gone = rng.random(n) < special.expit(intercept + X @ beta)
    freq = rng.poisson(3, n).astype(float)
    T = rng.uniform(30, 700, n)
    kappa = np.exp(0.4 * X[:, 2])  # the third signal also says how often an active customer buys
    out_true = churn.Outcome(np.zeros(n), freq, T, 0.75, 25.0, 180.0)
    q_true, _ = out_true.q(kappa)
    no_purchase = np.where(gone, 1.0, (rng.random(n) < q_true).astype(float))
    out = churn.Outcome(no_purchase, freq, T, 0.75, 25.0, 180.0)
    model = churn.fit(X, out, ridge=0.0)
    coef = model.coef / model.scale  # back to the raw features
    np.testing.assert_allclose(coef, beta, atol=0.15)
    assert model.intercept - (model.coef * model.mean / model.scale).sum() == pytest.approx(
        intercept, abs=0.15
    )
    assert (model.rate_coef / model.scale)[2] == pytest.approx(0.4, abs=0.15)
    pi = model.probability(X)
    assert churn.roc_auc(pi, gone) == pytest.approx(churn.roc_auc(X @ beta, gone), abs=0.005)
    assert pi.mean() == pytest.approx(gone.mean(), abs=0.01)
    # scored against the observed outcome, the model beats the first feature alone
    ev = churn.evaluate(model, X, out)
    assert ev.log_loss < ev.log_loss_bgnbd and ev.auc > ev.auc_bgnbd


def test_design_and_too_little_data():
    raw = pd.DataFrame(
        {
            "p_alive": [1.0, 0.25],
            "frequency": [0, 3],
            "sessions_30d": [0, 2],
            "sessions_90d": [0, 5],
            "sessions_prior_90d": [4, 5],
            "days_since_last_session": [None, 10],
            "lifetime_sessions": [8, 40],
            "tenure_days": [400, 200],
            "tickets_90d": [0, 1],
            "billing_tickets_90d": [0, 1],
            "low_csat_tickets_90d": [0, 0],
            "has_active_subscription": [False, True],
            "subscription_ended_90d": [True, False],
            "lifecycle_stage": ["churned", "active"],
        }
    )
    X = churn.design(raw)
    assert X.shape == (2, len(churn.FEATURES))
    f = dict(zip(churn.FEATURES, X.T))
    assert f["bgnbd_dropout_logit"][0] == pytest.approx(special.logit(1e-6))
    assert f["bgnbd_dropout_logit"][1] == pytest.approx(special.logit(0.75))
    assert list(f["no_repeat_purchase"]) == [1, 0]
    assert f["engagement_decline"][0] == pytest.approx(np.log(5)) and f["engagement_decline"][1] == 0
    assert f["log_days_since_last_session"][0] == pytest.approx(np.log1p(365))  # never: capped
    assert f["log_sessions_missed"][1] == pytest.approx(np.log1p(40 / 200 * 10))
    assert list(f["stage_churned"]) == [1, 0] and list(f["subscription_ended_90d"]) == [1, 0]
    with pytest.raises(churn.ChurnModelError, match="need the columns lifecycle_stage"):
        churn.design(raw.drop(columns="lifecycle_stage"))
    out = churn.Outcome(np.array([1.0, 0.0] * 20), np.ones(40), np.full(40, 100.0), 0.75, 25.0, 180.0)
    with pytest.raises(churn.ChurnModelError, match="too few customers"):
        churn.fit(np.zeros((40, 3)), out)


def _customers() -> pd.DataFrame:
    """Three customers as the scoring sees them: a quiet one-time buyer with billing trouble, a
    steady subscriber, and a customer who stopped visiting (dormant)."""
    return pd.DataFrame(
        {
            "p_alive": [1.0, 0.95, 0.3],
            "frequency": [0, 6, 2],
            "purchase_days": [1, 7, 3],
            "days_since_last_purchase": [210, 12, 150],
            "sessions_30d": [0, 6, 0],
            "sessions_90d": [2, 15, 0],
            "sessions_prior_90d": [9, 14, 6],
            "days_since_last_session": [50, 2, 130],
            "lifetime_sessions": [20, 80, 30],
            "tenure_days": [300, 500, 400],
            "tickets_90d": [3, 0, 0],
            "billing_tickets_90d": [2, 0, 0],
            "low_csat_tickets_90d": [1, 0, 0],
            "has_active_subscription": [False, True, False],
            "subscription_ended_90d": [True, False, False],
            "lifecycle_stage": ["active", "active", "dormant"],
            "days_since_last_activity": [50, 2, 130],
        }
    )


def _model(coef: dict[str, float]) -> churn.ChurnModel:
    k = len(churn.FEATURES)
    return churn.ChurnModel(
        -1.0,
        np.array([coef.get(f, 0.0) for f in churn.FEATURES]),
        0.0,
        np.zeros(k),
        np.full(k, 0.5),
        np.full(k, 2.0),
        0,
        0,
    )


def test_contributions_add_up_to_the_log_odds():
    raw = _customers()
    X = churn.design(raw)
    model = _model({f: 0.3 * (i % 5 - 2) for i, f in enumerate(churn.FEATURES)})
    c = churn.contributions(model, X)
    assert c.shape == X.shape
    assert np.allclose(c.sum(axis=1) + model.intercept, model.logit(X))
    groups = churn.group_contributions(model, X)
    assert list(groups.columns) == list(churn.REASON_GROUPS)
    assert sorted(f for fs in churn.REASON_GROUPS.values() for f in fs) == sorted(churn.FEATURES)
    assert np.allclose(groups.sum(axis=1), c.sum(axis=1))


def test_reasons_name_the_largest_contributions_in_words():
    raw = _customers()
    X = churn.design(raw)
    # risk rises with tickets, an ended subscription, fewer recent sessions and a dormant stage
    model = _model(
        {
            "log_tickets_90d": 1.0,
            "log_billing_tickets_90d": 0.5,
            "subscription_ended_90d": 0.8,
            "log_sessions_90d": -0.6,
            "stage_dormant": 1.5,
            "bgnbd_dropout_logit": 0.4,
        }
    )
    why = churn.reasons(model, X, raw)
    groups = churn.group_contributions(model, X)
    first = groups.iloc[0].sort_values(ascending=False)
    # customer 0 (z = (x - 0.5) / 2): support 1.0 x 0.44 + 0.5 x 0.30 = 0.59, the ended subscription
    # 0.8 x 0.25 = 0.2, then sessions -0.6 x (ln 3 - 0.5) / 2 = -0.18: below 0.1, not a reason
    assert list(first.index[:3]) == ["support", "subscription", "sessions"]
    assert first["support"] == pytest.approx(np.log(4) / 2 - 0.25 + 0.5 * (np.log(3) / 2 - 0.25))
    assert (
        why[0]
        == "3 support tickets in 90 days, 2 about billing, 1 rated 1-2; subscription ended in the last 90 days"
    )
    # the subscriber's signals all lower the score below average: no reason
    assert (groups.iloc[1] < churn.REASON_MIN_LOGIT).all() and why[1] is None
    # customer 2: dormant 1.5 x 0.25, no session in 90 days -0.6 x -0.25; purchases 0.07 too small
    assert why[2] == "dormant (no purchase or session in 130 days); no session in 130 days"
    words = churn.reason_words(raw)
    assert words.loc[0, "purchases"] == "no purchase in 210 days (one purchase so far)"
    assert words.loc[2, "purchases"] == "no purchase in 150 days (after 3 purchase days)"
    assert (
        words.loc[1, "purchases"]
        == "purchase pattern: P(alive) 95% after 7 purchase days, the last 12 days ago"
    )
    assert words.loc[1, "sessions"] == "6 sessions in 30 days"
    assert words.loc[1, "support"] == "no support contact in 90 days"
    with pytest.raises(churn.ChurnModelError, match="reasons need the columns days_since_last_activity"):
        churn.reason_words(raw.drop(columns="days_since_last_activity"))
