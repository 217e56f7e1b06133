"""The per-customer features, each written once, as of any date: the BTYD purchase summary and
the behavioural signals (sessions, support tickets, subscriptions, lifecycle stage).

Every macro takes the tables it reads and the as-of date, and returns a subquery with one row per
customer signed up by that date (``@customers_as_of``), for use in FROM:

    FROM @session_signals(core.fct_activity_logs, core.dim_customers, @business_date()) AS s

Two kinds of model call them:
- the intermediate SQL models, on the business date (int_customer_base, int_customer_clv,
  int_engagement_summary, int_support_summary, int_lifecycle_stage);
- two feature models, int_purchase_summary and int_churn_features, on the business date and on
  the churn model's training cutoff (``@churn_training_cutoff``), one UNION ALL branch each, keyed
  by ``as_of_date``. The Python models (int_clv_model_fit, int_clv_predictions, int_churn_model,
  int_churn_scoring) only read those rows (``read_model``, at the end of this module) and do
  statistics on them (clv/stats/scoring.py).

Why feature models rather than rendering these macros inside the Python models: a Python model's
context can run SQL but has no macro evaluator, and building one there would tie the model to
SQLMesh internals. A SQL model that evaluates the macros at both dates is plain SQLMesh, shows
its features in the warehouse (where a test or an analyst can compare training and scoring rows),
and leaves the statistics room free of SQL.

The SQL is written in DuckDB's dialect, like the models; SQLMesh transpiles it for other engines.
"""

from __future__ import annotations

import datetime as dt

from sqlglot import exp
from sqlmesh import macro

from clv.stats.btyd import TIME_UNITS
from clv.stats.scoring import training_cutoff

# --------------------------------------------------------------------------------------------
# The definitions: one function per feature set, each given SQL text (tables and the as-of
# date, rendered) and returning SQL text. The macros below compose them.


def _customers(customers: str, as_of: str, columns: tuple[str, ...] = ()) -> str:
    """Who is a customer on a date: the current profile of everyone signed up by then."""
    more = "".join(f", {c}" for c in columns)
    return f"""
SELECT customer_id, signup_date, DATE_DIFF('DAY', signup_date, {as_of}) AS tenure_days{more}
FROM {customers}
WHERE valid_to IS NULL AND signup_date <= {as_of}"""


def _orders(revenue: str, as_of: str) -> str:
    """What a purchase is: an order line (not a refund nor a subscription charge) up to the date."""
    return f"""
SELECT customer_id, revenue_date, revenue_usd
FROM {revenue}
WHERE revenue_type = 'order' AND revenue_date <= {as_of}"""


def _purchases(revenue: str, as_of: str) -> str:
    """Per customer with a purchase: the literature's conventions (Fader, Hardie & Lee): orders
    on one day are one purchase worth their sum; monetary_value is the mean of the repeat
    purchase days (the first is left out), NULL without one."""
    return f"""
SELECT
  customer_id,
  COUNT(*) AS purchase_days,
  MIN(purchase_date) AS first_purchase_date,
  MAX(purchase_date) AS last_purchase_date,
  CASE
    WHEN COUNT(*) > 1 THEN CAST(SUM(amount_usd) FILTER (WHERE day_number > 1) AS DOUBLE) / (COUNT(*) - 1)
  END AS monetary_value
FROM (
  SELECT
    customer_id,
    purchase_date,
    amount_usd,
    ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY purchase_date) AS day_number
  FROM (
    SELECT customer_id, revenue_date AS purchase_date, SUM(revenue_usd) AS amount_usd
    FROM ({_orders(revenue, as_of)}) AS o
    GROUP BY customer_id, revenue_date
  ) AS days
) AS ranked
GROUP BY customer_id"""


def _purchase_columns(c: str, p: str, as_of: str, unit: float) -> list[str]:
    """The BTYD summary of spine `c` joined to `_purchases` `p`. frequency = repeat purchase
    days; recency = first to last purchase; age (the literature's T) = first purchase to the
    as-of date, or signup to it without a purchase; recency and age in the fit's time unit."""
    return [
        f"COALESCE({p}.purchase_days, 0) AS purchase_days",
        f"{p}.first_purchase_date",
        f"{p}.last_purchase_date",
        f"DATE_DIFF('DAY', {p}.first_purchase_date, {p}.last_purchase_date) AS recency_days",
        f"DATE_DIFF('DAY', {p}.first_purchase_date, {as_of}) AS age_days",
        f"DATE_DIFF('DAY', {p}.last_purchase_date, {as_of}) AS days_since_last_purchase",
        f"COALESCE({p}.purchase_days - 1, 0) AS frequency",
        f"COALESCE(DATE_DIFF('DAY', {p}.first_purchase_date, {p}.last_purchase_date) / {unit}, 0) AS recency",
        f"COALESCE(DATE_DIFF('DAY', {p}.first_purchase_date, {as_of}), GREATEST({c}.tenure_days, 0)) / {unit}"
        " AS age",
        f"{p}.monetary_value",
        f"{p}.first_purchase_date IS NOT NULL AS has_purchased",
    ]


