"""Metric history: a few numbers per table and business date, kept in one long table.

Soda Core v3 compares a check with fixed thresholds; it keeps no history of its own. The anomaly
detectors (``clv.anomalies``) need one, so every daily run records, per table of each layer (per
source for raw), on the layer's own connection right before its Soda scan:

- ``rows`` (the table's rows) and ``rows_added`` (raw: rows delivered in the business date's
  batch; the other layers: rows now minus rows at the previous recorded business date);
- ``freshness_lag_days``: business date minus the latest event date up to it, for tables that
  hold events (``EVENT_COLUMNS``; raw: the newest event of the day's batch);
- ``customer_id_null_share`` and ``distinct_customers`` where the table has a ``customer_id``;
  raw also ``duplicate_keys`` (rows of the batch whose key another row of it has: a day delivered
  twice makes it jump to the day's rows);
- business metrics chosen for what a delivery fault or a broken model moves first
  (``BUSINESS_METRICS``, ``GROUPED_METRICS``): mean order value (a price or currency shift),
  each category's share of the day's orders (a surge of one category), orders per customer, the
  day's revenue, the mean churn probability and the share of customers most likely gone (a model
  gone wrong), revenue at risk, and the mean value per value tier.

One row per (business date, layer, dataset, metric) in ``ops.metric_history``; recording a layer
again for the same business date replaces its rows (idempotent). Every metric is one aggregate in
one ``SELECT`` per table, so the cost is a scan of each table DuckDB mostly answers from its
column statistics and zone maps (``bench/bench_anomalies.py`` measures it).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

import duckdb

from clv.contract import SOURCES
from clv.names import CHECKED_LAYERS

DDL = (
    "CREATE SCHEMA IF NOT EXISTS ops",
    """CREATE TABLE IF NOT EXISTS ops.metric_history (
        business_date DATE NOT NULL, layer VARCHAR NOT NULL, dataset VARCHAR NOT NULL,
        metric VARCHAR NOT NULL, value DOUBLE, run_id VARCHAR, recorded_at TIMESTAMP NOT NULL,
        PRIMARY KEY (business_date, layer, dataset, metric))""",
)

#: A model's evaluation time in a daily layer step (recorded by the step that ran it).
RUN_SECONDS = "run_seconds"
#: The fitted models that refit every ``model_refit_days`` (sqlmesh_project/macros/refit.py) and
#: the column holding their fit's business date.
REFITTED_MODELS = {
    "intermediate.int_churn_model": "fit_date",
    "intermediate.int_subscription_model_fit": "business_date",
}

#: The event time of the tables that hold events: freshness is the business date minus its latest
#: value on or before that date. Snapshots of the business date (intermediate, marts) have none.
EVENT_COLUMNS: dict[str, str] = {
    **{f"raw.{s.name}": s.event_time for s in SOURCES.values() if s.event_time},
    "staging.stg_customers": "signed_up_at",
    "staging.stg_device_sessions": "session_started_at",
    "staging.stg_financial_profiles": "profile_effective_date",
    "staging.stg_loyalty_balances": "snapshot_date",
    "staging.stg_orders": "ordered_at",
    "staging.stg_subscriptions": "start_date",
    "staging.stg_support_tickets": "opened_at",
    "core.fct_activity_logs": "session_date",
    "core.fct_customer_snapshot": "snapshot_date",
    "core.fct_loyalty": "event_date",
    "core.fct_revenue": "revenue_date",
    "core.fct_support_logs": "opened_date",
}

#: Business metrics: one aggregate over the table (raw: over the business date's batch); ``{D}``
#: is the business date as a SQL literal, ``{BATCH}`` the filter on the business date's batch.
BUSINESS_METRICS: dict[str, dict[str, str]] = {
    "raw.orders": {
        "order_value_mean_usd": "avg(quantity * unit_price_usd)",
        "orders_per_customer": "count(*) / nullif(count(DISTINCT customer_id), 0)",
    },
    "staging.stg_orders": {
        "order_value_mean_usd": "avg(quantity * unit_price_usd) FILTER (WHERE order_date = {D})",
    },
    "core.fct_revenue": {
        "revenue_of_the_day_usd": "sum(revenue_usd) FILTER (WHERE revenue_date = {D})",
        "orders_per_active_customer": "count(*) FILTER (WHERE revenue_date = {D} AND revenue_type = 'order') "
        "/ nullif(count(DISTINCT customer_id) FILTER (WHERE revenue_date = {D} AND revenue_type = 'order'), 0)",
    },
    "intermediate.int_churn_scoring": {"churn_probability_mean": "avg(churn_probability)"},
    "marts.mart_customer_360": {
        "churn_rate": "avg(CASE WHEN churn_probability >= 0.5 THEN 1.0 ELSE 0.0 END)",
        "revenue_at_risk_usd": "sum(revenue_at_risk_usd)",
        "historical_clv_usd": "sum(historical_clv_usd)",
    },
}

#: Metrics per group: (group column, aggregate, filter); recorded as ``<metric>:<group>``.
GROUPED_METRICS: dict[str, dict[str, tuple[str, str, str]]] = {
    "raw.orders": {
        "category_share": ("product_category", "count(*) / sum(count(*)) OVER ()", "{BATCH}"),
    },
    "marts.mart_clv": {
        "value_per_customer_usd": ("value_tier", "avg(predicted_clv_12m_usd)", "TRUE"),
    },
}


@dataclass(frozen=True)
class Recorded:
    layer: str
    business_date: dt.date
    rows: list[tuple[str, str, float | None]]  # (dataset, metric, value)
    seconds: float

    def line(self) -> str:
        tables = len({d for d, _, _ in self.rows})
        return (
            f"metrics {self.layer}: {len(self.rows)} values over {tables} tables "
            f"for {self.business_date} in {self.seconds:.2f} s"
        )


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    for statement in DDL:
        con.execute(statement)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _tables(con: duckdb.DuckDBPyConnection, layer: str) -> dict[str, dict[str, str]]:
    """The layer's tables (raw: the contract's sources) and their columns with types."""
    schema = layer
    rows = con.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = ? AND table_catalog = current_database() ORDER BY table_name, ordinal_position",
        [schema],
    ).fetchall()
    out: dict[str, dict[str, str]] = {}
    for table, column, dtype in rows:
        if layer == "raw" and table not in SOURCES:
            continue
        out.setdefault(table, {})[column] = dtype
    return out


def _expressions(layer: str, table: str, columns: dict[str, str]) -> dict[str, str]:
    """Aggregates over the table; raw's run over the business date's batch only (its rows are
    read with ``WHERE _batch_date = D``, which DuckDB prunes by zone maps), except ``rows``."""
    key = f"{layer}.{table}"
    exprs = {"rows": f"(SELECT count(*) FROM {layer}.{_q(table)})" if layer == "raw" else "count(*)"}
    if layer == "raw":
        exprs["rows_added"] = "count(*)"
        pk = SOURCES[table].primary_key
        if pk and all(c in columns for c in pk):
            keys = pk[0] if len(pk) == 1 else "(" + ", ".join(pk) + ")"
            exprs["duplicate_keys"] = f"count(*) - count(DISTINCT {keys})"
    if "customer_id" in columns:
        exprs["customer_id_null_share"] = "avg(CASE WHEN customer_id IS NULL THEN 1.0 ELSE 0.0 END)"
        exprs["distinct_customers"] = "count(DISTINCT customer_id)"
    event = EVENT_COLUMNS.get(key)
    if event and event in columns:
        day = f"CAST({_q(event)} AS DATE)"
        exprs["freshness_lag_days"] = f"date_diff('day', max({day}) FILTER (WHERE {day} <= {{D}}), {{D}})"
    exprs.update(BUSINESS_METRICS.get(key, {}))
    return exprs


def collect(
    con: duckdb.DuckDBPyConnection, layer: str, business_date: dt.date
) -> list[tuple[str, str, float | None]]:
    """The layer's metrics for the business date, read on this connection (nothing written)."""
    if layer not in CHECKED_LAYERS:
        raise ValueError(f"unknown layer {layer!r}")
    d = f"DATE '{business_date.isoformat()}'"
    fill = {"D": d, "BATCH": f"_batch_date = {d}"}
    out: list[tuple[str, str, float | None]] = []
    for table, columns in sorted(_tables(con, layer).items()):
        exprs = _expressions(layer, table, columns)
        sql = ", ".join(f"{e.format(**fill)} AS {_q(m)}" for m, e in exprs.items())
        where = " WHERE {BATCH}".format(**fill) if layer == "raw" else ""
        values = con.execute(f"SELECT {sql} FROM {layer}.{_q(table)}{where}").fetchone()
        out += [(table, m, None if v is None else float(v)) for m, v in zip(exprs, values, strict=True)]
        for metric, (group, agg, where) in GROUPED_METRICS.get(f"{layer}.{table}", {}).items():
            if group not in columns:
                continue
            rows = con.execute(
                f"SELECT {_q(group)}, {agg.format(**fill)} FROM {layer}.{_q(table)} "
                f"WHERE {where.format(**fill)} AND {_q(group)} IS NOT NULL GROUP BY 1 ORDER BY 1"
            ).fetchall()
            out += [(table, f"{metric}:{g}", None if v is None else float(v)) for g, v in rows]
    if layer != "raw":
        out = _with_rows_added(con, layer, business_date, out)
    return out


