"""The generative model: parameters, reference catalogues, and the latent customer population.

Everything a customer will ever do follows from the latent draws made here. The purchase process
is exactly BG/NBD (Fader, Hardie & Lee 2005) and spend per transaction exactly Gamma-Gamma (Fader,
Hardie & Lee 2005b), so that the CLV models fitted downstream have a true answer to recover; the
other behaviours are coupled to those latents through a Gaussian copula. See generator/README.md.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyarrow as pa
from scipy import special

from clv.settings import SEEDS_DIR

DAY_SECONDS = 86_400
EPOCH = np.datetime64("1970-01-01", "D")


@dataclass(frozen=True)
class Params:
    """Documented parameters of the generative model (time unit: days)."""

    # BG/NBD: purchase rate lambda ~ Gamma(r, rate=alpha); dropout p ~ Beta(a, b).
    r: float = 0.75
    alpha: float = 25.0
    a: float = 0.8
    b: float = 5.0
    # Gamma-Gamma: transaction value ~ Gamma(p, rate=nu); nu ~ Gamma(q, rate=gamma).
    gg_p: float = 4.0
    gg_q: float = 4.0
    gg_gamma: float = 60.0
    # Signups ramp up linearly: the daily signup rate at the end is this multiple of the start's.
    signup_growth: float = 2.0
    # Order lines per purchase occasion: 1 + min(Poisson(basket_extra), 3).
    basket_extra: float = 0.45
    refund_rate: float = 0.04
    refund_max_days: float = 30.0
    # Sessions per day while alive: session_base * (lambda / mean lambda) ** 0.5 * engagement.
    session_base: float = 0.18
    session_fade_days: float = 60.0
    session_fade_floor: float = 0.15
    # Tickets per day: ticket_base * friction multiplier; ticket_churn_boost x in the pre-churn window.
    ticket_base: float = 0.0035
    ticket_churn_window_days: float = 45.0
    ticket_churn_boost: float = 4.0
    # Subscriptions.
    subscribe_intercept: float = 1.0
    plan_change_prob: float = 0.5
    pause_prob: float = 0.12
    voluntary_cancel_mean_days: float = 365.0
    resubscribe_prob: float = 0.7
    churn_cancel_prob: float = 0.9
    churn_cancel_lead_days: float = 45.0
    # Profile changes per customer-year (the SCD-2 material) and financial refresh cadence.
    profile_change_rate_per_year: float = 0.35
    financial_refresh_days: float = 365.0
    loyalty_redeem_prob: float = 0.08
    # Latent couplings (Gaussian copula correlations).
    rho_lambda_engagement: float = 0.6
    rho_p_friction: float = 0.5
    rho_lambda_subscription: float = 0.3
    rho_p_subscription: float = -0.3
    rho_spend_income: float = 0.4
    # A change of behaviour midway (BehaviourChange; none by default): from this simulated day on,
    # each repeat purchase happens with probability purchase_rate_factor (a thinned Poisson
    # process: the purchase rate times the factor; dropout keeps its timing).
    purchase_rate_change_day: float = float("inf")
    purchase_rate_factor: float = 1.0


PARAMS = Params()


@dataclass(frozen=True)
class BehaviourChange:
    """Customers change behaviour midway: from ``on`` their purchase rate is multiplied by
    ``factor`` (0 < factor <= 1). Never drawn at random: a test or benchmark plans it for the
    history (``generator.runner.history(behaviour=...)``) to prove that model health notices
    (tests/ledger/test_drift.py); the history's meta.json records it."""

    on: str  # ISO date
    factor: float

    def __post_init__(self) -> None:
        if not 0 < self.factor <= 1:
            raise ValueError(f"a purchase-rate factor must be in (0, 1], got {self.factor}")

    def params(self, base: Params = PARAMS) -> Params:
        import dataclasses
        import datetime as dt

        day = (dt.date.fromisoformat(self.on) - dt.date(1970, 1, 1)).days
        return dataclasses.replace(
            base, purchase_rate_change_day=float(day), purchase_rate_factor=self.factor
        )


# Latent Gaussian order: lambda, p, engagement, friction, subscription, spend, income
LATENTS = ("lambda", "p", "engagement", "friction", "subscription", "spend", "income")


def correlation_matrix(params: Params = PARAMS) -> np.ndarray:
    c = np.eye(len(LATENTS))
    pairs = {
        ("lambda", "engagement"): params.rho_lambda_engagement,
        ("p", "friction"): params.rho_p_friction,
        ("lambda", "subscription"): params.rho_lambda_subscription,
        ("p", "subscription"): params.rho_p_subscription,
        ("spend", "income"): params.rho_spend_income,
    }
    for (x, y), rho in pairs.items():
        i, j = LATENTS.index(x), LATENTS.index(y)
        c[i, j] = c[j, i] = rho
    return c


@dataclass(frozen=True)
class Market:
    """Where customers live: the mimesis locale that gives names and cities of that country."""

    country: str
    locale: str
    weight: float
    income_median_usd: float