def _last_purchase(revenue: str, as_of: str) -> str:
    """Per customer with a purchase: its last day (as in `_purchases`, without the summary)."""
    return f"""
SELECT customer_id, MAX(revenue_date) AS last_purchase_date
FROM ({_orders(revenue, as_of)}) AS o
GROUP BY customer_id"""


def _sessions(sessions: str, as_of: str) -> str:
    """Per customer with a session: rolling 30- and 90-day counts and the 90 days before those."""
    return f"""
SELECT
  customer_id,
  COUNT(*) FILTER (WHERE session_date > {as_of} - INTERVAL '30' DAY) AS sessions_30d,
  COUNT(*) FILTER (WHERE session_date > {as_of} - INTERVAL '90' DAY) AS sessions_90d,
  COUNT(*) FILTER (
    WHERE session_date > {as_of} - INTERVAL '180' DAY AND session_date <= {as_of} - INTERVAL '90' DAY
  ) AS sessions_prior_90d,
  MAX(session_date) AS last_session_date,
  COUNT(*) AS lifetime_sessions
FROM {sessions}
WHERE session_date <= {as_of}
GROUP BY customer_id"""


def _session_columns(s: str, as_of: str) -> list[str]:
    return [
        f"COALESCE({s}.sessions_30d, 0) AS sessions_30d",
        f"COALESCE({s}.sessions_90d, 0) AS sessions_90d",
        f"COALESCE({s}.sessions_prior_90d, 0) AS sessions_prior_90d",
        f"{s}.last_session_date",
        f"DATE_DIFF('DAY', {s}.last_session_date, {as_of}) AS days_since_last_session",
        f"COALESCE({s}.lifetime_sessions, 0) AS lifetime_sessions",
    ]


def _tickets(tickets: str, as_of: str) -> str:
    """Per customer with a ticket: tickets, billing tickets and low-CSAT answers in 90 days."""
    return f"""
SELECT
  customer_id,
  COUNT(*) FILTER (WHERE opened_date > {as_of} - INTERVAL '90' DAY) AS tickets_90d,
  COUNT(*) FILTER (WHERE opened_date > {as_of} - INTERVAL '90' DAY AND issue_type = 'billing') AS billing_tickets_90d,
  COUNT(*) FILTER (WHERE opened_date > {as_of} - INTERVAL '90' DAY AND is_low_csat) AS low_csat_tickets_90d
FROM {tickets}
WHERE opened_date <= {as_of}
GROUP BY customer_id"""


def _ticket_columns(k: str) -> list[str]:
    return [
        f"COALESCE({k}.tickets_90d, 0) AS tickets_90d",
        f"COALESCE({k}.billing_tickets_90d, 0) AS billing_tickets_90d",
        f"COALESCE({k}.low_csat_tickets_90d, 0) AS low_csat_tickets_90d",
    ]


def _subscriptions(subscriptions: str, as_of: str) -> str:
    """Per customer with a subscription started by the date, read from its dates (a status is
    only known for today): one open on the date, one that ended in the 90 days before it."""
    return f"""
SELECT
  customer_id,
  BOOL_OR(end_date IS NULL OR end_date > {as_of}) AS has_active_subscription,
  BOOL_OR(end_date > {as_of} - INTERVAL '90' DAY AND end_date <= {as_of}) AS ended_90d
FROM {subscriptions}
WHERE start_date <= {as_of}
GROUP BY customer_id"""


def _subscription_columns(b: str) -> list[str]:
    return [
        f"COALESCE({b}.has_active_subscription, FALSE) AS has_active_subscription",
        f"COALESCE({b}.ended_90d AND NOT {b}.has_active_subscription, FALSE) AS subscription_ended_90d",
    ]


