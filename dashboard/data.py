"""What the dashboard shows, as DataFrames read from the serving file.

The dashboard never opens the warehouse: it reads ``<data dir>/serving.duckdb``, which
``clv.publish`` replaces with an atomic rename. A page load opens the file read-only, runs its
queries and closes it, so the next load sees the newest file and the old one is never held open.

A serving file that is missing, empty, unreadable or incomplete raises ``ServingUnavailable`` with
a sentence a user can act on; the app turns it into a page that says to run ``make run`` first.

Columns other engineers may add to the marts (``p_alive``, ``expected_purchases_365d``, ...) are
used when present and left out when not: every optional column is looked up in ``Serving.columns``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from clv import settings
from clv.names import CHECKED_LAYERS as LAYERS

VALUE_TIERS = ("Top 10%", "High", "Medium", "Low")
HIGH_VALUE_TIERS = ("Top 10%", "High")
RISK_BANDS = ("high", "medium", "low")
LIFECYCLE_STAGES = ("onboarding", "active", "dormant", "churned")

# What a page needs to exist: table -> columns it reads. Anything else is optional.
REQUIRED: dict[str, tuple[str, ...]] = {
    "serving_info": ("business_date", "published_at"),
    "mart_customer_360": (
        "customer_id",
        "lifecycle_stage",
        "churn_probability",
        "risk_band",
        "historical_clv_usd",
        "predicted_clv_12m_usd",
        "revenue_at_risk_usd",
        "value_lost_usd",
        "value_kept_usd",
        "value_at_stake_usd",
        "is_reachable",
        "value_tier",
        "contract_segment",
        "region",
    ),
    "mart_clv": ("customer_id", "predicted_clv_12m_usd", "value_tier"),
    "mart_retention_cohorts": (
        "cohort_month",
        "months_since_acquisition",
        "cohort_size",
        "customers_active",
        "retention_rate",
    ),
    "mart_churn_support_analysis": (
        "tickets_band",
        "csat_band",
        "resolution_band",
        "customers",
        "avg_churn_probability",
        "churned_share",
        "revenue_at_risk_usd",
    ),
    "mart_category_ltv": ("favourite_category", "customers"),
}

# Columns of the at-risk list, in this order: who (name, email), what is at stake, why (the churn
# model's reasons) and what changed, then the rest. Columns the marts do not carry are left out.
AT_RISK_COLUMNS = (
    "customer_id",
    "customer_name",
    "email",
    "value_tier",
    "revenue_at_risk_usd",
    "value_lost_usd",
    "leave_probability_90d",
    "churn_probability",
    "churn_reasons",
    "risk_change",
    "risk_band",
    "lifecycle_stage",
    "days_since_last_activity",
    "p_alive",
    "p_purchase_90d",
    "predicted_clv_12m_usd",
    "value_12m_p10_usd",
    "value_12m_p90_usd",
    "historical_clv_usd",
    "value_at_stake_usd",
    "predicted_remaining_clv_usd",
    "expected_purchases_365d",
    "contract_segment",
    "region",
    "country_code",
    "favourite_category",
    "tickets_90d",
    "avg_csat_90d",
    "loyalty_tier",
    "is_marketing_opt_in",
)
SORTS = {
    "revenue at risk": "revenue_at_risk_usd DESC",
    "value already lost": "value_lost_usd DESC",
    "churn probability": "churn_probability DESC",
    "predicted 12-month CLV": "predicted_clv_12m_usd DESC",
}
# The two lists: customers still reachable (at risk of leaving in the next 90 days) and customers
# who have most likely left (the win-back pool). is_reachable splits them (int_revenue_risk).
POOLS = {
    "at risk": "is_reachable",
    "already lost": "NOT is_reachable",
}
# Filters of the at-risk list: column -> label. Values come from the data; a column the marts do
# not carry (risk_change before issue 17) offers no filter.
SEGMENT_FILTERS = {
    "value_tier": "Value tier",
    "risk_band": "Churn risk",
    "lifecycle_stage": "Lifecycle stage",
    "contract_segment": "Subscription segment",
    "region": "Region",
    "risk_change": "Since the previous date",
}
RISK_CHANGES = ("newly at risk", "still at risk", "recovered", "moved to win-back")
# Dollar bands of predicted 12-month CLV for the distribution chart (lower bounds).
CLV_BANDS = (0, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000)


class ServingUnavailable(Exception):
    """The serving file cannot be shown; the message says why and what to do."""


@dataclass
class Serving:
    """An open, read-only serving file and what it holds."""

    con: duckdb.DuckDBPyConnection
    path: Path
    business_date: dt.date
    published_at: dt.datetime
    source_schema: str | None
    row_counts: dict[str, int]
    columns: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def has(self, table: str, column: str | None = None) -> bool:
        cols = self.columns.get(table)
        return cols is not None and (column is None or column in cols)

    def df(self, sql: str, params: Sequence[object] | None = None) -> pd.DataFrame:
        return self.con.execute(sql, list(params or [])).df()


def serving_path(data_dir: str | Path | None = None) -> Path:
    return settings.paths(data_dir).serving


@contextmanager
def open_serving(data_dir: str | Path | None = None) -> Iterator[Serving]:
    """Open the serving file read-only for one page load; closed on exit."""
    path = serving_path(data_dir)
    if not path.exists():
        raise ServingUnavailable(f"There is no serving file at {path} yet.")
    if path.stat().st_size == 0:
        raise ServingUnavailable(f"The serving file {path} is empty (0 bytes).")
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "lock" in first.lower():
            raise ServingUnavailable(
                f"The serving file {path} is held open for writing by another process; "
                "reload this page in a moment."
            ) from None
        raise ServingUnavailable(f"The serving file {path} cannot be read as DuckDB: {first}") from None
    try:
        yield _describe(con, path)
    finally:
        con.close()


def _describe(con: duckdb.DuckDBPyConnection, path: Path) -> Serving:
    columns: dict[str, list[str]] = {}
    for table, column in con.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = 'main' AND table_catalog = current_database() "
        "ORDER BY table_name, ordinal_position"
    ).fetchall():
        columns.setdefault(table, []).append(column)
    if not columns:
        raise ServingUnavailable(f"The serving file {path} holds no tables.")
    missing: list[str] = []
    for table, cols in REQUIRED.items():
        if table not in columns:
            missing.append(table)
        else:
            missing += [f"{table}.{c}" for c in cols if c not in columns[table]]
    if missing:
        raise ServingUnavailable(
            f"The serving file {path} is incomplete: missing {', '.join(missing)}. "
            "It was not written by this version of the pipeline."
        )
    info = con.execute("SELECT * FROM serving_info LIMIT 2").fetchall()
    if len(info) != 1:
        raise ServingUnavailable(f"The serving file {path} has {len(info)} rows in serving_info, not 1.")
    row = dict(zip([d[0] for d in con.description], info[0]))
    customers = con.execute("SELECT count(*) FROM mart_customer_360").fetchone()[0]
    if customers == 0:
        raise ServingUnavailable(f"The serving file {path} holds no customers.")
    counts = row.get("row_counts")
    return Serving(
        con=con,
        path=path,
        business_date=row["business_date"],
        published_at=row["published_at"],
        source_schema=row.get("source_schema"),
        row_counts=json.loads(counts) if isinstance(counts, str) else dict(counts or {}),
        columns={t: tuple(c) for t, c in columns.items()},
    )


# --- headline numbers -----------------------------------------------------------------------


@dataclass(frozen=True)
class Kpis:
    customers: int
    revenue_to_date_usd: float
    revenue_last_12m_usd: float | None
    predicted_clv_12m_usd: float
    remaining_value_usd: float
    revenue_at_risk_usd: float
    value_kept_usd: float
    value_lost_usd: float
    reachable_customers: int
    lost_customers: int
    win_back_value_usd: float
    high_risk_customers: int
    high_value_at_risk_usd: float


def kpis(s: Serving) -> Kpis:
    """Customers, revenue, predicted 12-month CLV, and the remaining value's three parts summed
    over every customer: revenue at risk (customers still reachable who may leave in the next 90
    days; zero for the others by construction), value kept and value already lost. The win-back
    pool is the customers most likely gone (not reachable) and the value lost with them.

    Revenue to date is net revenue (orders + subscriptions + refunds) per customer. Revenue in the
    last 12 months comes from the cohort table (revenue per cohort and calendar month) for the 12
    calendar months up to and including the business date's month.
    """
    (
        customers,
        to_date,
        clv12,
        remaining,
        at_risk,
        kept,
        lost,
        reachable,
        gone,
        win_back,
        high_risk,
        hv_at_risk,
    ) = s.con.execute(
        "SELECT count(*), sum(historical_clv_usd)::DOUBLE, sum(predicted_clv_12m_usd)::DOUBLE, "
        "sum(revenue_at_risk_usd + value_kept_usd + value_lost_usd)::DOUBLE, "
        "sum(revenue_at_risk_usd)::DOUBLE, sum(value_kept_usd)::DOUBLE, sum(value_lost_usd)::DOUBLE, "
        "count(*) FILTER (is_reachable), count(*) FILTER (NOT is_reachable), "
        "coalesce(sum(value_lost_usd) FILTER (NOT is_reachable), 0)::DOUBLE, "
        "count(*) FILTER (risk_band = 'high' AND is_reachable), "
        "coalesce(sum(revenue_at_risk_usd) FILTER (value_tier IN ('Top 10%', 'High')), 0)::DOUBLE "
        "FROM mart_customer_360"
    ).fetchone()
    last_12m = None
    if s.has("mart_retention_cohorts", "revenue_usd"):
        last_12m = s.con.execute(
            "SELECT coalesce(sum(revenue_usd), 0)::DOUBLE FROM mart_retention_cohorts "
            "WHERE cohort_month + to_months(months_since_acquisition::INT) "
            "> date_trunc('month', ?::DATE) - INTERVAL 12 MONTH",
            [s.business_date],
        ).fetchone()[0]
    return Kpis(
        customers,
        to_date,
        last_12m,
        clv12,
        remaining,
        at_risk,
        kept,
        lost,
        reachable,
        gone,
        win_back,
        high_risk,
        hv_at_risk,
    )


# --- value ----------------------------------------------------------------------------------


def _band_label(lo: float, hi: float | None) -> str:
    def money(x: float) -> str:
        return f"${x / 1000:g}k" if x >= 1000 else f"${x:g}"

    if hi is None:
        return f"{money(lo)}+"
    if lo == 0:
        return f"under {money(hi)}"
    return f"{money(lo)}–{money(hi)}"


def clv_distribution(s: Serving) -> pd.DataFrame:
    """Customers and predicted value per dollar band of predicted 12-month CLV, low to high."""
    bounds = list(CLV_BANDS)
    case = " ".join(
        f"WHEN predicted_clv_12m_usd >= {lo} THEN {i}" for i, lo in reversed(list(enumerate(bounds)))
    )
    df = s.df(
        f"SELECT CASE {case} ELSE 0 END AS band_index, count(*) AS customers, "
        "sum(predicted_clv_12m_usd)::DOUBLE AS predicted_clv_12m_usd "
        "FROM mart_clv GROUP BY band_index"
    )
    full = pd.DataFrame({"band_index": range(len(bounds))})
    df = full.merge(df, on="band_index", how="left").fillna({"customers": 0, "predicted_clv_12m_usd": 0.0})
    df["band"] = [
        _band_label(lo, bounds[i + 1] if i + 1 < len(bounds) else None) for i, lo in enumerate(bounds)
    ]
    df["customers"] = df["customers"].astype(int)
    total = df["predicted_clv_12m_usd"].sum()
    df["share_of_predicted_clv"] = df["predicted_clv_12m_usd"] / total if total else 0.0
    return df[["band_index", "band", "customers", "predicted_clv_12m_usd", "share_of_predicted_clv"]]


def value_tiers(s: Serving) -> pd.DataFrame:
    """Per value tier: customers, the range of the value at stake the tiers rank, totals and the
    share of predicted value."""
    df = s.df(
        "SELECT value_tier, count(*) AS customers, "
        "min(value_at_stake_usd)::DOUBLE AS min_value_at_stake_usd, "
        "max(value_at_stake_usd)::DOUBLE AS max_value_at_stake_usd, "
        "sum(predicted_clv_12m_usd)::DOUBLE AS predicted_clv_12m_usd, "
        "sum(historical_clv_usd)::DOUBLE AS historical_clv_usd, "
        "sum(revenue_at_risk_usd)::DOUBLE AS revenue_at_risk_usd, "
        "sum(value_lost_usd)::DOUBLE AS value_lost_usd, "
        "avg(churn_probability) AS avg_churn_probability "
        "FROM mart_customer_360 GROUP BY value_tier "
        "ORDER BY coalesce(list_position(?, value_tier), 99), value_tier",
        [list(VALUE_TIERS)],
    )
    df["share_of_customers"] = df["customers"] / df["customers"].sum()
    total = df["predicted_clv_12m_usd"].sum()
    df["share_of_predicted_clv"] = df["predicted_clv_12m_usd"] / total if total else 0.0
    return df


# --- how sure -------------------------------------------------------------------------------

INTERVAL_MEASURES = {
    "clv_12m": "Value, next 12 months (orders + subscriptions)",
    "value_12m": "Orders, next 12 months",
    "revenue_at_risk": "Revenue at risk from orders",
}


@dataclass(frozen=True)
class Interval:
    """An 80% interval of a total, next to the pipeline's expected figure."""

    customers: int
    expected_usd: float
    p10_usd: float
    p50_usd: float
    p90_usd: float


