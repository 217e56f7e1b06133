"""Subscription value: a contractual renewal model, fitted by maximum likelihood.

**Shifted-beta-geometric** (Fader & Hardie 2007, "How to project customer retention"): at each
renewal of its billing cycle a subscription is cancelled with probability θ, and θ varies between
subscriptions as Beta(α, β). A subscription cancelled at its t-th renewal (t = 1, 2, ...) has
probability B(α + 1, β + t − 1) / B(α, β); one that has survived t renewals so far (still paying:
right-censored) B(α, β + t) / B(α, β) = S(t). Heterogeneity is what makes retention rise with
tenure: the subscriptions that cancel easily leave first. Given t renewals survived, the chance
of surviving j more is S(t + j) / S(t).

The data are renewal periods built from the billing system's subscriptions (`episodes`):
- a subscription is charged at its start and every `billing_months` months after it while it
  runs (core.fct_revenue's convention, `add_months` below; paused subscriptions are charged);
- a plan change (one subscription ends and another of the same customer starts on that day) is
  not a cancellation: the two are chained into one episode, whose periods add up;
- an episode ended by the as-of date was cancelled at its t-th renewal, t = the charges it paid;
  one still running on the as-of date has survived (charges − 1) renewals. An episode cancelled
  before its first charge (started and ended on one day) never paid and is left out.

Groups: one fit per plan (a plan is a billing cycle and a tier); a plan with fewer than
`MIN_SUBSCRIPTIONS` episodes or `MIN_CANCELLED` cancellations is pooled into its billing cycle
(the report says so); a billing cycle that still cannot be fitted is reported with its reason and
its subscriptions are valued as renewing (no cancellation observed: the maximum-likelihood limit).

Why the fit is fast: the likelihood depends on the data only through the counts of (periods,
cancelled) pairs, a few hundred at most, so 1,000,000 subscriptions are one `np.unique`; the
log-likelihood and its analytic gradient (digammas) go to L-BFGS-B in (logit of the mean
cancellation probability, log of α + β), where the data pin the first well. When the data
show no heterogeneity, α and β grow together without bound (the limit is a plain geometric
model); they are then held at a cap and the report says so, as the BG/NBD fit does.

A plain geometric model (one cancellation probability per group, no heterogeneity:
`fit_geometric`) is the simpler alternative the bench compares on held-out history
(`holdout_comparison`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special

from clv.errors import UserError

MIN_SUBSCRIPTIONS = 100  # episodes a plan needs for a fit of its own
MIN_CANCELLED = 10  # cancellations a plan needs for a fit of its own
GRADIENT_TOLERANCE = 1e-6  # on the gradient of the mean log-likelihood, in (logit mean, log(α + β))
_LOG_CAP = 9.0  # log(α + β) at most this (α + β ≈ 8100): beyond, the data show no heterogeneity
_LOGIT_BOUND = 30.0
_MAX_FUTURE_CHARGES = 13  # a monthly plan has at most 13 charges in 365 days


class RenewalError(UserError):
    """Invalid input to the renewal model; the message says what was wrong."""


# --------------------------------------------------------------------------------------------
# the charge calendar (core.fct_revenue's convention)


def add_months(day: np.ndarray, months: np.ndarray) -> np.ndarray:
    """The date `months` calendar months after `day` (datetime64[D]; the two broadcast), clamped to
    the last day of a shorter month, as DuckDB's `day + TO_MONTHS(n)` and Spark's ADD_MONTHS
    (macro @add_months). Integer arithmetic over a table of month starts: numpy's calendar
    conversions run once per distinct month, not once per element."""
    day = np.asarray(day, dtype="datetime64[D]")
    month = day.astype("datetime64[M]")
    dom = (day - month.astype("datetime64[D]")).astype(np.int64)
    target = month.astype(np.int64) + np.asarray(months, dtype=np.int64)
    if target.size == 0:
        return np.broadcast_to(day, target.shape).copy()
    lo = int(target.min())
    starts = (
        np.arange(lo, int(target.max()) + 2).astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    )
    first = starts[target - lo]
    length = starts[target - lo + 1] - first
    return (first + np.minimum(dom, length - 1)).astype("datetime64[D]")


def charges_before(start: np.ndarray, months: np.ndarray, limit: np.ndarray) -> np.ndarray:
    """Charges dated before `limit`: start + k x months (k = 0, 1, ...) < limit."""
    start = np.asarray(start, dtype="datetime64[D]")
    limit = np.asarray(limit, dtype="datetime64[D]")
    months = np.asarray(months, dtype=np.int64)
    span = limit.astype("datetime64[M]").astype(np.int64) - start.astype("datetime64[M]").astype(np.int64)
    k = np.floor_divide(np.maximum(span, 0), months)
    k = k - (add_months(start, k * months) >= limit)
    return np.where(start < limit, k + 1, 0)


def charges_in_window(
    start: np.ndarray, end: np.ndarray, months: np.ndarray, first_day: dt.date, last_day: dt.date
) -> np.ndarray:
    """Charges of subscriptions (start, end exclusive, NaT = still running) dated in
    [first_day, last_day]: what core.fct_revenue bills in that window."""
    end = np.asarray(end, dtype="datetime64[D]")
    hi = np.datetime64(last_day + dt.timedelta(days=1), "D")
    lo = np.datetime64(first_day, "D")
    upto = np.where(np.isnat(end), hi, np.minimum(end, hi))
    before = np.where(np.isnat(end), lo, np.minimum(end, lo))
    return charges_before(start, months, upto) - charges_before(start, months, before)


# --------------------------------------------------------------------------------------------
# the models


@dataclass(frozen=True)
class SBG:
    """Fitted shifted-beta-geometric parameters and the fit's diagnostics."""

    alpha: float
    beta: float
    log_likelihood: float
    subscriptions: int
    cancelled: int
    periods: int  # renewal opportunities observed (renewals survived + cancellations)
    iterations: int
    gradient_norm: float
    capped: tuple[str, ...] = ()
    # covariance of (log α, log β) from the observed information; None when capped (no maximum)
    cov_log: tuple[tuple[float, float], tuple[float, float]] | None = None

    def intervals(self) -> dict[str, float | None]:
        """Standard errors (delta method) and 95% intervals, exp(log θ ± 1.96 se) so they stay
        positive: alpha_se, alpha_lower_95, alpha_upper_95 and the same for beta (None without a
        covariance)."""
        out: dict[str, float | None] = {}
        for i, (name, value) in enumerate((("alpha", self.alpha), ("beta", self.beta))):
            se_log = None if self.cov_log is None else float(np.sqrt(max(self.cov_log[i][i], 0.0)))
            out[f"{name}_se"] = None if se_log is None else value * se_log
            out[f"{name}_lower_95"] = None if se_log is None else float(value * np.exp(-1.96 * se_log))
            out[f"{name}_upper_95"] = None if se_log is None else float(value * np.exp(1.96 * se_log))
        return out

    def log_survival(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        return special.betaln(self.alpha, self.beta + t) - special.betaln(self.alpha, self.beta)

    def conditional_survival(self, survived: np.ndarray, ahead: np.ndarray) -> np.ndarray:
        """P(survive `ahead` more renewals | survived `survived` so far) = S(t + j) / S(t)."""
        t = np.asarray(survived, dtype=float)
        return np.exp(
            special.betaln(self.alpha, self.beta + t + ahead) - special.betaln(self.alpha, self.beta + t)
        )

    def retention(self, survived: np.ndarray, count: int) -> np.ndarray:
        """P(survive renewal t + i + 1 | survived t + i), i = 0 .. count - 1, one row per
        subscription: (β + t + i) / (α + β + t + i). Their running product is the conditional
        survival, without a Beta function per cell."""
        t = np.asarray(survived, dtype=float)[:, None] + np.arange(count)[None, :]
        return (self.beta + t) / (self.alpha + self.beta + t)

    def within_period(self, survived: np.ndarray, elapsed: np.ndarray) -> np.ndarray:
        """P(still running a fraction `elapsed` into period t + 1 | survived t renewals), with a
        constant cancellation hazard within a period (the continuous reading of the geometric):
        S(t + f) / S(t)."""
        t = np.asarray(survived, dtype=float)
        return np.exp(
            special.betaln(self.alpha, self.beta + t + elapsed) - special.betaln(self.alpha, self.beta + t)
        )

    @property
    def mean_cancel_probability(self) -> float:
        return self.alpha / (self.alpha + self.beta)


@dataclass(frozen=True)
class Geometric:
    """One cancellation probability per renewal for everyone (no heterogeneity)."""

    theta: float
    log_likelihood: float
    subscriptions: int
    cancelled: int
    periods: int

    def retention(self, survived: np.ndarray, count: int) -> np.ndarray:
        """P(survive the next renewal) = 1 - θ, whatever the tenure: rows x `count` renewals."""
        return np.full((len(np.asarray(survived)), count), 1 - self.theta)

    def within_period(self, survived: np.ndarray, elapsed: np.ndarray) -> np.ndarray:
        """(1 - θ)^f: see `SBG.within_period`."""
        return (1 - self.theta) ** np.asarray(elapsed, dtype=float)

    def log_survival(self, t: np.ndarray) -> np.ndarray:
        return np.asarray(t, dtype=float) * np.log1p(-self.theta)


def _validate(periods, cancelled) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(periods, dtype=float)
    c = np.asarray(cancelled, dtype=bool)
    if t.shape != c.shape:
        raise RenewalError(f"periods and cancelled differ in length ({t.shape} vs {c.shape})")
    if not len(t):
        raise RenewalError("no subscriptions to fit")
    if not np.all(np.isfinite(t)) or np.any(t != np.floor(t)):
        raise RenewalError("periods must be whole numbers of renewals")
    if np.any(c & (t < 1)):
        raise RenewalError("a cancelled subscription must have failed a renewal (periods >= 1)")
    if np.any(t < 0):
        raise RenewalError("periods must be 0 or more")
    return t, c


def _compress(t: np.ndarray, c: np.ndarray):
    """Distinct (periods, cancelled) pairs and their counts."""
    key = t * 2 + c
    u, n = np.unique(key, return_counts=True)
    return np.floor(u / 2), (u % 2).astype(bool), n.astype(float)


def log_likelihood(alpha: float, beta: float, periods, cancelled, weights=None) -> tuple[float, np.ndarray]:
    """Total sBG log-likelihood and its gradient with respect to (log α, log β)."""
    t = np.asarray(periods, dtype=float)
    c = np.asarray(cancelled, dtype=bool)
    w = np.ones_like(t) if weights is None else np.asarray(weights, dtype=float)
    a, b = alpha, beta
    base = special.betaln(a, b)
    ll = np.where(c, special.betaln(a + 1, b + t - 1), special.betaln(a, b + t)) - base
    ab, abt = special.digamma(a + b), special.digamma(a + b + t)
    # d/dα and d/dβ of each term (digamma of the Beta functions' arguments)
    da = np.where(c, special.digamma(a + 1) - special.digamma(a), 0.0) + ab - abt
    db = np.where(c, special.digamma(b + t - 1), special.digamma(b + t)) - special.digamma(b) + ab - abt
    grad = np.array([a * np.dot(w, da), b * np.dot(w, db)])
    return float(np.dot(w, ll)), grad


def log_hessian(alpha: float, beta: float, periods, cancelled, weights=None) -> np.ndarray:
    """The sBG log-likelihood's Hessian with respect to (log α, log β), analytic (trigamma):
    with ln B(x, y) = ln Γ(x) + ln Γ(y) - ln Γ(x + y), a cancellation at renewal t contributes
    ln B(α + 1, β + t - 1) - ln B(α, β), a subscription that survived t renewals
    ln B(α, β + t) - ln B(α, β)."""
    t = np.asarray(periods, dtype=float)
    c = np.asarray(cancelled, dtype=bool)
    w = np.ones_like(t) if weights is None else np.asarray(weights, dtype=float)
    a, b = alpha, beta
    ab, abt = special.polygamma(1, a + b), special.polygamma(1, a + b + t)
    h_aa = np.where(c, special.polygamma(1, a + 1) - special.polygamma(1, a), 0.0) + ab - abt
    h_bb = (
        np.where(c, special.polygamma(1, b + t - 1), special.polygamma(1, b + t))
        - special.polygamma(1, b)
        + ab
        - abt
    )
    h_ab = ab - abt
    H = np.array([[np.dot(w, h_aa), np.dot(w, h_ab)], [np.dot(w, h_ab), np.dot(w, h_bb)]])
    _, g = log_likelihood(a, b, t, c, w)  # (α dℓ/dα, β dℓ/dβ)
    theta = np.array([a, b])
    return theta[:, None] * H * theta[None, :] + np.diag(g)


def fit_sbg(periods, cancelled) -> SBG:
    """Maximum likelihood on renewal data: `periods` = renewals survived (still paying) or the
    renewal at which the subscription was cancelled (`cancelled` true)."""
    t, c = _validate(periods, cancelled)
    if not c.any():
        raise RenewalError("no cancellations yet: the cancellation probability cannot be estimated")
    if c.all() and np.all(t == 1):
        raise RenewalError("every subscription cancelled at its first renewal: no renewal observed")
    ut, uc, n = _compress(t, c)
    total = n.sum()
    geo = fit_geometric(t, c)

    # parameters: x = (logit mu, log kappa), mu = alpha / (alpha + beta) the mean cancellation
    # probability, kappa = alpha + beta the concentration: the data identify mu well, and when
    # they show no heterogeneity the likelihood is flat in kappa towards the geometric limit
    def params(x):
        mu = special.expit(x[0])
        kappa = np.exp(x[1])
        return mu * kappa, (1 - mu) * kappa, mu

    def objective(x):
        a, b, mu = params(x)
        ll, (ga, gb) = log_likelihood(a, b, ut, uc, n)
        return -ll / total, -np.array([ga * (1 - mu) - gb * mu, ga + gb]) / total

    theta = min(max(geo.theta, 1e-6), 1 - 1e-6)
    x0 = np.array([special.logit(theta), np.log(1 / theta)])
    bounds = [(-_LOGIT_BOUND, _LOGIT_BOUND), (-_LOG_CAP, _LOG_CAP)]
    res = optimize.minimize(
        objective,
        x0,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 1000},
    )
    x = res.x
    _, g = objective(x)
    at_cap = np.array([False, x[1] >= _LOG_CAP - 1e-6])
    grad_norm = float(np.linalg.norm(np.where(at_cap, 0.0, g)))
    if grad_norm > GRADIENT_TOLERANCE:
        raise RenewalError(f"the sBG fit did not converge (gradient norm {grad_norm:.1e}: {res.message})")
    alpha, beta, _ = params(x)
    ll, _ = log_likelihood(alpha, beta, ut, uc, n)
    capped = ("alpha", "beta") if at_cap[1] else ()
    cov = None
    if not capped:
        info = -log_hessian(alpha, beta, ut, uc, n)
        if np.all(np.isfinite(info)) and np.linalg.det(info) > 0 and info[0, 0] > 0:
            inv = np.linalg.inv(info)
            cov = ((float(inv[0, 0]), float(inv[0, 1])), (float(inv[1, 0]), float(inv[1, 1])))
    return SBG(
        float(alpha),
        float(beta),
        ll,
        int(total),
        int(n[uc].sum()),
        int(np.dot(n, ut)),
        int(res.nit),
        grad_norm,
        capped,
        cov,
    )


