"""The renewal model (clv/stats/renewal.py): the sBG recovers the parameters it simulates, its
analytic gradient matches finite differences, the charge calendar agrees with DuckDB's, episodes
chain plan changes, and small or young data give a reason instead of an exception."""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy import special

from clv.settings import SEEDS_DIR
from clv.stats import renewal

PLANS = pd.read_csv(SEEDS_DIR / "plans.csv")


def simulate(rng, alpha, beta, n, max_renewals):
    """sBG data: theta ~ Beta(alpha, beta), the first failed renewal is geometric(theta); each
    subscription is observed for a uniform number of renewal opportunities."""
    theta = rng.beta(alpha, beta, n)
    fails_at = rng.geometric(theta)
    observed = rng.integers(0, max_renewals + 1, n)
    cancelled = fails_at <= observed
    return np.where(cancelled, fails_at, observed), cancelled


@pytest.mark.parametrize("alpha,beta", [(0.7, 3.2), (2.5, 12.0)])
def test_sbg_recovers_the_simulated_parameters(alpha, beta):
    periods, cancelled = simulate(np.random.default_rng(11), alpha, beta, 200_000, 36)
    fit = renewal.fit_sbg(periods, cancelled)
    assert fit.alpha == pytest.approx(alpha, rel=0.06)
    assert fit.beta == pytest.approx(beta, rel=0.08)
    assert fit.gradient_norm < renewal.GRADIENT_TOLERANCE and not fit.capped
    assert fit.subscriptions == 200_000 and fit.cancelled == int(cancelled.sum())
    # heterogeneity is real here: the sBG beats the constant-hazard model in likelihood
    assert fit.log_likelihood > renewal.fit_geometric(periods, cancelled).log_likelihood + 100


def test_gradient_matches_finite_differences():
    periods, cancelled = simulate(np.random.default_rng(3), 0.9, 4.0, 500, 24)
    for a, b in ((0.5, 2.0), (3.0, 30.0), (0.05, 0.4)):
        _, grad = renewal.log_likelihood(a, b, periods, cancelled)
        h = 1e-6
        for i in range(2):
            step = np.exp(h * np.eye(2)[i])
            up, _ = renewal.log_likelihood(a * step[0], b * step[1], periods, cancelled)
            down, _ = renewal.log_likelihood(a / step[0], b / step[1], periods, cancelled)
            assert grad[i] == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-6)


def test_hessian_matches_finite_differences_of_the_gradient():
    periods, cancelled = simulate(np.random.default_rng(4), 0.9, 4.0, 500, 24)
    for a, b in ((0.5, 2.0), (3.0, 30.0), (0.05, 0.4)):
        H = renewal.log_hessian(a, b, periods, cancelled)
        h = 1e-6
        for i in range(2):
            step = np.exp(h * np.eye(2)[i])
            _, up = renewal.log_likelihood(a * step[0], b * step[1], periods, cancelled)
            _, down = renewal.log_likelihood(a / step[0], b / step[1], periods, cancelled)
            assert H[:, i] == pytest.approx((up - down) / (2 * h), rel=1e-4, abs=1e-4)


def test_standard_errors_match_the_spread_of_refits():
    """Issue 18: the renewal model's parameters carry standard errors and 95% intervals. Over 60
    simulated data sets of 3,000 subscriptions, the spread of log alpha and log beta matches the
    standard error one fit reports (within 25%), and the 95% intervals hold the truth about 95% of
    the time."""
    alpha, beta = 0.8, 4.0
    rng = np.random.default_rng(7)
    fits = [renewal.fit_sbg(*simulate(rng, alpha, beta, 3_000, 24)) for _ in range(60)]
    assert not any(f.capped for f in fits)
    for name, truth in (("alpha", alpha), ("beta", beta)):
        logs = np.log([getattr(f, name) for f in fits])
        se_log = np.median([f.intervals()[f"{name}_se"] / getattr(f, name) for f in fits])
        assert np.std(logs, ddof=1) == pytest.approx(se_log, rel=0.25), name
        covered = np.mean(
            [f.intervals()[f"{name}_lower_95"] <= truth <= f.intervals()[f"{name}_upper_95"] for f in fits]
        )
        assert 0.85 <= covered <= 1.0, (name, covered)


