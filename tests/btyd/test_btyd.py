"""BG/NBD and Gamma-Gamma: recovery of known parameters, analytic derivatives, a stable likelihood,
predictions against simulation and the literature, and clear errors on bad input."""

from __future__ import annotations

import datetime as dt
import math

import duckdb
import numpy as np
import pytest
from scipy import integrate, special

from clv.stats import btyd

TRUE_BG = {"r": 0.75, "alpha": 25.0, "a": 0.8, "b": 5.0}
TRUE_GG = {"p": 4.0, "q": 4.0, "v": 60.0}


@pytest.fixture(scope="module")
def simulated():
    rng = np.random.default_rng(2024)
    T = rng.uniform(30, 1095, 60_000)
    return btyd.simulate(rng, T, TRUE_BG, TRUE_GG, holdout=365.0)


def _standard_errors(hessian: np.ndarray) -> np.ndarray:
    return np.sqrt(np.diag(np.linalg.inv(-hessian)))


def test_bgnbd_recovers_the_parameters_it_was_simulated_from(simulated):
    s = simulated
    fit = btyd.fit_bgnbd(s["frequency"], s["recency"], s["T"])
    assert fit.report.converged and fit.report.gradient_norm < 1e-6
    assert fit.customers == len(s["T"])
    _, _, H = btyd.bgnbd_gradient(fit.params(), s["frequency"], s["recency"], s["T"])
    se = _standard_errors(H)
    for (name, true), err in zip(TRUE_BG.items(), se):
        assert abs(fit.params()[name] - true) < 4 * err, (name, fit.params()[name], true, err)
    # the total log-likelihood is the sum of the per-customer values
    per_customer = btyd.bgnbd_log_likelihood(fit, s["frequency"], s["recency"], s["T"])
    assert fit.log_likelihood == pytest.approx(per_customer.sum(), rel=1e-10)


def test_gamma_gamma_recovers_the_parameters_it_was_simulated_from(simulated):
    s = simulated
    fit = btyd.fit_gamma_gamma(s["frequency"], s["monetary"])
    assert fit.report.converged
    assert fit.customers == int((s["frequency"] > 0).sum())
    _, _, H = btyd.gamma_gamma_gradient(fit.params(), s["frequency"], s["monetary"])
    se = _standard_errors(H)
    for (name, true), err in zip(TRUE_GG.items(), se):
        assert abs(fit.params()[name] - true) < 4 * err, (name, fit.params()[name], true, err)
    assert fit.mean_spend == pytest.approx(80, rel=0.05)
    per_customer = btyd.gamma_gamma_log_likelihood(fit, s["frequency"], s["monetary"])
    assert fit.log_likelihood == pytest.approx(per_customer.sum(), rel=1e-10)


def test_compressed_and_weighted_fits_equal_the_plain_fit():
    """Rows repeated k times and one row with weight k are the same data."""
    rng = np.random.default_rng(11)
    s = btyd.simulate(rng, rng.integers(10, 400, 3_000).astype(float), TRUE_BG, TRUE_GG)
    x, tx, T = s["frequency"], np.floor(s["recency"]), s["T"]
    w = rng.integers(1, 4, len(x)).astype(float)
    weighted = btyd.fit_bgnbd(x, tx, T, weights=w)
    rep = np.repeat(np.arange(len(x)), w.astype(int))
    repeated = btyd.fit_bgnbd(x[rep], tx[rep], T[rep])
    for k, v in weighted.params().items():
        assert repeated.params()[k] == pytest.approx(v, rel=1e-6)
    assert repeated.log_likelihood == pytest.approx(weighted.log_likelihood, rel=1e-9)
    gw = btyd.fit_gamma_gamma(x, s["monetary"], weights=w)
    gr = btyd.fit_gamma_gamma(x[rep], s["monetary"][rep])
    for k, v in gw.params().items():
        assert gr.params()[k] == pytest.approx(v, rel=1e-6)


def _finite_difference(f, params: dict[str, float], h: float = 1e-6) -> np.ndarray:
    names = list(params)
    out = np.empty(len(names))
    for i, n in enumerate(names):
        up, down = dict(params), dict(params)
        step = h * max(abs(params[n]), 1.0)
        up[n] += step
        down[n] -= step
        out[i] = (f(up) - f(down)) / (2 * step)
    return out


