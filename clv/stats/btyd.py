"""Buy-till-you-die CLV models, fitted by maximum likelihood.

**BG/NBD** (Fader, Hardie & Lee 2005, "Counting your customers the easy way"): while alive, a
customer buys as a Poisson process with rate λ ~ Gamma(r, α); after each repeat purchase they drop
out with probability p ~ Beta(a, b). **Gamma-Gamma** (Fader, Hardie & Lee 2005, "RFM and CLV";
Fader & Hardie 2013): each transaction's value is Gamma(p, ν) with ν ~ Gamma(q, v), independent of
the purchase process.

Both are fitted on the per-customer summary the literature uses (`summary_sql` computes it in
SQL): `frequency` x = repeat purchase days, `recency` t_x = time from the first to the last
purchase, `T` = time from the first purchase to the calibration end, `monetary` = mean value of
the repeat purchase days. Time is in days or weeks.

Why the fits are fast and stable:
- rows with the same (x, t_x, T) are compressed into weights, and customers with x = 0 (whose
  likelihood depends on T only) into one row per T; every term that depends on x alone
  (log-gammas, digammas) is computed once per distinct x;
- the log-likelihood is evaluated in log space (`logaddexp` of the two BG/NBD terms, softplus and
  sigmoid written so that neither overflows), so very large frequencies or zero recency are fine;
- gradients and Hessians are analytic; a trust-region Newton method in log-parameters converges in
  a handful of steps, started from a fit on a subsample when the data are large.

Convergence is checked (gradient norm of the mean log-likelihood and the optimizer's status) and
reported; a fit that does not converge, or invalid input, raises `BtydError` with a message that
says what was wrong.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, special

from clv.errors import UserError

TIME_UNITS = {"day": 1.0, "week": 7.0}
GRADIENT_TOLERANCE = 1e-7  # on the gradient of the mean log-likelihood, in log-parameters
_LOG_BOUND = 30.0  # |log parameter| beyond this is a degenerate fit (parameter ran off to 0 or ∞)
_SUBSAMPLE = 60_000


class BtydError(UserError):
    """Invalid input to a CLV model, or a fit that failed; the message says which and why."""


class DegenerateFit(BtydError):
    """Parameters ran off towards 0 or infinity; ``names`` says which."""

    def __init__(self, message: str, names: list[str]):
        super().__init__(message)
        self.names = names


# When a young or small dataset shows no heterogeneity in the dropout probability, the BG/NBD
# likelihood keeps rising as a and b grow together (a/(a+b) fixed): the limit is a homogeneous
# dropout probability. The fit then caps log a and log b smoothly at this value (a, b <= ~1100),
# which keeps the mean dropout probability the data identify and says so in the fit report.
_DROPOUT_CAP = 7.0


# --------------------------------------------------------------------------------------------
# fitted models


@dataclass(frozen=True)
class FitReport:
    """How the optimizer ended: a converged fit has a gradient norm below the tolerance."""

    converged: bool
    iterations: int
    gradient_norm: float
    message: str


@dataclass(frozen=True)
class BGNBD:
    """Fitted BG/NBD parameters (α in the fit's time unit) and the fit's diagnostics."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float  # total over customers
    customers: int
    report: FitReport | None = None
    # covariance of (log r, log α, log a, log b): the inverse of minus the Hessian of the total
    # log-likelihood at the optimum; None when that Hessian is not negative definite
    log_covariance: np.ndarray | None = field(default=None, compare=False, repr=False)

    names = ("r", "alpha", "a", "b")

    def params(self) -> dict[str, float]:
        return {"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b}


@dataclass(frozen=True)
class GammaGamma:
    """Fitted Gamma-Gamma parameters (v in currency) and the fit's diagnostics."""

    p: float
    q: float
    v: float
    log_likelihood: float  # total over the customers with repeat purchases
    customers: int
    report: FitReport | None = None
    # covariance of (log p, log q, log v), as for BGNBD
    log_covariance: np.ndarray | None = field(default=None, compare=False, repr=False)

    names = ("p", "q", "v")

    def params(self) -> dict[str, float]:
        return {"p": self.p, "q": self.q, "v": self.v}

    @property
    def mean_spend(self) -> float:
        """Population mean value of a transaction, p·v / (q − 1) (infinite when q ≤ 1)."""
        return self.p * self.v / (self.q - 1) if self.q > 1 else float("inf")


# --------------------------------------------------------------------------------------------
# input checks and compression


def _array(name: str, values) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64)
    if a.ndim != 1:
        raise BtydError(f"{name} must be one value per customer (a 1-d array), got shape {a.shape}")
    bad = ~np.isfinite(a)
    if bad.any():
        raise BtydError(
            f"{name} has {int(bad.sum())} missing or infinite values (first at row {int(np.argmax(bad))})"
        )
    neg = a < 0
    if neg.any():
        raise BtydError(
            f"{name} has {int(neg.sum())} negative values (first at row {int(np.argmax(neg))}: {a[neg][0]:g})"
        )
    return a


def check_summary(frequency, recency, T) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate a (frequency, recency, T) summary; returns float arrays or raises `BtydError`."""
    x, tx, T = _array("frequency", frequency), _array("recency", recency), _array("T", T)
    if not (len(x) == len(tx) == len(T)):
        raise BtydError(f"frequency, recency and T differ in length ({len(x)}, {len(tx)}, {len(T)})")
    if len(x) == 0:
        raise BtydError("no customers to fit")
    frac = x != np.round(x)
    if frac.any():
        raise BtydError(
            f"frequency counts repeat purchases and must be whole; {int(frac.sum())} values are not"
        )
    late = tx > T * (1 + 1e-12) + 1e-12
    if late.any():
        i = int(np.argmax(late))
        raise BtydError(
            f"recency > T for {int(late.sum())} customers (first at row {i}: recency {tx[i]:g} > T {T[i]:g}); "
            "the last purchase cannot come after the calibration end"
        )
    stray = (x == 0) & (tx > 0)
    if stray.any():
        raise BtydError(
            f"{int(stray.sum())} customers have frequency 0 but recency > 0; recency is the time from "
            "the first to the last purchase, so it is 0 without repeat purchases"
        )
    return x, tx, T


def _weights(weights, n: int) -> np.ndarray:
    if weights is None:
        return np.ones(n)
    w = _array("weights", weights)
    if len(w) != n:
        raise BtydError(f"weights has {len(w)} values for {n} customers")
    return w


def _unique_ints(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.unique(key, return_inverse=True) for non-negative int64 keys, without a sort when the
    keys are dense enough to index a table."""
    if len(key) and key.max() < 4 * len(key) + 2**20:
        present = np.zeros(int(key.max()) + 1, dtype=bool)
        present[key] = True
        ukey = np.flatnonzero(present)
        position = np.cumsum(present) - 1
        return ukey, position[key]
    ukey, inv = np.unique(key, return_inverse=True)
    return ukey, inv.astype(np.int64)


def _codes(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(table, code) with table[code] == a. Whole numbers below 2**21 (days, counts) index a dense
    table directly; anything else goes through a sort."""
    if len(a) and a.max() < 2**21 and np.array_equal(a, np.floor(a)):
        code = a.astype(np.int64)
        return np.arange(code.max() + 1, dtype=np.float64), code
    table, code = np.unique(a, return_inverse=True)
    return table, code.astype(np.int64)


@dataclass
class _BGData:
    # customers with x > 0, one row per distinct (x, t_x, T)
    w: np.ndarray
    ix: np.ndarray
    it: np.ndarray
    iT: np.ndarray
    ux: np.ndarray
    ut: np.ndarray
    uT: np.ndarray
    wx: np.ndarray  # weight per distinct x
    # customers with x = 0, one row per distinct T
    w0: np.ndarray
    T0: np.ndarray
    total: float

    @property
    def rows(self) -> int:
        return len(self.w) + len(self.w0)


def _bg_data(x: np.ndarray, tx: np.ndarray, T: np.ndarray, w: np.ndarray) -> _BGData:
    rep = x > 0
    T0_table, T0_code = _codes(T[~rep])
    w0 = np.bincount(T0_code, weights=w[~rep], minlength=len(T0_table))
    keep0 = w0 > 0
    ux, cx = _codes(x[rep])
    ut, ct = _codes(tx[rep])
    uT, cT = _codes(T[rep])
    key = (cx * len(ut) + ct) * len(uT) + cT
    ukey, inv = _unique_ints(key)
    wk = np.bincount(inv, weights=w[rep], minlength=len(ukey))
    ix, rest = np.divmod(ukey, len(ut) * len(uT))
    it, iT = np.divmod(rest, len(uT))
    # keep only the distinct x values that occur, so per-x work is proportional to them
    used_x, ix = _unique_ints(ix)
    ux = ux[used_x]
    wx = np.bincount(ix, weights=wk, minlength=len(ux))
    return _BGData(wk, ix, it, iT, ux, ut, uT, wx, w0[keep0], T0_table[keep0], float(w.sum()))


# --------------------------------------------------------------------------------------------
# numerically stable pieces


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """Σ a·b over customer rows without BLAS: a multi-threaded BLAS dot product is several times
    slower than this loop when the machine's cores are busy (measured on the 2-core benchmark
    machine). Dot products over the few distinct x values keep `@`."""
    return float(np.einsum("i,i->", a, b))


def _softplus(d: np.ndarray) -> np.ndarray:
    """log(1 + e^d) without overflow."""
    return np.maximum(d, 0) + np.log1p(np.exp(-np.abs(d)))


def _log_hess(phi: np.ndarray, g: np.ndarray, H: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gradient and Hessian with respect to log-parameters θ = log φ."""
    return phi * g, np.outer(phi, phi) * H + np.diag(phi * g)


def _log_covariance(evaluate, theta: np.ndarray) -> np.ndarray | None:
    """Asymptotic covariance of the log-parameters at the maximum: the inverse of the observed
    information, minus the analytic Hessian of the total log-likelihood in log-parameters (the
    exact likelihood, without any penalty the fit used). None when that matrix is not positive
    definite (a flat direction: the data do not identify some parameter)."""
    phi = np.exp(theta)
    with np.errstate(all="ignore"):
        _, g, H = evaluate(phi)
    _, Ht = _log_hess(phi, g, H)
    info = -(Ht + Ht.T) / 2
    if not np.all(np.isfinite(info)):
        return None
    try:
        chol = np.linalg.cholesky(info)
    except np.linalg.LinAlgError:
        return None
    inv = np.linalg.inv(chol)
    return inv.T @ inv


# --------------------------------------------------------------------------------------------
# BG/NBD


def bgnbd_log_likelihood(params: dict[str, float] | BGNBD, frequency, recency, T) -> np.ndarray:
    """Per-customer log-likelihood of BG/NBD (eq. 6 of Fader, Hardie & Lee 2005), in log space."""
    r, alpha, a, b = _bg_params(params)
    x, tx, T = check_summary(frequency, recency, T)
    a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    a2 = special.gammaln(a + b) + special.gammaln(b + x) - special.gammaln(b) - special.gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(x > 0, np.log(a) - np.log(b + x - 1) - (r + x) * np.log(alpha + tx), -np.inf)
    return a1 + a2 + np.logaddexp(a3, a4)


def _bg_params(params) -> tuple[float, float, float, float]:
    if isinstance(params, BGNBD):
        return params.r, params.alpha, params.a, params.b
    return float(params["r"]), float(params["alpha"]), float(params["a"]), float(params["b"])


def _bg_eval(phi: np.ndarray, d: _BGData, hessian: bool = True):
    """Total log-likelihood, gradient and Hessian in (r, α, a, b) over compressed data."""
    r, alpha, a, b = phi
    ux, wx = d.ux, d.wx
    # per distinct x
    rx_u = r + ux
    bx1 = b + ux - 1
    c_u = np.log(a) - np.log(bx1)
    lgx = special.gammaln(rx_u) - special.gammaln(r) + special.gammaln(a + b) + special.gammaln(b + ux)
    lgx -= special.gammaln(b) + special.gammaln(a + b + ux)
    ll = wx @ lgx + wx.sum() * r * np.log(alpha)
    # per row (x > 0)
    LT_u, Lt_u = np.log(alpha + d.uT), np.log(alpha + d.ut)
    LT, Lt = LT_u[d.iT], Lt_u[d.it]
    rx = rx_u[d.ix]
    Dr = LT - Lt
    dd = c_u[d.ix] + rx * Dr  # A4 - A3
    w = d.w
    wrx = w * rx
    ll += -_dot(wrx, LT) + _dot(w, _softplus(dd))
    w4 = special.expit(dd)
    ww4 = w * w4
    iT_u, it_u = 1 / (alpha + d.uT), 1 / (alpha + d.ut)
    iT, it = iT_u[d.iT], it_u[d.it]
    Da = rx * (iT - it)
    ww4_x = np.bincount(d.ix, weights=ww4, minlength=len(ux))
    psi_r, psi_ab = special.digamma(r), special.digamma(a + b)
    g = np.empty(4)
    g[0] = wx @ (special.digamma(rx_u) - psi_r) + wx.sum() * np.log(alpha) - _dot(w, LT) + _dot(ww4, Dr)
    g[1] = wx.sum() * r / alpha - _dot(wrx, iT) + _dot(ww4 * rx, iT - it)
    g[2] = wx @ (psi_ab - special.digamma(a + b + ux)) + ww4.sum() / a
    g[3] = wx @ (psi_ab + special.digamma(b + ux) - special.digamma(b) - special.digamma(a + b + ux))
    g[3] -= ww4_x @ (1 / bx1)
    # customers without repeat purchases: log L = r (log α − log(α + T))
    if len(d.w0):
        L0 = np.log(alpha + d.T0)
        i0 = 1 / (alpha + d.T0)
        ll += r * (d.w0 @ (np.log(alpha) - L0))
        g[0] += d.w0 @ (np.log(alpha) - L0)
        g[1] += r * (d.w0 @ (1 / alpha - i0))
    if not hessian:
        return ll, g, None
    s = w4 * (1 - w4)
    sw = w * s
    sw_x = np.bincount(d.ix, weights=sw, minlength=len(ux))
    swDr_x = np.bincount(d.ix, weights=sw * Dr, minlength=len(ux))
    swDa_x = np.bincount(d.ix, weights=sw * Da, minlength=len(ux))
    tg_r, tg_ab = special.polygamma(1, r), special.polygamma(1, a + b)
    tg_abx = special.polygamma(1, a + b + ux)
    H = np.empty((4, 4))
    H[0, 0] = wx @ (special.polygamma(1, rx_u) - tg_r) + _dot(sw, Dr * Dr)
    H[0, 1] = wx.sum() / alpha - _dot(w - ww4, iT) - _dot(ww4, it) + _dot(sw * Dr, Da)
    H[1, 1] = (
        -wx.sum() * r / alpha**2 + _dot(wrx - ww4 * rx, iT * iT) + _dot(ww4 * rx, it * it) + _dot(sw, Da * Da)
    )
    H[0, 2] = swDr_x.sum() / a
    H[0, 3] = -(swDr_x @ (1 / bx1))
    H[1, 2] = swDa_x.sum() / a
    H[1, 3] = -(swDa_x @ (1 / bx1))
    H[2, 2] = wx @ (tg_ab - tg_abx) - ww4.sum() / a**2 + sw_x.sum() / a**2
    H[2, 3] = wx @ (tg_ab - tg_abx) - (sw_x @ (1 / bx1)) / a
    H[3, 3] = wx @ (tg_ab + special.polygamma(1, b + ux) - special.polygamma(1, b) - tg_abx)
    H[3, 3] += ww4_x @ (1 / bx1**2) + sw_x @ (1 / bx1**2)
    if len(d.w0):
        H[0, 1] += d.w0 @ (1 / alpha - i0)
        H[1, 1] += r * (d.w0 @ (-1 / alpha**2 + i0 * i0))
    H = np.triu(H) + np.triu(H, 1).T
    return ll, g, H


def bgnbd_gradient(
    params: dict[str, float], frequency, recency, T, weights=None
) -> tuple[float, np.ndarray, np.ndarray]:
    """Total log-likelihood, analytic gradient and Hessian in (r, α, a, b): for tests and
    diagnostics (the fit uses the same code)."""
    x, tx, T = check_summary(frequency, recency, T)
    d = _bg_data(x, tx, T, _weights(weights, len(x)))
    return _bg_eval(np.array(_bg_params(params)), d)


def fit_bgnbd(frequency, recency, T, weights=None, init: dict[str, float] | None = None) -> BGNBD:
    """Maximum-likelihood BG/NBD. Raises `BtydError` on invalid input or a failed fit."""
    x, tx, T = check_summary(frequency, recency, T)
    w = _weights(weights, len(x))
    if not (w[x > 0] > 0).any():
        raise BtydError(
            "no customer has a repeat purchase: BG/NBD cannot estimate the purchase and dropout "
            "processes (use a longer calibration period)"
        )
    if not (T[x > 0] > 0).any() or not ((T > 0) & (w > 0)).any():
        raise BtydError("every T is 0: the calibration period must end after the first purchases")
    if init is None and len(x) > 2 * _SUBSAMPLE:
        rng = np.random.default_rng(0)
        sub = rng.choice(len(x), _SUBSAMPLE, replace=False)
        if (x[sub] > 0).any():
            try:
                init = fit_bgnbd(x[sub], tx[sub], T[sub], w[sub]).params()
            except BtydError:
                init = None
    if init is None:
        rate = _dot(w, x) / max(_dot(w, T), 1e-12)
        init = {"r": 1.0, "alpha": 1.0 / max(rate, 1e-12), "a": 1.0, "b": 1.0}
    d = _bg_data(x, tx, T, w)
    theta0 = np.log(np.array(_bg_params(init)))
    names = ("r", "alpha", "a", "b")
    try:
        theta, ll, rep = _newton(
            lambda ph, hess=True: _bg_eval(ph, d, hess), theta0, d.total, "BG/NBD", names
        )
    except DegenerateFit as e:
        if not set(e.names) <= {"a", "b"}:
            raise
        start = np.minimum(theta0, _DROPOUT_CAP)
        theta, ll, rep = _newton(
            lambda ph, hess=True: _bg_eval(ph, d, hess), start, d.total, "BG/NBD", names, penalty=_dropout_cap
        )
        rep = FitReport(
            rep.converged,
            rep.iterations,
            rep.gradient_norm,
            f"{rep.message}; dropout heterogeneity not identified by the data: a and b capped near "
            f"e^{_DROPOUT_CAP:g} (homogeneous dropout probability {np.exp(theta[2]) / np.exp(np.logaddexp(theta[2], theta[3])):.4f})",
        )
    r, alpha, a, b = np.exp(theta)
    # a capped fit sits on the penalty's wall, not at a maximum of the likelihood: no standard errors
    capped = "capped" in rep.message
    cov = None if capped else _log_covariance(lambda ph: _bg_eval(ph, d), theta)
    return BGNBD(float(r), float(alpha), float(a), float(b), float(ll), round(d.total), rep, cov)


def _dropout_cap(theta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """A quadratic wall on log a and log b beyond ``_DROPOUT_CAP`` (value, gradient, Hessian)."""
    over = np.zeros_like(theta)
    over[2:] = np.maximum(theta[2:] - _DROPOUT_CAP, 0.0)
    return float(np.sum(over**2)), 2 * over, np.diag(2.0 * (over > 0))


def _newton(evaluate, theta0: np.ndarray, scale: float, name: str, names: tuple[str, ...], penalty=None):
    """Trust-region Newton on the mean negative log-likelihood in log-parameters (plus an optional
    penalty in log-parameters; the returned log-likelihood excludes it)."""
    cache: dict = {}

    def full(theta):
        key = theta.tobytes()
        if key not in cache:
            cache.clear()
            phi = np.exp(theta)
            if not np.all(np.isfinite(phi)) or np.any(np.abs(theta) > 2 * _LOG_BOUND):
                cache[key] = (np.inf, np.zeros_like(theta), np.eye(len(theta)), np.inf)
            else:
                with np.errstate(all="ignore"):
                    ll, g, H = evaluate(phi)
                gt, Ht = _log_hess(phi, g, H)
                if not (np.isfinite(ll) and np.all(np.isfinite(gt)) and np.all(np.isfinite(Ht))):
                    cache[key] = (np.inf, np.zeros_like(theta), np.eye(len(theta)), np.inf)
                else:
                    cache[key] = (-ll / scale, -gt / scale, -Ht / scale, -ll / scale)
                    if penalty is not None:
                        pf, pg, pH = penalty(theta)
                        cache[key] = (-ll / scale + pf, -gt / scale + pg, -Ht / scale + pH, -ll / scale)
        return cache[key]

    res = optimize.minimize(
        lambda th: full(th)[0],
        theta0,
        jac=lambda th: full(th)[1],
        hess=lambda th: full(th)[2],
        method="trust-exact",
        options={"gtol": GRADIENT_TOLERANCE, "maxiter": 200},
    )
    f, g, _, nll = full(res.x)
    gnorm = float(np.linalg.norm(g))
    converged = bool(np.isfinite(f) and gnorm < 10 * GRADIENT_TOLERANCE)
    rep = FitReport(converged, int(res.nit), gnorm, str(res.message))
    values = ", ".join(f"{n}={np.exp(v):.4g}" for n, v in zip(names, res.x))
    off = [n for n, v in zip(names, res.x) if abs(v) > _LOG_BOUND / 2]
    if off:
        raise DegenerateFit(
            f"{name} fit is degenerate: {', '.join(off)} ran off towards 0 or infinity ({values}); "
            "the data do not identify the model (e.g. no sign of dropout, or too few customers)",
            off,
        )
    if not converged:
        raise BtydError(
            f"{name} fit did not converge after {res.nit} iterations (gradient norm {gnorm:.2e} at "
            f"{values}; {res.message})"
        )
    return res.x, -nll * scale, rep


# --------------------------------------------------------------------------------------------
# Gamma-Gamma


def _spend_input(frequency, monetary) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Customers with repeat purchases (only they carry information on spend)."""
    x = np.asarray(frequency, dtype=np.float64)
    m = np.asarray(monetary, dtype=np.float64)
    if x.shape != m.shape or x.ndim != 1:
        raise BtydError(f"frequency and monetary value differ in shape ({x.shape}, {m.shape})")
    rep = np.isfinite(x) & (x > 0)
    xm = m[rep]
    bad = ~np.isfinite(xm)
    if bad.any():
        raise BtydError(f"monetary value is missing for {int(bad.sum())} customers with repeat purchases")
    nonpos = xm <= 0
    if nonpos.any():
        raise BtydError(
            f"{int(nonpos.sum())} customers with repeat purchases have a mean transaction value of 0 "
            "or less; Gamma-Gamma needs positive values (net refunds before summarising, or leave "
            "those transactions out)"
        )
    if not rep.any():
        raise BtydError("no customer has a repeat purchase: Gamma-Gamma has nothing to fit")
    return x[rep], xm, rep


@dataclass
class _GGData:
    w: np.ndarray
    wx: np.ndarray  # w * x per row
    xm: np.ndarray  # x * m per row
    ix: np.ndarray
    ux: np.ndarray
    wsum_x: np.ndarray  # weight per distinct x
    swxlnm: float  # Σ w x log m
    swlnm: float  # Σ w log m
    total: float


def _gg_data(x: np.ndarray, m: np.ndarray, w: np.ndarray) -> _GGData:
    table, code = _codes(x)
    used, ix = _unique_ints(code)
    ux = table[used]
    lnm = np.log(m)
    return _GGData(
        w, w * x, x * m, ix, ux, np.bincount(ix, weights=w, minlength=len(ux)), _dot(w * x, lnm),
        _dot(w, lnm), float(w.sum()),
    )  # fmt: skip


def _gg_eval(phi: np.ndarray, d: _GGData, hessian: bool = True):
    p, q, v = phi
    ux, W, wsx = d.ux, d.total, d.wsum_x
    px = p * ux
    L = np.log(d.xm + v)
    u = 1 / (d.xm + v)
    sxL, sL = _dot(d.wx, L), _dot(d.w, L)
    sxu, su = _dot(d.wx, u), _dot(d.w, u)
    lnx = np.log(ux)
    ll = wsx @ (special.gammaln(px + q) - special.gammaln(px) + px * lnx)
    ll += W * (q * np.log(v) - special.gammaln(q)) + p * d.swxlnm - d.swlnm - p * sxL - q * sL
    dg_pxq, dg_px = special.digamma(px + q), special.digamma(px)
    g = np.array(
        [
            wsx @ (ux * (dg_pxq - dg_px + lnx)) + d.swxlnm - sxL,
            wsx @ dg_pxq - W * special.digamma(q) + W * np.log(v) - sL,
            W * q / v - p * sxu - q * su,
        ]
    )
    if not hessian:
        return ll, g, None
    u2 = u * u
    tg_pxq = special.polygamma(1, px + q)
    H = np.empty((3, 3))
    H[0, 0] = wsx @ (ux * ux * (tg_pxq - special.polygamma(1, px)))
    H[0, 1] = H[1, 0] = wsx @ (ux * tg_pxq)
    H[0, 2] = H[2, 0] = -sxu
    H[1, 1] = wsx @ tg_pxq - W * special.polygamma(1, q)
    H[1, 2] = H[2, 1] = W / v - su
    H[2, 2] = -W * q / v**2 + p * _dot(d.wx, u2) + q * _dot(d.w, u2)
    return ll, g, H


def gamma_gamma_log_likelihood(params: dict[str, float] | GammaGamma, frequency, monetary) -> np.ndarray:
    """Per-customer log-likelihood of the mean repeat transaction value (customers with x > 0)."""
    p, q, v = _gg_params(params)
    x, m, _ = _spend_input(frequency, monetary)
    return (
        special.gammaln(p * x + q) - special.gammaln(p * x) - special.gammaln(q) + q * np.log(v)
        + (p * x - 1) * np.log(m) + p * x * np.log(x) - (p * x + q) * np.log(x * m + v)
    )  # fmt: skip


def _gg_params(params) -> tuple[float, float, float]:
    if isinstance(params, GammaGamma):
        return params.p, params.q, params.v
    return float(params["p"]), float(params["q"]), float(params["v"])


def gamma_gamma_gradient(params: dict[str, float], frequency, monetary, weights=None):
    """Total log-likelihood, analytic gradient and Hessian in (p, q, v)."""
    x, m, rep = _spend_input(frequency, monetary)
    w = _weights(weights, len(rep))[rep]
    return _gg_eval(np.array(_gg_params(params)), _gg_data(x, m, w))


def fit_gamma_gamma(frequency, monetary, weights=None, init: dict[str, float] | None = None) -> GammaGamma:
    """Maximum-likelihood Gamma-Gamma on the customers with repeat purchases."""
    x, m, rep = _spend_input(frequency, monetary)
    w = _weights(weights, len(rep))[rep]
    if init is None and len(x) > 2 * _SUBSAMPLE:
        sub = np.random.default_rng(0).choice(len(x), _SUBSAMPLE, replace=False)
        try:
            init = fit_gamma_gamma(x[sub], m[sub], w[sub]).params()
        except BtydError:
            init = None
    if init is None:
        mean = _dot(w, m) / float(w.sum())
        init = {"p": 2.0, "q": 3.0, "v": mean}
    d = _gg_data(x, m, w)
    theta, ll, rep_ = _newton(
        lambda ph, hess=True: _gg_eval(ph, d, hess),
        np.log(np.array(_gg_params(init))),
        d.total,
        "Gamma-Gamma",
        ("p", "q", "v"),
    )
    p, q, v = np.exp(theta)
    cov = _log_covariance(lambda ph: _gg_eval(ph, d), theta)
    return GammaGamma(float(p), float(q), float(v), float(ll), round(d.total), rep_, cov)


# --------------------------------------------------------------------------------------------
# predictions


def p_alive(model: BGNBD, frequency, recency, T) -> np.ndarray:
    """P(still alive at T | x, t_x, T): 1 for customers without repeat purchases (BG/NBD lets
    customers drop out only after a repeat purchase)."""
    x, tx, T = check_summary(frequency, recency, T)
    r, alpha, a, b = _bg_params(model)
    out = np.ones(len(x))
    rep = x > 0
    xr = x[rep]
    z = np.log(a) - np.log(b + xr - 1) + (r + xr) * (np.log(alpha + T[rep]) - np.log(alpha + tx[rep]))
    out[rep] = special.expit(-z)
    return out


def _group_xT(x: np.ndarray, T: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct (x, T) pairs and each row's pair: conditional expectations depend on x and T
    only, so they are computed once per pair."""
    tab_x, cx = _codes(x)
    tab_T, cT = _codes(T)
    ukey, inv = _unique_ints(cx * len(tab_T) + cT)
    return tab_x[ukey // len(tab_T)], tab_T[ukey % len(tab_T)], inv


def _expected_if_alive(model: BGNBD, t: float, x: np.ndarray, T: np.ndarray, groups=None) -> np.ndarray:
    """E[purchases in (T, T + t] | alive at T, x, T]: eq. 10 of FHL 2005 without the P(alive)
    factor. Evaluated once per distinct (x, T): the Gauss hypergeometric function is the costly
    part."""
    r, alpha, a, b = _bg_params(model)
    if t <= 0:
        return np.zeros(len(x))
    ux, uT, inv = groups if groups is not None else _group_xT(x, T)
    if abs(a - 1) < 1e-3:  # the closed form is 0/0 at a = 1 (its limit is smooth): integrate instead
        return _expected_if_alive_quadrature((r, alpha, a, b), t, ux, uT)[inv]
    z = t / (alpha + uT + t)
    log_ratio = (r + ux) * (np.log(alpha + uT) - np.log(alpha + uT + t))
    h = special.hyp2f1(r + ux, b + ux, a + b + ux - 1, z)
    val = (a + b + ux - 1) / (a - 1) * (1 - np.exp(log_ratio) * h)
    bad = ~np.isfinite(val) | (val < 0)
    if bad.any():
        val[bad] = _expected_if_alive_quadrature((r, alpha, a, b), t, ux[bad], uT[bad])
    return val[inv]


def _expected_if_alive_quadrature(
    params, t: float, x: np.ndarray, T: np.ndarray, nodes: int = 64
) -> np.ndarray:
    """The same expectation by Gauss-Jacobi quadrature over the posterior of p: the integrand
    (1 − (1 + p·t/(α+T))^−(r+x)) / p is smooth and bounded. Used where the closed form is not
    finite (it also checks the closed form in the tests)."""
    r, alpha, a, b = params
    out = np.empty(len(x))
    for xv in np.unique(x):
        sel = x == xv
        # weight (1-p)^(b+x-1) p^(a-1) on [0, 1]  <->  Jacobi weight (1-u)^(b+x-1) (1+u)^(a-1) on [-1, 1]
        u, wq = special.roots_jacobi(nodes, b + xv - 1, a - 1)
        pq = (1 + u) / 2
        wq = wq / wq.sum()
        c = t / (alpha + T[sel])
        vals = -np.expm1(-(r + xv) * np.log1p(np.outer(c, pq))) / pq
        out[sel] = vals @ wq
    return out


def expected_purchases(model: BGNBD, t: float, frequency, recency, T) -> np.ndarray:
    """E[repeat purchases in the next t time units | x, t_x, T] (eq. 10 of FHL 2005)."""
    x, tx, T = check_summary(frequency, recency, T)
    return p_alive(model, x, tx, T) * _expected_if_alive(model, t, x, T)


def expected_purchases_new_customer(model: BGNBD, t: float) -> float:
    """E[X(t)] for a customer just acquired (eq. 9 of FHL 2005)."""
    return float(_expected_if_alive(model, t, np.zeros(1), np.zeros(1))[0])


def expected_spend(model: GammaGamma, frequency, monetary) -> np.ndarray:
    """E[value of a transaction | x, m]: a weighted mean of the population mean p·v/(q−1) and the
    customer's own mean m; the population mean for customers without repeat purchases."""
    if model.q <= 1:
        raise BtydError(f"Gamma-Gamma q = {model.q:.3g} ≤ 1: the mean transaction value is infinite")
    x = np.asarray(frequency, dtype=np.float64)
    m = np.nan_to_num(np.asarray(monetary, dtype=np.float64), nan=0.0)
    p, q, v = model.p, model.q, model.v
    return np.where(x > 0, p * (v + x * m) / (p * x + q - 1), p * v / (q - 1))


@dataclass(frozen=True)
class Scores:
    """Per-customer predictions, arrays aligned with the input rows."""

    p_alive: np.ndarray
    expected_purchases_90d: np.ndarray
    expected_purchases_365d: np.ndarray
    expected_spend: np.ndarray
    remaining_clv: np.ndarray  # value over the horizon if the customer is alive now
    predicted_clv: np.ndarray  # expected value over the horizon: p_alive × remaining_clv


def score(
    bg: BGNBD,
    gg: GammaGamma,
    frequency,
    recency,
    T,
    monetary,
    time_unit: str = "day",
    horizon_days: float = 365.0,
    discount_rate: float = 0.0,
    value_factor: float = 1.0,
) -> Scores:
    """Every per-customer prediction.

    `horizon_days` is the CLV horizon; `discount_rate` an annual rate (0.1 = 10% a year), applied
    month by month to the expected purchases of each month; `value_factor` scales the value of a
    purchase (e.g. 1 − the share of order value refunded, to predict net revenue).
    """
    unit = _unit(time_unit)
    if discount_rate < 0 or not np.isfinite(discount_rate):
        raise BtydError(f"discount rate must be 0 or more (an annual rate), got {discount_rate}")
    x, tx, T = check_summary(frequency, recency, T)
    alive = p_alive(bg, x, tx, T)
    groups = _group_xT(x, T)
    e90 = _expected_if_alive(bg, 90 / unit, x, T, groups)
    e365 = _expected_if_alive(bg, 365 / unit, x, T, groups)
    spend = expected_spend(gg, x, monetary) * value_factor
    if discount_rate == 0:
        purchases = e365 if horizon_days == 365 else _expected_if_alive(bg, horizon_days / unit, x, T, groups)
    else:
        steps = max(round(horizon_days / 30.4375), 1)
        edges = np.linspace(0, horizon_days, steps + 1)
        purchases = np.zeros(len(x))
        before = np.zeros(len(x))
        for lo, hi in itertools.pairwise(edges):
            upto = _expected_if_alive(bg, hi / unit, x, T, groups)
            purchases += (upto - before) * (1 + discount_rate) ** (-((lo + hi) / 2) / 365.0)
            before = upto
    remaining = purchases * spend
    return Scores(alive, alive * e90, alive * e365, spend, remaining, alive * remaining)


def _unit(time_unit: str) -> float:
    try:
        return TIME_UNITS[time_unit]
    except KeyError:
        raise BtydError(f"unknown time unit {time_unit!r}: use one of {', '.join(TIME_UNITS)}") from None


# --------------------------------------------------------------------------------------------
# simulation (tests, benchmarks, sanity checks)


def simulate(
    rng: np.random.Generator,
    T,
    bg: dict[str, float],
    gg: dict[str, float] | None = None,
    holdout: float = 0.0,
) -> dict[str, np.ndarray]:
    """Customers drawn from BG/NBD (and Gamma-Gamma), observed for T time units each, and what
    they do in the `holdout` time units after: the generative process the fits assume."""
    T = np.asarray(T, dtype=np.float64)
    n = len(T)
    r, alpha, a, b = _bg_params(bg)
    lam = rng.gamma(r, 1 / alpha, n)
    p = rng.beta(a, b, n)
    m = rng.poisson(lam * T)
    j = rng.geometric(p)  # dies right after its j-th repeat purchase
    x = np.minimum(m, j)
    # the x-th of m uniform arrival times on (0, T) is T·Beta(x, m − x + 1)
    tx = np.where(x > 0, T * rng.beta(np.maximum(x, 1), np.maximum(m - x + 1, 1)), 0.0)
    alive = m < j
    future = np.where(alive, np.minimum(rng.poisson(lam * holdout), rng.geometric(p)), 0)
    out = {"frequency": x.astype(np.float64), "recency": tx, "T": T, "alive": alive, "lambda": lam, "p": p}
    out["future_purchases"] = future.astype(np.float64)
    if gg is not None:
        gp, gq, gv = _gg_params(gg)
        nu = rng.gamma(gq, 1 / gv, n)
        total = rng.gamma(np.maximum(gp * x, 1e-300), 1 / nu)
        out["monetary"] = np.where(x > 0, total / np.maximum(x, 1), np.nan)
        out["future_value"] = np.where(future > 0, rng.gamma(np.maximum(gp * future, 1e-300), 1 / nu), 0.0)
        out["nu"] = nu
    return out


# --------------------------------------------------------------------------------------------
# the summary, in SQL


def summary_sql(
    transactions: str,
    calibration_end: dt.date,
    time_unit: str = "day",
    customer_col: str = "customer_id",
    date_col: str = "transaction_date",
    amount_col: str = "amount",
) -> str:
    """DuckDB SQL for the per-customer summary of a transaction table (or a parenthesised query):
    transactions of a customer on the same day are one purchase worth their sum; frequency =
    repeat purchase days; recency = first to last purchase; T = first purchase to the calibration
    end; monetary_value = mean value of the repeat purchase days (NULL without repeats).
    Columns: customer_id, frequency, recency, T, monetary_value, first_purchase_date,
    last_purchase_date. Transactions after the calibration end are ignored."""
    unit = _unit(time_unit)
    end = f"DATE '{calibration_end.isoformat()}'"
    return f"""
WITH tx AS (
  SELECT {customer_col} AS customer_id, CAST({date_col} AS DATE) AS purchase_date, {amount_col} AS amount
  FROM {transactions}
  WHERE CAST({date_col} AS DATE) <= {end}
), days AS (
  SELECT customer_id, purchase_date, SUM(amount) AS amount
  FROM tx
  GROUP BY customer_id, purchase_date
), ranked AS (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY purchase_date) AS day_number
  FROM days
)
SELECT
  customer_id,
  COUNT(*) - 1 AS frequency,
  DATE_DIFF('day', MIN(purchase_date), MAX(purchase_date)) / {unit} AS recency,
  DATE_DIFF('day', MIN(purchase_date), {end}) / {unit} AS T,
  CASE WHEN COUNT(*) > 1 THEN CAST(SUM(amount) FILTER (WHERE day_number > 1) AS DOUBLE) / (COUNT(*) - 1) END AS monetary_value,
  MIN(purchase_date) AS first_purchase_date,
  MAX(purchase_date) AS last_purchase_date
FROM ranked
GROUP BY customer_id
ORDER BY customer_id
"""