def test_without_heterogeneity_the_intervals_say_so_and_a_group_not_fitted_has_none():
    # everyone cancels with probability 0.2 at each renewal: the data identify the mean, not the
    # concentration alpha + beta, and the intervals of alpha and beta span orders of magnitude
    rng = np.random.default_rng(5)
    fails_at = rng.geometric(0.2, 20_000)
    observed = rng.integers(0, 25, 20_000)
    cancelled = fails_at <= observed
    fit = renewal.fit_sbg(np.where(cancelled, fails_at, observed), cancelled)
    ci = fit.intervals()
    assert fit.mean_cancel_probability == pytest.approx(0.2, rel=0.03)
    assert (
        ci["alpha_upper_95"] / ci["alpha_lower_95"] > 100 and ci["beta_upper_95"] / ci["beta_lower_95"] > 100
    )
    empty = renewal._fit_group(
        "plan", "monthly", "basic", "P", ("P",), np.array([]), np.array([], dtype=bool)
    )
    frame = renewal.fit_frame([empty], dt.date(2024, 1, 1))
    assert empty.status == "not_fitted" and frame[list(renewal.INTERVAL_COLUMNS)].isna().all(axis=None)


def test_survival_has_the_closed_form_of_alpha_one():
    m = renewal.SBG(1.0, 3.0, 0.0, 0, 0, 0, 0, 0.0)
    # S(t) = 3 / (3 + t); after n renewals the next j survive with (3 + n) / (3 + n + j)
    assert np.exp(m.log_survival(np.array([0, 1, 5]))) == pytest.approx([1, 3 / 4, 3 / 8])
    assert m.conditional_survival(np.array([2.0]), np.array([1.0, 3.0])) == pytest.approx([5 / 6, 5 / 8])


def test_degenerate_inputs_raise_a_clear_error_or_cap():
    with pytest.raises(renewal.RenewalError, match="no subscriptions"):
        renewal.fit_sbg([], [])
    with pytest.raises(renewal.RenewalError, match="no cancellations yet"):
        renewal.fit_sbg([0, 3, 5], [False, False, False])
    with pytest.raises(renewal.RenewalError, match="first renewal"):
        renewal.fit_sbg([1, 1], [True, True])
    with pytest.raises(renewal.RenewalError, match="whole numbers"):
        renewal.fit_sbg([1.5], [True])
    with pytest.raises(renewal.RenewalError, match="periods >= 1"):
        renewal.fit_sbg([0], [True])
    # a hazard that rises (0.1 at the first renewal, 0.5 at the second) is the opposite of
    # heterogeneity: alpha and beta run off together to the geometric limit, capped and said so
    periods = np.repeat([1, 2, 2], [10, 45, 45])
    cancelled = np.repeat([True, True, False], [10, 45, 45])
    fit = renewal.fit_sbg(periods, cancelled)
    assert set(fit.capped) == {"alpha", "beta"}
    geometric = renewal.fit_geometric(periods, cancelled)
    assert geometric.theta == pytest.approx(55 / 190)
    assert fit.mean_cancel_probability == pytest.approx(geometric.theta, rel=0.01)
    assert fit.log_likelihood == pytest.approx(geometric.log_likelihood, rel=1e-3)
    # the geometric model's survival has no tenure effect: (1 - theta)^j after any past
    survival = np.cumprod(geometric.retention(np.array([0, 7]), 3), axis=1)
    assert survival == pytest.approx(np.array([[1, 2, 3], [1, 2, 3]]) * 0 + (1 - 55 / 190) ** np.arange(1, 4))
    group = renewal.fit_groups(
        pd.DataFrame(
            {
                "plan_id": "BAS-M",
                "plan_tier": "basic",
                "billing_cycle": "monthly",
                "charges": periods,
                "periods": periods,
                "cancelled": cancelled,
            }
        ),
        min_subscriptions=10,
    )[0]
    assert group.status == "capped" and "no heterogeneity" in group.reason


def test_the_charge_calendar_is_duckdbs():
    """add_months and charges_before agree with DuckDB's `date + TO_MONTHS(n)` (what
    core.fct_revenue uses) on month ends, leap days and year ends."""
    starts = pd.date_range("2023-01-25", "2024-03-05", freq="D").to_numpy(dtype="datetime64[D]")
    months = np.resize([1, 12, 1, 3], len(starts))
    k = np.resize([0, 1, 5, 13], len(starts))
    ours = renewal.add_months(starts, k * months)
    con = duckdb.connect()
    con.register("shifts", pd.DataFrame({"s": starts, "n": k * months}))
    theirs = con.sql("SELECT CAST(s::DATE + TO_MONTHS(n::INT) AS DATE) AS d FROM shifts").fetchnumpy()["d"]
    assert (ours == theirs.astype("datetime64[D]")).all()
    limit = np.datetime64("2024-12-31")
    counted = renewal.charges_before(starts, months, np.full(len(starts), limit))
    brute = [
        sum(renewal.add_months(np.array([s]), np.array([j * m]))[0] < limit for j in range(0, 40))
        for s, m in zip(starts, months)
    ]
    assert counted.tolist() == brute