@pytest.mark.parametrize(
    "params",
    [{"r": 0.6, "alpha": 18.0, "a": 0.9, "b": 3.5}, {"r": 2.5, "alpha": 4.0, "a": 3.0, "b": 0.7}],
)
def test_bgnbd_gradient_and_hessian_match_finite_differences(params):
    rng = np.random.default_rng(3)
    s = btyd.simulate(rng, rng.uniform(0, 300, 2_000), {"r": 0.9, "alpha": 20.0, "a": 1.0, "b": 4.0})
    x, tx, T = s["frequency"], s["recency"], s["T"]
    ll, g, H = btyd.bgnbd_gradient(params, x, tx, T)
    assert ll == pytest.approx(btyd.bgnbd_log_likelihood(params, x, tx, T).sum(), rel=1e-12)
    num_g = _finite_difference(lambda p: btyd.bgnbd_log_likelihood(p, x, tx, T).sum(), params)
    np.testing.assert_allclose(g, num_g, rtol=1e-5, atol=1e-4)
    names = list(params)
    for i, n in enumerate(names):
        num_h = _finite_difference(lambda p, i=i: btyd.bgnbd_gradient(p, x, tx, T)[1][i], params)
        np.testing.assert_allclose(H[i], num_h, rtol=1e-5, atol=1e-3, err_msg=n)


def test_gamma_gamma_gradient_and_hessian_match_finite_differences():
    rng = np.random.default_rng(4)
    s = btyd.simulate(rng, rng.uniform(0, 500, 3_000), TRUE_BG, TRUE_GG)
    x, m = s["frequency"], s["monetary"]
    params = {"p": 3.0, "q": 5.0, "v": 40.0}
    ll, g, H = btyd.gamma_gamma_gradient(params, x, m)
    assert ll == pytest.approx(btyd.gamma_gamma_log_likelihood(params, x, m).sum(), rel=1e-12)
    num_g = _finite_difference(lambda p: btyd.gamma_gamma_log_likelihood(p, x, m).sum(), params)
    np.testing.assert_allclose(g, num_g, rtol=1e-5, atol=1e-4)
    for i in range(3):
        num_h = _finite_difference(lambda p, i=i: btyd.gamma_gamma_gradient(p, x, m)[1][i], params)
        np.testing.assert_allclose(H[i], num_h, rtol=1e-5, atol=1e-4)


def _bgnbd_likelihood_high_precision(params, x: int, tx: float, T: float) -> float:
    """Eq. 6 of FHL 2005 with the Beta functions written out, summed in Python floats after
    factoring out the larger term: an independent check of the vectorised code."""
    r, alpha, a, b = params["r"], params["alpha"], params["a"], params["b"]
    lg = math.lgamma
    base = lg(r + x) - lg(r) + r * math.log(alpha)
    lbeta = lg(a) + lg(b) - lg(a + b)
    t1 = lg(a) + lg(b + x) - lg(a + b + x) - lbeta - (r + x) * math.log(alpha + T)
    if x == 0:
        return base + t1
    t2 = lg(a + 1) + lg(b + x - 1) - lg(a + b + x) - lbeta - (r + x) * math.log(alpha + tx)
    hi = max(t1, t2)
    return base + hi + math.log(math.exp(t1 - hi) + math.exp(t2 - hi))


