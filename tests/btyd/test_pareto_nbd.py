"""Pareto/NBD (clv.stats.pareto_nbd): the hypergeometric-free likelihood against Fader, Hardie &
Lee's closed form and adaptive quadrature, analytic derivatives against finite differences,
parameters recovered from simulated data, predictions against simulation and published values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, special

from clv.stats import btyd, uncertainty
from clv.stats import pareto_nbd as pn

# Fader, Hardie & Lee's estimates on the CDNOW sample (weeks), as published
CDNOW = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
DAYS = {"r": 0.75, "alpha": 25.0, "s": 0.6, "beta": 300.0}


def closed_form(p, x, tx, T):
    """The 2F1 form of the note "A Note on Implementing the Pareto/NBD Model in MATLAB"."""
    r, a, s, b = p["r"], p["alpha"], p["s"], p["beta"]
    # the 2F1 with the larger of α and β
    big, first, second = (a, s + 1, b) if a >= b else (b, r + x, a)

    def f(t):
        z = (big - second) / (big + t)
        return special.hyp2f1(r + s + x, first, r + s + x + 1, z) / (big + t) ** (r + s + x)

    bracket = 1 / ((a + T) ** (r + x) * (b + T) ** s) + s / (r + s + x) * (f(tx) - f(T))
    return special.gammaln(r + x) - special.gammaln(r) + r * np.log(a) + s * np.log(b) + np.log(bracket)


def by_quadrature(p, x, tx, T):
    """Adaptive quadrature of the dropout-time integral, scaled by the integrand at t_x."""
    r, a, s, b = p["r"], p["alpha"], p["s"], p["beta"]
    out = []
    for xi, ti, Ti in zip(x, tx, T):

        def lf(u, xi=xi):
            return -(r + xi) * np.log(a + u) - (s + 1) * np.log(b + u)

        inner = integrate.quad(
            lambda u, ti=ti: np.exp(lf(u) - lf(ti)), ti, Ti, epsabs=0, epsrel=1e-13, limit=500
        )[0]
        first = -(r + xi) * np.log(a + Ti) - s * np.log(b + Ti)
        out.append(
            special.gammaln(r + xi) - special.gammaln(r) + r * np.log(a) + s * np.log(b)
            + np.logaddexp(first, np.log(s) + lf(ti) + np.log(inner))
        )  # fmt: skip
    return np.array(out)


@pytest.fixture(scope="module")
def weekly():
    """A CDNOW-shaped sample: 2,357 customers, acquired over 12 weeks, observed up to week 39."""
    rng = np.random.default_rng(5)
    T = np.round(rng.uniform(27, 39, 2357), 2)
    return pn.simulate(rng, T, CDNOW)


@pytest.mark.parametrize("params", [CDNOW, {"r": 0.7, "alpha": 3.0, "s": 1.4, "beta": 40.0}])
def test_likelihood_matches_the_closed_form(weekly, params):
    x, tx, T = weekly["frequency"], weekly["recency"], weekly["T"]
    ours = pn.log_likelihood(params, x, tx, T)
    theirs = closed_form(params, x, tx, T)
    assert np.max(np.abs(ours - theirs) / np.abs(theirs)) < 1e-9
    assert ours.sum() == pytest.approx(theirs.sum(), rel=1e-11)


def test_likelihood_is_stable_where_the_closed_form_is_not():
    """Days over three years, a frequent buyer, α and β far apart: the 2F1 argument is near 1 and
    the power terms underflow; the quadrature form agrees with adaptive quadrature."""
    p = {"r": 0.8, "alpha": 2.0, "s": 0.5, "beta": 5000.0}
    x = np.array([0.0, 1.0, 40.0, 400.0, 900.0])
    tx = np.array([0.0, 3.0, 700.0, 1090.0, 500.0])
    T = np.array([1095.0, 1095.0, 1095.0, 1095.0, 1095.0])
    ours = pn.log_likelihood(p, x, tx, T)
    assert np.all(np.isfinite(ours))
    assert ours == pytest.approx(by_quadrature(p, x, tx, T), rel=1e-8)
    with np.errstate(all="ignore"):
        assert not np.all(np.isfinite(closed_form(p, x, tx, T)))  # what the 2F1 form gives


def test_gradient_and_hessian_are_the_derivatives(weekly):
    x, tx, T = weekly["frequency"], weekly["recency"], weekly["T"]
    theta = np.array(list(CDNOW.values()))
    ll, g, H = pn.gradient(CDNOW, x, tx, T)
    assert ll == pytest.approx(pn.log_likelihood(CDNOW, x, tx, T).sum(), rel=1e-12)
    for i in range(4):
        step = np.zeros(4)
        step[i] = 1e-6 * theta[i]
        lp, gp, _ = pn.gradient(dict(zip(CDNOW, theta + step)), x, tx, T)
        lm, gm, _ = pn.gradient(dict(zip(CDNOW, theta - step)), x, tx, T)
        assert g[i] == pytest.approx((lp - lm) / (2 * step[i]), rel=1e-5, abs=1e-4)
        assert H[:, i] == pytest.approx((gp - gm) / (2 * step[i]), rel=1e-5, abs=1e-3)


def test_recovers_the_parameters_it_simulated():
    rng = np.random.default_rng(11)
    n = 40_000
    T = rng.integers(30, 1096, n).astype(float)
    sim = pn.simulate(rng, T, DAYS)
    m = pn.fit(sim["frequency"], np.floor(sim["recency"]), T)
    assert m.report.converged and m.report.gradient_norm < 1e-6
    se = {p.name: p.standard_error for p in uncertainty.parameter_intervals(m)}
    for name, truth in DAYS.items():
        # within 4 standard errors (plus 1% for the whole-day rounding of recency)
        assert abs(getattr(m, name) - truth) < 4 * se[name] + 0.01 * truth, (name, getattr(m, name), se[name])
    # weights for identical rows give the same fit
    x, tx = sim["frequency"][:5000], np.floor(sim["recency"][:5000])
    doubled = pn.fit(np.r_[x, x], np.r_[tx, tx], np.r_[T[:5000], T[:5000]])
    weighted = pn.fit(x, tx, T[:5000], weights=np.full(5000, 2.0))
    assert weighted.params() == pytest.approx(doubled.params(), rel=1e-6)
    assert weighted.log_likelihood == pytest.approx(doubled.log_likelihood, rel=1e-9)


def test_predictions_against_simulation():
    rng = np.random.default_rng(3)
    n = 200_000
    T = rng.uniform(100, 700, n)
    sim = pn.simulate(rng, T, DAYS, holdout=180.0)
    m = pn.ParetoNBD(**DAYS, log_likelihood=0.0, customers=n)
    x, tx = sim["frequency"], sim["recency"]
    alive = pn.p_alive(m, x, tx, T)
    assert alive.mean() == pytest.approx(sim["alive"].mean(), abs=0.005)
    # calibrated by frequency
    for lo, hi in ((0, 0), (1, 2), (3, 9)):
        sel = (x >= lo) & (x <= hi)
        assert alive[sel].mean() == pytest.approx(sim["alive"][sel].mean(), abs=0.01)
    expected = pn.expected_purchases(m, 180.0, x, tx, T)
    assert expected.sum() == pytest.approx(sim["future_purchases"].sum(), rel=0.02)
    buy = pn.p_purchase(m, 180.0, x, tx, T)
    assert buy.mean() == pytest.approx((sim["future_purchases"] > 0).mean(), abs=0.005)
    assert np.all(buy <= alive + 1e-12) and np.all(buy >= 0)


def test_published_cdnow_predictions():
    """The BTYD walkthrough (R) on CDNOW: a customer with 26 repeat purchases, the last at week
    30.86 of 31, buys 25.46 times in the next 52 weeks."""
    m = pn.ParetoNBD(**CDNOW, log_likelihood=0.0, customers=2357)
    assert pn.expected_purchases(m, 52, [26.0], [30.86], [31.0])[0] == pytest.approx(25.46, abs=0.01)
    # E[X(t)] for a new customer is the T = 0 case of the conditional expectation given alive
    new = [pn.expected_purchases_new_customer(m, t) for t in (1, 5, 39)]
    r, a, s, b = CDNOW.values()
    closed = [r * b / (a * (s - 1)) * (1 - (b / (b + t)) ** (s - 1)) for t in (1, 5, 39)]
    assert new == pytest.approx(closed, rel=1e-12)


def test_scores_and_the_limit_at_s_equal_1():
    rng = np.random.default_rng(0)
    T = rng.uniform(30, 400, 2000)
    sim = pn.simulate(rng, T, DAYS, gg={"p": 4, "q": 4, "v": 60})
    m = pn.ParetoNBD(**DAYS, log_likelihood=0.0, customers=2000)
    gg = btyd.GammaGamma(4.0, 4.0, 60.0, 0.0, 1)
    s = pn.score(m, gg, sim["frequency"], sim["recency"], T, sim["monetary"])
    assert s.predicted_clv == pytest.approx(s.p_alive * s.remaining_clv)
    assert np.all(s.expected_purchases_90d <= s.expected_purchases_365d)
    discounted = pn.score(m, gg, sim["frequency"], sim["recency"], T, sim["monetary"], discount_rate=0.2)
    assert np.all(discounted.remaining_clv < s.remaining_clv)
    near = [pn.expected_if_alive({**DAYS, "s": s_}, 365.0, np.array([3.0]), np.array([200.0]))[0]
            for s_ in (1 - 1e-7, 1.0, 1 + 1e-7)]  # fmt: skip
    assert near[1] == pytest.approx(near[0], rel=1e-6) and near[1] == pytest.approx(near[2], rel=1e-6)


def test_clear_errors():
    with pytest.raises(btyd.BtydError, match="no customer has a repeat purchase"):
        pn.fit([0, 0, 0], [0, 0, 0], [5, 6, 7])
    with pytest.raises(btyd.BtydError, match="recency > T"):
        pn.fit([1, 2], [3, 9], [5, 6])


@pytest.mark.parametrize(
    "p",
    [
        {"r": 1.0, "alpha": 4000.0, "s": 2.0, "beta": 25.0},  # α >> β and many purchases
        {"r": 1.2, "alpha": 500.0, "s": 38.0, "beta": 75000.0},  # large s and β, nearly homogeneous dropout
    ],
)
def test_likelihood_where_the_larger_scale_dominates(p):
    """Regression: with the Laguerre scale at the integrand's far decay rate (r + x + s), every node
    fell before the mass when the larger of α and β carries a large power: log F was off by up
    to 0.09 here (and the fit on BG/NBD data with no dropout heterogeneity failed to converge)."""
    x = np.array([0.0, 2.0, 20.0, 200.0, 200.0])
    tx = np.array([0.0, 1.0, 1.0, 1.0, 300.0])
    T = np.array([30.0, 30.0, 30.0, 30.0, 1000.0])
    assert pn.log_likelihood(p, x, tx, T) == pytest.approx(by_quadrature(p, x, tx, T), rel=1e-8)


def test_no_dropout_heterogeneity_caps_s():
    """BG/NBD customers with a nearly common dropout: Pareto/NBD's s and β grow together; the fit
    caps s, says so, keeps the mean dropout rate, and reports no standard errors for it."""
    rng = np.random.default_rng(44)
    T = rng.integers(0, 730, 30_000).astype(float)
    sim = btyd.simulate(rng, T, {"r": 0.75, "alpha": 320.0, "a": 0.8, "b": 5.0})
    m = pn.fit(sim["frequency"], np.floor(sim["recency"]), T)
    assert m.report.converged and "s capped" in m.report.message
    assert m.s == pytest.approx(np.exp(pn._DROPOUT_CAP), rel=0.05)
    assert m.log_covariance is None
    assert all(np.isnan(p.standard_error) for p in uncertainty.parameter_intervals(m))
    # the predictions still hold: the model's purchases over the observed ages match the data's
    assert pn.expected_purchases_new_customer(m, 365.0) > 0