def total_intervals(s: Serving, group_kind: str = "all") -> dict[tuple[str, str], Interval]:
    """(group, measure) -> the 80% interval of the group's total from mart_value_intervals: the
    next 12 months' value (clv_12m; its order part value_12m) and the order part of the revenue at
    risk, with purchase, spend and parameter uncertainty (and the subscriptions' renewals in
    clv_12m). Empty when the serving file predates the mart."""
    if not s.has("mart_value_intervals"):
        return {}
    rows = s.con.execute(
        "SELECT group_value, measure, customers, expected_usd, p10_usd, p50_usd, p90_usd "
        "FROM mart_value_intervals WHERE group_kind = ?",
        [group_kind],
    ).fetchall()
    return {
        (g, m): Interval(int(n), float(e), float(lo), float(mid), float(hi))
        for g, m, n, e, lo, mid, hi in rows
    }


def interval_table(s: Serving) -> pd.DataFrame | None:
    """Per value tier, the 80% intervals of the totals (INTERVAL_MEASURES, in that order), in tier
    order; None without mart_value_intervals."""
    if not s.has("mart_value_intervals"):
        return None
    df = s.df(
        "SELECT group_value AS value_tier, measure, customers, expected_usd, p10_usd, p50_usd, p90_usd "
        "FROM mart_value_intervals WHERE group_kind IN ('all', 'value_tier') "
        "ORDER BY group_kind, coalesce(list_position(?, group_value), 99), "
        "coalesce(list_position(?, measure), 99)",
        [list(VALUE_TIERS), list(INTERVAL_MEASURES)],
    )
    df["measure"] = df["measure"].map(INTERVAL_MEASURES).fillna(df["measure"])
    return df


