"""Churn probability: the chance that a customer has already left, from BG/NBD's 1 − P(alive)
combined with the warehouse's behavioural signals in a logistic model fitted on history.

**What is predicted.** π = P(the customer has dropped out by the scoring date | what the
warehouse knows), the quantity BG/NBD's 1 − P(alive) estimates from purchases alone.

**Training data (a time split).** With business date D and label window w (default 180 days),
features are computed as of the cutoff t0 = D − w: BG/NBD is refitted on the purchases up to t0
and gives P(alive at t0); sessions, tickets, subscriptions and lifecycle stage are taken as of t0.
The observed outcome is y = 1 when the customer made no purchase in (t0, D].

**Why not a plain logistic regression on y.** Dropout is never observed: a customer without a
purchase in the window may have left, or may be alive and not have bought yet. The likelihood says
so: P(y = 1) = π + (1 − π)·q, where q = P(no purchase in the window | alive at t0) follows from
BG/NBD in closed form, ((α + T) / (α + T + κ·w))^(r + x): the posterior purchase rate of a customer
alive at T is Gamma(r + x, α + T), scaled by κ = exp(γ·f) because engagement also tells how often
an alive customer buys (without κ, a quiet but alive customer's missing purchases would be read as
churn). Maximising that likelihood over β and γ gives π = σ(β·f) itself: a probability of having
left, not of "no purchase soon".

**Features** (`FEATURES`, standardised with the training means and deviations; a small ridge
penalty keeps the fit stable on small data) are listed with their meaning below. Customers who
signed up but never bought enter the churn model as one-time buyers since their signup.

**Holdout.** One customer in five (by a hash of the id) is left out of the fit; the fit reports
the holdout log-loss and ROC AUC of P(y) for this model and for BG/NBD alone (π = 1 − P(alive)).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special

from clv.errors import UserError

FEATURES: dict[str, str] = {
    "bgnbd_dropout_logit": "log-odds of BG/NBD's 1 − P(alive) (clipped to [1e-6, 1 − 1e-6])",
    "no_repeat_purchase": "1 without a repeat purchase (BG/NBD then holds the customer alive)",
    "log_frequency": "log(1 + repeat purchase days)",
    "log_sessions_30d": "log(1 + sessions in the last 30 days)",
    "log_sessions_90d": "log(1 + sessions in the last 90 days)",
    "engagement_decline": "log(1 + sessions in the 90 days before those) − log(1 + sessions in the last 90 days)",
    "log_days_since_last_session": "log(1 + days since the last session), capped at 365 (also without sessions)",
    "log_sessions_missed": "log(1 + the sessions the customer's lifetime session rate would have produced since the last session)",
    "log_tickets_90d": "log(1 + support tickets opened in the last 90 days)",
    "log_billing_tickets_90d": "log(1 + billing tickets in the last 90 days)",
    "log_low_csat_tickets_90d": "log(1 + tickets answered with CSAT 1-2 in the last 90 days)",
    "active_subscription": "1 with an active or paused subscription",
    "subscription_ended_90d": "1 when a subscription ended in the last 90 days and none is active",
    "stage_onboarding": "lifecycle stage onboarding (signed up within onboarding_days)",
    "stage_dormant": "lifecycle stage dormant (last seen active_within_days .. dormant_within_days ago)",
    "stage_churned": "lifecycle stage churned (not seen for more than dormant_within_days)",
}
RAW_COLUMNS = (
    "p_alive",
    "frequency",
    "sessions_30d",
    "sessions_90d",
    "sessions_prior_90d",
    "days_since_last_session",
    "lifetime_sessions",
    "tenure_days",
    "tickets_90d",
    "billing_tickets_90d",
    "low_csat_tickets_90d",
    "has_active_subscription",
    "subscription_ended_90d",
    "lifecycle_stage",
)
HOLDOUT_SHARE = 5  # one customer in five
RIDGE = 1.0  # on the standardised coefficients (not the intercept), in units of one customer's log-likelihood
_EPS = 1e-6


class ChurnModelError(UserError):
    """Not enough or unusable training data; the message says what to change."""


def design(raw: pd.DataFrame) -> np.ndarray:
    """The feature matrix (columns in `FEATURES` order) from the raw per-customer columns."""
    missing = [c for c in RAW_COLUMNS if c not in raw.columns]
    if missing:
        raise ChurnModelError(f"churn features need the columns {', '.join(missing)}")

    def num(c: str) -> np.ndarray:
        return pd.to_numeric(raw[c], errors="coerce").fillna(0).to_numpy(dtype=np.float64)

    dropout = np.clip(1 - num("p_alive"), _EPS, 1 - _EPS)
    freq = num("frequency")
    s30, s90, prior = num("sessions_30d"), num("sessions_90d"), num("sessions_prior_90d")
    last_session = pd.to_numeric(raw["days_since_last_session"], errors="coerce").fillna(365).to_numpy()
    stage = raw["lifecycle_stage"].astype(str).to_numpy()
    cols = [
        special.logit(dropout),
        (freq == 0).astype(float),
        np.log1p(freq),
        np.log1p(s30),
        np.log1p(s90),
        np.log1p(prior) - np.log1p(s90),
        np.log1p(np.clip(last_session, 0, 365)),
        np.log1p(
            num("lifetime_sessions") / np.maximum(num("tenure_days"), 1) * np.clip(last_session, 0, 365)
        ),
        np.log1p(num("tickets_90d")),
        np.log1p(num("billing_tickets_90d")),
        np.log1p(num("low_csat_tickets_90d")),
        num("has_active_subscription"),
        num("subscription_ended_90d"),
        (stage == "onboarding").astype(float),
        (stage == "dormant").astype(float),
        (stage == "churned").astype(float),
    ]
    return np.column_stack(cols)


@dataclass(frozen=True)
class ChurnModel:
    """Coefficients on standardised features z = (f − mean) / scale: π = σ(intercept + coef·z) is
    the churn probability; κ = exp(rate_intercept + rate_coef·z) scales an alive customer's
    purchase rate (used in training only, to read the outcome)."""

    intercept: float
    coef: np.ndarray
    rate_intercept: float
    rate_coef: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    iterations: int
    train_customers: int

    def logit(self, X: np.ndarray) -> np.ndarray:
        return self.intercept + _matvec((X - self.mean) / self.scale, self.coef)

    def probability(self, X: np.ndarray) -> np.ndarray:
        return special.expit(self.logit(X))

    def rate_factor(self, X: np.ndarray) -> np.ndarray:
        return np.exp(self.rate_intercept + _matvec((X - self.mean) / self.scale, self.rate_coef))


@dataclass(frozen=True)
class Outcome:
    """What training needs per customer besides the features: the observed outcome and BG/NBD's
    view of the purchase rate of an alive customer (fitted at the cutoff)."""

    no_purchase: np.ndarray  # 1 = no purchase in the label window
    frequency: np.ndarray  # x at the cutoff
    T: np.ndarray  # T at the cutoff, in the fit's time unit
    r: float
    alpha: float
    window: float  # label window, in the fit's time unit

    def subset(self, mask: np.ndarray) -> Outcome:
        return Outcome(
            self.no_purchase[mask], self.frequency[mask], self.T[mask], self.r, self.alpha, self.window
        )

    def q(self, kappa: np.ndarray | float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """P(no purchase in the window | alive) for purchase rates scaled by κ, and d log q / d log κ."""
        a_t = self.alpha + self.T
        kw = kappa * self.window
        log_q = (self.r + self.frequency) * (np.log(a_t) - np.log(a_t + kw))
        return np.exp(log_q), -(self.r + self.frequency) * kw / (a_t + kw)


def _mixture(eta: np.ndarray, y: np.ndarray, q: np.ndarray):
    """Per-customer log P(y) with P(y=1) = q + (1 − q)·σ(η), and its derivatives in η and in q.
    Written with one exp and one log1p per customer for σ(η) and log σ(±η)."""
    q = np.clip(q, 1e-12, 1 - 1e-12)
    e = np.log1p(np.exp(-np.abs(eta)))
    log_1m_pi = -(np.maximum(eta, 0) + e)  # log(1 − π)
    pi = special.expit(eta)
    p1 = q + (1 - q) * pi
    one = y == 1
    ll = np.where(one, np.log(p1), np.log1p(-q) + log_1m_pi)
    deta = np.where(one, (1 - q) * pi * (1 - pi) / p1, -pi)
    dq = np.where(one, (1 - pi) / p1, -1 / (1 - q))
    return ll, deta, dq


def _matvec(A: np.ndarray, v: np.ndarray) -> np.ndarray:
    """A @ v without BLAS threads (a multi-threaded BLAS is slower than this loop on a busy
    2-core machine)."""
    return np.einsum("ij,j->i", A, v)


def _rmatvec(A: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.einsum("ij,i->j", A, v)


def fit(X: np.ndarray, out: Outcome, ridge: float = RIDGE) -> ChurnModel:
    """Maximum likelihood of P(y = 1) = π + (1 − π)·q(κ), with π = σ(β·z) and κ = exp(γ·z).

    Why κ: engagement says something about how often an alive customer buys, not only about
    whether they left. Without it, a quiet but alive customer's missing purchases would be read as
    churn. Starts from BG/NBD alone (π = 1 − P(alive), κ = 1)."""
    y = out.no_purchase
    n = len(y)
    if n < 50 or y.sum() < 10 or (1 - y).sum() < 10:
        raise ChurnModelError(
            f"too few customers to fit the churn model ({n} customers, {int(y.sum())} without a "
            "purchase in the label window): use a longer history or a shorter window"
        )
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale < 1e-9] = 1.0  # a constant feature keeps coefficient 0 (ridge)
    Z = (X - mean) / scale
    k = X.shape[1]
    w0 = np.zeros(2 * k + 2)
    w0[0], w0[1] = mean[0], scale[0]  # η = BG/NBD's own log-odds

    def objective(w):
        eta = w[0] + _matvec(Z, w[1 : k + 1])
        log_kappa = w[k + 1] + _matvec(Z, w[k + 2 :])
        q, dlogq = out.q(np.exp(log_kappa))
        ll, deta, dq = _mixture(eta, y, q)
        dlk = dq * q * dlogq
        g = -np.concatenate([[deta.sum()], _rmatvec(Z, deta), [dlk.sum()], _rmatvec(Z, dlk)])
        f = -ll.sum() + 0.5 * ridge * (w[1 : k + 1] @ w[1 : k + 1] + w[k + 2 :] @ w[k + 2 :])
        g[1 : k + 1] += ridge * w[1 : k + 1]
        g[k + 2 :] += ridge * w[k + 2 :]
        return f / n, g / n

    res = optimize.minimize(objective, w0, jac=True, method="L-BFGS-B", options={"maxiter": 5000})
    _, g = objective(res.x)
    if not (res.success or np.max(np.abs(g)) < 1e-6):
        raise ChurnModelError(f"the churn model did not converge: {res.message}")
    w = res.x
    return ChurnModel(float(w[0]), w[1 : k + 1], float(w[k + 1]), w[k + 2 :], mean, scale, int(res.nit), n)


def holdout_mask(customer_ids) -> np.ndarray:
    """True for the customers left out of the fit: a stable hash, the same on every run."""
    return np.array([zlib.crc32(str(c).encode()) % HOLDOUT_SHARE == 0 for c in customer_ids])


def log_loss(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def roc_auc(score: np.ndarray, label: np.ndarray) -> float:
    """Area under the ROC curve (ties count half): the chance a random positive outranks a
    random negative."""
    score, label = np.asarray(score, dtype=np.float64), np.asarray(label).astype(bool)
    pos, neg = label.sum(), (~label).sum()
    if pos == 0 or neg == 0:
        return float("nan")
    ranks = pd.Series(score).rank(method="average").to_numpy()
    return float((ranks[label].sum() - pos * (pos + 1) / 2) / (pos * neg))


@dataclass(frozen=True)
class Evaluation:
    customers: int
    no_purchase_share: float
    log_loss: float
    log_loss_bgnbd: float
    auc: float
    auc_bgnbd: float


def outcome_probabilities(model: ChurnModel, X: np.ndarray, out: Outcome) -> tuple[np.ndarray, np.ndarray]:
    """P(no purchase in the label window) per customer, by this model (π + (1 − π)·q(κ)) and by
    BG/NBD alone (1 − P(alive) + P(alive)·q): the probabilities the holdout and the backtest
    score (clv.stats.backtest)."""
    q_model, _ = out.q(model.rate_factor(X))
    q_bgnbd, _ = out.q(1.0)
    p_model = q_model + (1 - q_model) * model.probability(X)
    p_bgnbd = q_bgnbd + (1 - q_bgnbd) * special.expit(X[:, 0])
    return p_model, p_bgnbd


def evaluate(model: ChurnModel, X: np.ndarray, out: Outcome) -> Evaluation:
    """How well the outcome is predicted, by this model and by BG/NBD alone (π = 1 − P(alive),
    κ = 1)."""
    y = out.no_purchase
    p_model, p_bgnbd = outcome_probabilities(model, X, out)
    return Evaluation(
        len(y),
        float(y.mean()),
        log_loss(p_model, y),
        log_loss(p_bgnbd, y),
        roc_auc(p_model, y),
        roc_auc(p_bgnbd, y),
    )


# --------------------------------------------------------------------------------------------
# Reasons: why the model scores a customer as it does, in words a retention manager can act on.

# The churn log-odds is a sum over features of coefficient x standardised value, so each
# feature's term says how far it moves this customer's log-odds from the training average's.
# Related features are read together (sessions in 30 and 90 days, the decline, the days since the
# last session and the sessions missed describe one thing, and their coefficients trade off
# against each other), so the reasons are those sums per group, largest first.
REASON_GROUPS: dict[str, tuple[str, ...]] = {
    "purchases": ("bgnbd_dropout_logit", "no_repeat_purchase", "log_frequency"),
    "sessions": (
        "log_sessions_30d",
        "log_sessions_90d",
        "engagement_decline",
        "log_days_since_last_session",
        "log_sessions_missed",
    ),
    "support": ("log_tickets_90d", "log_billing_tickets_90d", "log_low_csat_tickets_90d"),
    "subscription": ("active_subscription", "subscription_ended_90d"),
    "lifecycle": ("stage_onboarding", "stage_dormant", "stage_churned"),
}
REASON_COLUMNS = (*RAW_COLUMNS, "purchase_days", "days_since_last_purchase", "days_since_last_activity")
REASONS_SHOWN = 3
REASON_MIN_LOGIT = 0.1  # a group moving the log-odds by less than this is not called a reason
RECENT_PURCHASE_DAYS = 30  # a last purchase this recent is not worded as "no purchase in ..."


def contributions(model: ChurnModel, X: np.ndarray) -> np.ndarray:
    """Per customer and feature (columns in `FEATURES` order): coefficient x standardised value,
    the feature's term in the churn log-odds relative to the average training customer. A row sums
    to the customer's log-odds minus the intercept."""
    return (X - model.mean) / model.scale * model.coef