def _lifecycle_columns(evaluator, c: str, p: str, s: str, as_of: str) -> list[str]:
    """Lifecycle stage from spine `c`, last purchase `p` and sessions `s`: onboarding within
    onboarding_days of signup; else active when last seen within active_within_days, dormant
    within dormant_within_days, churned after (project variables, config.yaml)."""
    last = (
        f"GREATEST(COALESCE({p}.last_purchase_date, {c}.signup_date), "
        f"COALESCE({s}.last_session_date, {c}.signup_date))"
    )
    since = f"DATE_DIFF('DAY', {last}, {as_of})"
    onboarding = int(evaluator.var("onboarding_days"))
    active = int(evaluator.var("active_within_days"))
    dormant = int(evaluator.var("dormant_within_days"))
    return [
        f"{last} AS last_activity_date",
        f"{since} AS days_since_last_activity",
        f"""CASE
          WHEN {c}.tenure_days < {onboarding} THEN 'onboarding'
          WHEN {since} <= {active} THEN 'active'
          WHEN {since} <= {dormant} THEN 'dormant'
          ELSE 'churned'
        END AS lifecycle_stage""",
    ]


# --------------------------------------------------------------------------------------------
# The macros


def _sql(evaluator, e: exp.Expression) -> str:
    return e.sql(dialect=evaluator.dialect)


def _per_customer(evaluator, customers: exp.Expression, day: str, columns: list[str], joins: dict[str, str]):
    """A subquery: the columns of every customer on `day` (spine `c`), each aggregate of `joins`
    (alias: SQL) LEFT JOINed on customer_id."""
    spine = _customers(_sql(evaluator, customers), day)
    joined = "".join(
        f"\nLEFT JOIN ({sql}) AS {a} ON {a}.customer_id = c.customer_id" for a, sql in joins.items()
    )
    select = ",\n  ".join(["c.customer_id", *columns])
    return exp.maybe_parse(f"(SELECT\n  {select}\nFROM ({spine}) AS c{joined})", dialect=evaluator.dialect)


def _time_unit(unit: exp.Expression | str) -> float:
    name = unit if isinstance(unit, str) else unit.name
    if name not in TIME_UNITS:
        raise ValueError(
            f"unknown time unit {name!r} (variable clv_time_unit): use {' or '.join(TIME_UNITS)}"
        )
    return TIME_UNITS[name]


@macro()
def customers_as_of(evaluator, customers: exp.Expression, as_of: exp.Expression, *columns: exp.Expression):
    """Every customer signed up by `as_of` (their current profile): customer_id, signup_date,
    tenure_days and the further `columns` of the customers table."""
    more = tuple(_sql(evaluator, c) for c in columns)
    sql = _customers(_sql(evaluator, customers), _sql(evaluator, as_of), more)
    return exp.maybe_parse(f"({sql})", dialect=evaluator.dialect)


@macro()
def purchase_summary(
    evaluator,
    revenue: exp.Expression,
    customers: exp.Expression,
    as_of: exp.Expression,
    time_unit: exp.Expression | str = "day",
):
    """The BTYD purchase summary of every customer on `as_of`: purchase_days, first and last
    purchase date, recency_days, age_days, days_since_last_purchase (NULL without a purchase),
    frequency, recency, age (BTYD's T; recency and age in `time_unit`: day or week),
    monetary_value, has_purchased."""
    day = _sql(evaluator, as_of)
    columns = _purchase_columns("c", "p", day, _time_unit(time_unit))
    return _per_customer(evaluator, customers, day, columns, {"p": _purchases(_sql(evaluator, revenue), day)})


@macro()
def refund_share(evaluator, revenue: exp.Expression, as_of: exp.Expression):
    """Refunds as a share of order revenue up to `as_of`, all customers (a scalar subquery):
    purchases are predicted gross, revenue net of this share."""
    return exp.maybe_parse(
        f"""(
        SELECT COALESCE(-SUM(revenue_usd) FILTER (WHERE revenue_type = 'refund')
                        / NULLIF(SUM(revenue_usd) FILTER (WHERE revenue_type = 'order'), 0), 0)
        FROM {_sql(evaluator, revenue)}
        WHERE revenue_date <= {_sql(evaluator, as_of)}
        )""",
        dialect=evaluator.dialect,
    )


@macro()
def session_signals(evaluator, sessions: exp.Expression, customers: exp.Expression, as_of: exp.Expression):
    """Sessions of every customer on `as_of`: sessions_30d, sessions_90d, sessions_prior_90d,
    last_session_date, days_since_last_session, lifetime_sessions."""
    day = _sql(evaluator, as_of)
    joins = {"s": _sessions(_sql(evaluator, sessions), day)}
    return _per_customer(evaluator, customers, day, _session_columns("s", day), joins)


