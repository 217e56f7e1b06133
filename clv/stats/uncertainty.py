"""How sure the CLV predictions are: parameter intervals, the chance of a purchase, and predictive
intervals of what a customer, or a group of customers, will spend.

Three sources of uncertainty, and where each enters:
- **Parameters.** The fits' standard errors come from the analytic Hessian of the exact
  log-likelihood at the maximum (`btyd._log_covariance`), in log-parameters; the delta method gives
  the standard error of each parameter, and the 95% interval is exp(log θ ± 1.96 se), which stays
  positive. Parameter draws from that normal (in log-parameters; BG/NBD and Gamma-Gamma are fitted
  on separate likelihoods, so their draws are independent) carry it into every interval below.
- **The purchase process.** Given alive at T, a customer's rate is λ ~ Gamma(r + x, α + T) and
  their dropout probability p ~ Beta(a, b + x); the purchases N of the next t time units are the
  Poisson(λt) arrivals up to the one after which they drop out. P(at least one purchase) has a
  closed form (`p_purchase`).
- **Spend per purchase.** Given N, the value of N purchases is Gamma(p N, ν) with the customer's
  ν ~ Gamma(q + p x, v + x m): V = (v + x m) · Y with Y ~ BetaPrime(pN, q + px).

Why it is fast: the distribution of Y given alive depends on the customer only through (x, T),
and on T smoothly, so it is tabulated once per distinct frequency x and a grid of T nodes
(log-spaced in α + T), for all parameter draws at once: quantiles by Monte Carlo (a few thousand
draws per cell, stratified over the parameter draws) and the first two moments per draw in
closed form (series over N). A customer's quantiles then need no simulation: recency enters
through P(alive) (the atom at 0), monetary value through the scale v + x m, and T by linear
interpolation between nodes. Totals are not sums of per-customer quantiles (the P10s of many
independent customers do not happen together): given the parameters, a group's total is a sum of
independent customers, with the summed means and variances (a gamma with those two moments: the
central limit theorem's normal for large groups, non-negative and skewed for small ones); the
parameter draws, shared by every customer, make the total's distribution a mixture of those,
whose quantiles are the totals' intervals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from clv.stats import btyd

Z95 = 1.959963984540054
LEVELS = (0.1, 0.5, 0.9)


# --------------------------------------------------------------------------------------------
# parameters


@dataclass(frozen=True)
class ParameterInterval:
    name: str
    estimate: float
    standard_error: float  # delta method from the log-parameter covariance; NaN when not identified
    lower_95: float
    upper_95: float


def parameter_intervals(model: btyd.BGNBD | btyd.GammaGamma) -> list[ParameterInterval]:
    """Standard errors and 95% intervals of a fitted model's parameters."""
    theta = np.log([getattr(model, n) for n in model.names])
    cov = model.log_covariance
    se_log = np.full(len(theta), np.nan) if cov is None else np.sqrt(np.diag(cov))
    return [
        ParameterInterval(n, float(np.exp(t)), float(np.exp(t) * s), float(np.exp(t - Z95 * s)), float(np.exp(t + Z95 * s)))
        for n, t, s in zip(model.names, theta, se_log)
    ]  # fmt: skip


