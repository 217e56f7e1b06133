"""Simulate a chunk of customers from signup to the horizon, as versioned rows per source.

Every row carries hidden columns (prefixed ``_``): ``_delivery`` (the day the source system
exports it, days since 1970), ``_event_day`` (the day it happened) and, for sources whose rows
are states of an entity (customers, subscriptions, tickets), ``_t`` to order versions. The export
layer decides which versions a batch carries; this module only tells what happened and when.
Times are fractional days since 1970-01-01 (UTC).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from clv import contract
from clv.stats import renewal
from generator import names
from generator.chaos import ChaosProfile
from generator.model import MARKETS, PARAMS, Params, catalog, draw_latents, plans

INF = np.inf
#: Simulated time runs from 1970-01-01 to this day (2149-06-06): ``_order`` packs (customer, time)
#: into one float that needs times in [0, 65536) days, and (customer, day) keys hold days < 1e6.
LAST_DAY = 65_535
COUNTRIES = pa.array([m.country for m in MARKETS])
GENDERS = pa.array(contract.GENDERS)
ORDER_DEVICES = pa.array(contract.ORDER_DEVICES)
ORDER_CHANNELS = pa.array(contract.ORDER_CHANNELS)
SESSION_DEVICES = pa.array(contract.SESSION_DEVICES)
TICKET_CHANNELS = pa.array(contract.TICKET_CHANNELS)
TICKET_ISSUE_TYPES = pa.array(contract.TICKET_ISSUE_TYPES)
TIERS = pa.array(contract.LOYALTY_TIERS)


class _OsVocabulary:
    """Operating-system strings by code: desktop systems, then iOS, iPadOS and Android majors."""

    desktop = ("Windows 11", "Windows 10", "macOS 14", "macOS 15", "Ubuntu 22.04")
    lo, hi = 10, 30

    def __init__(self) -> None:
        majors = range(self.lo, self.hi + 1)
        self.values = pa.array(
            [*self.desktop] + [f"{name} {v}" for name in ("iOS", "iPadOS", "Android") for v in majors]
        )

    def _code(self, family: int, major: np.ndarray) -> np.ndarray:
        span = self.hi - self.lo + 1
        return len(self.desktop) + family * span + np.clip(major, self.lo, self.hi) - self.lo

    def ios(self, major):
        return self._code(0, major)

    def ipados(self, major):
        return self._code(1, major)

    def android(self, major):
        return self._code(2, major)


class _AppVersions:
    """App release strings major.month.patch by code."""

    majors, patches = 15, 4

    def __init__(self) -> None:
        self.values = pa.array(
            [
                f"{m}.{mo}.{p}"
                for m in range(1, self.majors + 1)
                for mo in range(1, 13)
                for p in range(self.patches)
            ]
        )

    def code(self, major, month, patch) -> np.ndarray:
        return ((np.clip(major, 1, self.majors) - 1) * 12 + (month - 1)) * self.patches + patch


OS = _OsVocabulary()
APP_VERSIONS = _AppVersions()


@dataclass(frozen=True)
class Window:
    """Business end date (calibration end) and last simulated day, both days since 1970."""

    end_day: int
    horizon_day: int


def _starts(sizes: np.ndarray) -> np.ndarray:
    out = np.zeros(len(sizes), dtype=np.int64)
    np.cumsum(sizes[:-1], out=out[1:])
    return out


def _rank(group: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Position of each element within its (contiguous, sorted) group."""
    return np.arange(len(group)) - _starts(sizes)[group]


def _ids(prefix: str, cust_idx: np.ndarray, seq: np.ndarray | None = None, seq_width: int = 0) -> pa.Array:
    c = pc.utf8_lpad(pc.cast(pa.array(cust_idx, pa.int64()), pa.string()), 9, "0")
    if seq is None:
        return pc.binary_join_element_wise(prefix, c, "")
    s = pc.utf8_lpad(pc.cast(pa.array(seq, pa.int64()), pa.string()), seq_width, "0")
    return pc.binary_join_element_wise(prefix, c, s, "")


def customer_ids(cust_idx: np.ndarray) -> pa.Array:
    return _ids("C", cust_idx)


def _ts(t: np.ndarray) -> pa.Array:
    # Truncated, not rounded, to the second: an event late on day d stays on day d (rounding put
    # a few in a million at 00:00:00 of the next day, after the batch's business date).
    return pa.array(np.floor(t * 86_400).astype(np.int64), pa.timestamp("s"))


def _date(t: np.ndarray) -> pa.Array:
    return pa.array(np.floor(t).astype(np.int32), pa.date32())


def _day(t: np.ndarray) -> np.ndarray:
    return np.floor(t).astype(np.int32)


def _uniform_in(rng, lo: np.ndarray, hi: np.ndarray, counts: np.ndarray):
    """Draw counts[i] uniform times in [lo[i], hi[i]); return (owner, times) sorted by owner, time."""
    # owner + u in [owner, owner + 1): one float sort orders by owner, then time
    key = np.sort(
        np.repeat(np.arange(len(counts), dtype=np.float64), counts) + rng.random(int(counts.sum())) * 0.999999
    )
    owner = key.astype(np.int64)
    return owner, lo[owner] + (key - owner) * (hi - lo)[owner]