def subs(*rows):
    return pd.DataFrame(rows, columns=["subscription_id", "customer_id", "plan_id", "start_date", "end_date"])


def test_plan_changes_are_chained_and_later_ends_unknown():
    s = subs(
        ("S1", "A", "PLS-M", "2023-06-01", "2023-09-01"),  # changed plan on 09-01
        ("S2", "A", "PRM-M", "2023-09-01", "2024-02-10"),  # ends after the as-of date
        ("S3", "B", "BAS-M", "2023-03-15", "2023-05-20"),  # cancelled
        ("S4", "B", "BAS-M", "2023-08-01", None),  # came back later: a new episode
        ("S5", "C", "BAS-A", "2023-02-01", "2023-02-01"),  # never paid
    )
    e = renewal.episodes(s, PLANS, dt.date(2023, 12, 31)).set_index("episode_id")
    assert list(e.index) == ["S1", "S3", "S4", "S5"]
    a = e.loc["S1"]
    assert (a.subscription_id, a.plan_id, a.charges, a.segment_charges, a.is_active) == (
        "S2",
        "PRM-M",
        7,
        4,
        True,
    )
    assert a.periods == 6  # 7 charges: survived 6 renewals, its plan change no cancellation
    b = e.loc["S3"]
    assert (b.charges, b.cancelled, b.periods) == (3, True, 3)  # 03-15, 04-15, 05-15; failed renewal 3
    assert e.loc["S5", "charges"] == 0
    fits = renewal.fit_groups(e.reset_index(), PLANS)
    assert sum(f.subscriptions for f in fits) == 3  # the episode that never paid is left out


def test_young_data_give_a_report_not_an_exception():
    fits = renewal.fit_groups(renewal.episodes(subs(), PLANS, dt.date(2023, 12, 31)), PLANS)
    frame = renewal.fit_frame(fits, dt.date(2023, 12, 31))
    assert frame["status"].tolist() == ["not_fitted", "not_fitted"]
    assert frame["reason"].str.contains("no subscriptions yet").all()
    assert sorted(frame["billing_cycle"]) == ["annual", "monthly"]
    value = renewal.value_frame(
        renewal.episodes(subs(), PLANS, dt.date(2023, 12, 31)), {}, dt.date(2023, 12, 31)
    )
    assert value.empty and list(value.columns) == list(renewal.VALUE_COLUMNS)


def test_a_plan_with_enough_data_is_fitted_alone_the_others_pooled():
    rng = np.random.default_rng(8)
    rows = []
    for i in range(400):
        plan = "BAS-M" if i < 300 else "PRM-M"
        start = np.datetime64("2022-01-01") + int(rng.integers(0, 600))
        life = int(rng.geometric(0.08)) * 30 + 3
        end = start + life
        rows.append(
            (f"S{i}", f"C{i}", plan, str(start), str(end) if end <= np.datetime64("2023-12-31") else None)
        )
    e = renewal.episodes(subs(*rows), PLANS, dt.date(2023, 12, 31))
    fits = {f.covers_plans: f for f in renewal.fit_groups(e, PLANS, min_subscriptions=150)}
    assert fits[("BAS-M",)].group_level == "plan" and fits[("BAS-M",)].status in ("fitted", "capped")
    pooled = fits[("PLS-M", "PRM-M")]
    assert pooled.group_level == "billing_cycle" and "PRM-M (100 subscriptions" in pooled.reason
    assert fits[("BAS-A", "PLS-A", "PRM-A")].status == "not_fitted"