def parameter_draws(model: btyd.BGNBD | btyd.GammaGamma, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` draws of the parameters (rows; columns in `model.names` order) from the asymptotic
    normal of the log-parameters; the estimate itself, repeated, when there is no covariance."""
    theta = np.log([getattr(model, name) for name in model.names])
    if model.log_covariance is None:
        return np.tile(np.exp(theta), (n, 1))
    chol = np.linalg.cholesky(model.log_covariance)
    return np.exp(theta + rng.standard_normal((n, len(theta))) @ chol.T)


# --------------------------------------------------------------------------------------------
# a purchase


def p_purchase(bg: btyd.BGNBD, t: float, frequency, recency, T) -> np.ndarray:
    """P(at least one purchase in the next t time units | x, t_x, T), BG/NBD in closed form:
    P(alive) · (1 − ((α + T) / (α + T + t))^(r + x)) — an active customer's rate is
    Gamma(r + x, α + T), and without a purchase there is no chance to drop out."""
    x, tx, T = btyd.check_summary(frequency, recency, T)
    alive = btyd.p_alive(bg, x, tx, T)
    if t <= 0:
        return np.zeros(len(x))
    log_none = (bg.r + x) * (np.log(bg.alpha + T) - np.log(bg.alpha + T + t))
    return alive * -np.expm1(log_none)


# --------------------------------------------------------------------------------------------
# the value of a customer over the horizon, given alive


@dataclass(frozen=True)
class ValueDistribution:
    """Y = V / (v + x m), the horizon's value of a customer alive now per unit of scale, tabulated
    per distinct frequency (`ux`) and T node (`nodes`). Index 0 of the draw axis is the point
    estimate; draws 1.. carry the parameter uncertainty."""

    horizon: float  # time units
    ux: np.ndarray
    nodes: np.ndarray
    levels: np.ndarray  # quantile levels of `quantiles`, 0 .. 1
    quantiles: np.ndarray  # (x, node, level), parameter draws mixed in
    v: np.ndarray  # (draw,) Gamma-Gamma v
    mean: np.ndarray  # (draw, x, node): E[Y | alive]
    second: np.ndarray  # (draw, x, node): E[Y² | alive] (inf when q + p x <= 2)

    @property
    def draws(self) -> int:
        return len(self.v) - 1


def _nodes(alpha: float, T: np.ndarray, count: int) -> np.ndarray:
    lo, hi = float(T.min()), float(T.max())
    if hi - lo < 1e-9:
        return np.array([lo])
    nodes = np.geomspace(alpha + lo, alpha + hi, count) - alpha
    nodes[0], nodes[-1] = lo, hi
    return nodes


def _moments(x: float, t: float, nodes: np.ndarray, bgd: np.ndarray, ggd: np.ndarray, points: int = 48):
    """E[Y | alive] and E[Y² | alive] per draw and node. Given the dropout probability p, the
    purchases N = min(M, J) (M ~ NegBin(r + x, α + T) over t, J ~ Geometric(p)) have
    Σ_k P(N ≥ k) z^(k−1) = S(z) = (1 − G(z)) / (1 − z) at z = 1 − p, with G M's generating
    function: E[N | p] = S and E[N² | p] = S + 2 z S'(z), both closed forms in p; the Beta
    posterior of p is integrated by Gauss-Jacobi quadrature (as `btyd._expected_if_alive_quadrature`).
    Then Y = BetaPrime(p_gg N, q + p_gg x) gives the moments."""
    r, alpha, a, b = (bgd[:, i] for i in range(4))
    p_gg, q_gg = ggd[:, 0], ggd[:, 1]
    # nodes and weights for the first draw's Beta(a, b + x); the other draws reweight them by the
    # ratio of their Beta densities (smooth, the draws being close), one root-finding per x
    u, wq = special.roots_jacobi(points, b[0] + x - 1, a[0] - 1)
    p = (1 + u) / 2
    log_ratio = (a - a[0])[:, None] * np.log(p) + (b - b[0])[:, None] * np.log1p(-p)
    log_ratio -= (special.betaln(a, b + x) - special.betaln(a[0], b[0] + x))[:, None]
    wq = (wq / wq.sum()) * np.exp(log_ratio)  # (S, P)
    p = p[None, None, :]
    rx = (r + x)[:, None, None]
    c = (t / (alpha[:, None] + nodes[None, :]))[:, :, None]  # (S, nT, 1): t / (α + T)
    pc = p * c
    lg = np.log1p(pc)
    none = -np.expm1(-rx * lg)
    S = none / p
    num = none - rx * pc * np.exp(-(rx + 1) * lg)
    small = pc < 1e-4
    dS = np.where(small, rx * (rx + 1) * c**2 / 2, num / np.where(small, 1.0, p) ** 2)
    en = np.einsum("snp,sp->sn", S, wq)
    en2 = np.einsum("snp,sp->sn", S + 2 * (1 - p) * dS, wq)
    Q = (q_gg + p_gg * x)[:, None]
    pg = p_gg[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(Q > 1, pg * en / (Q - 1), np.inf)
        second = np.where(Q > 2, (pg**2 * en2 + pg * en) / ((Q - 1) * (Q - 2)), np.inf)
    return mean, second


def _sample_quantiles(
    x: float,
    t: float,
    nodes: np.ndarray,
    bgd: np.ndarray,
    ggd: np.ndarray,
    rho: np.ndarray,
    samples: int,
    levels: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Quantiles of Y per node by simulation, the parameter draws stratified over the samples;
    the rate, dropout and spend-rate draws are shared by the nodes (common random numbers), so
    the tables are smooth in T."""
    s = np.arange(samples) % len(bgd)
    r, alpha, a, b = bgd[s].T
    p_, q_ = ggd[s, 0], ggd[s, 1]
    g_rate = rng.gamma(r + x)
    dropout = rng.beta(a, b + x)
    after = rng.geometric(dropout)  # drops out right after this purchase
    spend_rate = rng.gamma(q_ + p_ * x)
    lam = g_rate[None, :] / (alpha[None, :] + nodes[:, None])
    n = np.minimum(rng.poisson(lam * t), after[None, :])
    value = np.where(n > 0, rng.gamma(np.maximum(p_[None, :] * n, 1e-300)), 0.0)
    y = np.sort(rho[s][None, :] * value / spend_rate[None, :], axis=1)
    pos = levels * (samples - 1)
    lo = np.minimum(np.floor(pos).astype(np.int64), samples - 2)
    f = pos - lo
    return y[:, lo] * (1 - f) + y[:, lo + 1] * f


def value_distribution(
    bg: btyd.BGNBD,
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
) -> ValueDistribution:
    """Tabulate Y for the customers' distinct frequencies and the range of their T (customers
    with a purchase; `horizon` in the fit's time units)."""
    x = np.asarray(frequency, dtype=np.float64)
    T = np.asarray(T, dtype=np.float64)
    m = np.asarray(monetary, dtype=np.float64)
    if len(x) == 0:
        raise btyd.BtydError("no customers to tabulate the value distribution for")
    rng = np.random.default_rng(seed)
    bgd = np.vstack([[bg.r, bg.alpha, bg.a, bg.b], parameter_draws(bg, draws, rng)])
    ggd = np.vstack([[gg.p, gg.q, gg.v], parameter_draws(gg, draws, rng)])
    ux = np.unique(x)
    grid = _nodes(bg.alpha, T, nodes)
    lv = np.linspace(0, 1, levels)
    # cells no customer reaches stay 0 (so they add nothing to the totals' sums)
    quant = np.zeros((len(ux), len(grid), levels))
    mean = np.zeros((draws + 1, len(ux), len(grid)))
    second = np.zeros_like(mean)
    order = np.argsort(x, kind="stable")
    bounds = [*np.searchsorted(x[order], ux, side="left").tolist(), len(x)]
    for i, xv in enumerate(ux):
        rows = order[bounds[i] : bounds[i + 1]]
        # only the nodes around this frequency's ages
        lo = max(int(np.searchsorted(grid, T[rows].min(), side="right")) - 1, 0)
        hi = min(int(np.searchsorted(grid, T[rows].max(), side="left")), len(grid) - 1) + 1
        cells = grid[lo:hi]
        mean[:, i, lo:hi], second[:, i, lo:hi] = _moments(xv, horizon, cells, bgd, ggd)
        # the draws' v enter through the scale v + x m, taken at the median m of this frequency
        m_ref = float(np.nanmedian(m[rows])) if xv > 0 else 0.0
        rho = (ggd[1:, 2] + xv * m_ref) / (gg.v + xv * m_ref)
        quant[i, lo:hi] = _sample_quantiles(xv, horizon, cells, bgd[1:], ggd[1:], rho, samples, lv, rng)
    return ValueDistribution(horizon, ux, grid, lv, quant, ggd[:, 2], mean, second)


def _locate(vd: ValueDistribution, x: np.ndarray, T: np.ndarray):
    ix = np.searchsorted(vd.ux, x)
    ix = np.minimum(ix, len(vd.ux) - 1)
    if not np.array_equal(vd.ux[ix], x):
        raise btyd.BtydError("a frequency outside the tabulated value distribution: tabulate these customers")
    if len(vd.nodes) == 1:
        return ix, np.zeros(len(x), dtype=np.int64), np.zeros(len(x)), 0
    j = np.clip(np.searchsorted(vd.nodes, T, side="right") - 1, 0, len(vd.nodes) - 2)
    w = np.clip((T - vd.nodes[j]) / (vd.nodes[j + 1] - vd.nodes[j]), 0, 1)
    return ix, j, w, 1


def _scale(vd: ValueDistribution, x, T, m, value_if_alive, loc) -> np.ndarray:
    """Per customer, the factor that turns Y into value: (v + x m) times whatever the pipeline
    applies to the value (refund share, discounting), read off as value_if_alive / E[V | alive]
    at the point estimate, so the intervals bracket exactly the pipeline's expectation."""
    ix, j, w, step = loc
    mu = (1 - w) * vd.mean[0, ix, j] + w * vd.mean[0, ix, j + step]
    base = (vd.v[0] + x * np.nan_to_num(m)) * mu
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(base > 0, value_if_alive / base, 0.0)


def customer_quantiles(
    vd: ValueDistribution,
    frequency,
    T,
    monetary,
    alive,
    value_if_alive,
    levels=LEVELS,
) -> np.ndarray:
    """Quantiles (columns, one per level) of each customer's value over the horizon: 0 with
    probability 1 − alive (plus the chance of no purchase), else the tabulated value given alive.
    `value_if_alive` is the pipeline's expected value if alive (net, discounted)."""
    x = np.asarray(frequency, dtype=np.float64)
    T = np.asarray(T, dtype=np.float64)
    m = np.asarray(monetary, dtype=np.float64)
    pa = np.clip(np.asarray(alive, dtype=np.float64), 0, 1)
    loc = _locate(vd, x, T)
    ix, j, w, step = loc
    scale = (vd.v[0] + x * np.nan_to_num(m)) * _scale(vd, x, T, m, np.asarray(value_if_alive, float), loc)
    last = len(vd.levels) - 1
    out = np.zeros((len(x), len(levels)))
    for c, u in enumerate(levels):
        with np.errstate(divide="ignore", invalid="ignore"):
            level = np.where(pa > 0, (u - (1 - pa)) / pa, 0.0)
        pos = np.clip(level, 0, 1) * last
        lo = np.minimum(np.floor(pos).astype(np.int64), last - 1)
        f = pos - lo

        y = (1 - w) * _at(vd.quantiles, ix, j, lo, f) + w * _at(vd.quantiles, ix, j + step, lo, f)
        out[:, c] = np.where(level > 0, y * scale, 0.0)
    return out


def _at(table: np.ndarray, ix: np.ndarray, node: np.ndarray, lo: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Each customer's quantile at fractional level position lo + f in their (x, node) row."""
    return (1 - f) * table[ix, node, lo] + f * table[ix, node, lo + 1]


# --------------------------------------------------------------------------------------------
# totals


@dataclass(frozen=True)
class TotalInterval:
    mean: np.ndarray  # per group, averaged over the parameter draws
    quantiles: np.ndarray  # (group, level)
    levels: tuple[float, ...]


def total_quantiles(
    vd: ValueDistribution,
    frequency,
    T,
    monetary,
    probability,
    value_if_alive,
    group,
    groups: int,
    levels=LEVELS,
    seed: int = 0,
    extra_mean: np.ndarray | None = None,
    extra_var: np.ndarray | None = None,
) -> TotalInterval:
    """Quantiles of the total value of each group: Σ B_i V_i with B_i ~ Bernoulli(probability_i)
    (alive, or alive and leaving: whatever the total counts) independent of V_i, the value if
    alive. Given a parameter draw the customers are independent: the total has the summed means
    and variances (`_mixture_quantiles` gives it their gamma); over the draws, a mixture. `group` holds each
    customer's group number (0 .. groups − 1). `extra_mean` and `extra_var` (per group) add an
    independent part whose uncertainty is not drawn (the subscriptions' charges) to every draw."""
    x = np.asarray(frequency, dtype=np.float64)
    T = np.asarray(T, dtype=np.float64)
    m = np.nan_to_num(np.asarray(monetary, dtype=np.float64))
    pi = np.clip(np.asarray(probability, dtype=np.float64), 0, 1)
    g = np.asarray(group, dtype=np.int64)
    loc = _locate(vd, x, T)
    ix, j, w, step = loc
    f = _scale(vd, x, T, m, np.asarray(value_if_alive, float), loc)
    xm = x * m
    cells = len(vd.ux) * len(vd.nodes)
    size = groups * cells

    def sums(weight: np.ndarray) -> np.ndarray:
        """Σ weight over (group, x, node), each customer shared between its two nodes."""
        key = (g * len(vd.ux) + ix) * len(vd.nodes)
        out = np.bincount(key + j, weights=weight * (1 - w), minlength=size)
        out += np.bincount(key + j + step, weights=weight * w, minlength=size)
        return out.reshape(groups, cells)

    a0, a1 = sums(pi * f), sums(pi * f * xm)
    b0, b1, b2 = sums(pi * f * f), sums(pi * f * f * xm), sums(pi * f * f * xm * xm)
    c0, c1, c2 = sums(pi**2 * f * f), sums(pi**2 * f * f * xm), sums(pi**2 * f * f * xm * xm)
    v = vd.v[1:, None]
    mu1 = vd.mean[1:].reshape(vd.draws, cells)
    mu2 = vd.second[1:].reshape(vd.draws, cells)
    with np.errstate(invalid="ignore"):
        mean = v * (mu1 @ a0.T) + mu1 @ a1.T  # (draw, group)
        second = v**2 * (mu2 @ b0.T) + 2 * v * (mu2 @ b1.T) + mu2 @ b2.T
        square = v**2 * (mu1**2 @ c0.T) + 2 * v * (mu1**2 @ c1.T) + mu1**2 @ c2.T
    var = np.maximum(second - square, 0)
    if extra_mean is not None:
        mean = mean + np.asarray(extra_mean, dtype=np.float64)[None, :]
    if extra_var is not None:
        var = var + np.asarray(extra_var, dtype=np.float64)[None, :]
    sd = np.sqrt(var)
    return TotalInterval(mean.mean(axis=0), _mixture_quantiles(mean, sd, levels), tuple(levels))


def _mixture_quantiles(mean: np.ndarray, sd: np.ndarray, levels) -> np.ndarray:
    """Quantiles, per group g, of the equal-weight mixture over draws s of the distributions with
    mean[s, g] and sd[s, g]: each a gamma matched to those two moments — the central limit's
    normal for large groups, but never negative and skewed right, as a small group's total is."""
    out = np.full((mean.shape[1], len(levels)), np.nan)
    for k in range(mean.shape[1]):
        mu, s = mean[:, k], sd[:, k]
        if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(s))):
            continue
        if np.all(s <= 1e-12 * np.maximum(mu, 1.0)):  # nothing random (e.g. nobody in the group)
            out[k] = np.quantile(mu, levels)
            continue
        out[k] = _gamma_mixture_quantiles(mu, s, np.asarray(levels, dtype=np.float64))
    return out


def _gamma_mixture_quantiles(mu: np.ndarray, sd: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Quantiles of the equal-weight mixture of gammas with means ``mu`` and sds ``sd`` (a zero sd
    is a point mass), by bisection on [0, max(mu + 10 sd)]: 60 halvings reach float precision."""
    shape = np.where(sd > 0, (mu / np.maximum(sd, 1e-300)) ** 2, np.inf)
    scale = np.where(mu > 0, sd**2 / np.maximum(mu, 1e-300), 0.0)
    random = scale > 0
    safe_scale = np.where(random, scale, 1.0)
    lo = np.zeros(len(levels))
    hi = np.full(len(levels), float((mu + 10 * sd).max()))
    for _ in range(60):
        mid = (lo + hi) / 2
        with np.errstate(divide="ignore", invalid="ignore"):
            g = special.gammainc(shape[None, :], mid[:, None] / safe_scale[None, :])
        below = np.where(random[None, :], g, mid[:, None] >= mu[None, :]).mean(axis=1) < levels
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return (lo + hi) / 2