# --- at-risk customers ----------------------------------------------------------------------


def segment_filters(s: Serving) -> dict[str, str]:
    """The segment filters this serving file can offer: column -> label."""
    return {c: label for c, label in SEGMENT_FILTERS.items() if s.has("mart_customer_360", c)}


def segment_options(s: Serving) -> dict[str, list[str]]:
    """The values each segment filter offers, in a meaningful order (tiers and bands by rank)."""
    order = {
        "value_tier": VALUE_TIERS,
        "risk_band": RISK_BANDS,
        "lifecycle_stage": LIFECYCLE_STAGES,
        "risk_change": RISK_CHANGES,
    }
    out: dict[str, list[str]] = {}
    for col in segment_filters(s):
        values = [
            r[0]
            for r in s.con.execute(
                f'SELECT DISTINCT "{col}" FROM mart_customer_360 WHERE "{col}" IS NOT NULL ORDER BY 1'
            ).fetchall()
        ]
        rank = order.get(col, ())
        out[col] = sorted(values, key=lambda v: (rank.index(v) if v in rank else len(rank), v))
    return out


def at_risk_columns(s: Serving) -> list[str]:
    return [c for c in AT_RISK_COLUMNS if s.has("mart_customer_360", c)]


def _where(filters: dict[str, Sequence[str]] | None, pool: str | None = None) -> tuple[str, list[object]]:
    if pool is not None and pool not in POOLS:
        raise ValueError(f"unknown list {pool!r}; expected one of {', '.join(POOLS)}")
    clauses, params = ([POOLS[pool]] if pool else []), []
    for col, values in (filters or {}).items():
        if col not in SEGMENT_FILTERS:
            raise ValueError(f"unknown filter column {col!r}; expected one of {', '.join(SEGMENT_FILTERS)}")
        if values:
            clauses.append(f'"{col}" IN (SELECT unnest(?))')
            params.append(list(values))
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def at_risk_summary(
    s: Serving, filters: dict[str, Sequence[str]] | None = None, pool: str | None = "at risk"
) -> tuple[int, float, float]:
    """How many customers of the list (`pool`, None = everyone) match the filters, their revenue
    at risk and their value already lost."""
    where, params = _where(filters, pool)
    n, risk, lost = s.con.execute(
        "SELECT count(*), coalesce(sum(revenue_at_risk_usd), 0)::DOUBLE, "
        f"coalesce(sum(value_lost_usd), 0)::DOUBLE FROM mart_customer_360{where}",
        params,
    ).fetchone()
    return n, risk, lost