def test_many_subscriptions_are_valued_in_one_pass():
    """100,000 running monthly subscriptions valued in one vectorised pass (bench/bench_clv.py
    times 1,000,000); the expected revenue is price x the closed-form survival."""
    n = 100_000
    rng = np.random.default_rng(2)
    periods = rng.integers(0, 30, n)
    eps = pd.DataFrame(
        {
            "customer_id": np.arange(n),
            "subscription_id": np.arange(n),
            "plan_id": "BAS-M",
            "billing_months": 1,
            "price_usd": 10.0,
            "segment_charges": periods + 1,
            "periods": periods,
            "is_active": True,
        }
    )
    eps["segment_start"] = renewal.add_months(np.full(n, np.datetime64("2023-12-05")), -periods)
    out = renewal.expected_charges(
        eps, {"BAS-M": renewal.SBG(1.0, 3.0, 0, 0, 0, 0, 0, 0)}, dt.date(2023, 12, 31), 90
    )
    # next charges on 2024-01-05, 02-05, 03-05. S(τ) = B(1, 3 + τ) / B(1, 3) = 3 / (3 + τ); each
    # subscription is f = 26/31 of the way into its current period (12-05 .. 01-05) and still
    # running, so P(pay renewal n + j) = S(n + j) / S(n + f) = (3 + n + f) / (3 + n + j)
    n0 = periods.astype(float) + 3
    f = 26 / 31
    expected = 10 * ((n0 + f) / (n0 + 1) + (n0 + f) / (n0 + 2) + (n0 + f) / (n0 + 3))
    assert out["revenue_90d"] == pytest.approx(expected)
    assert out["survival_90d"] == pytest.approx((n0 + f) / (n0 + 3))


def test_a_subscription_deep_into_its_period_is_more_likely_to_renew():
    """Alive 11 months into an annual period is worth more than alive on its first day: the
    renewal-count survival is conditioned on the part of the period already survived."""
    model = renewal.SBG(2.0, 2.0, 0, 0, 0, 0, 0, 0)  # half cancel at the first renewal
    t = np.zeros(3)
    f = np.array([0.0, 0.5, 11 / 12])
    s = renewal._survival({"BAS-A": model}, np.array(["BAS-A"] * 3), t, 1, f)[:, 0]
    assert s[0] == pytest.approx(0.5)  # B(2, 3) / B(2, 2)
    assert s[0] < s[1] < s[2] < 1
    assert s[2] == pytest.approx(np.exp(special.betaln(2, 3) - special.betaln(2, 2 + 11 / 12)))
    geo = renewal.Geometric(0.5, 0, 0, 0, 0)
    g = renewal._survival({"BAS-A": geo}, np.array(["BAS-A"] * 3), t, 1, f)[:, 0]
    assert g == pytest.approx(0.5 ** (1 - f))


