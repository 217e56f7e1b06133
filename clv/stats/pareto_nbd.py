"""The Pareto/NBD purchase model (Schmittlein, Morrison & Colombo 1987), fitted by maximum likelihood.

While alive a customer buys as a Poisson process with rate λ ~ Gamma(r, α); their lifetime is
exponential with rate μ ~ Gamma(s, β), independent of λ. Unlike BG/NBD, a customer can drop out at
any moment, not only right after a purchase; customers without repeat purchases can have left too.
It is fitted on the same per-customer summary as BG/NBD (`btyd.summary_sql`: frequency x, recency
t_x, age T), with the same standards (`clv.stats.btyd`'s module docstring).

**The likelihood without the hypergeometric function.** Fader, Hardie & Lee's note on
implementing the Pareto/NBD writes the likelihood with Gauss's 2F1 at (α − β)/(α + t), which is
slow and loses precision when its argument nears 1 (very different α and β, large T) and has no
closed-form derivatives in the parameters. Integrating over the (unobserved) moment of dropout
instead gives the same likelihood as

    L = Γ(r + x) α^r β^s / Γ(r) · [ (α + T)^−(r+x) (β + T)^−s + s · (F(t_x) − F(T)) ],
    F(t) = ∫_t^∞ (α + τ)^−(r+x) (β + τ)^−(s+1) dτ,

(alive at T, or dropped out at some τ in (t_x, T]). F depends on (x, t) only, so it is computed
once per distinct (frequency, time) pair — a few tens of thousands at 1,000,000 customers — by
Gauss-Laguerre quadrature in w = log((c + τ)/(c + t)), c = min(α, β): there the integrand is
e^(−(r+x+s) w) times a bounded sigmoid, scaled by its decay rate at w = 0, and 64 nodes give
about 1e-9 relative accuracy in typical cases and 2e-7 in the extreme ones (checked against
adaptive quadrature and the 2F1 form in the tests). Everything is kept in log space (the
power terms underflow at large x), and the parameter derivatives are integrals of the integrand's
derivatives with the same nodes: analytic gradients and Hessians, so the same trust-region Newton
method as BG/NBD (`btyd._newton`) converges in a handful of steps.

**Predictions** (Fader, Hardie & Lee's notes, in closed form except where said): P(alive) is
the first term's share of the bracket above; expected purchases in the next t time units
E = P(alive) · (r + x)(β + T) / ((α + T)(s − 1)) · [1 − ((β + T)/(β + T + t))^(s−1)] (its limit
at s = 1); the probability of at least one purchase is P(alive) times a one-dimensional integral
(Gauss-Legendre), since given alive at T the rate and the dropout rate are independent
Gamma(r + x, α + T) and Gamma(s, β + T).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from scipy import special

from clv.stats import btyd, uncertainty
from clv.stats.btyd import BtydError, FitReport

_NODES = (
    64  # Gauss-Laguerre nodes for F: within 2e-7 in log F over r 0.3..3, s 0.1..40, x 0..200, α/β 1e-4..1e4
)
_LAMBDA_MIN = 3.0  # the Laguerre variable is λ w with λ >= this: nodes dense enough
_LAG_Y, _LAG_W = special.roots_laguerre(_NODES)
_LOG_LAG_W = np.log(_LAG_W) + _LAG_Y  # weight e^y·w_i so that ∫ h dy ≈ Σ W_i h(y_i)
_LEG_U, _LEG_W = special.roots_legendre(32)
# start values from a fit on this many customers: F's cost grows with the distinct (x, t) pairs,
# which a subsample does not shrink much, so it is smaller than BG/NBD's
_SUBSAMPLE = 20_000


@dataclass(frozen=True)
class ParetoNBD:
    """Fitted Pareto/NBD parameters (α and β in the fit's time unit) and the fit's diagnostics."""

    r: float
    alpha: float
    s: float
    beta: float
    log_likelihood: float  # total over customers
    customers: int
    report: FitReport | None = None
    # covariance of (log r, log α, log s, log β), as for btyd.BGNBD
    log_covariance: np.ndarray | None = field(default=None, compare=False, repr=False)

    names = ("r", "alpha", "s", "beta")

    def params(self) -> dict[str, float]:
        return {"r": self.r, "alpha": self.alpha, "s": self.s, "beta": self.beta}


def _params(params) -> tuple[float, float, float, float]:
    if isinstance(params, ParetoNBD):
        return params.r, params.alpha, params.s, params.beta
    return float(params["r"]), float(params["alpha"]), float(params["s"]), float(params["beta"])


# --------------------------------------------------------------------------------------------
# the data: one row per distinct (x, t_x, T), and the distinct (x, t) pairs F is needed at


@dataclass
class _Data:
    w: np.ndarray  # weight per row
    x: np.ndarray  # per row
    T: np.ndarray  # per row
    tx: np.ndarray  # per row
    at_tx: np.ndarray  # row -> pair index of (x, t_x)
    at_T: np.ndarray  # row -> pair index of (x, T)
    px: np.ndarray  # per pair: x
    pt: np.ndarray  # per pair: t
    ux: np.ndarray  # distinct x
    wx: np.ndarray  # weight per distinct x
    ix: np.ndarray  # row -> distinct x
    total: float
    inv: np.ndarray  # customer (with weight > 0) -> row

    @property
    def rows(self) -> int:
        return len(self.w)


def _data(x: np.ndarray, tx: np.ndarray, T: np.ndarray, w: np.ndarray) -> _Data:
    keep = w > 0
    x, tx, T, w = x[keep], tx[keep], T[keep], w[keep]
    ux, cx = btyd._codes(x)
    times, ct = btyd._codes(np.concatenate([tx, T]))
    ctx, cT = ct[: len(x)], ct[len(x) :]
    key = (cx * len(times) + ctx) * len(times) + cT
    ukey, inv = btyd._unique_ints(key)
    wk = np.bincount(inv, weights=w, minlength=len(ukey))
    rx, rest = np.divmod(ukey, len(times) * len(times))
    rtx, rT = np.divmod(rest, len(times))
    # the (x, t) pairs F is evaluated at
    pair_key = np.concatenate([rx * len(times) + rtx, rx * len(times) + rT])
    upair, pinv = btyd._unique_ints(pair_key)
    used_x, ix = btyd._unique_ints(rx)
    return _Data(
        w=wk,
        x=ux[rx],
        T=times[rT],
        tx=times[rtx],
        at_tx=pinv[: len(ukey)],
        at_T=pinv[len(ukey) :],
        px=ux[upair // len(times)],
        pt=times[upair % len(times)],
        ux=ux[used_x],
        wx=np.bincount(ix, weights=wk, minlength=len(used_x)),
        ix=ix,
        total=float(w.sum()),
        inv=inv,
    )


# --------------------------------------------------------------------------------------------
# F(t) = ∫_t^∞ (α+τ)^−(r+x) (β+τ)^−(s+1) dτ, in log space, with its derivatives


def _log_F(phi, x: np.ndarray, t: np.ndarray, order: int = 2):
    """log F per (x, t) pair and, for order >= 1, the moments of the integrand's log-derivatives
    under the normalised integrand: E[g] (pairs, 4) gives ∂F/F, E[h + g gᵀ] (pairs, 4, 4) gives
    ∂²F/F. g = (−log(α+τ), −(r+x)/(α+τ), −log(β+τ), −(s+1)/(β+τ))."""
    r, alpha, s, beta = phi
    c = min(alpha, beta)
    ct = c + t
    k = r + x + s
    # the Laguerre variable is λ w, λ the integrand's decay rate at w = 0: k − p δ/(1 + δ), where
    # (1 + δ e^−w)^−p is the factor of the larger of α and β (δ = |α − β| / (c + t)); it decays
    # at k only past w = log δ, so taking λ = k there would put every node before the mass
    delta = abs(alpha - beta) / ct
    p = s + 1 if beta > alpha else r + x
    lam = np.clip(k - p * delta / (1 + delta), _LAMBDA_MIN, np.maximum(k, _LAMBDA_MIN))
    step = _LAG_Y[None, :] / lam[:, None]  # w at the nodes
    ctau = ct[:, None] * np.exp(step)  # c + τ
    lc_tau = np.log(ct)[:, None] + step  # log(c + τ)
    other = ctau + abs(alpha - beta)  # the larger of α + τ and β + τ
    log_other = np.log(other)
    A, B = (lc_tau, log_other) if alpha <= beta else (log_other, lc_tau)
    rx = (r + x)[:, None]
    logv = lc_tau - rx * A - (s + 1) * B
    logv += _LOG_LAG_W[None, :]
    m = logv.max(axis=1, keepdims=True)
    pi = np.exp(logv - m)
    tot = pi.sum(axis=1)
    logF = m[:, 0] + np.log(tot) - np.log(lam)
    if order == 0:
        return logF, None, None
    pi /= tot[:, None]
    a1, b1 = (1 / ctau, 1 / other) if alpha <= beta else (1 / other, 1 / ctau)
    g = (-A, -rx * a1, -B, -(s + 1) * b1)
    pg = [pi * gk for gk in g]
    first = np.stack([v.sum(axis=1) for v in pg], axis=1)
    if order == 1:
        return logF, first, None
    second = np.empty((len(x), 4, 4))
    for i in range(4):
        for j in range(i, 4):
            second[:, i, j] = np.einsum("pn,pn->p", pg[i], g[j])
    # the integrand's own second log-derivatives
    second[:, 0, 1] -= np.einsum("pn,pn->p", pi, a1)
    second[:, 1, 1] += np.einsum("pn,pn->p", pg[1], -a1)
    second[:, 2, 3] -= np.einsum("pn,pn->p", pi, b1)
    second[:, 3, 3] += np.einsum("pn,pn->p", pg[3], -b1)
    for i in range(4):
        for j in range(i):
            second[:, i, j] = second[:, j, i]
    return logF, first, second


def _bracket(phi, d: _Data, order: int = 2):
    """Per row: log of the bracket [(α+T)^−(r+x)(β+T)^−s + s (F(t_x) − F(T))] and P(alive) = the
    first term's share; with order >= 1 the gradient of the weighted total of the log bracket
    (4,), with order 2 its Hessian (4, 4) — summed over rows without per-row matrices."""
    r, alpha, s, beta = phi
    x, T = d.x, d.T
    logF, F1, F2 = _log_F(phi, d.px, d.pt, order)
    lF_tx, lF_T = logF[d.at_tx], logF[d.at_T]
    has_D = d.tx < d.T
    with np.errstate(divide="ignore", invalid="ignore"):
        # D = F(t_x) − F(T) >= 0 (0 when t_x = T)
        logD = np.where(has_D, lF_tx + np.log1p(-np.minimum(np.exp(lF_T - lF_tx), 1.0)), -np.inf)
    LaT, LbT = np.log(alpha + T), np.log(beta + T)
    logA0 = -(r + x) * LaT - s * LbT
    logL = np.logaddexp(logA0, np.log(s) + logD)
    alive = np.exp(logA0 - logL)
    if order == 0:
        return logL, None, None, alive
    w = d.w
    wD = 1 - alive
    iaT, ibT = 1 / (alpha + T), 1 / (beta + T)
    gA = (-LaT, -(r + x) * iaT, -LbT, -s * ibT)
    with np.errstate(over="ignore", invalid="ignore"):
        # (1 − alive) F(t)/D = s F(t) / bracket: each pair's share in the rows' derivatives
        c_tx = np.where(has_D, wD * np.exp(lF_tx - logD), 0.0)
        c_T = np.where(has_D, wD * np.exp(lF_T - logD), 0.0)
    # per row: g = alive gA + wD (∂D/D + e_s/s), ∂D/D = (F(t_x) ∂F(t_x)/F − F(T) ∂F(T)/F) / D
    g = [
        alive * gA[k] + c_tx * F1[d.at_tx, k] - c_T * F1[d.at_T, k] + (wD / s if k == 2 else 0.0)
        for k in range(4)
    ]
    grad = np.array([btyd._dot(w, gk) for gk in g])
    if order == 1:
        return logL, grad, None, alive
    npairs = len(d.px)
    per_pair = np.bincount(d.at_tx, weights=w * c_tx, minlength=npairs)
    per_pair -= np.bincount(d.at_T, weights=w * c_T, minlength=npairs)
    H = np.einsum("p,pkl->kl", per_pair, F2)
    wa = w * alive
    for i in range(4):
        for j in range(i, 4):
            H[i, j] += btyd._dot(wa, gA[i] * gA[j]) - btyd._dot(w, g[i] * g[j])
    H[0, 1] -= btyd._dot(wa, iaT)
    H[1, 1] += btyd._dot(wa * (r + x), iaT * iaT)
    H[2, 3] -= btyd._dot(wa, ibT)
    H[3, 3] += btyd._dot(wa * s, ibT * ibT)
    # the e_s/s term of ∂(sD)/(sD) in the second derivative: (e_s ∂D/Dᵀ + ∂D/D e_sᵀ)/s, times wD
    dD = [c_tx * F1[d.at_tx, k] - c_T * F1[d.at_T, k] for k in range(4)]
    for k in range(4):
        v = btyd._dot(w, dD[k]) / s
        if k >= 2:
            H[2, k] += v
        else:
            H[k, 2] += v
        if k == 2:
            H[2, 2] += v
    H = np.triu(H) + np.triu(H, 1).T
    return logL, grad, H, alive


def _eval(phi: np.ndarray, d: _Data, hessian: bool = True):
    """Total log-likelihood, gradient and Hessian in (r, α, s, β) over the compressed data."""
    r, alpha, s, beta = phi
    logL, grad, Ht, _ = _bracket(phi, d, 2 if hessian else 1)
    ux, wx = d.ux, d.wx
    W = d.total
    ll = wx @ (special.gammaln(r + ux) - special.gammaln(r)) + W * (r * np.log(alpha) + s * np.log(beta))
    ll += btyd._dot(d.w, logL)
    grad = grad.copy()
    grad[0] += wx @ (special.digamma(r + ux) - special.digamma(r)) + W * np.log(alpha)
    grad[1] += W * r / alpha
    grad[2] += W * np.log(beta)
    grad[3] += W * s / beta
    if not hessian:
        return ll, grad, None
    Ht = Ht.copy()
    Ht[0, 0] += wx @ (special.polygamma(1, r + ux) - special.polygamma(1, r))
    Ht[0, 1] += W / alpha
    Ht[1, 0] += W / alpha
    Ht[1, 1] += -W * r / alpha**2
    Ht[2, 3] += W / beta
    Ht[3, 2] += W / beta
    Ht[3, 3] += -W * s / beta**2
    return ll, grad, Ht


# --------------------------------------------------------------------------------------------
# public API

# When the data show no heterogeneity in the dropout rate, the likelihood keeps rising as s and β
# grow together (s/β fixed): the limit is a common exponential lifetime. A fit that ends beyond
# this value of log s (s ~ 55, a dropout rate with a coefficient of variation of 13%; also the
# range where the quadrature is checked) is redone with log s capped smoothly there, which keeps
# the mean dropout rate the data identify and says so in the fit report.
_DROPOUT_CAP = 4.0


def _dropout_cap(theta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """A quadratic wall on log s beyond ``_DROPOUT_CAP`` (value, gradient, Hessian)."""
    over = np.zeros_like(theta)
    over[2] = max(theta[2] - _DROPOUT_CAP, 0.0)
    return float(np.sum(over**2)), 2 * over, np.diag(2.0 * (over > 0))


def log_likelihood(params: dict[str, float] | ParetoNBD, frequency, recency, T) -> np.ndarray:
    """Per-customer log-likelihood (in the input's order)."""
    x, tx, T = btyd.check_summary(frequency, recency, T)
    r, alpha, s, beta = phi = np.array(_params(params))
    d = _data(x, tx, T, np.ones(len(x)))
    logL, *_ = _bracket(phi, d, 0)
    per_row = special.gammaln(r + d.x) - special.gammaln(r) + r * np.log(alpha) + s * np.log(beta) + logL
    return per_row[d.inv]


def gradient(params: dict[str, float], frequency, recency, T, weights=None):
    """Total log-likelihood, analytic gradient and Hessian in (r, α, s, β): for tests and
    diagnostics (the fit uses the same code)."""
    x, tx, T = btyd.check_summary(frequency, recency, T)
    d = _data(x, tx, T, btyd._weights(weights, len(x)))
    return _eval(np.array(_params(params)), d)


def fit(frequency, recency, T, weights=None, init: dict[str, float] | None = None) -> ParetoNBD:
    """Maximum-likelihood Pareto/NBD. Raises `BtydError` on invalid input or a failed fit
    (e.g. no sign of dropout: s/β runs off to 0)."""
    x, tx, T = btyd.check_summary(frequency, recency, T)
    w = btyd._weights(weights, len(x))
    if not (w[x > 0] > 0).any():
        raise BtydError(
            "no customer has a repeat purchase: Pareto/NBD cannot estimate the purchase and dropout "
            "processes (use a longer calibration period)"
        )
    if not ((T > 0) & (w > 0)).any():
        raise BtydError("every T is 0: the calibration period must end after the first purchases")
    if init is None and len(x) > 2 * _SUBSAMPLE:
        sub = np.random.default_rng(0).choice(len(x), _SUBSAMPLE, replace=False)
        if (x[sub] > 0).any():
            try:
                init = fit(x[sub], tx[sub], T[sub], w[sub]).params()
            except BtydError:
                init = None
    if init is None:
        rate = btyd._dot(w, x) / max(btyd._dot(w, T), 1e-12)
        span = float(np.average(T, weights=w)) or 1.0
        init = {"r": 1.0, "alpha": 1.0 / max(rate, 1e-12), "s": 1.0, "beta": span}
    d = _data(x, tx, T, w)
    last: dict = {}

    def evaluate(ph, hess=True):
        """The last full evaluation is kept: the covariance needs the Hessian at the optimum,
        which the Newton method's final check has just computed."""
        key = (ph.tobytes(), hess)
        if key not in last:
            last.clear()
            last[key] = _eval(ph, d, hess)
        return last[key]

    theta0 = np.log(np.array(_params(init)))
    try:
        theta, ll, rep = btyd._newton(evaluate, theta0, d.total, "Pareto/NBD", ParetoNBD.names)
        too_large = theta[2] > _DROPOUT_CAP
    except btyd.DegenerateFit as e:
        if not set(e.names) <= {"s", "beta"}:
            raise
        too_large = True
    if too_large:
        # no heterogeneity in the dropout rate: s and β grow together (s/β fixed) towards a
        # common exponential lifetime; cap s smoothly, as BG/NBD caps a and b
        start = theta0.copy()
        start[2] = min(start[2], _DROPOUT_CAP)
        theta, ll, rep = btyd._newton(
            evaluate, start, d.total, "Pareto/NBD", ParetoNBD.names, penalty=_dropout_cap
        )
        rate = np.exp(theta[2] - theta[3])
        rep = FitReport(
            rep.converged,
            rep.iterations,
            rep.gradient_norm,
            f"{rep.message}; dropout heterogeneity not identified by the data: s capped near "
            f"e^{_DROPOUT_CAP:g} (homogeneous dropout rate s/beta = {rate:.4g} per time unit)",
        )
    capped = "capped" in rep.message
    cov = None if capped else btyd._log_covariance(lambda ph: evaluate(ph), theta)
    r, alpha, s, beta = np.exp(theta)
    return ParetoNBD(float(r), float(alpha), float(s), float(beta), float(ll), round(d.total), rep, cov)


def p_alive(model: ParetoNBD, frequency, recency, T) -> np.ndarray:
    """P(still alive at T | x, t_x, T)."""
    x, tx, T = btyd.check_summary(frequency, recency, T)
    d = _data(x, tx, T, np.ones(len(x)))
    _, _, _, alive = _bracket(np.array(_params(model)), d, 0)
    # rows of the compressed data back to customers
    return alive[d.inv]


def expected_if_alive(model: ParetoNBD, t: float, frequency, T) -> np.ndarray:
    """E[purchases in (T, T + t] | alive at T, x, T] = (r+x)(β+T)/((α+T)(s−1)) ·
    [1 − ((β+T)/(β+T+t))^(s−1)]; (r+x)/(α+T) · (β+T) log(1 + t/(β+T)) at s = 1."""
    r, alpha, s, beta = _params(model)
    x = np.asarray(frequency, dtype=np.float64)
    T = np.asarray(T, dtype=np.float64)
    if t <= 0:
        return np.zeros(len(x))
    l1 = np.log1p(t / (beta + T))
    if abs(s - 1) < 1e-9:
        horizon = l1
    else:
        horizon = -np.expm1(-(s - 1) * l1) / (s - 1)
    return (r + x) / (alpha + T) * (beta + T) * horizon


def expected_purchases(model: ParetoNBD, t: float, frequency, recency, T) -> np.ndarray:
    """E[repeat purchases in the next t time units | x, t_x, T]."""
    x, tx, T = btyd.check_summary(frequency, recency, T)
    return p_alive(model, x, tx, T) * expected_if_alive(model, t, x, T)


def expected_purchases_new_customer(model: ParetoNBD, t: float) -> float:
    """E[X(t)] for a customer just acquired: r β / (α (s − 1)) · [1 − (β/(β+t))^(s−1)]."""
    return float(expected_if_alive(model, t, np.zeros(1), np.zeros(1))[0])


def p_purchase_if_alive(model: ParetoNBD, t: float, frequency, T) -> np.ndarray:
    """P(at least one purchase in (T, T + t] | alive at T, x, T): given alive, λ ~ Gamma(r+x, α+T)
    and μ ~ Gamma(s, β+T) independent, and the first purchase comes before dropout and before
    T + t with probability ∫_0^t E[λ e^{−(λ+μ)u}] du. In y = 1 − ((α+T)/(α+T+u))^(r+x) the
    integrand is ((β+T)/(β+T+u))^s, smooth and between 0 and 1: Gauss-Legendre, once per
    distinct (x, T)."""
    r, alpha, s, beta = _params(model)
    x = np.asarray(frequency, dtype=np.float64)
    T = np.asarray(T, dtype=np.float64)
    if t <= 0 or len(x) == 0:
        return np.zeros(len(x))
    ux, uT, inv = btyd._group_xT(x, T)
    k = r + ux
    top = -np.expm1(-k * np.log1p(t / (alpha + uT)))  # y at u = t
    y = (_LEG_U[None, :] + 1) / 2 * top[:, None]
    u = (alpha + uT)[:, None] * np.expm1(-np.log1p(-y) / k[:, None])
    vals = np.exp(-s * np.log1p(u / (beta + uT)[:, None]))
    out = (vals @ _LEG_W) / 2 * top
    return out[inv]


def p_purchase(model: ParetoNBD, t: float, frequency, recency, T) -> np.ndarray:
    """P(at least one purchase in the next t time units | x, t_x, T)."""
    x, tx, T = btyd.check_summary(frequency, recency, T)
    return p_alive(model, x, tx, T) * p_purchase_if_alive(model, t, x, T)


def score(
    model: ParetoNBD,
    gg: btyd.GammaGamma,
    frequency,
    recency,
    T,
    monetary,
    time_unit: str = "day",
    horizon_days: float = 365.0,
    discount_rate: float = 0.0,
    value_factor: float = 1.0,
) -> btyd.Scores:
    """Every per-customer prediction, as `btyd.score` (same arguments and meaning)."""
    unit = btyd._unit(time_unit)
    if discount_rate < 0 or not np.isfinite(discount_rate):
        raise BtydError(f"discount rate must be 0 or more (an annual rate), got {discount_rate}")
    x, tx, T = btyd.check_summary(frequency, recency, T)
    alive = p_alive(model, x, tx, T)
    e90 = expected_if_alive(model, 90 / unit, x, T)
    e365 = expected_if_alive(model, 365 / unit, x, T)
    spend = btyd.expected_spend(gg, x, monetary) * value_factor
    if discount_rate == 0:
        purchases = e365 if horizon_days == 365 else expected_if_alive(model, horizon_days / unit, x, T)
    else:
        steps = max(round(horizon_days / 30.4375), 1)
        edges = np.linspace(0, horizon_days, steps + 1)
        purchases = np.zeros(len(x))
        before = np.zeros(len(x))
        for lo, hi in itertools.pairwise(edges):
            upto = expected_if_alive(model, hi / unit, x, T)
            purchases += (upto - before) * (1 + discount_rate) ** (-((lo + hi) / 2) / 365.0)
            before = upto
    remaining = purchases * spend
    return btyd.Scores(alive, alive * e90, alive * e365, spend, remaining, alive * remaining)


def value_distribution(
    model: ParetoNBD,
    gg: btyd.GammaGamma,
    horizon: float,
    frequency,
    T,
    monetary,
    draws: int = 64,
    samples: int = 2000,
    nodes: int = 24,
    levels: int = 201,
    seed: int = 0,
) -> uncertainty.ValueDistribution:
    """The horizon's value of a customer alive now, per unit of scale v + x m, tabulated per
    distinct frequency and T node as `uncertainty.value_distribution` does for BG/NBD, so that
    `uncertainty.customer_quantiles` gives each customer's P10/P50/P90. Given alive at T the
    rate is Gamma(r + x, α + T), the dropout rate Gamma(s, β + T), the remaining lifetime
    exponential; the parameters' uncertainty enters through draws from their asymptotic normal.
    Only the first moment is tabulated (`second` is NaN): totals' intervals
    (`uncertainty.total_quantiles`) are for BG/NBD."""
    x = np.asarray(frequency, dtype=np.float64)
    T = np.asarray(T, dtype=np.float64)
    m = np.asarray(monetary, dtype=np.float64)
    if len(x) == 0:
        raise BtydError("no customers to tabulate the value distribution for")
    rng = np.random.default_rng(seed)
    pnd = np.vstack(
        [[model.r, model.alpha, model.s, model.beta], uncertainty.parameter_draws(model, draws, rng)]
    )
    ggd = np.vstack([[gg.p, gg.q, gg.v], uncertainty.parameter_draws(gg, draws, rng)])
    ux = np.unique(x)
    grid = uncertainty._nodes(min(model.alpha, model.beta), T, nodes)
    lv = np.linspace(0, 1, levels)
    quant = np.zeros((len(ux), len(grid), levels))
    mean = np.zeros((draws + 1, len(ux), len(grid)))
    order = np.argsort(x, kind="stable")
    bounds = [*np.searchsorted(x[order], ux, side="left").tolist(), len(x)]
    pos = lv * (samples - 1)
    lo = np.minimum(np.floor(pos).astype(np.int64), samples - 2)
    frac = pos - lo
    for i, xv in enumerate(ux):
        rows = order[bounds[i] : bounds[i + 1]]
        # E[Y | alive] = E[N | alive] · p / (q + p x − 1), per draw and node
        for dj in range(draws + 1):
            r, a, s_, b = pnd[dj]
            p_, q_ = ggd[dj, 0], ggd[dj, 1]
            en = expected_if_alive(
                {"r": r, "alpha": a, "s": s_, "beta": b}, horizon, np.full(len(grid), xv), grid
            )
            mean[dj, i] = en * p_ / (q_ + p_ * xv - 1) if q_ + p_ * xv > 1 else np.inf
        m_ref = float(np.nanmedian(m[rows])) if xv > 0 else 0.0
        rho = (ggd[1:, 2] + xv * m_ref) / (gg.v + xv * m_ref)
        k = np.arange(samples) % draws
        r, a, s_, b = pnd[1:][k].T
        p_, q_ = ggd[1:][k, 0], ggd[1:][k, 1]
        g_rate = rng.gamma(r + xv)
        g_drop = rng.gamma(s_)
        e_life = rng.exponential(size=samples)
        spend_rate = rng.gamma(q_ + p_ * xv)
        lam = g_rate[None, :] / (a[None, :] + grid[:, None])
        life = e_life[None, :] * (b[None, :] + grid[:, None]) / g_drop[None, :]
        n = rng.poisson(lam * np.minimum(life, horizon))
        value = np.where(n > 0, rng.gamma(np.maximum(p_[None, :] * n, 1e-300)), 0.0)
        y = np.sort(rho[k][None, :] * value / spend_rate[None, :], axis=1)
        quant[i] = y[:, lo] * (1 - frac) + y[:, lo + 1] * frac
    second = np.full_like(mean, np.nan)
    return uncertainty.ValueDistribution(horizon, ux, grid, lv, quant, ggd[:, 2], mean, second)


def simulate(
    rng: np.random.Generator,
    T,
    params: dict[str, float],
    gg: dict[str, float] | None = None,
    holdout: float = 0.0,
) -> dict[str, np.ndarray]:
    """Customers drawn from Pareto/NBD (and Gamma-Gamma), observed for T time units each, and
    what they do in the `holdout` time units after: the generative process the fit assumes."""
    T = np.asarray(T, dtype=np.float64)
    n = len(T)
    r, alpha, s, beta = _params(params)
    lam = rng.gamma(r, 1 / alpha, n)
    mu = rng.gamma(s, 1 / beta, n)
    life = rng.exponential(1 / mu)
    seen = np.minimum(life, T)
    x = rng.poisson(lam * seen)
    # the last of x uniform arrivals on (0, seen)
    tx = np.where(x > 0, seen * rng.beta(np.maximum(x, 1), 1.0), 0.0)
    alive = life > T
    future = np.where(alive, rng.poisson(lam * np.clip(life - T, 0, holdout)), 0)
    out = {"frequency": x.astype(np.float64), "recency": tx, "T": T, "alive": alive, "lambda": lam, "mu": mu}
    out["future_purchases"] = future.astype(np.float64)
    if gg is not None:
        gp, gq, gv = btyd._gg_params(gg)
        nu = rng.gamma(gq, 1 / gv, n)
        total = rng.gamma(np.maximum(gp * x, 1e-300), 1 / nu)
        out["monetary"] = np.where(x > 0, total / np.maximum(x, 1), np.nan)
        out["future_value"] = np.where(future > 0, rng.gamma(np.maximum(gp * future, 1e-300), 1 / nu), 0.0)
    return out