def at_risk(
    s: Serving,
    filters: dict[str, Sequence[str]] | None = None,
    sort: str = "revenue at risk",
    limit: int | None = 100,
    pool: str | None = "at risk",
) -> pd.DataFrame:
    """The customers of the list (`pool`: "at risk" = still reachable, "already lost" = the
    win-back pool, None = everyone) matching the segment filters, in `sort` order (ties by id)."""
    if sort not in SORTS:
        raise ValueError(f"unknown sort {sort!r}; expected one of {', '.join(SORTS)}")
    cols = at_risk_columns(s)
    select = ", ".join(f'"{c}"::DOUBLE AS "{c}"' if c.endswith("_usd") else f'"{c}"' for c in cols)
    where, params = _where(filters, pool)
    sql = f"SELECT {select} FROM mart_customer_360{where} ORDER BY {SORTS[sort]}, customer_id"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return s.df(sql, params)


@dataclass(frozen=True)
class RiskChanges:
    """What changed since the previous business date on record: customers and their value at
    stake per change (newly at risk, still at risk, recovered, moved to win-back)."""

    previous_date: dt.date | None
    counts: dict[str, int]
    value_at_stake_usd: dict[str, float]


def risk_changes(s: Serving) -> RiskChanges | None:
    """None when the marts carry no risk_change column; previous_date None on the first date."""
    if not (
        s.has("mart_customer_360", "risk_change") and s.has("mart_customer_360", "previous_business_date")
    ):
        return None
    (previous,) = s.con.execute("SELECT max(previous_business_date) FROM mart_customer_360").fetchone()
    rows = s.con.execute(
        "SELECT risk_change, count(*), sum(value_at_stake_usd)::DOUBLE FROM mart_customer_360 "
        "WHERE risk_change IS NOT NULL GROUP BY risk_change"
    ).fetchall()
    counts = {c: 0 for c in RISK_CHANGES} | {r[0]: int(r[1]) for r in rows}
    value = {c: 0.0 for c in RISK_CHANGES} | {r[0]: float(r[2] or 0) for r in rows}
    return RiskChanges(previous, counts, value)


