"""Uncertainty of the CLV predictions (clv.stats.uncertainty): the parameters' standard errors
against a numerical Hessian, P(a purchase) and the value intervals against the process they
describe, simulated independently here, and the totals against a brute-force simulation of the
sum."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clv.stats import btyd, scoring, uncertainty

TRUE_BG = {"r": 0.75, "alpha": 25.0, "a": 0.8, "b": 5.0}
TRUE_GG = {"p": 4.0, "q": 4.0, "v": 60.0}
YEAR = 365.0


@pytest.fixture(scope="module")
def world():
    """12,000 customers drawn from the models, what they do in the following year, and the fits."""
    rng = np.random.default_rng(5)
    T = rng.uniform(1, 730, 12_000).round()
    sim = btyd.simulate(rng, T, TRUE_BG, TRUE_GG, holdout=YEAR)
    bg = btyd.fit_bgnbd(sim["frequency"], sim["recency"], sim["T"])
    gg = btyd.fit_gamma_gamma(sim["frequency"], sim["monetary"])
    scores = btyd.score(bg, gg, sim["frequency"], sim["recency"], sim["T"], sim["monetary"])
    vd = uncertainty.value_distribution(bg, gg, YEAR, sim["frequency"], sim["T"], sim["monetary"])
    return sim, bg, gg, scores, vd


def numerical_log_hessian(f, theta: np.ndarray, h: float = 1e-4) -> np.ndarray:
    k = len(theta)
    H = np.empty((k, k))
    for i in range(k):
        for j in range(k):
            e_i, e_j = np.eye(k)[i] * h, np.eye(k)[j] * h
            H[i, j] = (
                f(theta + e_i + e_j) - f(theta + e_i - e_j) - f(theta - e_i + e_j) + f(theta - e_i - e_j)
            ) / (4 * h * h)
    return H


def test_parameter_standard_errors_match_a_numerical_hessian_of_the_exact_likelihood(world):
    sim, bg, gg, _, _ = world
    x, tx, T, m = sim["frequency"], sim["recency"], sim["T"], sim["monetary"]

    def bg_ll(theta):
        return btyd.bgnbd_log_likelihood(dict(zip(bg.names, np.exp(theta))), x, tx, T).sum()

    def gg_ll(theta):
        return btyd.gamma_gamma_log_likelihood(dict(zip(gg.names, np.exp(theta))), x, m).sum()

    for model, ll in ((bg, bg_ll), (gg, gg_ll)):
        theta = np.log([getattr(model, n) for n in model.names])
        numeric = np.linalg.inv(-numerical_log_hessian(ll, theta))
        np.testing.assert_allclose(model.log_covariance, numeric, rtol=2e-3, atol=1e-9)
        for pi, var in zip(uncertainty.parameter_intervals(model), np.diag(numeric)):
            assert pi.standard_error == pytest.approx(pi.estimate * np.sqrt(var), rel=2e-3)  # delta method
            assert pi.lower_95 < pi.estimate < pi.upper_95
            assert np.log(pi.upper_95 / pi.estimate) == pytest.approx(1.96 * np.sqrt(var), rel=2e-3)
    # the generator's parameters sit inside the 95% intervals (a regression check on this seed)
    for pi in uncertainty.parameter_intervals(bg) + uncertainty.parameter_intervals(gg):
        true = (TRUE_BG | TRUE_GG)[pi.name]
        assert pi.lower_95 < true < pi.upper_95, pi


def test_capped_dropout_fit_has_no_standard_errors():
    """Data without dropout: a and b are capped, their likelihood has no maximum, so no intervals."""
    rng = np.random.default_rng(5)
    T = rng.uniform(50, 500, 20_000)
    x = rng.poisson(rng.gamma(0.75, 1 / 25, len(T)) * T).astype(float)
    tx = np.where(x > 0, T * rng.beta(np.maximum(x, 1), 1), 0)
    bg = btyd.fit_bgnbd(x, tx, T)
    assert "capped" in bg.report.message
    assert bg.log_covariance is None
    assert all(np.isnan(pi.standard_error) for pi in uncertainty.parameter_intervals(bg))
    draws = uncertainty.parameter_draws(bg, 5, rng)
    np.testing.assert_array_equal(draws, np.tile([bg.r, bg.alpha, bg.a, bg.b], (5, 1)))


def test_p_purchase_matches_what_customers_do(world):
    sim, bg, *_ = world
    x, tx, T = sim["frequency"], sim["recency"], sim["T"]
    p365 = uncertainty.p_purchase(bg, YEAR, x, tx, T)
    bought = sim["future_purchases"] > 0
    assert p365.mean() == pytest.approx(bought.mean(), abs=0.01)
    # calibrated within deciles too
    dec = pd.qcut(pd.Series(p365).rank(method="first"), 10, labels=False).to_numpy()
    for d in range(10):
        assert p365[dec == d].mean() == pytest.approx(bought[dec == d].mean(), abs=0.04)
    p90 = uncertainty.p_purchase(bg, 90.0, x, tx, T)
    alive = btyd.p_alive(bg, x, tx, T)
    assert np.all(p90 <= p365) and np.all(p365 <= alive)
    assert np.all(uncertainty.p_purchase(bg, 0.0, x, tx, T) == 0)


def test_tabulated_mean_is_the_closed_form_expectation(world):
    """E[Y | alive] at the point estimate x (q + p x − 1) / p = BG/NBD's expected purchases if alive
    (the hypergeometric closed form) at every cell computed."""
    _, bg, gg, _, vd = world
    for i, xv in enumerate(vd.ux[:6]):
        got = vd.mean[0, i]
        used = got > 0
        closed = btyd._expected_if_alive(bg, YEAR, np.full(used.sum(), xv), vd.nodes[used])
        np.testing.assert_allclose(got[used] * (gg.q + gg.p * xv - 1) / gg.p, closed, rtol=1e-9)


def test_customer_intervals_cover_what_customers_spend(world):
    """On data drawn from the models: 10% above P90, and the intervals bracket the expectation."""
    sim, bg, _gg, s, vd = world
    x, T, m = sim["frequency"], sim["T"], sim["monetary"]
    q = uncertainty.customer_quantiles(vd, x, T, m, s.p_alive, s.remaining_clv)
    actual = sim["future_value"]
    assert np.all(q[:, 0] <= q[:, 1]) and np.all(q[:, 1] <= q[:, 2])
    # the value is 0 with probability 1 - P(a purchase): P10 is 0 exactly when that is over 10%,
    # and when it is over 90% so is P90, and only P(a purchase) of them spend more than P90
    buy = uncertainty.p_purchase(bg, YEAR, x, sim["recency"], T)
    assert np.all(q[buy < 0.87, 0] == 0)  # up to the tables' Monte Carlo error near the edge
    assert np.all(q[buy > 0.93, 0] > 0)
    assert np.all(q[buy < 0.08, 2] == 0)
    above = np.where(q[:, 2] > 0, 0.10, buy)  # P(value > P90) by the model
    assert (actual > q[:, 2]).mean() == pytest.approx(above.mean(), abs=0.01)
    assert (actual >= q[:, 1]).mean() >= 0.5 - 0.02  # the median: at least half at or above
    assert (actual > q[:, 1]).mean() <= 0.5 + 0.02
    for lo, hi in ((0, 0), (1, 2), (3, 6), (7, 10**6)):
        sel = (x >= lo) & (x <= hi)
        assert (actual[sel] > q[sel, 2]).mean() == pytest.approx(above[sel].mean(), abs=0.025), (lo, hi)


def simulate_values(rng, bg_draws, gg_draws, x, tx, T, m, reps: int) -> np.ndarray:
    """Brute force, independent of the module: each rep draws the parameters, then every
    customer's alive state, rate, dropout, purchases and spend given their history."""
    out = np.empty((reps, len(x)))
    for k in range(reps):
        r, alpha, a, b = bg_draws[k]
        p, q, v = gg_draws[k]
        bgk = btyd.BGNBD(r, alpha, a, b, 0.0, 0)
        alive = rng.random(len(x)) < btyd.p_alive(bgk, x, tx, T)
        lam = rng.gamma(r + x) / (alpha + T)
        drop = rng.beta(a, b + x)
        n = np.minimum(rng.poisson(lam * YEAR), rng.geometric(drop)) * alive
        nu = rng.gamma(q + p * x) / (v + x * np.nan_to_num(m))
        out[k] = np.where(n > 0, rng.gamma(np.maximum(p * n, 1e-300)) / nu, 0.0)
    return out