def _with_rows_added(con, layer: str, business_date: dt.date, values: list) -> list:
    """Modelled tables: rows added = rows now - rows at the previous recorded business date."""
    previous = dict(
        con.execute(
            """SELECT dataset, arg_max(value, business_date) FROM ops.metric_history
               WHERE layer = ? AND metric = 'rows' AND business_date < ? GROUP BY dataset""",
            [layer, business_date],
        ).fetchall()
    )
    out = list(values)
    for dataset, metric, value in values:
        if metric == "rows":
            before = previous.get(dataset)
            out.append((dataset, "rows_added", None if before is None or value is None else value - before))
    return out


def run_seconds(
    con: duckdb.DuckDBPyConnection, layer: str, business_date: dt.date, model_seconds: dict[str, float]
) -> list[tuple[str, str, float | None]]:
    """The layer's models' evaluation times in the step (``schema.model`` -> seconds) as metric
    values: ``run_seconds`` per model, a model with nothing due that day left out. A fitted model
    that refitted on the business date records ``run_seconds:refit``, judged against its earlier
    refits: a refit every ``model_refit_days`` is not a slow model."""
    prefix = f"{layer}."
    out = []
    for name, sec in sorted(model_seconds.items()):
        if not name.startswith(prefix) or sec is None:
            continue
        metric = RUN_SECONDS
        fit_date = REFITTED_MODELS.get(name)
        if fit_date:
            (latest,) = con.execute(f"SELECT max({_q(fit_date)}) FROM {name}").fetchone()
            if latest == business_date:
                metric = f"{RUN_SECONDS}:refit"
        out.append((name.removeprefix(prefix), metric, float(sec)))
    return out