def fit_geometric(periods, cancelled) -> Geometric:
    """Maximum likelihood of one cancellation probability per renewal: cancellations / renewal
    opportunities faced (a cancelled subscription faced its t renewals, a running one its t)."""
    t, c = _validate(periods, cancelled)
    faced = float(t.sum())
    k = int(c.sum())
    theta = k / faced if faced > 0 else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        ll = k * np.log(theta) + (faced - k) * np.log1p(-theta) if 0 < theta < 1 else 0.0
    return Geometric(theta, float(ll), len(t), k, int(faced))


# --------------------------------------------------------------------------------------------
# renewal data from the billing system's subscriptions

SUBSCRIPTION_COLUMNS = ("subscription_id", "customer_id", "plan_id", "start_date", "end_date")
PLAN_COLUMNS = ("plan_id", "plan_tier", "billing_cycle", "billing_months", "list_price_usd")


def _require(frame: pd.DataFrame, columns, what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise RenewalError(f"{what} has no column {', '.join(missing)}")


def _days(series: pd.Series) -> np.ndarray:
    return pd.to_datetime(series).to_numpy(dtype="datetime64[D]")


def _segments(subscriptions: pd.DataFrame, plans: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """The subscriptions started by `as_of` (an end after it is not known yet: NaT), with their
    plan, the charges each has paid by then, and their episode: a subscription of the same
    customer starting on the day the previous one ended continues it (a plan change).
    `episode_id` is the first subscription of the chain."""
    _require(subscriptions, SUBSCRIPTION_COLUMNS, "the subscriptions")
    _require(plans, PLAN_COLUMNS, "the plans")
    day = np.datetime64(as_of, "D")
    s = subscriptions[list(SUBSCRIPTION_COLUMNS)].copy()
    s["start"] = _days(s["start_date"])
    s["end"] = _days(s["end_date"])
    s = s[~np.isnat(s["start"].to_numpy()) & (s["start"].to_numpy() <= day)]
    end = s["end"].to_numpy()
    s["end"] = np.where(~np.isnat(end) & (end <= day), end, np.datetime64("NaT"))
    p = plans[list(PLAN_COLUMNS)].drop_duplicates("plan_id")
    s = s.merge(p, on="plan_id", how="left")  # one row per plan_id: de-duplicated above
    unknown = s.loc[s["billing_months"].isna(), "plan_id"].unique()
    if len(unknown):
        raise RenewalError(
            f"subscriptions of plans not in the plans table: {', '.join(map(str, unknown[:5]))}"
        )
    s = s.sort_values(["customer_id", "start", "subscription_id"], kind="stable").reset_index(drop=True)
    start = s["start"].to_numpy()
    end = s["end"].to_numpy()
    months = s["billing_months"].to_numpy(dtype=np.int64)
    limit = np.where(np.isnat(end), day + 1, end)
    s["segment_charges"] = charges_before(start, months, limit)
    cust = s["customer_id"].to_numpy()
    same = np.r_[False, cust[1:] == cust[:-1]]
    prev_end = np.r_[np.datetime64("NaT"), end[:-1]]
    chained = same & ~np.isnat(prev_end) & (prev_end == start)
    s["episode"] = np.cumsum(~chained)
    s["episode_id"] = s.groupby("episode", sort=False)["subscription_id"].transform("first")
    return s


def episodes(subscriptions: pd.DataFrame, plans: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """One row per subscription episode as of `as_of` (`_segments`, plan changes chained): the
    current segment's plan, price and start, the charges of the episode and of its current
    segment, renewals survived or the renewal cancelled at, and whether it still runs.
    Subscriptions of plans missing from `plans` raise."""
    s = _segments(subscriptions, plans, as_of)
    day = np.datetime64(as_of, "D")
    g = s.groupby("episode", sort=False)
    last = g.tail(1).set_index("episode")
    first = g.head(1).set_index("episode")
    out = pd.DataFrame(
        {
            "episode_id": first["subscription_id"].to_numpy(),
            "subscription_id": last["subscription_id"].to_numpy(),
            "customer_id": last["customer_id"].to_numpy(),
            "plan_id": last["plan_id"].to_numpy(),
            "plan_tier": last["plan_tier"].to_numpy(),
            "billing_cycle": last["billing_cycle"].to_numpy(),
            "billing_months": last["billing_months"].to_numpy(dtype=np.int64),
            "price_usd": last["list_price_usd"].to_numpy(dtype=float),
            "episode_start": first["start"].to_numpy(),
            "segment_start": last["start"].to_numpy(),
            "end": last["end"].to_numpy(),
            "segments": g.size().to_numpy(),
            "charges": g["segment_charges"].sum().to_numpy(),
            "segment_charges": last["segment_charges"].to_numpy(),
        }
    )
    out["is_active"] = np.isnat(out["end"].to_numpy())
    # the renewal an episode faces next, or the one it failed: its current plan's next billing date
    out["renewal_date"] = add_months(
        out["segment_start"].to_numpy(dtype="datetime64[D]"),
        out["segment_charges"].to_numpy(dtype=np.int64) * out["billing_months"].to_numpy(dtype=np.int64),
    )
    # renewals: a cancelled episode failed renewal number `charges`, a running one survived
    # charges - 1. A cancellation counts as a failed renewal once that renewal's date has come:
    # before it, the episode is censored like a running one (survivors are only counted at their
    # renewal date, so counting early cancellations at once would overstate the cancellation
    # rate, most of all for annual plans)
    due = out["renewal_date"].to_numpy() <= day
    out["cancelled"] = ~out["is_active"] & due
    out["periods"] = np.where(out["cancelled"], out["charges"], np.maximum(out["charges"] - 1, 0))
    return out


# --------------------------------------------------------------------------------------------
# group fits


@dataclass(frozen=True)
class GroupFit:
    group_level: str  # plan or billing_cycle
    billing_cycle: str
    plan_tier: str | None
    plan_id: str | None
    covers_plans: tuple[str, ...]
    subscriptions: int
    cancelled: int
    periods: int
    model: SBG | None
    geometric: Geometric | None
    status: str  # fitted, capped or not_fitted
    reason: str


def _fit_group(level, cycle, tier, plan_id, covers, t, c, note: str = "") -> GroupFit:
    n, k, faced = len(t), int(c.sum()), int(t.sum())
    geo = fit_geometric(t, c) if n and faced else None
    try:
        m = fit_sbg(t, c)
    except RenewalError as e:
        reason = f"{e}; its subscriptions are valued as renewing" if n else "no subscriptions yet"
        return GroupFit(
            level, cycle, tier, plan_id, covers, n, k, faced, None, geo, "not_fitted", _join(note, reason)
        )
    if m.capped:
        reason = (
            f"{' and '.join(m.capped)} at the cap: the data show no heterogeneity in the cancellation "
            f"probability (mean {m.mean_cancel_probability:.3f} per renewal is what they identify)"
        )
        return GroupFit(
            level, cycle, tier, plan_id, covers, n, k, faced, m, geo, "capped", _join(note, reason)
        )
    return GroupFit(level, cycle, tier, plan_id, covers, n, k, faced, m, geo, "fitted", note)


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def fit_groups(
    eps: pd.DataFrame,
    plans: pd.DataFrame | None = None,
    min_subscriptions: int = MIN_SUBSCRIPTIONS,
    min_cancelled: int = MIN_CANCELLED,
) -> list[GroupFit]:
    """One sBG per plan with enough data, one per billing cycle for the plans pooled into it
    (with `plans`, every plan of the table is covered, those without subscriptions pooled, so a
    billing cycle without any subscriber is a row with its reason). Episodes that never paid
    (0 charges) are left out."""
    e = eps[eps["charges"] > 0]
    if plans is not None:
        catalogue = plans[["plan_id", "plan_tier", "billing_cycle"]].drop_duplicates("plan_id")
    else:
        catalogue = eps[["plan_id", "plan_tier", "billing_cycle"]].drop_duplicates("plan_id")
    fits: list[GroupFit] = []
    for cycle, cycle_plans in catalogue.groupby("billing_cycle", sort=True):
        pooled: list[str] = []
        notes: list[str] = []
        for plan in cycle_plans.sort_values("plan_id").itertuples(index=False):
            by_plan = e[e["plan_id"] == plan.plan_id]
            n, k = len(by_plan), int(by_plan["cancelled"].sum())
            if n >= min_subscriptions and k >= min_cancelled:
                fit = _fit_group(
                    "plan",
                    str(cycle),
                    str(plan.plan_tier),
                    str(plan.plan_id),
                    (str(plan.plan_id),),
                    by_plan["periods"].to_numpy(),
                    by_plan["cancelled"].to_numpy(),
                )
                if fit.model is not None:
                    fits.append(fit)
                    continue
            pooled.append(str(plan.plan_id))
            notes.append(f"{plan.plan_id} ({n} subscriptions, {k} cancelled)")
        if pooled:
            rows = e[e["plan_id"].isin(pooled)]
            note = (
                f"pooled: {', '.join(notes)}, below {min_subscriptions} subscriptions or "
                f"{min_cancelled} cancellations for a fit of its own"
            )
            fits.append(
                _fit_group(
                    "billing_cycle",
                    str(cycle),
                    None,
                    None,
                    tuple(pooled),
                    rows["periods"].to_numpy(),
                    rows["cancelled"].to_numpy(),
                    note,
                )
            )
    return fits


FIT_COLUMNS = {
    "business_date": "DATE",
    "group_level": "TEXT",
    "billing_cycle": "TEXT",
    "plan_tier": "TEXT",
    "plan_id": "TEXT",
    "covers_plans": "TEXT",
    "subscriptions": "INT",
    "cancelled": "INT",
    "periods": "INT",
    "alpha": "DOUBLE",
    "beta": "DOUBLE",
    "alpha_se": "DOUBLE",
    "alpha_lower_95": "DOUBLE",
    "alpha_upper_95": "DOUBLE",
    "beta_se": "DOUBLE",
    "beta_lower_95": "DOUBLE",
    "beta_upper_95": "DOUBLE",
    "mean_cancel_probability": "DOUBLE",
    "log_likelihood": "DOUBLE",
    "iterations": "INT",
    "gradient_norm": "DOUBLE",
    "geometric_cancel_probability": "DOUBLE",
    "geometric_log_likelihood": "DOUBLE",
    "status": "TEXT",
    "reason": "TEXT",
}


INTERVAL_COLUMNS = tuple(f"{p}_{s}" for p in ("alpha", "beta") for s in ("se", "lower_95", "upper_95"))


def fit_frame(fits: list[GroupFit], as_of: dt.date) -> pd.DataFrame:
    rows = []
    for f in fits:
        m, g = f.model, f.geometric
        rows.append(
            {
                "business_date": as_of,
                "group_level": f.group_level,
                "billing_cycle": f.billing_cycle,
                "plan_tier": f.plan_tier,
                "plan_id": f.plan_id,
                "covers_plans": ",".join(f.covers_plans),
                "subscriptions": f.subscriptions,
                "cancelled": f.cancelled,
                "periods": f.periods,
                "alpha": m.alpha if m else None,
                "beta": m.beta if m else None,
                **(m.intervals() if m else dict.fromkeys(INTERVAL_COLUMNS)),
                "mean_cancel_probability": m.mean_cancel_probability if m else None,
                "log_likelihood": m.log_likelihood if m else None,
                "iterations": m.iterations if m else None,
                "gradient_norm": m.gradient_norm if m else None,
                "geometric_cancel_probability": g.theta if g else None,
                "geometric_log_likelihood": g.log_likelihood if g else None,
                "status": f.status,
                "reason": f.reason,
            }
        )
    return pd.DataFrame(rows, columns=list(FIT_COLUMNS)).astype(
        {"alpha": float, "beta": float, **dict.fromkeys(INTERVAL_COLUMNS, float)}
    )


def models_from_frame(frame: pd.DataFrame) -> dict[str, SBG | None]:
    """Plan id -> its fitted sBG (None: not fitted, valued as renewing), from `fit_frame`'s rows."""
    out: dict[str, SBG | None] = {}
    for r in frame.itertuples(index=False):
        ok = r.alpha is not None and pd.notna(r.alpha) and r.beta is not None and pd.notna(r.beta)
        model = SBG(float(r.alpha), float(r.beta), 0.0, 0, 0, 0, 0, 0.0) if ok else None
        for plan in str(r.covers_plans).split(","):
            if plan:
                out[plan] = model
    return out


CURVE_MONTHS = 120  # the model's retention curve, months since the start
CURVE_COLUMNS = {"plan_id": "TEXT", "months_since_start": "INT", "model_survival": "DOUBLE"}


def curve_frame(fit: pd.DataFrame, plans: pd.DataFrame, months: int = CURVE_MONTHS) -> pd.DataFrame:
    """The fitted model's retention curve per plan, to draw beside the Kaplan–Meier one
    (marts.mart_subscription_retention): the share of new subscriptions still running after month
    k = S(k / billing_months), k = 0 .. `months`: S(n) after n renewals, and between renewals the
    constant-hazard reading of `SBG.within_period` (an annual plan declines through its year, as
    its cancellations do in the data). Plans whose group is not fitted have no rows."""
    models = models_from_frame(fit)
    k = np.arange(months + 1)
    parts = []
    for r in plans[["plan_id", "billing_months"]].itertuples(index=False):
        m = models.get(r.plan_id)
        if m is None:
            continue
        parts.append(
            pd.DataFrame(
                {
                    "plan_id": r.plan_id,
                    "months_since_start": k,
                    "model_survival": np.exp(m.log_survival(k / float(r.billing_months))),
                }
            )
        )
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(CURVE_COLUMNS))


# --------------------------------------------------------------------------------------------
# expected revenue per active subscription, then per customer


def _survival(
    models: dict, plan_id: np.ndarray, survived: np.ndarray, count: int, elapsed: np.ndarray | None = None
) -> np.ndarray:
    """P(pay renewal t + j | running now), j = 1 .. count, by each row's plan model (1 where the plan
    has none). A subscription a fraction f into its current period has already come through that
    much of it, so the renewal-count survival S(t + j) / S(t) is divided by the model's
    P(running at t + f | t) (`within_period`); f = 0 gives the renewal-count survival."""
    out = np.ones((len(survived), count))
    f = np.zeros(len(survived)) if elapsed is None else np.clip(np.asarray(elapsed, dtype=float), 0.0, 1.0)
    for plan in pd.unique(plan_id):
        m = models.get(plan)
        if m is not None:
            rows = plan_id == plan
            through = np.cumprod(m.retention(survived[rows], count), axis=1)
            out[rows] = np.minimum(through / m.within_period(survived[rows], f[rows])[:, None], 1.0)
    return out


def expected_charges(
    active: pd.DataFrame,
    models: dict,
    as_of: dt.date,
    horizon_days: int,
    discount_rate: float = 0.0,
    returns: ReturnModel | None = None,
) -> dict[str, np.ndarray]:
    """Per running episode: the future charge dates within `horizon_days` (start of the current
    segment + k x billing_months), each paid if the subscription survives every renewal up to it
    (sBG conditional survival given the renewals survived); expected revenue in 90 days and in the
    horizon (undiscounted and discounted at `discount_rate` a year by the charge's day), survival
    at day 90 and the probability of cancelling within 90 days. With `returns`, the revenue also
    holds what a return after a cancellation within the horizon brings (`_return_revenue`; the
    cancellation dated mid-way through the period it ends)."""
    day = np.datetime64(as_of, "D")
    j = np.arange(1, _MAX_FUTURE_CHARGES + 1)
    seg_start = active["segment_start"].to_numpy(dtype="datetime64[D]")
    months = active["billing_months"].to_numpy(dtype=np.int64)
    cycle = active["segment_charges"].to_numpy(dtype=np.int64)[:, None] - 1 + j[None, :]
    dates = add_months(seg_start[:, None], cycle * months[:, None])
    ahead_days = (dates - day).astype(np.int64)
    in_90 = (ahead_days >= 1) & (ahead_days <= 90)
    in_h = (ahead_days >= 1) & (ahead_days <= horizon_days)
    survived = active["periods"].to_numpy(dtype=float)
    # how far into the current paid period each subscription is on `as_of`
    period_start = add_months(seg_start, (cycle[:, 0] - 1) * months)
    length = (dates[:, 0] - period_start).astype(np.int64)
    elapsed = (day - period_start).astype(np.int64) / np.maximum(length, 1)
    surv = _survival(models, active["plan_id"].to_numpy(), survived, len(j), elapsed)
    price = active["price_usd"].to_numpy(dtype=float)[:, None]
    disc = (1 + discount_rate) ** (-ahead_days / 365.0)
    renewals_90 = in_90.sum(axis=1)
    s90 = np.where(
        renewals_90 > 0, np.take_along_axis(surv, np.maximum(renewals_90 - 1, 0)[:, None], 1)[:, 0], 1.0
    )
    back = {"r90": 0.0, "rh": 0.0, "vh": 0.0}
    if returns is not None and returns.share > 0:
        back = _returns_after_cancelling(
            active, models, returns, surv, ahead_days, horizon_days, discount_rate
        )
    return {
        # (episode, charge): each future charge's value (0 outside the horizon), P(it is paid)
        "charge_value": price * in_h * disc,
        "survival": surv,
        "revenue_90d": (price * surv * in_90).sum(axis=1) + back["r90"],
        "revenue_horizon": (price * surv * in_h).sum(axis=1) + back["rh"],
        "value_horizon": (price * surv * in_h * disc).sum(axis=1) + back["vh"],
        "survival_90d": s90,
        "cancel_90d": 1 - s90,
        "next_charge_date": dates[:, 0],
    }


RETURN_FOLLOW_UP_DAYS = 365  # a cancellation is watched this long for a return
_GAP_BUCKET_DAYS = 30  # return gaps in months of 30 days
MIN_RETURN_CANCELLATIONS = 30  # cancellations with a whole year of follow-up a return model needs


@dataclass(frozen=True)
class ReturnModel:
    """Resubscription: of the episodes cancelled at least `RETURN_FOLLOW_UP_DAYS` before the
    as-of date, the share whose customer started a new one within that year (`share`), and when:
    `gap_pmf[m]` = P(the return comes m x 30 .. (m + 1) x 30 days after the cancellation | a return).
    Empirical, one for all plans; `reason` says why there is none (share 0)."""

    share: float
    gap_pmf: np.ndarray
    cancellations: int
    reason: str = ""

    def survival_of_gap(self, days: np.ndarray) -> np.ndarray:
        """P(no return within `days` of the cancellation) = 1 - share x P(gap <= days)."""
        cdf = np.concatenate([[0.0], np.cumsum(self.gap_pmf)])
        m = np.clip(np.asarray(days, dtype=float) / _GAP_BUCKET_DAYS, 0, len(self.gap_pmf))
        return 1 - self.share * np.interp(m, np.arange(len(cdf)), cdf)


def fit_returns(eps: pd.DataFrame, as_of: dt.date) -> ReturnModel:
    """The return model of `eps` (see `ReturnModel`)."""
    buckets = RETURN_FOLLOW_UP_DAYS // _GAP_BUCKET_DAYS + 1
    e = eps.sort_values(["customer_id", "episode_start"])
    nxt = e.groupby("customer_id", sort=False)["episode_start"].shift(-1).to_numpy(dtype="datetime64[D]")
    end = e["end"].to_numpy(dtype="datetime64[D]")
    day = np.datetime64(as_of, "D")
    watched = ~np.isnat(end) & (
        (day - end).astype("timedelta64[D]").astype(np.int64) >= RETURN_FOLLOW_UP_DAYS
    )
    n = int(watched.sum())
    if n < MIN_RETURN_CANCELLATIONS:
        return ReturnModel(
            0.0, np.zeros(buckets), n,
            f"{n} cancellations with a year of follow-up (a return model needs {MIN_RETURN_CANCELLATIONS})",
        )  # fmt: skip
    gap = (nxt[watched] - end[watched]).astype("timedelta64[D]").astype(np.float64)
    back = ~np.isnan(gap) & (gap >= 0) & (gap <= RETURN_FOLLOW_UP_DAYS)  # < 0: ran side by side
    if not back.any():
        return ReturnModel(0.0, np.zeros(buckets), n, "no cancelled subscriber came back within a year")
    pmf = np.bincount((gap[back] // _GAP_BUCKET_DAYS).astype(np.int64), minlength=buckets)[:buckets]
    return ReturnModel(float(back.mean()), pmf / pmf.sum(), n)


def _return_revenue(
    model: SBG | None,
    returns: ReturnModel,
    price: float,
    months: int,
    days_left: np.ndarray,
    discount_rate: float,
    after_days: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Expected revenue (undiscounted, and discounted from the cancellation day) of a return that
    may follow a cancellation with `days_left` days of the horizon to go: the customer comes back
    after a gap drawn from `returns` (given it exceeds `after_days`, for a cancellation already
    `after_days` old with no return yet), pays at once and then renews like a new subscriber of
    the plan (`model`; always, without one)."""
    days_left = np.asarray(days_left, dtype=float)
    gaps = (np.arange(len(returns.gap_pmf)) + 0.5) * _GAP_BUCKET_DAYS  # mid-bucket
    weight = np.broadcast_to(returns.share * returns.gap_pmf, (len(days_left), len(gaps))).copy()
    if after_days is not None:
        already = np.asarray(after_days, dtype=float)
        weight = np.where(gaps[None, :] > already[:, None], weight, 0.0)
        gaps = np.maximum(gaps[None, :] - already[:, None], 0.0)  # from today
        weight = weight / returns.survival_of_gap(already)[:, None]
    else:
        gaps = np.broadcast_to(gaps, weight.shape)
    j = np.arange(_MAX_FUTURE_CHARGES)
    pay = np.ones(len(j)) if model is None else np.exp(model.log_survival(j))  # new subscriber: S(j)
    when = gaps[:, :, None] + j[None, None, :] * months * 30.4375
    inside = when <= days_left[:, None, None]
    cells = weight[:, :, None] * pay[None, None, :] * price * inside
    return cells.sum(axis=(1, 2)), (cells * (1 + discount_rate) ** (-when / 365.0)).sum(axis=(1, 2))


def _return_tables(model, returns: ReturnModel, price: float, months: int, discount_rate: float):
    """`_return_revenue` for 0 .. RETURN_FOLLOW_UP_DAYS days left (index = days), both versions."""
    return _return_revenue(model, returns, price, months, np.arange(RETURN_FOLLOW_UP_DAYS + 1), discount_rate)


def _returns_after_cancelling(
    active: pd.DataFrame,
    models: dict,
    returns: ReturnModel,
    surv: np.ndarray,
    ahead_days: np.ndarray,
    horizon_days: int,
    discount_rate: float,
) -> dict[str, np.ndarray]:
    """Expected revenue of returns after the cancellations `surv` implies: P(cancel at renewal k) =
    P(pay renewal k - 1) - P(pay renewal k), dated mid-way through the period it ends."""
    paid_before = np.concatenate([np.ones((len(surv), 1)), surv[:, :-1]], axis=1)
    q = np.clip(paid_before - surv, 0.0, 1.0)
    prev = np.concatenate([np.zeros((len(surv), 1)), ahead_days[:, :-1]], axis=1)
    when = np.maximum((prev + ahead_days) / 2.0, 0.0)  # days from today to the cancellation
    out = {k: np.zeros(len(active)) for k in ("r90", "rh", "vh")}
    plan_id = active["plan_id"].to_numpy()
    for plan in pd.unique(plan_id):
        rows = plan_id == plan
        first = active.loc[rows].iloc[0]
        undisc, disc = _return_tables(
            models.get(plan), returns, float(first["price_usd"]), int(first["billing_months"]), discount_rate
        )
        for key, horizon in (("r90", 90), ("rh", horizon_days)):
            left = horizon - when[rows]
            idx = np.clip(np.round(left), 0, len(undisc) - 1).astype(np.int64)
            out[key][rows] = (q[rows] * np.where(left >= 0, undisc[idx], 0.0)).sum(axis=1)
            if key == "rh":
                factor = (1 + discount_rate) ** (-when[rows] / 365.0)
                out["vh"][rows] = (q[rows] * factor * np.where(left >= 0, disc[idx], 0.0)).sum(axis=1)
    return out


def lapsed_returns(
    eps: pd.DataFrame, models: dict, returns: ReturnModel, as_of: dt.date, discount_rate: float = 0.0
) -> pd.DataFrame:
    """Customers with no running subscription whose last one was cancelled less than
    `RETURN_FOLLOW_UP_DAYS` ago: the revenue a return would bring in the next 90 and 365 days
    (and its discounted value), given that none has come yet."""
    cols = ["customer_id", "r90", "r365", "v365"]
    if returns.share <= 0 or eps.empty:
        return pd.DataFrame(columns=cols)
    running = set(eps.loc[eps["is_active"], "customer_id"])
    last = eps.sort_values("end").groupby("customer_id", sort=False).tail(1)
    day = np.datetime64(as_of, "D")
    ago = (day - last["end"].to_numpy(dtype="datetime64[D]")).astype("timedelta64[D]").astype(np.float64)
    keep = ~last["customer_id"].isin(running).to_numpy() & ~np.isnan(ago) & (ago < RETURN_FOLLOW_UP_DAYS)
    last, ago = last[keep], ago[keep]
    parts = []
    # the revenue depends on the customer only through the plan and the whole days since the
    # cancellation (0 .. RETURN_FOLLOW_UP_DAYS - 1): tabulated once per plan, then looked up
    days = np.arange(RETURN_FOLLOW_UP_DAYS, dtype=float)
    for plan, rows in last.groupby("plan_id", sort=False).groups.items():
        sel = last.index.get_indexer(rows)
        first = last.iloc[sel[0]]
        args = (models.get(plan), returns, float(first["price_usd"]), int(first["billing_months"]))
        t90, _ = _return_revenue(*args, np.full(len(days), 90.0), discount_rate, days)
        t365, tv365 = _return_revenue(*args, np.full(len(days), 365.0), discount_rate, days)
        at = np.clip(ago[sel], 0, RETURN_FOLLOW_UP_DAYS - 1).astype(np.int64)
        r90, r365, v365 = t90[at], t365[at], tv365[at]
        parts.append(
            pd.DataFrame(
                {"customer_id": last["customer_id"].to_numpy()[sel], "r90": r90, "r365": r365, "v365": v365}
            )
        )
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)


def value_samples(
    eps: pd.DataFrame,
    models: dict,
    as_of: dt.date,
    discount_rate: float = 0.0,
    samples: int = 200,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """What each customer's running subscriptions may bring over the next 365 days (discounted as
    `value_frame`'s 12-month value), as `samples` stratified draws per customer: returns the
    customer ids and an array (customer, sample).

    A running subscription pays its future charges in date order until it is cancelled at a
    renewal, so its value is the sum of its first K charges in the horizon, with P(K >= k) = P(the
    k-th charge is paid) (`expected_charges`' survival): a discrete distribution, read at the
    stratified levels (i + 1/2) / samples. A customer's subscriptions are independent: each one's
    draws are shuffled (a permutation per subscription, fixed by `seed`) before they are added up.
    A return after cancelling (in `value_frame`'s expectation, from `fit_returns`) is not in the
    draws: the draws' mean is the running subscriptions' expected value alone."""
    active = eps[eps["is_active"]].reset_index(drop=True)
    if active.empty:
        return np.array([], dtype=object), np.zeros((0, samples))
    e = expected_charges(active, models, as_of, 365, discount_rate)
    cum = np.concatenate([np.zeros((len(active), 1)), np.cumsum(e["charge_value"], axis=1)], axis=1)
    # P(value = cum[k]) for k = 0 .. charges: CDF(k) = 1 - P(charge k + 1 paid), CDF(last) = 1
    cdf = np.concatenate([1 - e["survival"], np.ones((len(active), 1))], axis=1)
    cdf = np.maximum.accumulate(np.clip(cdf, 0.0, 1.0), axis=1)
    # level (i + 1/2) / samples reads cum[k] for the first k with CDF(k) >= it: of the levels,
    # floor(CDF(k) x samples + 1/2) are at or below CDF(k), so value k takes the difference of
    # those counts, and each row is its values repeated that often (in level order)
    below = np.clip(np.floor(cdf * samples + 0.5), 0, samples).astype(np.int64)
    below[:, -1] = samples
    counts = np.diff(below, axis=1, prepend=0)
    draws = np.repeat(cum.astype(np.float32).ravel(), counts.ravel()).reshape(len(active), samples)
    ids = active["customer_id"].astype(str).to_numpy()
    # by customer, then episode: the same rows meet the same permutations whatever order the
    # episodes came in (a warehouse read has none)
    order = np.lexsort((active["episode_id"].astype(str).to_numpy(), ids))
    ids, draws = ids[order], draws[order]
    customers, first = np.unique(ids, return_index=True)
    if len(customers) < len(ids):  # more than one running subscription: independent draws, added
        draws = np.random.default_rng(seed).permuted(draws, axis=1)
        draws = np.add.reduceat(draws, first, axis=0)
    return customers, draws


VALUE_COLUMNS = {
    "customer_id": "TEXT",
    "subscriptions": "INT",
    "active_subscriptions": "INT",
    "paused_subscriptions": "INT",
    "mrr_usd": "DOUBLE",
    "expected_subscription_revenue_90d_usd": "DOUBLE",
    "expected_subscription_revenue_365d_usd": "DOUBLE",
    "predicted_subscription_value_12m_usd": "DOUBLE",
    "p_subscription_paying_90d": "DOUBLE",
    "subscription_cancel_probability_90d": "DOUBLE",
    "renewals_survived": "INT",
}


def value_frame(
    eps: pd.DataFrame,
    models: dict,
    as_of: dt.date,
    discount_rate: float = 0.0,
    paused: set[str] | frozenset[str] = frozenset(),
    returns: ReturnModel | None = None,
) -> pd.DataFrame:
    """One row per customer with an episode as of `as_of`: running subscriptions (paused ones
    included: billing charges them), monthly recurring revenue now, expected revenue over 90 and
    365 days, the 12-month value discounted at `discount_rate`, P(at least one still paying at the
    end of 90 days) and the value-weighted probability of cancelling within 90 days (for one
    subscription: 1 - its survival to day 90; times the 12-month value it gives the value at
    risk of all of them). `paused` holds the subscription ids paused on the date."""
    if discount_rate < 0 or not np.isfinite(discount_rate):
        raise RenewalError(f"discount rate must be 0 or more (an annual rate), got {discount_rate}")
    if returns is None:
        returns = fit_returns(eps, as_of)
    active = eps[eps["is_active"]].reset_index(drop=True)
    e = expected_charges(active, models, as_of, 365, discount_rate, returns)
    per = pd.DataFrame(
        {
            "customer_id": active["customer_id"].to_numpy(),
            "active": 1,
            "paused": active["subscription_id"].isin(paused).astype(int).to_numpy(),
            "mrr": active["price_usd"].to_numpy(dtype=float) / active["billing_months"].to_numpy(dtype=float),
            "r90": e["revenue_90d"],
            "r365": e["revenue_horizon"],
            "v365": e["value_horizon"],
            "log_gone": np.log(np.clip(e["cancel_90d"], 1e-300, 1.0)),
            "at_risk": e["cancel_90d"] * e["value_horizon"],
            "renewals": active["periods"].to_numpy(dtype=np.int64),
        }
    )
    g = per.groupby("customer_id", sort=True).agg(
        active_subscriptions=("active", "sum"),
        paused_subscriptions=("paused", "sum"),
        mrr_usd=("mrr", "sum"),
        expected_subscription_revenue_90d_usd=("r90", "sum"),
        expected_subscription_revenue_365d_usd=("r365", "sum"),
        predicted_subscription_value_12m_usd=("v365", "sum"),
        log_all_gone=("log_gone", "sum"),
        at_risk=("at_risk", "sum"),
        renewals_survived=("renewals", "max"),
    )
    counts = eps.groupby("customer_id", sort=True).size().rename("subscriptions")
    out = counts.to_frame().join(g, how="left").reset_index()
    has = out["active_subscriptions"].notna()
    value = out["predicted_subscription_value_12m_usd"].fillna(0.0)
    out["p_subscription_paying_90d"] = np.where(has, 1 - np.exp(out["log_all_gone"].fillna(0.0)), 0.0)
    out["subscription_cancel_probability_90d"] = np.where(
        value > 0, out["at_risk"].fillna(0.0) / np.where(value > 0, value, 1.0), 0.0
    )
    # customers between subscriptions: what a return would bring (no running subscription, so
    # nothing of it is at risk; p_subscription_paying_90d stays 0)
    lapsed = lapsed_returns(eps, models, returns, as_of, discount_rate).set_index("customer_id")
    if len(lapsed):
        for col, src in (
            ("expected_subscription_revenue_90d_usd", "r90"),
            ("expected_subscription_revenue_365d_usd", "r365"),
            ("predicted_subscription_value_12m_usd", "v365"),
        ):
            out[col] = out[col].fillna(0.0) + out["customer_id"].map(lapsed[src]).fillna(0.0)
    for c in ("active_subscriptions", "paused_subscriptions", "renewals_survived"):
        out[c] = out[c].fillna(0).astype(int)
    for c in (
        "mrr_usd",
        "expected_subscription_revenue_90d_usd",
        "expected_subscription_revenue_365d_usd",
        "predicted_subscription_value_12m_usd",
    ):
        out[c] = out[c].fillna(0.0)
    out["subscription_cancel_probability_90d"] = out["subscription_cancel_probability_90d"].clip(0, 1)
    return out[list(VALUE_COLUMNS)]


# --------------------------------------------------------------------------------------------
# held-out comparison: sBG vs the geometric model


def holdout_comparison(
    subscriptions: pd.DataFrame, plans: pd.DataFrame, as_of: dt.date, holdout_days: int = 365
) -> pd.DataFrame:
    """Fit both models on the subscriptions as of `as_of` - `holdout_days`, predict the revenue
    the episodes running then bring over the next `holdout_days` (their current plan's price per
    charge), and compare with what they were charged (every segment of the episode, by the charge
    convention, as the data of `as_of` show it). One row per plan and a total row."""
    cutoff = as_of - dt.timedelta(days=holdout_days)
    before = episodes(subscriptions, plans, cutoff)
    fits = fit_groups(before, plans)
    sbg = {p: f.model for f in fits for p in f.covers_plans}
    geo = {p: f.geometric for f in fits for p in f.covers_plans}
    active = before[before["is_active"]].reset_index(drop=True)
    pred_sbg = expected_charges(active, sbg, cutoff, holdout_days)["revenue_horizon"]
    pred_geo = expected_charges(active, geo, cutoff, holdout_days)["revenue_horizon"]
    # what happened: every segment of those episodes (chained as the data of as_of show them)
    seg = _segments(subscriptions, plans, as_of)
    charged = charges_in_window(
        seg["start"].to_numpy(),
        seg["end"].to_numpy(),
        seg["billing_months"].to_numpy(dtype=np.int64),
        cutoff + dt.timedelta(days=1),
        as_of,
    )
    actual = (
        pd.Series(charged * seg["list_price_usd"].to_numpy(dtype=float))
        .groupby(seg["episode_id"].to_numpy())
        .sum()
    )
    active["actual"] = active["episode_id"].map(actual).fillna(0.0).to_numpy()
    active["sbg"] = pred_sbg
    active["geometric"] = pred_geo
    rows = active.groupby("plan_id").agg(
        billing_cycle=("billing_cycle", "first"),
        subscriptions=("episode_id", "size"),
        actual_usd=("actual", "sum"),
        sbg_usd=("sbg", "sum"),
        geometric_usd=("geometric", "sum"),
    )
    rows.loc["total"] = [
        "all",
        len(active),
        active["actual"].sum(),
        active["sbg"].sum(),
        active["geometric"].sum(),
    ]
    rows["sbg_error"] = rows["sbg_usd"] / rows["actual_usd"] - 1
    rows["geometric_error"] = rows["geometric_usd"] / rows["actual_usd"] - 1
    return rows.reset_index()