def _order(group: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Permutation sorting by group, then time (times are days since 1970, < ``LAST_DAY + 1``)."""
    return np.argsort(group.astype(np.float64) * 65_536.0 + t)


def _lag(rng, n: int, chaos: ChaosProfile) -> np.ndarray:
    if chaos.late_rate <= 0 or n == 0:
        return np.zeros(n, dtype=np.int32)
    late = rng.random(n) < chaos.late_rate
    return np.where(late, rng.integers(1, chaos.max_lateness_days + 1, n), 0).astype(np.int32)


def _pick(rng, probs, n: int) -> np.ndarray:
    return rng.choice(len(probs), size=n, p=np.asarray(probs) / np.sum(probs))


@dataclass
class Profiles:
    """Who the customers are: market, names, email, demographics (strings as Arrow arrays)."""

    market: np.ndarray
    gender: np.ndarray  # index into contract.GENDERS
    first: pa.Array
    last: pa.Array
    first_slug: pa.Array
    last_slug: pa.Array
    email: pa.Array
    city_i: np.ndarray  # index into names.pool("city").values
    country: pa.Array
    dob: np.ndarray  # days since 1970
    opt_in: np.ndarray


def draw_profiles(rng: np.random.Generator, signup_t: np.ndarray) -> Profiles:
    """Names and cities of the customer's own country, an email made from the name."""
    n = len(signup_t)
    market = _pick(rng, [m.weight for m in MARKETS], n)
    gender = _pick(rng, [0.48, 0.48, 0.02, 0.02], n)  # M, F, Other, Unknown
    fem = pa.array((gender == 1) | ((gender >= 2) & (rng.random(n) < 0.5)))
    male_p, female_p, last_p, city_p = (names.pool(k) for k in names.KINDS)
    fi_f, fi_m, li = female_p.draw(rng, market), male_p.draw(rng, market), last_p.draw(rng, market)
    first_slug = pc.if_else(fem, pc.take(female_p.slugs, fi_f), pc.take(male_p.slugs, fi_m))
    last_slug = pc.take(last_p.slugs, li)
    age_days = (18 + np.minimum(rng.gamma(3.0, 7.0, n), 67)) * 365.25
    return Profiles(
        market=market,
        gender=gender,
        first=pc.if_else(fem, pc.take(female_p.values, fi_f), pc.take(male_p.values, fi_m)),
        last=pc.take(last_p.values, li),
        first_slug=first_slug,
        last_slug=last_slug,
        email=names.emails(rng, first_slug, last_slug),
        city_i=city_p.draw(rng, market),
        country=pc.take(COUNTRIES, pa.array(market)),
        dob=signup_t - age_days,
        opt_in=rng.random(n) < 0.55,
    )


def profiles_table(cid: pa.Array, who: Profiles, signup_t: np.ndarray) -> pa.Table:
    """The customers export for a set of profiles with no changes yet (one row each)."""
    return pa.table(
        {
            "customer_id": cid,
            "first_name": who.first,
            "last_name": who.last,
            "email": who.email,
            "gender": pc.take(GENDERS, pa.array(who.gender)),
            "date_of_birth": _date(who.dob),
            "signup_datetime": _ts(signup_t),
            "city": pc.take(names.pool("city").values, pa.array(who.city_i)),
            "country": who.country,
            "marketing_opt_in": pa.array(who.opt_in),
        }
    )


@dataclass
class Chunk:
    tables: dict[str, pa.Table]
    truth: pa.Table | None


@dataclass(frozen=True)
class Cohort:
    """A chunk's customers: who they are and the hidden traits all their behaviour follows from."""

    idx: np.ndarray  # customer numbers: first_idx, first_idx + 1, ...
    cid: pa.Array  # customer ids
    signup_t: np.ndarray
    lat: dict[str, np.ndarray]  # draw_latents: lambda, p, nu and the copula's z scores
    who: Profiles

    @property
    def n(self) -> int:
        return len(self.signup_t)


@dataclass(frozen=True)
class Purchases:
    """Purchase occasions sorted by customer then time, and when each customer dropped out."""

    occ_c: np.ndarray  # customer (position in the cohort) of each occasion
    occ_t: np.ndarray
    occ_value: np.ndarray  # the occasion's spend, split across its order lines
    death_t: np.ndarray  # dropout time (inf for customers who never drop out)


@dataclass(frozen=True)
class Orders:
    """The orders export, and its rows as arrays: order lines first, then their refunds."""

    table: pa.Table
    row_c: np.ndarray  # customer (position in the cohort)
    row_t: np.ndarray
    row_qty: np.ndarray  # negative for a refund
    row_unit: np.ndarray
    row_points: np.ndarray  # loyalty points earned, negative for a refund
    platform_ios: np.ndarray  # per customer: their phone runs iOS (else Android); sessions agree


def simulate_chunk(
    rng: np.random.Generator,
    first_idx: int,
    signup_t: np.ndarray,
    window: Window,
    chaos: ChaosProfile,
    params: Params = PARAMS,
    with_truth: bool = True,
) -> Chunk:
    """Customers numbered from ``first_idx`` who sign up at ``signup_t``, simulated to the horizon.

    Each step draws from ``rng`` in turn, so their order below is part of the output: a step moved
    or added in between changes every row drawn after it.
    """
    H = float(window.horizon_day + 1)  # exclusive end of simulated time
    cohort = _cohort(rng, first_idx, signup_t, params)
    bought = _purchases(rng, cohort, H, params)
    orders = _orders(rng, cohort, bought, H, chaos, params)
    loyalty = _loyalty_balances(rng, cohort, orders, params)
    sessions = _device_sessions(rng, cohort, bought.death_t, orders.platform_ios, H, chaos, params)
    tickets = _support_tickets(rng, cohort, bought.death_t, H, params)
    subscriptions = _subscriptions(rng, cohort, bought.death_t, H, params)
    customers = _customer_versions(rng, cohort, H, params)
    financial = _financial(rng, cohort, H, params)
    tables = {
        "customers": customers,
        "financial_profiles": financial,
        "orders": orders.table,
        "loyalty_balances": loyalty,
        "subscriptions": subscriptions,
        "support_tickets": tickets,
        "device_sessions": sessions,
    }
    truth = _truth(cohort, bought, orders, subscriptions, window, params) if with_truth else None
    return Chunk(tables, truth)


def _cohort(rng: np.random.Generator, first_idx: int, signup_t: np.ndarray, params: Params) -> Cohort:
    n = len(signup_t)
    cidx = first_idx + np.arange(n, dtype=np.int64)
    lat = draw_latents(rng, n, params)
    who = draw_profiles(rng, signup_t)
    return Cohort(cidx, customer_ids(cidx), signup_t, lat, who)


def _purchases(rng: np.random.Generator, cohort: Cohort, H: float, params: Params) -> Purchases:
    """BG/NBD: a first order minutes after signup, then Poisson repeats at rate lambda, each
    followed by dropout with probability p; Gamma-Gamma spend per occasion.

    Repeats are drawn for the whole span up to the horizon and cut at the dropout, which gives the
    same process as drawing them one by one.
    """
    n, signup_t, lat = cohort.n, cohort.signup_t, cohort.lat
    lam, p, nu = lat["lambda"], lat["p"], lat["nu"]
    t0 = signup_t + rng.uniform(2, 90, n) / 1440.0  # first order minutes after signup
    span = H - t0
    m_count = rng.poisson(lam * span)
    j_death = rng.geometric(p)  # dies right after the j-th repeat purchase
    k_rep = np.minimum(m_count, j_death)
    owner, u = _uniform_in(rng, np.zeros(n), span, m_count)
    rank = _rank(owner, m_count)
    keep = rank < k_rep[owner]
    rep_c, rep_t = owner[keep], t0[owner[keep]] + u[keep]
    dies = m_count >= j_death
    death_t = np.full(n, INF)
    last_rep = np.zeros(n)
    last_rep[rep_c] = rep_t  # sorted ascending, so the last write per customer is its last purchase
    death_t[dies] = last_rep[dies]
    if params.purchase_rate_factor < 1:  # a planned change of behaviour (model.BehaviourChange):
        # repeats after the change day are thinned; the dropout keeps its time (sessions follow it)
        after = rep_t >= params.purchase_rate_change_day
        kept = ~after | (rng.random(len(rep_t)) < params.purchase_rate_factor)
        rep_c, rep_t = rep_c[kept], rep_t[kept]

    occ_c = np.concatenate([np.arange(n), rep_c])
    occ_t = np.concatenate([t0, rep_t])
    o = _order(occ_c, occ_t)
    occ_c, occ_t = occ_c[o], occ_t[o]
    occ_value = rng.gamma(params.gg_p, 1.0 / nu[occ_c])
    return Purchases(occ_c, occ_t, occ_value, death_t)


def _orders(
    rng: np.random.Generator, cohort: Cohort, bought: Purchases, H: float, chaos: ChaosProfile, params: Params
) -> Orders:
    """Each occasion's spend split over 1 to 4 order lines, priced from the product catalogue.

    Customers favour two categories; app use follows engagement; a few lines ship to another city
    and a few are refunded within ``refund_max_days`` (a refund is a negative line of its own).
    """
    n, cidx, cid, lat, who = cohort.n, cohort.idx, cohort.cid, cohort.lat, cohort.who
    market, city_i, country = who.market, who.city_i, who.country
    city_p = names.pool("city")
    occ_c, occ_t, occ_value = bought.occ_c, bought.occ_t, bought.occ_value
    cat = catalog()
    n_cat = len(cat.category_names)
    fav = _pick(rng, cat.popularity, n)
    second = _pick(rng, cat.popularity, n)
    lines_per = 1 + np.minimum(rng.poisson(params.basket_extra, len(occ_c)), 3)
    line_occ = np.repeat(np.arange(len(occ_c)), lines_per)
    g = rng.gamma(1.0, 1.0, len(line_occ))
    gsum = np.bincount(line_occ, weights=g)
    amount = occ_value[line_occ] * g / gsum[line_occ]
    qty = 1 + _pick(rng, [0.72, 0.20, 0.08], len(line_occ))
    unit = np.maximum(np.round(amount / qty, 2), 0.5)
    lc = occ_c[line_occ]
    lt = occ_t[line_occ]
    r = rng.random(len(line_occ))
    line_cat = np.where(
        r < 0.45, fav[lc], np.where(r < 0.65, second[lc], _pick(rng, cat.popularity, len(lc)))
    )
    product = np.empty(len(lc), dtype=np.int64)  # index into the flat product id list
    log_unit = np.log(unit)
    for ci in range(n_cat):
        mask = line_cat == ci
        if mask.any():
            pos = np.searchsorted(cat.log_prices[ci], log_unit[mask])
            product[mask] = cat.product_offset[ci] + np.clip(pos, 0, len(cat.log_prices[ci]) - 1)
    p_app = 1 / (1 + np.exp(-(-0.4 + 0.8 * lat["z_engagement"])))
    platform_ios = rng.random(n) < 0.45
    uses_app = rng.random(len(lc)) < p_app[lc]
    by_phone = rng.random(len(lc)) < 0.03
    device = np.where(uses_app & ~by_phone, np.where(platform_ios[lc], 1, 2), 0)  # web, ios, android
    channel = np.where(by_phone, 2, np.where(uses_app, 1, 0))  # site, app, phone
    ship_city = city_i[lc].copy()
    moved = rng.random(len(lc)) < 0.08
    ship_city[moved] = city_p.draw(rng, market[lc][moved])
    points = np.floor(qty * unit).astype(np.int32)
    line_sizes = np.bincount(lc, minlength=n)
    line_seq = _rank(lc, line_sizes) + 1

    refunded = rng.random(len(lc)) < params.refund_rate
    refund_t = lt + rng.uniform(1, params.refund_max_days, len(lc))
    refunded &= refund_t < H
    ri = np.flatnonzero(refunded)
    all_c = np.concatenate([lc, lc[ri]])
    all_t = np.concatenate([lt, refund_t[ri]])
    all_qty = np.concatenate([qty, -qty[ri]]).astype(np.int32)
    all_unit = np.concatenate([unit, unit[ri]])
    all_points = np.concatenate([points, -points[ri]])
    order_id = _ids("O", cidx[lc], line_seq, 4)
    refund_id = pc.binary_join_element_wise(pc.take(order_id, pa.array(ri)), "-R", "")
    cat_names = pa.array(cat.category_names)
    ev = _day(all_t)
    table = pa.table(
        {
            "order_id": pa.concat_arrays([order_id, refund_id]),
            "customer_id": pc.take(cid, pa.array(all_c)),
            "order_datetime": _ts(all_t),
            "product_id": pc.take(cat.product_ids_flat, pa.array(np.concatenate([product, product[ri]]))),
            "product_category": pc.take(cat_names, pa.array(np.concatenate([line_cat, line_cat[ri]]))),
            "quantity": pa.array(all_qty),
            "unit_price_usd": pa.array(all_unit),
            "device_type": pc.take(ORDER_DEVICES, pa.array(np.concatenate([device, device[ri]]))),
            "order_channel": pc.take(ORDER_CHANNELS, pa.array(np.concatenate([channel, channel[ri]]))),
            "city": pc.take(city_p.values, pa.array(np.concatenate([ship_city, ship_city[ri]]))),
            "country": pc.take(country, pa.array(np.concatenate([lc, lc[ri]]))),
            "loyalty_points_earned": pa.array(all_points),
            "_event_day": pa.array(ev),
            "_delivery": pa.array(ev + _lag(rng, len(ev), chaos)),
        }
    )
    return Orders(table, all_c, all_t, all_qty, all_unit, all_points, platform_ios)


def _loyalty_balances(rng: np.random.Generator, cohort: Cohort, orders: Orders, params: Params) -> pa.Table:
    """A snapshot whenever the balance changes: the day's points (refunds take them back), now and
    then all redeemed; the tier follows the points earned over the customer's lifetime."""
    n, cid = cohort.n, cohort.cid
    all_c, all_points = orders.row_c, orders.row_points
    ev = _day(orders.row_t)
    day_key = all_c.astype(np.int64) * 1_000_000 + ev
    uk, inv = np.unique(day_key, return_inverse=True)
    delta = np.bincount(inv, weights=all_points).astype(np.int64)
    earned = np.bincount(inv, weights=np.maximum(all_points, 0)).astype(np.int64)
    lcust = (uk // 1_000_000).astype(np.int64)
    lday = (uk % 1_000_000).astype(np.int32)
    lsizes = np.bincount(lcust, minlength=n)
    lstart = _starts(lsizes)[lcust]
    first_of_cust = np.arange(len(uk)) == lstart
    redeem = (rng.random(len(uk)) < params.loyalty_redeem_prob) & ~first_of_cust
    cum = np.cumsum(delta)
    base_before = np.where(np.arange(len(uk)) > 0, np.concatenate([[0], cum[:-1]]), 0)
    reset_at = np.where(redeem | first_of_cust, np.arange(len(uk)), 0)
    reset_at = np.maximum.accumulate(reset_at)
    balance = np.maximum(cum - base_before[reset_at], 0)
    lifetime = np.cumsum(earned) - np.concatenate([[0], np.cumsum(earned)[:-1]])[lstart]
    tier = pc.take(TIERS, pa.array(np.searchsorted([1000, 4000, 10000], lifetime, side="right")))
    return pa.table(
        {
            "customer_id": pc.take(cid, pa.array(lcust)),
            "snapshot_date": pa.array(lday, pa.date32()),
            "points_balance": pa.array(balance.astype(np.int32)),
            "loyalty_tier": tier,
            "_event_day": pa.array(lday),
            "_delivery": pa.array(lday),
        }
    )


def _device_sessions(
    rng: np.random.Generator,
    cohort: Cohort,
    death_t: np.ndarray,
    platform_ios: np.ndarray,
    H: float,
    chaos: ChaosProfile,
    params: Params,
) -> pa.Table:
    """Sessions at a steady rate that grows with lambda and engagement, fading linearly to
    ``session_fade_floor`` over the ``session_fade_days`` before dropout: the early warning a
    churn model can learn. OS and app versions follow the calendar."""
    n, cidx, cid, signup_t, lat = cohort.n, cohort.idx, cohort.cid, cohort.signup_t, cohort.lat
    lam = lat["lambda"]
    mean_lam = params.r / params.alpha
    s_rate = params.session_base * np.sqrt(lam / mean_lam) * np.exp(0.5 * lat["z_engagement"] - 0.125)
    active_end = np.minimum(death_t, H)
    fade = np.where(np.isfinite(death_t), np.minimum(params.session_fade_days, active_end - signup_t), 0.0)
    steady_end = active_end - fade
    # When the fade spans the whole life steady_end should equal signup_t, but it can round an ulp
    # below it if active_end > 2 * signup_t in days since 1970 (signups in the first weeks of 1970)
    n_steady = rng.poisson(s_rate * np.maximum(steady_end - signup_t, 0.0))
    fl = params.session_fade_floor
    n_fade = rng.poisson(s_rate * fade * (1 + fl) / 2)
    so, st = _uniform_in(rng, signup_t, steady_end, n_steady)
    fo = np.repeat(np.arange(n), n_fade)
    y = rng.random(len(fo))
    c = (1 - fl) / 2
    s = (1 - np.sqrt(1 - 4 * c * y * (1 - c))) / (2 * c)
    ft = steady_end[fo] + s * fade[fo]
    sc = np.concatenate([so, fo])
    stt = np.concatenate([st, ft])
    o = _order(sc, stt)
    sc, stt = sc[o], stt[o]
    ns = len(sc)
    primary = _pick(rng, [0.4, 0.45, 0.15], n)
    sdev = np.where(rng.random(ns) < 0.75, primary[sc], _pick(rng, [0.4, 0.45, 0.15], ns))
    year = (1970 + stt / 365.2425).astype(np.int64)
    lagging = (rng.random(ns) < 0.3).astype(np.int64)
    ios = platform_ios[sc]
    ios_major = 15 + year - 2021 - lagging
    android_major = 11 + year - 2020 - lagging
    mobile_os = np.where(
        ios, np.where(sdev == 1, OS.ios(ios_major), OS.ipados(ios_major)), OS.android(android_major)
    )
    os_code = np.where(sdev == 0, _pick(rng, [0.45, 0.2, 0.15, 0.15, 0.05], ns), mobile_os)
    in_app = (sdev > 0) & (rng.random(ns) < 0.7)
    month = ((stt / 30.436875).astype(np.int64) % 12) + 1
    app_code = APP_VERSIONS.code(3 + year - 2022, month, rng.integers(0, 4, ns))
    bounce = rng.random(ns) < 0.22
    dur_min = np.where(bounce, rng.uniform(0.1, 1.0, ns), rng.gamma(2.0, 7.0, ns))
    pages = np.where(bounce, 1, 2 + rng.poisson(dur_min / 2.0)).astype(np.int32)
    events = (pages + rng.poisson(pages * 2.0)).astype(np.int32)
    s_sizes = np.bincount(sc, minlength=n)
    sev = _day(stt)
    return pa.table(
        {
            "session_id": _ids("S", cidx[sc], _rank(sc, s_sizes) + 1, 5),
            "customer_id": pc.take(cid, pa.array(sc)),
            "session_start_ts": _ts(stt),
            "session_end_ts": _ts(stt + dur_min / 1440.0),
            "device_type": pc.take(SESSION_DEVICES, pa.array(sdev)),
            "os_version": pc.take(OS.values, pa.array(os_code)),
            "app_version": pc.take(APP_VERSIONS.values, pa.array(app_code, mask=~in_app)),
            "pages_viewed": pa.array(pages),
            "events_fired": pa.array(events),
            "_event_day": pa.array(sev),
            "_delivery": pa.array(sev + _lag(rng, ns, chaos)),
        }
    )


def _support_tickets(
    rng: np.random.Generator, cohort: Cohort, death_t: np.ndarray, H: float, params: Params
) -> pa.Table:
    """Tickets at a rate set by friction, ``ticket_churn_boost`` times as many in the weeks before
    dropout. Each ticket is exported as up to three versions: open, pending, closed."""
    n, cidx, cid, signup_t, lat = cohort.n, cohort.idx, cohort.cid, cohort.signup_t, cohort.lat
    active_end = np.minimum(death_t, H)
    t_rate = params.ticket_base * np.exp(0.7 * lat["z_friction"])
    n_base = rng.poisson(t_rate * (active_end - signup_t))
    cw = np.where(
        np.isfinite(death_t), np.minimum(params.ticket_churn_window_days, active_end - signup_t), 0.0
    )
    n_boost = rng.poisson(t_rate * cw * (params.ticket_churn_boost - 1))
    bo, bt = _uniform_in(rng, signup_t, active_end, n_base)
    xo, xt = _uniform_in(rng, active_end - cw, active_end, n_boost)
    tc = np.concatenate([bo, xo])
    topen = np.concatenate([bt, xt])
    near_churn = np.concatenate([np.zeros(len(bo), bool), np.ones(len(xo), bool)])
    o = _order(tc, topen)
    tc, topen, near_churn = tc[o], topen[o], near_churn[o]
    nt = len(tc)
    zf = lat["z_friction"][tc]
    res_min = np.round(np.exp(np.log(240) + 0.6 * zf + rng.normal(0, 1.0, nt)) + 5)
    tclose = topen + res_min / 1440.0
    closes = tclose < H
    csat = np.clip(
        np.round(4.4 - 0.5 * zf - 0.35 * np.log10(res_min / 60 + 1) + rng.normal(0, 0.7, nt)), 1, 5
    )
    answered = rng.random(nt) < 0.6
    issue = np.where(near_churn, _pick(rng, [0.5, 0.2, 0.2, 0.1], nt), _pick(rng, [0.3, 0.35, 0.2, 0.15], nt))
    tchan = _pick(rng, [0.35, 0.35, 0.2, 0.1], nt)
    t_sizes = np.bincount(tc, minlength=n)
    tid = _ids("T", cidx[tc], _rank(tc, t_sizes) + 1, 4)
    oday, cday = _day(topen), _day(np.where(closes, tclose, H))
    # versions: opened (unless closed the same day), pending (the day after, if still open), closed
    v_open = ~(closes & (cday == oday))
    v_pend = (cday - oday) >= 2
    parts = []
    for sel, status, vday, vt in (
        (v_open, "open", oday, topen),
        (v_pend, "pending", oday + 1, oday + 1.0),
        (closes, "closed", cday, tclose),
    ):
        i = np.flatnonzero(sel)
        is_closed = status == "closed"
        parts.append(
            pa.table(
                {
                    "ticket_id": pc.take(tid, pa.array(i)),
                    "customer_id": pc.take(cid, pa.array(tc[i])),
                    "opened_datetime": _ts(topen[i]),
                    "closed_datetime": _ts(tclose[i]) if is_closed else pa.nulls(len(i), pa.timestamp("s")),
                    "status": pa.array(np.full(len(i), status)),
                    "channel": pc.take(TICKET_CHANNELS, pa.array(tchan[i])),
                    "issue_type": pc.take(TICKET_ISSUE_TYPES, pa.array(issue[i])),
                    "resolution_time_minutes": pa.array(res_min[i].astype(np.int32))
                    if is_closed
                    else pa.nulls(len(i), pa.int32()),
                    "csat_score": pa.array(csat[i].astype(np.int16), mask=~answered[i])
                    if is_closed
                    else pa.nulls(len(i), pa.int16()),
                    "_event_day": pa.array(oday[i]),
                    "_delivery": pa.array(vday[i].astype(np.int32)),
                    "_t": pa.array(np.broadcast_to(np.asarray(vt, dtype=np.float64), (nt,))[i]),
                }
            )
        )
    return pa.concat_tables(parts)


def _subscriptions(
    rng: np.random.Generator, cohort: Cohort, death_t: np.ndarray, H: float, params: Params
) -> pa.Table:
    """Up to two subscription episodes per customer, more likely with a high subscription z.

    An episode may change plan once, pause and resume, and ends by voluntary cancellation or, for
    most customers who drop out, shortly before the dropout. Each status change is a version.
    """
    n, cidx, cid, signup_t, lat = cohort.n, cohort.idx, cohort.cid, cohort.signup_t, cohort.lat
    plan_list = plans()
    tiers = ["basic", "plus", "premium"]
    plan_by = {(pl.tier, pl.billing_months): i for i, pl in enumerate(plan_list)}
    subscribes = rng.random(n) < 1 / (1 + np.exp(-(params.subscribe_intercept + 0.9 * lat["z_subscription"])))
    start = np.where(subscribes, signup_t + rng.exponential(40.0, n), INF)
    z_spend = lat["z_spend"]
    rows = {k: [] for k in ("c", "seq", "plan", "start", "end", "pause", "resume", "auto")}
    seq = np.zeros(n, dtype=np.int64)
    for _episode in range(2):
        live = (start < H) & (start < death_t)
        i = np.flatnonzero(live)
        if not len(i):
            break
        s = start[i]
        vol = s + rng.exponential(params.voluntary_cancel_mean_days, len(i))
        dt = death_t[i]
        by_churn = np.isfinite(dt) & (rng.random(len(i)) < params.churn_cancel_prob)
        churn_cancel = np.where(
            by_churn, np.maximum(dt - rng.uniform(0, params.churn_cancel_lead_days, len(i)), s + 1), INF
        )
        end = np.minimum(vol, churn_cancel)
        ended_by_churn = churn_cancel <= vol
        end = np.where(end < H, end, INF)
        tier = np.clip(np.digitize(z_spend[i] + rng.normal(0, 0.6, len(i)), [-0.3, 0.8]), 0, 2)
        months = np.where(rng.random(len(i)) < 0.3, 12, 1)
        change = s + rng.uniform(30, 400, len(i))
        changes = (rng.random(len(i)) < params.plan_change_prob) & (change < end) & (change < H)
        new_tier = np.clip(tier + np.where(rng.random(len(i)) < 0.6, 1, -1), 0, 2)
        new_tier = np.where(new_tier == tier, np.clip(tier - 1, 0, 2), new_tier)
        auto = rng.random(len(i)) < 0.8
        # first row of the episode ends at the plan change (if any), the second runs to the end
        first_end = np.where(changes, change, end)
        segments = (
            (np.ones(len(i), bool), s, first_end, tier, ~changes),  # before any plan change
            (changes, change, end, new_tier, np.ones(len(i), bool)),  # after it
        )
        for sel, t_start, t_end, tr, last_segment in segments:
            k = np.flatnonzero(sel)
            is_last = last_segment[k]
            pause = t_start[k] + rng.uniform(20, 200, len(k))
            has_pause = is_last & (rng.random(len(k)) < params.pause_prob) & (pause < t_end[k]) & (pause < H)
            resume = pause + rng.uniform(14, 60, len(k))
            has_resume = has_pause & (resume < t_end[k]) & (resume < H)
            seq[i[k]] += 1
            rows["c"].append(i[k])
            rows["seq"].append(seq[i[k]].copy())
            rows["plan"].append(
                np.array([plan_by[(tiers[t], m)] for t, m in zip(tr[k], months[k])], dtype=np.int64)
            )
            rows["start"].append(t_start[k])
            rows["end"].append(t_end[k])
            rows["pause"].append(np.where(has_pause, pause, INF))
            rows["resume"].append(np.where(has_resume, resume, INF))
            rows["auto"].append(auto[k])
        resub = np.isfinite(end) & ~ended_by_churn & (rng.random(len(i)) < params.resubscribe_prob)
        start = np.full(n, INF)
        start[i[resub]] = end[resub] + rng.exponential(60.0, int(resub.sum()))
    if not rows["c"]:
        return _empty_subscriptions()
    r = {k: np.concatenate(v) for k, v in rows.items()}
    sub_id = _ids("B", cidx[r["c"]], r["seq"], 2)
    plan_id = np.array([pl.plan_id for pl in plan_list])[r["plan"]]
    plan_name = np.array([pl.plan_name for pl in plan_list])[r["plan"]]
    billing = np.array([pl.billing_months for pl in plan_list])[r["plan"]]
    parts = []
    for status, vt, sel in (
        ("active", r["start"], np.ones(len(r["c"]), bool)),
        ("paused", r["pause"], np.isfinite(r["pause"])),
        ("active", r["resume"], np.isfinite(r["resume"])),
        ("cancelled", r["end"], np.isfinite(r["end"])),
    ):
        k = np.flatnonzero(sel)
        cancelled = status == "cancelled"
        parts.append(
            pa.table(
                {
                    "subscription_id": pc.take(sub_id, pa.array(k)),
                    "customer_id": pc.take(cid, pa.array(r["c"][k])),
                    "plan_id": pa.array(plan_id[k]),
                    "plan_name": pa.array(plan_name[k]),
                    "status": pa.array(np.full(len(k), status)),
                    "start_date": _date(r["start"][k]),
                    "end_date": _date(r["end"][k]) if cancelled else pa.nulls(len(k), pa.date32()),
                    "is_auto_renew": pa.array(np.zeros(len(k), bool) if cancelled else r["auto"][k]),
                    "_billing_months": pa.array(billing[k].astype(np.int32)),
                    "_event_day": pa.array(_day(vt[k])),
                    "_delivery": pa.array(_day(vt[k])),
                    "_t": pa.array(vt[k].astype(np.float64)),
                }
            )
        )
    return pa.concat_tables(parts)


def _empty_subscriptions() -> pa.Table:
    return pa.table(
        {
            "subscription_id": pa.array([], pa.string()),
            "customer_id": pa.array([], pa.string()),
            "plan_id": pa.array([], pa.string()),
            "plan_name": pa.array([], pa.string()),
            "status": pa.array([], pa.string()),
            "start_date": pa.array([], pa.date32()),
            "end_date": pa.array([], pa.date32()),
            "is_auto_renew": pa.array([], pa.bool_()),
            "_billing_months": pa.array([], pa.int32()),
            "_event_day": pa.array([], pa.int32()),
            "_delivery": pa.array([], pa.int32()),
            "_t": pa.array([], pa.float64()),
        }
    )


def _customer_versions(rng: np.random.Generator, cohort: Cohort, H: float, params: Params) -> pa.Table:
    """The customers export: the signup profile, then a new version at each change of address,
    email or marketing opt-in (the slowly changing dimension downstream)."""
    n, cid, who, signup_t = cohort.n, cohort.cid, cohort.who, cohort.signup_t
    city_i, market, email = who.city_i, who.market, who.email
    rate = params.profile_change_rate_per_year / 365.25
    k = rng.poisson(rate * (H - signup_t))
    owner, t = _uniform_in(rng, signup_t + 1.0, np.maximum(H, signup_t + 1.0), k)
    nc = len(owner)
    kind = _pick(rng, [0.5, 0.3, 0.2], nc)  # address, email, opt-in
    # all versions: the signup version first, then changes, each carrying the full profile
    vc = np.concatenate([np.arange(n), owner])
    vt = np.concatenate([signup_t, t])
    vkind = np.concatenate([np.full(n, -1), kind])
    o = _order(vc, vt)
    vc, vt, vkind = vc[o], vt[o], vkind[o]
    nv = len(vc)
    pos = np.arange(nv)
    new_city = city_i[vc].copy()
    moved = vkind == 0
    new_city[moved] = names.pool("city").draw(rng, market[vc][moved])
    vcs = pa.array(vc)
    new_email = pc.take(email, vcs)
    ch = vkind == 1
    if ch.any():
        cc = pa.array(vc[ch])
        fresh = names.emails(rng, pc.take(who.first_slug, cc), pc.take(who.last_slug, cc))
        new_email = pc.replace_with_mask(new_email, pa.array(ch), fresh)
    # forward-fill each attribute from the latest version that set it
    city_src = np.maximum.accumulate(np.where((vkind == 0) | (vkind == -1), pos, 0))
    email_src = np.maximum.accumulate(np.where((vkind == 1) | (vkind == -1), pos, 0))
    toggles = (vkind == 2).astype(np.int64)
    cum = np.cumsum(toggles)
    sizes = np.bincount(vc, minlength=n)
    before = (cum - toggles)[_starts(sizes)][vc]
    flips = (cum - before) % 2 == 1
    vday = _day(vt)
    return pa.table(
        {
            "customer_id": pc.take(cid, vcs),
            "first_name": pc.take(who.first, vcs),
            "last_name": pc.take(who.last, vcs),
            "email": pc.take(new_email, pa.array(email_src)),
            "gender": pc.take(GENDERS, pa.array(who.gender[vc])),
            "date_of_birth": _date(who.dob[vc]),
            "signup_datetime": _ts(signup_t[vc]),
            "city": pc.take(names.pool("city").values, pa.array(new_city[city_src])),
            "country": pc.take(who.country, vcs),
            "marketing_opt_in": pa.array(who.opt_in[vc] ^ flips),
            "_event_day": pa.array(vday),
            "_delivery": pa.array(vday),
            "_t": pa.array(vt),
        }
    )


def _financial(rng: np.random.Generator, cohort: Cohort, H: float, params: Params) -> pa.Table:
    """Income and credit score at signup and about every ``financial_refresh_days`` after;
    income follows the market's median and the income z, credit score leans on spend and friction."""
    n, cid, signup_t, lat = cohort.n, cohort.cid, cohort.signup_t, cohort.lat
    market = cohort.who.market
    every = params.financial_refresh_days
    k = 1 + np.floor((H - 1 - signup_t) / every).astype(np.int64)
    k = np.maximum(k, 1)
    owner = np.repeat(np.arange(n), k)
    step = _rank(owner, k)
    t = signup_t[owner] + step * every + np.where(step > 0, rng.uniform(-30, 30, len(owner)), 0)
    t = np.where(t < H, t, signup_t[owner])
    keep = (step == 0) | (t < H)
    owner, step, t = owner[keep], step[keep], t[keep]
    median = np.array([m.income_median_usd for m in MARKETS])[market[owner]]
    z_inc = lat["z_income"][owner]
    income = np.round(median * np.exp(0.55 * z_inc + rng.normal(0, 0.15, len(owner))) * 1.03**step, -2)
    credit = np.clip(
        np.round(
            680
            + 45 * z_inc
            + 30 * lat["z_spend"][owner] * 0.3
            - 25 * lat["z_friction"][owner] * 0.3
            + rng.normal(0, 25, len(owner))
        ),
        300,
        850,
    )
    day = _day(t)
    # one profile per customer per day: later refreshes that jittered onto the same day are dropped
    key = owner.astype(np.int64) * 1_000_000 + day
    _, first_idx = np.unique(key, return_index=True)
    s = np.sort(first_idx)
    return pa.table(
        {
            "customer_id": pc.take(cid, pa.array(owner[s])),
            "profile_effective_date": pa.array(day[s], pa.date32()),
            "income_usd": pa.array(income[s]),
            "credit_score": pa.array(credit[s].astype(np.int32)),
            "_event_day": pa.array(day[s]),
            "_delivery": pa.array(day[s]),
        }
    )


TRUTH_WINDOWS = (90, 365)


def _nullable_date(days: np.ndarray) -> pa.Array:
    valid = ~np.isnan(days)
    return pa.array(np.where(valid, days, 0).astype(np.int32), pa.date32(), mask=~valid)


def _subscription_charges(cohort: Cohort, subscriptions: pa.Table, first: int, last: int) -> np.ndarray:
    """Per customer of the cohort: the subscription charges billed on days first..last, by
    core.fct_revenue's convention (clv.stats.renewal.charges_in_window: the plan's list price at
    the start and every billing_months months after it while the subscription runs, its end day
    excluded; a paused subscription is charged)."""
    n = cohort.n
    if not subscriptions.num_rows:
        return np.zeros(n)
    by = subscriptions.group_by("subscription_id").aggregate(
        [
            ("customer_id", "min"),
            ("plan_id", "min"),
            ("start_date", "min"),
            ("end_date", "max"),
            ("_billing_months", "min"),
        ]
    )
    start = by["start_date_min"].to_numpy(zero_copy_only=False).astype("datetime64[D]")
    end = by["end_date_max"].to_numpy(zero_copy_only=False).astype("datetime64[D]")
    months = by["_billing_months_min"].to_numpy().astype(np.int64)
    epoch = dt.date(1970, 1, 1)
    charges = renewal.charges_in_window(
        start, end, months, epoch + dt.timedelta(days=first), epoch + dt.timedelta(days=last)
    )
    price = {pl.plan_id: pl.list_price_usd for pl in plans()}
    amount = charges * np.array([price[p] for p in by["plan_id_min"].to_pylist()])
    pos = pc.index_in(by["customer_id_min"], value_set=cohort.cid).to_numpy(zero_copy_only=False)
    return np.bincount(pos.astype(np.int64), weights=amount, minlength=n)


def _truth(
    cohort: Cohort,
    bought: Purchases,
    orders: Orders,
    subscriptions: pa.Table,
    window: Window,
    params: Params,
) -> pa.Table:
    """One row per customer: the latents, the dropout, the calibration-period RFM summary and what
    they really buy in the holdout windows after the end date (orders net of refunds, subscription
    charges, both): what the models should recover."""
    n, cid, signup_t, lat, country = cohort.n, cohort.cid, cohort.signup_t, cohort.lat, cohort.who.country
    death_t, occ_c, occ_t = bought.death_t, bought.occ_c, bought.occ_t
    all_c, all_t, all_qty, all_unit = orders.row_c, orders.row_t, orders.row_qty, orders.row_unit
    end_x = float(window.end_day + 1)  # exclusive end of the calibration period
    death_day = np.where(np.isfinite(death_t), np.floor(np.where(np.isfinite(death_t), death_t, 0)), np.nan)
    churned = death_t < end_x
    occ_day = np.floor(occ_t).astype(np.int64)
    cal = occ_t < end_x
    # literature conventions: same-day transactions count once; first purchase not counted
    key = occ_c.astype(np.int64) * 1_000_000 + occ_day
    ukey = np.unique(key[cal])
    uc = ukey // 1_000_000
    ud = ukey % 1_000_000
    days = np.bincount(uc, minlength=n)
    first_day = np.full(n, np.nan)
    last_day = np.full(n, np.nan)
    has = days > 0
    starts = _starts(days)
    first_day[has] = ud[starts[has]]
    last_day[has] = ud[starts[has] + days[has] - 1]
    cols = {
        "customer_id": cid,
        "signup_date": _date(signup_t),
        "country": country,
        "lambda_per_day": pa.array(lat["lambda"]),
        "dropout_p": pa.array(lat["p"]),
        "spend_nu": pa.array(lat["nu"]),
        "expected_spend_usd": pa.array(params.gg_p / lat["nu"]),
        "engagement_z": pa.array(lat["z_engagement"]),
        "friction_z": pa.array(lat["z_friction"]),
        "subscription_z": pa.array(lat["z_subscription"]),
        "churned": pa.array(churned),
        "churn_date": _nullable_date(np.where(churned, death_day, np.nan)),
        "dropout_date": _nullable_date(death_day),
        "repeat_purchase_days": pa.array(np.maximum(days - 1, 0)),
        "recency_days": pa.array(np.where(has, last_day - first_day, np.nan)),
        "age_days": pa.array(np.where(has, end_x - 1 - first_day, np.nan)),
    }
    is_order = all_qty > 0
    value = all_qty * all_unit
    for w in TRUTH_WINDOWS:
        in_w = (all_t >= end_x) & (all_t < end_x + w)
        cols[f"future_orders_{w}d"] = pa.array(np.bincount(all_c[in_w & is_order], minlength=n))
        occ_in = (occ_t >= end_x) & (occ_t < end_x + w)
        fk = np.unique(key[occ_in])
        cols[f"future_purchase_days_{w}d"] = pa.array(np.bincount(fk // 1_000_000, minlength=n))
        order_revenue = np.round(np.bincount(all_c[in_w], weights=value[in_w], minlength=n), 2)
        cols[f"future_revenue_{w}d"] = pa.array(order_revenue)
        charged = np.round(_subscription_charges(cohort, subscriptions, int(end_x), int(end_x) + w - 1), 2)
        cols[f"future_subscription_revenue_{w}d"] = pa.array(charged)
        cols[f"future_total_revenue_{w}d"] = pa.array(np.round(order_revenue + charged, 2))
    return pa.table(cols)