def test_likelihood_is_stable_on_extreme_inputs():
    params = {"r": 0.75, "alpha": 25.0, "a": 0.8, "b": 5.0}
    cases = [(0, 0.0, 0.0), (0, 0.0, 1e6), (1, 0.0, 10.0), (5, 0.0, 0.0), (100_000, 999.0, 1000.0),
             (100_000, 1.0, 1e6), (3, 1e-9, 1e7)]  # fmt: skip
    x = np.array([c[0] for c in cases], dtype=float)
    tx = np.array([c[1] for c in cases])
    T = np.array([c[2] for c in cases])
    ll = btyd.bgnbd_log_likelihood(params, x, tx, T)
    assert np.all(np.isfinite(ll))
    for got, (xi, ti, Ti) in zip(ll, cases):
        assert got == pytest.approx(_bgnbd_likelihood_high_precision(params, xi, ti, Ti), rel=1e-9, abs=1e-9)
    # the naive product form overflows on the very frequent buyer; ours does not
    with np.errstate(all="ignore"):
        naive = special.gamma(params["r"] + x[4]) * (params["alpha"] + T[4]) ** -(params["r"] + x[4])
    assert not np.isfinite(np.log(naive))
    _, g, H = btyd.bgnbd_gradient(params, x, tx, T)
    assert np.all(np.isfinite(g)) and np.all(np.isfinite(H))
    alive = btyd.p_alive(btyd.BGNBD(**params, log_likelihood=0, customers=0), x, tx, T)
    assert np.all((alive >= 0) & (alive <= 1))
    assert alive[0] == alive[1] == 1.0
    assert alive[5] < 1e-12  # a hundred thousand purchases, then silence for a million days
    gg = btyd.gamma_gamma_log_likelihood({"p": 4, "q": 4, "v": 60}, [1e5, 1, 2], [80.0, 1e-6, 1e7])
    assert np.all(np.isfinite(gg))


def test_conditional_expectation_matches_the_published_example():
    """Fader, Hardie & Lee (2005), CDNOW parameters: a customer with x = 2, t_x = 30.43 and
    T = 38.86 weeks is expected to make 1.226 purchases in the next 39 weeks."""
    cdnow = btyd.BGNBD(r=0.243, alpha=4.414, a=0.793, b=2.426, log_likelihood=0, customers=0)
    got = btyd.expected_purchases(cdnow, 39, [2], [30.43], [38.86])[0]
    assert got == pytest.approx(1.226, abs=5e-4)


@pytest.mark.parametrize("a", [0.5, 0.8, 0.9995, 1.0, 1.3, 4.0])
def test_closed_form_expectation_agrees_with_numerical_integration(a):
    """E[purchases in (T, T+t] | alive] = E over the posterior of (1 − e^(−λpt)) / p, integrated
    over λ ~ Gamma(r+x, α+T) in closed form and over p ~ Beta(a, b+x) numerically."""
    model = btyd.BGNBD(r=0.7, alpha=20.0, a=a, b=4.0, log_likelihood=0, customers=0)
    x = np.array([0.0, 1, 4, 25])
    T = np.array([0.0, 90, 400, 1000])
    t = 365.0
    got = btyd._expected_if_alive(model, t, x, T)
    for gi, xi, Ti in zip(got, x, T):
        s, c = 0.7 + xi, t / (20 + Ti)

        def integrand(p, s=s, c=c, xi=xi):
            return (
                -math.expm1(-s * math.log1p(p * c))
                / p
                * math.exp((a - 1) * math.log(p) + (3 + xi) * math.log1p(-p) - special.betaln(a, 4 + xi))
            )

        want, _ = integrate.quad(integrand, 0, 1, limit=200)
        assert gi == pytest.approx(want, rel=1e-6)


def test_predictions_match_what_simulated_customers_do(simulated):
    s = simulated
    bg = btyd.BGNBD(**TRUE_BG, log_likelihood=0, customers=0)
    gg = btyd.GammaGamma(**TRUE_GG, log_likelihood=0, customers=0)
    alive = btyd.p_alive(bg, s["frequency"], s["recency"], s["T"])
    # P(alive) is calibrated: in each decile, the share still alive matches the mean prediction
    order = np.argsort(alive)
    for part in np.array_split(order, 10):
        assert abs(alive[part].mean() - s["alive"][part].mean()) < 0.03
    scores = btyd.score(bg, gg, s["frequency"], s["recency"], s["T"], s["monetary"])
    total_pred, total_true = scores.expected_purchases_365d.sum(), s["future_purchases"].sum()
    assert total_pred == pytest.approx(total_true, rel=0.03)
    for lo, hi in [(0, 0), (1, 2), (3, 6), (7, 1e9)]:
        sel = (s["frequency"] >= lo) & (s["frequency"] <= hi)
        assert scores.expected_purchases_365d[sel].sum() == pytest.approx(
            s["future_purchases"][sel].sum(), rel=0.08
        )
    # spend: the posterior mean of a transaction's value, p / ν, averaged over customers
    rep = s["frequency"] > 0
    assert scores.expected_spend[rep].mean() == pytest.approx((TRUE_GG["p"] / s["nu"][rep]).mean(), rel=0.03)
    assert scores.predicted_clv.sum() == pytest.approx(s["future_value"].sum(), rel=0.05)
    np.testing.assert_allclose(scores.predicted_clv, scores.p_alive * scores.remaining_clv)
    assert np.all(scores.expected_purchases_90d <= scores.expected_purchases_365d + 1e-12)