def to_csv(df: pd.DataFrame) -> bytes:
    """The CSV a user downloads: a header row, comma-delimited, UTF-8, no index."""
    return df.to_csv(index=False).encode("utf-8")


# --- retention, support, categories ---------------------------------------------------------


def last_complete_month(business_date: dt.date) -> dt.date:
    """The first day of the last calendar month the data covers whole: the business date's month
    when the business date is its last day, else the month before."""
    month = business_date.replace(day=1)
    if (business_date + dt.timedelta(days=1)).day == 1:
        return month
    return (month - dt.timedelta(days=1)).replace(day=1)


def _complete(s: Serving) -> tuple[str, list[object]]:
    return (
        " WHERE cohort_month + to_months(months_since_acquisition::INT) <= ?::DATE",
        [last_complete_month(s.business_date)],
    )


def retention_cohorts(s: Serving) -> pd.DataFrame:
    """Cohort x months-since-acquisition retention, with the cohort month as 'YYYY-MM' text.
    Complete calendar months only: the business date's month, while it runs, would show a few
    days of activity as a collapse of retention."""
    revenue = "revenue_usd::DOUBLE" if s.has("mart_retention_cohorts", "revenue_usd") else "NULL::DOUBLE"
    where, params = _complete(s)
    return s.df(
        "SELECT strftime(cohort_month, '%Y-%m') AS cohort, months_since_acquisition, cohort_size, "
        f"customers_active, retention_rate, {revenue} AS revenue_usd "
        f"FROM mart_retention_cohorts{where} ORDER BY cohort_month, months_since_acquisition",
        params,
    )