def test_totals_match_a_brute_force_simulation_of_the_sum(world):
    sim, bg, gg, s, vd = world
    idx = np.arange(0, 12_000, 4)  # 3,000 customers, two groups
    x, tx, T, m = (sim[c][idx] for c in ("frequency", "recency", "T", "monetary"))
    alive, value = s.p_alive[idx], s.remaining_clv[idx]
    group = (x > 0).astype(np.int64)
    tot = uncertainty.total_quantiles(vd, x, T, m, alive, value, group, 2)
    rng = np.random.default_rng(11)
    reps = 600
    values = simulate_values(
        rng,
        uncertainty.parameter_draws(bg, reps, rng),
        uncertainty.parameter_draws(gg, reps, rng),
        x,
        tx,
        T,
        m,
        reps,
    )
    for g in (0, 1):
        totals = values[:, group == g].sum(axis=1)
        assert tot.mean[g] == pytest.approx(totals.mean(), rel=0.02)
        brute = np.quantile(totals, [0.1, 0.5, 0.9])
        width = brute[2] - brute[0]
        np.testing.assert_allclose(tot.quantiles[g], brute, atol=0.12 * width)
        # the sum of the customers' P10s is far below the total's P10
        q = uncertainty.customer_quantiles(vd, x[group == g], T[group == g], m[group == g], alive[group == g],
                                           value[group == g])  # fmt: skip
        assert q[:, 0].sum() < tot.quantiles[g, 0] - width
    # parameter uncertainty: without it the interval of the whole is narrower
    no_params = uncertainty.value_distribution(
        btyd.BGNBD(bg.r, bg.alpha, bg.a, bg.b, 0.0, 0),
        btyd.GammaGamma(gg.p, gg.q, gg.v, 0.0, 0),
        YEAR,
        x,
        T,
        m,
    )
    narrow = uncertainty.total_quantiles(no_params, x, T, m, alive, value, np.zeros(len(x), np.int64), 1)
    wide = uncertainty.total_quantiles(vd, x, T, m, alive, value, np.zeros(len(x), np.int64), 1)
    assert narrow.quantiles[0, 2] - narrow.quantiles[0, 0] < wide.quantiles[0, 2] - wide.quantiles[0, 0]