def group_contributions(model: ChurnModel, X: np.ndarray) -> pd.DataFrame:
    """`contributions` summed per reason group (columns in `REASON_GROUPS` order)."""
    c = contributions(model, X)
    index = {f: i for i, f in enumerate(FEATURES)}
    return pd.DataFrame({g: c[:, [index[f] for f in fs]].sum(axis=1) for g, fs in REASON_GROUPS.items()})


def _plural(n: int, one: str, many: str) -> str:
    return f"1 {one}" if n == 1 else f"{n} {many}"


def _purchases(days: int, freq: int, last: int, alive: int, tenure: int) -> str:
    if days == 0:
        return f"no purchase since signup {tenure} days ago"
    if last >= RECENT_PURCHASE_DAYS:
        return f"no purchase in {last} days " + (
            "(one purchase so far)" if freq == 0 else f"(after {days} purchase days)"
        )
    # A purchase within the last month is not "no purchase": the pattern itself is the signal
    # (BG/NBD lets only repeat buyers drop out, so their P(alive) is below a one-time buyer's 100%).
    return (
        f"purchase pattern: P(alive) {alive}% after {_plural(days, 'purchase day', 'purchase days')}, "
        f"the last {_plural(last, 'day', 'days')} ago"
    )


def _sessions(s30: int, s90: int, prior: int, last: int | None) -> str:
    if last is None:
        return "no session ever"
    if last >= 30:
        return f"no session in {_plural(last, 'day', 'days')}"
    if prior > s90:
        return f"sessions down to {s90} in 90 days from {prior} in the 90 before"
    return f"{_plural(s30, 'session', 'sessions')} in 30 days"