def retention_curve(s: Serving) -> pd.DataFrame:
    """Retention by months since acquisition over all cohorts that reached that month
    (active customers / cohort customers, so large cohorts weigh more); complete months only."""
    where, params = _complete(s)
    return s.df(
        "SELECT months_since_acquisition, sum(customers_active) / sum(cohort_size) AS retention_rate, "
        "count(*) AS cohorts, sum(cohort_size) AS customers "
        f"FROM mart_retention_cohorts{where} GROUP BY months_since_acquisition ORDER BY months_since_acquisition",
        params,
    )


SUPPORT_DIMENSIONS = {
    "csat_band": ("Average CSAT, last 90 days", ("low", "mid", "high", "no answer")),
    "resolution_band": ("Average resolution time, last 90 days", ("< 4h", "4-24h", "> 24h", "no tickets")),
    "tickets_band": ("Tickets, last 90 days", ("0", "1", "2-3", "4+")),
}


SUPPORT_GROUPS = {
    "reachable": "Still reachable",
    "lost": "Most likely gone (win-back pool)",
    "everyone": "Everyone",
}


def churn_by_support(s: Serving, dimension: str, group: str = "reachable") -> pd.DataFrame:
    """Churn against one support dimension: customers, average churn probability, the average
    probability of leaving within 90 days, churned share, revenue at risk and value already lost
    per band (averages weighted by the customers in each row of the mart), over the customers
    still reachable (`group` "reachable", the like-with-like comparison: customers without tickets
    are mostly customers already gone), the win-back pool ("lost") or everyone."""
    if dimension not in SUPPORT_DIMENSIONS:
        raise ValueError(f"unknown support dimension {dimension!r}")
    if group not in SUPPORT_GROUPS:
        raise ValueError(f"unknown customer group {group!r}; expected one of {', '.join(SUPPORT_GROUPS)}")
    order = list(SUPPORT_DIMENSIONS[dimension][1])
    has = lambda c: s.has("mart_churn_support_analysis", c)  # noqa: E731
    extra = leave = ""
    if has("avg_leave_probability_90d"):
        leave = ", sum(avg_leave_probability_90d * customers) / sum(customers) AS avg_leave_probability_90d"
    if has("value_lost_usd"):
        extra += ", sum(value_lost_usd)::DOUBLE AS value_lost_usd"
    where = ""
    if group != "everyone" and has("is_reachable"):
        where = " WHERE is_reachable" if group == "reachable" else " WHERE NOT is_reachable"
    return s.df(
        f'SELECT "{dimension}" AS band, sum(customers)::BIGINT AS customers, '
        f"sum(avg_churn_probability * customers) / sum(customers) AS avg_churn_probability{leave}, "
        "sum(churned_share * customers) / sum(customers) AS churned_share, "
        f"sum(revenue_at_risk_usd)::DOUBLE AS revenue_at_risk_usd{extra} "
        f'FROM mart_churn_support_analysis{where} GROUP BY "{dimension}" '
        f'ORDER BY coalesce(list_position(?, "{dimension}"), 99), "{dimension}"',
        [order],
    )