def test_predictions_frame_carries_the_intervals(world):
    sim, bg, gg, _s, _ = world
    n = 400
    summary = pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(n)] + ["never"],
            "frequency": np.r_[sim["frequency"][:n], 0],
            "recency": np.r_[sim["recency"][:n], 0],
            "age": np.r_[sim["T"][:n], 3],
            "monetary_value": np.r_[sim["monetary"][:n], np.nan],
            "has_purchased": [True] * n + [False],
        }
    )
    out = scoring.predictions_frame(summary, bg, gg, "day", 0.05)
    assert list(out.columns) == list(scoring.PREDICTION_COLUMNS)
    last = out.iloc[-1]
    assert last.p_purchase_90d == 0 and last.clv_12m_p90_usd == 0
    head = out.iloc[:n]
    np.testing.assert_allclose(
        head.p_purchase_365d,
        uncertainty.p_purchase(bg, YEAR, summary.frequency[:n], summary.recency[:n], summary.age[:n]),
    )
    assert (head.clv_12m_p10_usd <= head.clv_12m_p50_usd).all() and (
        head.clv_12m_p50_usd <= head.clv_12m_p90_usd
    ).all()
    assert head.clv_12m_p90_usd.sum() > head.bgnbd_clv_12m_usd.sum() > head.clv_12m_p10_usd.sum()
    # the refund share scales the value and its interval alike
    plain = scoring.predictions_frame(summary, bg, gg, "day", 0.0).iloc[:n]
    np.testing.assert_allclose(head.clv_12m_p90_usd, plain.clv_12m_p90_usd * 0.95, rtol=1e-9)


def test_fit_frame_round_trips_the_covariance(world):
    _sim, bg, gg, *_ = world
    summary = pd.DataFrame({"customer_id": ["A"], "frequency": [1]})
    fit = scoring.ClvFit(pd.Timestamp("2024-01-01").date(), "day", bg, gg, 0.01, summary)
    row = scoring.fit_frame(fit)
    assert list(row.columns) == list(scoring.FIT_COLUMNS)
    r = row.iloc[0]
    intervals = {pi.name: pi for pi in uncertainty.parameter_intervals(bg)}
    assert r.bgnbd_alpha_se == pytest.approx(intervals["alpha"].standard_error)
    assert r.bgnbd_alpha_lower_95 < r.bgnbd_alpha < r.bgnbd_alpha_upper_95
    bg2, gg2, *_ = scoring.models_from_frame(row)
    np.testing.assert_allclose(bg2.log_covariance, bg.log_covariance)
    np.testing.assert_allclose(gg2.log_covariance, gg.log_covariance)