def record(
    con: duckdb.DuckDBPyConnection,
    layer: str,
    business_date: dt.date,
    run_id: str | None = None,
    model_seconds: dict[str, float] | None = None,
) -> Recorded:
    """Collect the layer's metrics and replace the business date's rows of that layer. The
    layer step that ran the models passes their times (``model_seconds``, ``schema.model`` ->
    seconds): recorded as ``run_seconds``; recording without them (``clv metrics``) keeps the
    date's recorded run times."""
    t0 = time.perf_counter()
    ensure_tables(con)
    values = collect(con, layer, business_date)
    if model_seconds is not None:
        values += run_seconds(con, layer, business_date, model_seconds)
    cur = con.cursor()  # a transaction of its own, whatever the caller's connection is doing
    try:
        cur.execute("BEGIN TRANSACTION")
        cur.execute(
            "DELETE FROM ops.metric_history WHERE business_date = ? AND layer = ? "
            "AND (? OR split_part(metric, ':', 1) <> ?)",
            [business_date, layer, model_seconds is not None, RUN_SECONDS],
        )
        if values:
            datasets, names, numbers = (list(x) for x in zip(*values, strict=True))
            cur.execute(
                "INSERT INTO ops.metric_history SELECT ?, ?, unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), "
                "unnest(?::DOUBLE[]), ?, ?",
                [business_date, layer, datasets, names, numbers, run_id, dt.datetime.now()],
            )
        cur.execute("COMMIT")
    except BaseException:
        cur.execute("ROLLBACK")
        raise
    finally:
        cur.close()
    return Recorded(layer, business_date, values, time.perf_counter() - t0)