def category_ltv(s: Serving) -> pd.DataFrame:
    """Customers and lifetime value by favourite category, most valuable (average predicted) first."""
    cols = s.columns["mart_category_ltv"]
    wanted = [
        "favourite_category",
        "customers",
        "avg_historical_clv_usd",
        "avg_predicted_clv_12m_usd",
        "total_historical_clv_usd",
        "avg_purchase_days",
        "avg_category_share",
        "avg_churn_probability",
    ]
    present = [c for c in wanted if c in cols]
    select = ", ".join(f'"{c}"::DOUBLE AS "{c}"' if c.endswith("_usd") else f'"{c}"' for c in present)
    order = "avg_predicted_clv_12m_usd DESC NULLS LAST, " if "avg_predicted_clv_12m_usd" in cols else ""
    return s.df(f"SELECT {select} FROM mart_category_ltv ORDER BY {order}favourite_category")


# --- one customer ---------------------------------------------------------------------------


def normalise_customer_id(raw: str) -> str:
    return raw.strip().strip("'\"").strip().upper()


def customer(s: Serving, customer_id: str) -> dict[str, object] | None:
    """Every column of the customer's 360 row (and their value rank), or None when unknown."""
    cid = normalise_customer_id(customer_id)
    if not cid:
        return None
    extra = ""
    if s.has("mart_clv", "value_rank"):
        extra = ", (SELECT value_rank FROM mart_clv v WHERE v.customer_id = c.customer_id) AS value_rank"
    cur = s.con.execute(f"SELECT c.*{extra} FROM mart_customer_360 c WHERE upper(c.customer_id) = ?", [cid])
    row = cur.fetchone()
    if row is None:
        return None
    return dict(zip([d[0] for d in cur.description], row))


# What each of the numbers shown side by side measures (the page's legend, written once).
MEASURES = {
    "lifecycle_stage": "Lifecycle stage describes, it does not predict: the days since the last purchase "
    "**or session** (active within 90 days, dormant within 180, churned after; onboarding in the first 60).",
    "p_alive": "P(alive) is BG/NBD's probability that the customer still buys, from **purchases alone** "
    "(how many, how regular, how long since the last). It lets customers leave only after a repeat "
    "purchase, so a one-time buyer is always 100%.",
    "churn_probability": "Churn probability is the churn model's probability that the customer **has "
    "already left**: P(alive) combined with sessions, support tickets, subscription and lifecycle "
    "stage, trained on who bought again. Reasons name the signals that raise it most.",
    "leave_probability_90d": "Leaves within 90 days is the probability that a customer active today "
    "leaves in the next 90 days: (1 - churn probability) x BG/NBD's chance of dropping out over the "
    "purchases expected in that time. Revenue at risk = this x the next 12 months' value if kept.",
}