def test_discounting_and_time_units():
    bg_day = btyd.BGNBD(r=0.75, alpha=25.0, a=0.8, b=5.0, log_likelihood=0, customers=0)
    bg_week = btyd.BGNBD(r=0.75, alpha=25.0 / 7, a=0.8, b=5.0, log_likelihood=0, customers=0)
    gg = btyd.GammaGamma(**TRUE_GG, log_likelihood=0, customers=0)
    x, tx, T, m = (
        np.array([0.0, 3, 10]),
        np.array([0.0, 70, 350]),
        np.array([14.0, 140, 700]),
        np.array([np.nan, 50, 90]),
    )
    day = btyd.score(bg_day, gg, x, tx, T, m, time_unit="day")
    week = btyd.score(bg_week, gg, x, tx / 7, T / 7, m, time_unit="week")
    np.testing.assert_allclose(day.predicted_clv, week.predicted_clv, rtol=1e-9)
    np.testing.assert_allclose(day.p_alive, week.p_alive, rtol=1e-12)
    disc = btyd.score(bg_day, gg, x, tx, T, m, discount_rate=0.2)
    assert np.all(disc.remaining_clv < day.remaining_clv)
    # a year discounted month by month at 20%: between the undiscounted value and a full year's discount
    assert np.all(disc.remaining_clv > day.remaining_clv / 1.2)
    net = btyd.score(bg_day, gg, x, tx, T, m, value_factor=0.96)
    np.testing.assert_allclose(net.remaining_clv, day.remaining_clv * 0.96)


def test_expected_purchases_of_a_new_customer_match_simulation():
    """E[X(t)] (eq. 9 of FHL 2005) against the mean repeat purchases of simulated customers
    observed for t days from their first purchase."""
    rng = np.random.default_rng(8)
    s = btyd.simulate(rng, np.full(200_000, 365.0), TRUE_BG)
    bg = btyd.BGNBD(**TRUE_BG, log_likelihood=0, customers=0)
    want = s["frequency"].mean()
    assert btyd.expected_purchases_new_customer(bg, 365) == pytest.approx(want, rel=0.02)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"frequency": [1, 2], "recency": [5, 20], "T": [10, 15]}, "recency > T for 1 customers"),
        ({"frequency": [1, -2], "recency": [5, 1], "T": [10, 15]}, "frequency has 1 negative values"),
        ({"frequency": [1, 2], "recency": [5, -1], "T": [10, 15]}, "recency has 1 negative values"),
        (
            {"frequency": [0, 0, 0], "recency": [0, 0, 0], "T": [10, 15, 3]},
            "no customer has a repeat purchase",
        ),
        ({"frequency": [1.5, 2], "recency": [5, 1], "T": [10, 15]}, "must be whole"),
        ({"frequency": [0, 2], "recency": [5, 1], "T": [10, 15]}, "frequency 0 but recency > 0"),
        ({"frequency": [1, 2], "recency": [5, 1], "T": [10, float("nan")]}, "T has 1 missing or infinite"),
        ({"frequency": [1, 2, 3], "recency": [5, 1], "T": [10, 15]}, "differ in length"),
        ({"frequency": [], "recency": [], "T": []}, "no customers"),
    ],
)
def test_invalid_input_gives_a_clear_error(kwargs, message):
    with pytest.raises(btyd.BtydError, match=message):
        btyd.fit_bgnbd(**kwargs)