def _returns_history(n: int = 400, share: float = 0.4, seed: int = 3) -> pd.DataFrame:
    """Monthly subscriptions cancelled in 2022; a `share` of their customers come back 10-70
    days later on the same plan and are still running at the end of 2023."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        start = np.datetime64("2022-01-01") + int(rng.integers(0, 60))
        end = start + 95
        rows.append((f"S{i}", f"C{i}", "BAS-M", str(start), str(end)))
        if rng.random() < share:
            back = end + int(rng.integers(10, 70))
            rows.append((f"R{i}", f"C{i}", "BAS-M", str(back), None))
    return subs(*rows)


def test_returns_are_measured_on_cancellations_with_a_year_of_follow_up():
    eps = renewal.episodes(_returns_history(), PLANS, dt.date(2023, 12, 31))
    r = renewal.fit_returns(eps, dt.date(2023, 12, 31))
    assert r.cancellations == 400 and r.reason == ""
    assert r.share == pytest.approx(0.4, abs=0.06)
    assert r.gap_pmf.sum() == pytest.approx(1) and r.gap_pmf[3:].sum() == 0  # 10-70 days: buckets 0-2
    assert r.survival_of_gap(np.array([0.0, 365.0])) == pytest.approx([1.0, 1 - r.share])
    young = renewal.fit_returns(eps, dt.date(2022, 6, 30))  # nothing watched for a year yet
    assert young.share == 0 and "cancellations with a year of follow-up" in young.reason


def test_value_counts_returns_after_cancelling_and_of_customers_between_subscriptions():
    as_of = dt.date(2023, 12, 31)
    history = _returns_history()
    # C-late cancelled 20 days ago (not back yet); C-old cancelled two years ago (out of reach)
    extra = subs(
        ("L1", "C-late", "BAS-M", "2023-06-11", "2023-12-11"),
        ("O1", "C-old", "BAS-M", "2021-06-01", "2021-12-01"),
    )
    eps = renewal.episodes(pd.concat([history, extra], ignore_index=True), PLANS, as_of)
    models = {"BAS-M": renewal.SBG(1.0, 9.0, 0, 0, 0, 0, 0, 0)}
    returns = renewal.fit_returns(eps, as_of)
    with_back = renewal.value_frame(eps, models, as_of, returns=returns).set_index("customer_id")
    without = renewal.value_frame(
        eps, models, as_of, returns=renewal.ReturnModel(0.0, returns.gap_pmf, 0, "off")
    ).set_index("customer_id")
    running = with_back["active_subscriptions"] > 0
    assert (with_back.loc[running, "expected_subscription_revenue_365d_usd"]
            > without.loc[running, "expected_subscription_revenue_365d_usd"]).all()  # fmt: skip
    late = with_back.loc["C-late"]
    assert (
        late["active_subscriptions"] == 0 and 0 < late["expected_subscription_revenue_365d_usd"] < 12 * 9.99
    )
    assert late["subscription_cancel_probability_90d"] == 0  # nothing running: nothing at risk
    assert without.loc["C-late", "expected_subscription_revenue_365d_usd"] == 0
    assert with_back.loc["C-old", "expected_subscription_revenue_365d_usd"] == 0


def test_the_model_curve_declines_through_an_annual_plans_year():
    fit = pd.DataFrame(
        {"covers_plans": ["BAS-M", "BAS-A", "PLS-M"], "alpha": [1.0, 2.0, None], "beta": [3.0, 2.0, None]}
    )
    curve = renewal.curve_frame(fit, PLANS, months=24).set_index(["plan_id", "months_since_start"])
    assert curve.loc[("BAS-M", 2), "model_survival"] == pytest.approx(0.6)  # 3 / (3 + 2)
    annual = curve.loc["BAS-A", "model_survival"].to_numpy()
    assert annual[0] == 1 and annual[12] == pytest.approx(0.5)  # B(2, 3) / B(2, 2) after a renewal
    assert (np.diff(annual) < 0).all()  # through the year, not a step at the renewal
    assert "PLS-M" not in curve.index.get_level_values(0)  # not fitted: no curve


def test_value_draws_are_the_distribution_of_the_charges_paid():
    """One running monthly subscription: its 12-month value is price x K, K the charges paid before
    it cancels, P(K >= k) = P(charge k paid); the draws read that distribution at stratified
    levels, so their mean is the expectation (returns off) and their shares are its
    probabilities. Two subscriptions of one customer add up: the mean doubles and the spread
    grows less than twice (independent)."""
    as_of = dt.date(2023, 12, 31)
    models = {"BAS-M": renewal.SBG(1.0, 3.0, 0, 0, 0, 0, 0, 0)}
    one = subs(("S1", "C1", "BAS-M", "2023-10-05", None))
    eps = renewal.episodes(one, PLANS, as_of)
    off = renewal.ReturnModel(0.0, np.zeros(13), 0, "off")
    value = renewal.value_frame(eps, models, as_of, returns=off)
    ids, draws = renewal.value_samples(eps, models, as_of, samples=1000)
    assert ids.tolist() == ["C1"] and draws.shape == (1, 1000)
    expected = value["predicted_subscription_value_12m_usd"].iloc[0]
    assert draws.mean() == pytest.approx(expected, rel=2e-3)
    e = renewal.expected_charges(eps[eps["is_active"]].reset_index(drop=True), models, as_of, 365)
    price = PLANS.set_index("plan_id").loc["BAS-M", "list_price_usd"]
    paid = np.round(draws[0] / price).astype(int)
    assert paid.min() == 0 and paid.max() == 12  # the next 12 monthly charges fall in 365 days
    surv = e["survival"][0]
    assert (paid == 0).mean() == pytest.approx(1 - surv[0], abs=2e-3)
    assert (paid == 12).mean() == pytest.approx(surv[11], abs=2e-3)

    two = subs(("S1", "C1", "BAS-M", "2023-10-05", None), ("S2", "C1", "BAS-M", "2023-10-05", None))
    eps2 = renewal.episodes(two, PLANS, as_of)
    _, draws2 = renewal.value_samples(eps2, models, as_of, samples=1000)
    assert draws2.mean() == pytest.approx(2 * expected, rel=5e-3)
    assert draws[0].std() < draws2[0].std() < 2 * draws[0].std()
    # the same draws whatever order the episodes come in (a warehouse read has none)
    mixed = renewal.episodes(
        subs(("S1", "C1", "BAS-M", "2023-10-05", None), ("S2", "C1", "PRM-M", "2023-06-20", None)),
        PLANS,
        as_of,
    )
    _, forward = renewal.value_samples(mixed, models | {"PRM-M": models["BAS-M"]}, as_of, samples=1000)
    _, backward = renewal.value_samples(
        mixed.iloc[::-1].reset_index(drop=True), models | {"PRM-M": models["BAS-M"]}, as_of, samples=1000
    )
    np.testing.assert_array_equal(backward, forward)