def disagreements(row: dict[str, object]) -> list[str]:
    """Why one customer's numbers seem to contradict each other, in sentences; empty when they
    agree. The three measure different things (MEASURES); this names the difference that
    applies."""
    out: list[str] = []
    stage = row.get("lifecycle_stage")
    churn = row.get("churn_probability")
    alive = row.get("p_alive")
    if churn is None or pd.isna(churn):
        return out
    churn = float(churn)
    last_purchase = row.get("days_since_last_purchase")
    last_session = row.get("days_since_last_session")
    if stage in ("active", "onboarding") and churn >= 0.5:
        seen = []
        if last_session is not None and not pd.isna(last_session):
            seen.append(f"a session {int(last_session)} days ago")
        if last_purchase is not None and not pd.isna(last_purchase):
            seen.append(f"the last purchase {int(last_purchase)} days ago")
        out.append(
            f"Lifecycle stage {stage} counts any visit ({', '.join(seen) or 'recent activity'}); "
            f"churn probability {churn:.0%} asks whether they still buy, and the churn model reads "
            "their signals as a customer who has stopped buying."
        )
    if alive is not None and not pd.isna(alive) and float(alive) - churn >= 0.3:
        repeat = row.get("purchase_days")
        one_time = repeat is not None and not pd.isna(repeat) and int(repeat) <= 1
        out.append(
            f"P(alive) {float(alive):.0%} reads purchases alone"
            + (" and holds a one-time buyer alive by construction" if one_time else "")
            + f"; churn probability {churn:.0%} adds sessions, tickets, subscription and stage, "
            "which point the other way."
        )
    return out


def example_customer_ids(s: Serving, n: int = 3) -> list[str]:
    """A few real ids (the highest revenue at risk) to show what an id looks like."""
    return [
        r[0]
        for r in s.con.execute(
            "SELECT customer_id FROM mart_customer_360 ORDER BY revenue_at_risk_usd DESC, customer_id LIMIT ?",
            [n],
        ).fetchall()
    ]


# --- freshness and checks -------------------------------------------------------------------


def check_summary(s: Serving) -> pd.DataFrame | None:
    """Per layer: checks passed, warned and failed, the business date checked and when; None when
    the serving file carries no check results."""
    if not s.has("check_results"):
        return None
    return s.df(
        "SELECT layer, count(*) FILTER (outcome = 'pass') AS passed, "
        "count(*) FILTER (outcome = 'warn') AS warned, "
        "count(*) FILTER (outcome NOT IN ('pass', 'warn')) AS failed, "
        "max(business_date) AS business_date, max(scanned_at) AS last_scanned_at "
        "FROM check_results GROUP BY layer "
        "ORDER BY coalesce(list_position(?, layer), 99), layer",
        [list(LAYERS)],
    )


def check_details(s: Serving, only_problems: bool = False) -> pd.DataFrame | None:
    """Every check's latest outcome (failures and warnings first), or None without check results."""
    if not s.has("check_results"):
        return None
    where = " WHERE outcome <> 'pass'" if only_problems else ""
    return s.df(
        "SELECT layer, dataset, check_name, outcome, value, business_date, scanned_at "
        f"FROM check_results{where} ORDER BY CASE outcome WHEN 'pass' THEN 2 WHEN 'warn' THEN 1 ELSE 0 END, "
        "coalesce(list_position(?, layer), 99), dataset, check_name",
        [list(LAYERS)],
    )


def model_fits(s: Serving) -> pd.DataFrame | None:
    """Each fitted model: the business date of the fit that scored the marts, its age, its next
    refit (marts.mart_model_fits; the churn and renewal models refit every model_refit_days). None
    when the serving file predates that mart."""
    if not s.has("mart_model_fits"):
        return None
    return s.df(
        "SELECT model_name, fit_date, fit_age_days, refit_every_days, next_refit_date, trained_as_of, "
        "model_version FROM mart_model_fits ORDER BY CASE model_name WHEN 'churn' THEN 0 "
        "WHEN 'subscription renewal' THEN 1 ELSE 2 END, model_name"
    )


def churn_fit_line(s: Serving) -> str | None:
    """'churn model fitted 2024-12-27 (4 days old)' for the page header; None without the mart."""
    fits = model_fits(s)
    if fits is None or "churn" not in set(fits["model_name"]):
        return None
    row = fits.set_index("model_name").loc["churn"]
    age = int(row["fit_age_days"])
    return f"churn model fitted {pd.Timestamp(row['fit_date']):%Y-%m-%d} ({age} day{'' if age == 1 else 's'} old)"


def row_counts(s: Serving) -> pd.DataFrame:
    """Rows per published table, as recorded at publish time."""
    return pd.DataFrame(sorted(s.row_counts.items()), columns=["table", "rows"])