def test_data_without_dropout_is_fitted_at_the_cap_and_reported():
    """Pure Poisson buyers who never leave: the dropout parameters run off to the boundary; the
    fit caps them, keeps a near-zero dropout probability, and says so in its report."""
    rng = np.random.default_rng(5)
    T = rng.uniform(50, 500, 20_000)
    x = rng.poisson(rng.gamma(0.75, 1 / 25, len(T)) * T).astype(float)
    tx = np.where(x > 0, T * rng.beta(np.maximum(x, 1), 1), 0)
    fit = btyd.fit_bgnbd(x, tx, T)
    assert fit.report.converged and "dropout heterogeneity not identified" in fit.report.message
    assert fit.a / (fit.a + fit.b) < 0.01
    assert fit.r == pytest.approx(0.75, rel=0.1) and fit.alpha == pytest.approx(25.0, rel=0.1)


def test_homogeneous_dropout_is_fitted_at_the_cap_and_reported():
    """Every customer has the same dropout probability (a, b -> infinity together): the fit keeps
    the identified mean dropout probability (with a and b large, or capped and reported)."""
    rng = np.random.default_rng(11)
    sim = btyd.simulate(rng, rng.uniform(30, 200, 30_000), {"r": 0.8, "alpha": 20.0, "a": 1e7, "b": 1.4e8})
    fit = btyd.fit_bgnbd(sim["frequency"], sim["recency"], sim["T"])
    assert fit.report.converged
    assert fit.a > 100 and fit.b > 100  # no heterogeneity: at (or near) the cap
    assert fit.a / (fit.a + fit.b) == pytest.approx(1e7 / 1.5e8, rel=0.25)
    assert fit.r == pytest.approx(0.8, rel=0.15) and fit.alpha == pytest.approx(20.0, rel=0.2)


def test_gamma_gamma_input_errors():
    with pytest.raises(btyd.BtydError, match="mean transaction value of 0 or less"):
        btyd.fit_gamma_gamma([1, 2, 0], [10.0, -1.0, np.nan])
    with pytest.raises(btyd.BtydError, match="monetary value is missing"):
        btyd.fit_gamma_gamma([1, 2], [10.0, np.nan])
    with pytest.raises(btyd.BtydError, match="no customer has a repeat purchase"):
        btyd.fit_gamma_gamma([0, 0], [np.nan, np.nan])
    with pytest.raises(btyd.BtydError, match=r"q = 0\.9"):
        btyd.expected_spend(btyd.GammaGamma(p=2, q=0.9, v=10, log_likelihood=0, customers=0), [1], [5.0])
    with pytest.raises(btyd.BtydError, match="unknown time unit 'month'"):
        btyd.score(
            btyd.BGNBD(**TRUE_BG, log_likelihood=0, customers=0),
            btyd.GammaGamma(**TRUE_GG, log_likelihood=0, customers=0),
            [1], [1], [2], [3.0], time_unit="month",
        )  # fmt: skip


def test_summary_sql_follows_the_literature_conventions():
    con = duckdb.connect()
    con.execute("""CREATE TABLE t AS SELECT * FROM (VALUES
        ('A', DATE '2024-01-01', 30.0), ('A', DATE '2024-01-01', 10.0),  -- one purchase day worth 40
        ('A', DATE '2024-01-15', 20.0), ('A', DATE '2024-01-29', 60.0),
        ('A', DATE '2024-03-01', 99.0),                                  -- after the calibration end
        ('B', DATE '2024-01-20', 5.0),
        ('C', DATE '2024-02-11', 7.0), ('C', DATE '2024-02-11', 8.0)
    ) AS v(cust, day, amount)""")
    sql = btyd.summary_sql("t", dt.date(2024, 2, 11), "day", "cust", "day", "amount")
    rows = con.execute(sql).fetchall()
    assert [r[:5] for r in rows] == [
        ("A", 2, 28.0, 41.0, 40.0),
        ("B", 0, 0.0, 22.0, None),
        ("C", 0, 0.0, 0.0, None),
    ]
    weekly = con.execute(
        btyd.summary_sql("t", dt.date(2024, 2, 11), "week", "cust", "day", "amount")
    ).fetchall()
    assert weekly[0][2:4] == (4.0, pytest.approx(41 / 7))