MARKETS: tuple[Market, ...] = (
    Market("US", "EN", 0.34, 62_000),
    Market("GB", "EN_GB", 0.11, 45_000),
    Market("DE", "DE", 0.09, 48_000),
    Market("FR", "FR", 0.07, 42_000),
    Market("BR", "PT_BR", 0.06, 14_000),
    Market("ES", "ES", 0.05, 32_000),
    Market("IT", "IT", 0.05, 34_000),
    Market("NL", "NL", 0.04, 50_000),
    Market("PL", "PL", 0.03, 22_000),
    Market("SE", "SV", 0.03, 47_000),
    Market("BE", "NL_BE", 0.02, 46_000),
    Market("AT", "DE_AT", 0.02, 49_000),
    Market("CH", "DE_CH", 0.02, 80_000),
    Market("DK", "DA", 0.02, 55_000),
    Market("NO", "NO", 0.015, 60_000),
    Market("FI", "FI", 0.015, 45_000),
    Market("PT", "PT", 0.015, 24_000),
    Market("CZ", "CS", 0.015, 23_000),
)


def _read_seed(name: str) -> list[dict[str, str]]:
    with open(SEEDS_DIR / name, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@dataclass(frozen=True)
class Plan:
    plan_id: str
    plan_name: str
    tier: str
    billing_months: int
    list_price_usd: float


@dataclass(frozen=True)
class Category:
    name: str
    low_usd: float
    high_usd: float
    product_count: int


@lru_cache(maxsize=1)
def plans() -> tuple[Plan, ...]:
    return tuple(
        Plan(
            r["plan_id"], r["plan_name"], r["plan_tier"], int(r["billing_months"]), float(r["list_price_usd"])
        )
        for r in _read_seed("plans.csv")
    )


@lru_cache(maxsize=1)
def categories() -> tuple[Category, ...]:
    return tuple(
        Category(
            r["product_category"],
            float(r["price_band_low_usd"]),
            float(r["price_band_high_usd"]),
            int(r["product_count"]),
        )
        for r in _read_seed("categories.csv")
    )


@dataclass(frozen=True)
class ProductCatalog:
    """Products per category with base prices spread log-uniformly over the category's band.

    Fixed (seeded by a constant), so every chunk and every day sees the same catalogue.
    """

    category_names: list[str]
    popularity: np.ndarray  # (C,) global category shares
    log_prices: list[np.ndarray]  # per category, sorted log base prices
    product_offset: np.ndarray  # per category, its first index in product_ids_flat
    product_ids_flat: pa.Array  # all product ids, category by category, aligned with log_prices


@lru_cache(maxsize=1)
def catalog() -> ProductCatalog:
    rng = np.random.default_rng(20240101)
    cats = categories()
    log_prices, ids = [], []
    for ci, c in enumerate(cats):
        lp = np.sort(rng.uniform(np.log(c.low_usd), np.log(c.high_usd), c.product_count))
        log_prices.append(lp)
        ids += [f"P{ci + 1:02d}{k + 1:04d}" for k in range(c.product_count)]
    pop = rng.dirichlet(np.full(len(cats), 4.0))
    sizes = np.array([c.product_count for c in cats])
    offset = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return ProductCatalog([c.name for c in cats], pop, log_prices, offset, pa.array(ids))


def draw_latents(rng: np.random.Generator, n: int, params: Params = PARAMS) -> dict[str, np.ndarray]:
    """Draw each customer's hidden behaviour. Marginals are exact; couplings via a copula."""
    chol = np.linalg.cholesky(correlation_matrix(params))
    z = rng.standard_normal((n, len(LATENTS))) @ chol.T
    u = special.ndtr(z)
    u = np.clip(u, 1e-12, 1 - 1e-12)
    lam = special.gammaincinv(params.r, u[:, 0]) / params.alpha
    p = special.betaincinv(params.a, params.b, u[:, 1])
    nu = special.gammaincinv(params.gg_q, u[:, 5]) / params.gg_gamma
    return {
        "lambda": lam,
        "p": np.clip(p, 1e-9, 1 - 1e-9),
        "nu": nu,
        "z_engagement": z[:, 2],
        "z_friction": z[:, 3],
        "z_subscription": z[:, 4],
        "z_spend": z[:, 5],
        "z_income": z[:, 6],
    }


def signup_days(
    rng: np.random.Generator, n: int, start_day: int, end_day: int, params: Params = PARAMS
) -> np.ndarray:
    """Signup times (fractional days since 1970) with a linear ramp in the daily rate, sorted."""
    span = end_day - start_day + 1
    g = params.signup_growth
    # density on [0, 1] proportional to 1 + (g - 1) x: inverse CDF of a linear ramp
    u = rng.random(n)
    if abs(g - 1.0) < 1e-9:
        x = u
    else:
        k = g - 1.0
        x = (-1.0 + np.sqrt(1.0 + k * (2.0 + k) * u)) / k
    return np.sort(start_day + x * span)


def daily_signup_rate(n: int, start_day: int, end_day: int, params: Params = PARAMS) -> float:
    """Expected signups per day at the end of the history (the rate a `day` batch continues)."""
    span = end_day - start_day + 1
    return n * 2.0 * params.signup_growth / ((1.0 + params.signup_growth) * span)