@macro()
def support_signals(evaluator, tickets: exp.Expression, customers: exp.Expression, as_of: exp.Expression):
    """Support tickets of every customer on `as_of`: tickets_90d, billing_tickets_90d,
    low_csat_tickets_90d."""
    day = _sql(evaluator, as_of)
    joins = {"k": _tickets(_sql(evaluator, tickets), day)}
    return _per_customer(evaluator, customers, day, _ticket_columns("k"), joins)


@macro()
def lifecycle_stage(
    evaluator,
    customers: exp.Expression,
    revenue: exp.Expression,
    sessions: exp.Expression,
    as_of: exp.Expression,
):
    """Lifecycle of every customer on `as_of`: tenure_days, last_activity_date (last purchase or
    session, else signup), days_since_last_activity, lifecycle_stage."""
    day = _sql(evaluator, as_of)
    columns = ["c.tenure_days", *_lifecycle_columns(evaluator, "c", "p", "s", day)]
    joins = {
        "p": _last_purchase(_sql(evaluator, revenue), day),
        "s": _sessions(_sql(evaluator, sessions), day),
    }
    return _per_customer(evaluator, customers, day, columns, joins)


@macro()
def churn_signals(
    evaluator,
    customers: exp.Expression,
    revenue: exp.Expression,
    sessions: exp.Expression,
    tickets: exp.Expression,
    subscriptions: exp.Expression,
    as_of: exp.Expression,
):
    """Every behavioural signal the churn model reads (clv.stats.churn.design), of every customer
    on `as_of`: tenure, sessions, support tickets, subscriptions read from their dates, lifecycle
    stage. The definitions of the macros above, with one pass over each table."""
    day = _sql(evaluator, as_of)
    columns = [
        "c.tenure_days",
        *_session_columns("s", day),
        *_ticket_columns("k"),
        *_subscription_columns("b"),
        *_lifecycle_columns(evaluator, "c", "p", "s", day),
    ]
    joins = {
        "s": _sessions(_sql(evaluator, sessions), day),
        "k": _tickets(_sql(evaluator, tickets), day),
        "b": _subscriptions(_sql(evaluator, subscriptions), day),
        "p": _last_purchase(_sql(evaluator, revenue), day),
    }
    return _per_customer(evaluator, customers, day, columns, joins)


@macro()
def churn_training_cutoff(evaluator, business_date: exp.Expression) -> exp.Expression:
    """The churn model's training cutoff for a business date (``@business_date()``): the business
    date minus the variable churn_label_window_days, by the function the Python models call
    (clv.stats.scoring.training_cutoff)."""
    try:
        business = dt.date.fromisoformat(business_date.name)
    except ValueError:
        raise ValueError(
            f"@churn_training_cutoff takes a date, not {_sql(evaluator, business_date)}"
        ) from None
    day = training_cutoff(business, int(evaluator.var("churn_label_window_days")))
    return exp.cast(exp.Literal.string(day.isoformat()), exp.DataType.build("DATE"))


# --------------------------------------------------------------------------------------------
# For the Python models: reading the feature models


def read_model(context, model_name: str, as_of: dt.date | None = None):
    """Every row of a model as a data frame; with `as_of`, the rows of a feature model
    (int_purchase_summary, int_churn_features) as of that date, by customer_id. Built with sqlglot,
    so SQLMesh renders it for the gateway's engine; the Python model names the model in its
    ``depends_on``."""
    table = exp.to_table(context.resolve_table(model_name), dialect=context.default_dialect)
    query = exp.select("*").from_(table)
    if as_of is not None:
        day = exp.cast(exp.Literal.string(as_of.isoformat()), exp.DataType.build("DATE"))
        query = query.where(exp.column("as_of_date").eq(day)).order_by("customer_id")
    return context.fetchdf(query)


def known_customers(context, frame):
    """The rows of `frame` whose customer the CRM knows (a current core.dim_customers row): the
    soft filter core.fct_revenue applies, so a model reading staging directly counts the same
    customers as the revenue facts. The Python model names core.dim_customers in ``depends_on``."""
    current = (
        exp.select("customer_id")
        .from_(exp.to_table(context.resolve_table("core.dim_customers"), dialect=context.default_dialect))
        .where(exp.column("valid_to").is_(exp.null()))
    )
    known = set(context.fetchdf(current)["customer_id"])
    return frame[frame["customer_id"].isin(known)]