def _support(tickets: int, billing: int, low: int) -> str:
    if tickets == 0:
        return "no support contact in 90 days"
    detail = (f", {billing} about billing" if billing else "") + (f", {low} rated 1-2" if low else "")
    return f"{_plural(tickets, 'support ticket', 'support tickets')} in 90 days{detail}"


def _subscription(active: bool, ended: bool) -> str:
    if ended:
        return "subscription ended in the last 90 days"
    return "subscribed" if active else "no subscription"


def _lifecycle(stage: str, tenure: int, inactive: int) -> str:
    if stage == "onboarding":
        return f"new customer (signed up {tenure} days ago)"
    return f"{stage} (no purchase or session in {inactive} days)"


def reason_words(raw: pd.DataFrame, needed: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """Each reason group in words, from the customer's own values (one column per group). Plain
    Python f-strings over lists: about ten times faster than pandas string arithmetic. With
    `needed` (group -> boolean mask of rows), only those rows of a group are worded (None
    elsewhere): `reasons` shows at most three groups per customer."""
    missing = [c for c in REASON_COLUMNS if c not in raw.columns]
    if missing:
        raise ChurnModelError(f"churn reasons need the columns {', '.join(missing)}")

    def whole(c: str, default: float = 0) -> np.ndarray:
        values = pd.to_numeric(raw[c], errors="coerce").fillna(default).round()
        return values.astype(np.int64).to_numpy()

    def flag(c: str) -> np.ndarray:
        return (pd.to_numeric(raw[c], errors="coerce").fillna(0) > 0).to_numpy()

    tenure = whole("tenure_days")
    alive = (
        (pd.to_numeric(raw["p_alive"], errors="coerce").fillna(1) * 100).round().astype(np.int64).to_numpy()
    )
    last_session = pd.to_numeric(raw["days_since_last_session"], errors="coerce").round()
    last_seen = np.array([None if pd.isna(v) else int(v) for v in last_session.tolist()], dtype=object)
    inputs = {
        "purchases": (
            _purchases,
            whole("purchase_days"),
            whole("frequency"),
            whole("days_since_last_purchase", -1),
            alive,
            tenure,
        ),
        "sessions": (
            _sessions,
            whole("sessions_30d"),
            whole("sessions_90d"),
            whole("sessions_prior_90d"),
            last_seen,
        ),
        "support": (
            _support,
            whole("tickets_90d"),
            whole("billing_tickets_90d"),
            whole("low_csat_tickets_90d"),
        ),
        "subscription": (_subscription, flag("has_active_subscription"), flag("subscription_ended_90d")),
        "lifecycle": (
            _lifecycle,
            raw["lifecycle_stage"].astype(str).to_numpy(dtype=object),
            tenure,
            whole("days_since_last_activity"),
        ),
    }
    columns = {}
    for group, (word, *args) in inputs.items():
        rows = None if needed is None else np.flatnonzero(needed[group])
        if rows is None:
            columns[group] = list(map(word, *(a.tolist() for a in args)))
        else:
            column = np.full(len(raw), None, dtype=object)
            column[rows] = list(map(word, *(a[rows].tolist() for a in args)))
            columns[group] = column
    return pd.DataFrame(columns, index=raw.index)[list(REASON_GROUPS)]


def reasons(
    model: ChurnModel,
    X: np.ndarray,
    raw: pd.DataFrame,
    top: int = REASONS_SHOWN,
    min_logit: float = REASON_MIN_LOGIT,
) -> np.ndarray:
    """The `top` groups that raise each customer's churn log-odds most above the average training
    customer's (by at least `min_logit`), in words, largest first, joined by "; ". None for a
    customer with no such group."""
    groups = group_contributions(model, X).to_numpy()
    order = np.argsort(-groups, axis=1, kind="stable")[:, :top]
    rows = np.arange(len(groups))[:, None]
    shown = groups[rows, order] >= min_logit
    needed = {g: ((order == i) & shown).any(axis=1) for i, g in enumerate(REASON_GROUPS)}
    words = reason_words(raw, needed).to_numpy(dtype=object)  # only the groups shown
    picked = np.where(shown, words[rows, order], None).tolist()
    return np.array(["; ".join(w for w in r if w is not None) or None for r in picked], dtype=object)
