"""The serving file: the marts, copied out of the warehouse for readers.

Readers (the dashboard, Metabase, an analyst's notebook) never open the warehouse, which has one
writer at a time. They read ``<data dir>/serving.duckdb``, which this module rebuilds beside
itself (``serving.duckdb.tmp``) and swaps in with an atomic rename: a reader sees the old file or
the new one, never a half-written one, and a failed publish leaves the old file untouched.

Contents: every ``marts.*`` table under its own name in schema ``main``, plus
``serving_info`` (business date, publish time, row counts) and ``check_results`` (the latest
outcome of every data-quality check, per layer) for the dashboard's freshness panel, and the
data-health page's history of the last ``CLV_HEALTH_HISTORY_DAYS`` business dates (``HEALTH``):
check outcomes per layer and date, the volume and freshness metrics, the anomaly verdicts with
their bands, and the slowest models' run times; and ``check_reports``, each layer's latest check
report per business date of that window, its Markdown text included, for the dashboard's report
page. A warehouse without one of the ``ops`` tables they come from (one older than the feature)
publishes without that table; the page says so.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import duckdb

from clv import reports, settings, sql_text
from clv.errors import UserError


class PublishError(UserError):
    """There is nothing to publish (no marts yet)."""


def publish(
    con: duckdb.DuckDBPyConnection,
    business_date: dt.date,
    data_dir: Path | None = None,
    schema: str = "marts",
) -> dict[str, int]:
    """Copy the marts (``schema``: a SQLMesh environment's marts schema works too) to the
    serving file; return rows per table."""
    target = settings.paths(data_dir).serving
    tables = [
        r[0]
        for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
            "AND table_catalog = current_database() ORDER BY table_name",
            [schema],
        ).fetchall()
    ]
    if not tables:
        raise PublishError(f"no tables in schema {schema!r}: run the models before publishing")
    tmp = target.with_name(target.name + ".tmp")
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        leftover.unlink(missing_ok=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    con.execute(f"ATTACH {sql_text.literal(tmp)} AS clv_serving")
    counts: dict[str, int] = {}
    try:
        for t in tables:
            con.execute(f'CREATE TABLE clv_serving.main."{t}" AS SELECT * FROM {schema}."{t}"')
            counts[t] = con.execute(f'SELECT count(*) FROM clv_serving.main."{t}"').fetchone()[0]
        ops_tables = {
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'ops' "
                "AND table_catalog = current_database()"
            ).fetchall()
        }
        if "check_results" in ops_tables:
            con.execute(
                "CREATE TABLE clv_serving.main.check_results AS SELECT * EXCLUDE (rn) FROM "
                + _latest_checks("layer, dataset, check_name")
            )
        first = business_date - dt.timedelta(days=settings.health_history_days() - 1)
        for serving_table, (ops_table, select) in HEALTH.items():
            if ops_table in ops_tables:
                con.execute(
                    f"CREATE TABLE clv_serving.main.{serving_table} AS {select}", [first, business_date]
                )
        if "check_results" in ops_tables:
            _copy_reports(con, settings.paths(data_dir).reports, first, business_date)
        con.execute(
            "CREATE TABLE clv_serving.main.serving_info AS SELECT ?::DATE AS business_date, "
            "?::TIMESTAMP AS published_at, ? AS source_schema, ?::JSON AS row_counts",
            [business_date, dt.datetime.now(), schema, _json(counts)],
        )
    finally:
        con.execute("DETACH clv_serving")
    # A write-ahead log beside the serving file belongs to the old file (a reader that opened it
    # for writing and died): left there, DuckDB would replay it onto the new file when it is next
    # opened, old rows and all. It goes first; then the swap.
    target.with_name(target.name + ".wal").unlink(missing_ok=True)
    os.replace(tmp, target)  # atomic on POSIX: readers see the old file or the new one
    return counts


def _copy_reports(con: duckdb.DuckDBPyConnection, folder: Path, first: dt.date, last: dt.date) -> None:
    """``check_reports``: the Markdown report of each layer's latest prod scan per business date
    from ``first`` to ``last``, with its counts. The dashboard shows them (``?report=<key>``) from
    the serving file because that is all it mounts in the team deployment (README "The
    dashboard"). A report whose file is gone (or whose run id would lead out of the reports
    folder: ``clv.reports``) is listed without its text."""
    runs = con.execute(
        "SELECT business_date, layer, run_id, count(*) FILTER (outcome = 'pass'), "
        "count(*) FILTER (outcome = 'warn'), count(*) FILTER (outcome NOT IN ('pass', 'warn')), "
        "max(scanned_at) FROM ops.check_results WHERE run_id NOT LIKE '%@%' AND business_date BETWEEN ? AND ? "
        "GROUP BY business_date, layer, run_id QUALIFY row_number() OVER (PARTITION BY business_date, layer ORDER BY max(scanned_at) DESC) = 1 "
        "ORDER BY business_date, layer",
        [first, last],
    ).fetchall()
    con.execute(
        "CREATE TABLE clv_serving.main.check_reports (report_key VARCHAR PRIMARY KEY, business_date DATE, "
        "layer VARCHAR, run_id VARCHAR, passed BIGINT, warned BIGINT, failed BIGINT, scanned_at TIMESTAMP, "
        "markdown VARCHAR)"
    )
    rows = []
    for day, layer, run_id, passed, warned, failed, scanned in runs:
        key = f"{run_id}/{layer}"
        try:
            text = reports.read(key, folder)
        except reports.ReportKeyError:
            text = None
        rows.append([key, day, layer, run_id, passed, warned, failed, scanned, text])
    if rows:
        con.executemany("INSERT INTO clv_serving.main.check_reports VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def _latest_checks(per: str, where: str = "TRUE") -> str:
    """Prod's checks (a SQLMesh environment's run ids carry ``@<env>``), the latest outcome ``per``
    check: a rerun replaces the earlier outcome."""
    return f"""(SELECT *, row_number() OVER (PARTITION BY {per} ORDER BY scanned_at DESC) AS rn
        FROM ops.check_results WHERE run_id NOT LIKE '%@%' AND {where}) WHERE rn = 1"""


_DATES = "business_date BETWEEN ? AND ?"
#: The metrics of ``ops.metric_history`` the data-health page charts per source (the anomaly
#: charts read their values from the verdicts, which carry them with their bands).
HEALTH_METRICS = ("rows", "rows_added", "freshness_lag_days")
#: The data-health page's tables: serving table -> (the ops table it comes from, its query over
#: the last N business dates up to the published one, ``?`` the first and the last).
HEALTH: dict[str, tuple[str, str]] = {
    # checks passed, warned and failed per layer and business date (its latest scan)
    "check_history": (
        "check_results",
        "SELECT business_date, layer, count(*) FILTER (outcome = 'pass') AS passed, "
        "count(*) FILTER (outcome = 'warn') AS warned, "
        "count(*) FILTER (outcome NOT IN ('pass', 'warn')) AS failed FROM "
        + _latest_checks("business_date, layer, dataset, check_name", _DATES)
        + " GROUP BY business_date, layer",
    ),
    "metric_history": (
        "metric_history",
        "SELECT business_date, layer, dataset, metric, value FROM ops.metric_history "
        f"WHERE metric IN ({', '.join(sql_text.literal(m) for m in HEALTH_METRICS)}) AND {_DATES}",
    ),
    # every monitored metric's verdict: observed value, expected value and bands, status
    "metric_anomalies": (
        "metric_anomalies",
        "SELECT * EXCLUDE (environment, evaluated_at) FROM ops.metric_anomalies "
        f"WHERE environment = 'prod' AND status <> 'unmonitored' AND {_DATES}",
    ),
    # each transform step's model times, successful tries: every model it evaluated
    # (model_seconds), or its five slowest for steps recorded before model_seconds existed
    "model_run_times": (
        "pipeline_runs",
        "SELECT r.business_date, r.dag_id, r.run_id, r.task_id, r.finished_at, m.model, "
        "((coalesce(r.detail -> 'model_seconds', r.detail -> 'slowest_models')) ->> m.model)::DOUBLE AS seconds "
        "FROM ops.pipeline_runs AS r, "
        "unnest(json_keys(coalesce(r.detail -> 'model_seconds', r.detail -> 'slowest_models'))) AS m(model) "
        f"WHERE r.task_id LIKE 'transform_%' AND r.status = 'success' AND r.{_DATES}",
    ),
}


def _json(counts: dict[str, int]) -> str:
    import json

    return json.dumps(counts)


def serving_summary(paths: settings.Paths) -> str:
    """What a manager asks first, read from the serving file (never the warehouse)."""
    con = duckdb.connect(str(paths.serving), read_only=True)
    try:
        q = con.execute
        ((day, published),) = q("SELECT business_date, published_at FROM serving_info").fetchall()
        ((customers, at_risk, kept, lost, clv12, hist, reachable, gone, win_back),) = q(
            "SELECT count(*), sum(revenue_at_risk_usd), sum(value_kept_usd), sum(value_lost_usd), "
            "sum(predicted_clv_12m_usd), sum(historical_clv_usd), count(*) FILTER (is_reachable), "
            "count(*) FILTER (NOT is_reachable), coalesce(sum(value_lost_usd) FILTER (NOT is_reachable), 0) "
            "FROM mart_customer_360"
        ).fetchall()
        ((orders12, subs12, subs_risk, mrr, subscribers),) = q(
            "SELECT sum(predicted_order_value_12m_usd), sum(predicted_subscription_value_12m_usd), "
            "sum(subscription_revenue_at_risk_usd), sum(mrr_usd), count(*) FILTER (mrr_usd > 0) "
            "FROM mart_customer_360"
        ).fetchall()
        lines = [
            f"Serving file {paths.serving} (business date {day}, published {published:%Y-%m-%d %H:%M:%S})",
            f"  {customers:,} customers; historical CLV ${hist:,.0f}; predicted 12-month CLV ${clv12:,.0f} "
            f"= orders ${orders12:,.0f} + subscriptions ${subs12:,.0f} ({subscribers:,} subscribers, "
            f"MRR ${mrr:,.0f})",
            f"  Next 12 months' value if everyone stayed ${at_risk + kept + lost:,.0f} = at risk (reachable, "
            f"leaving within 90 days) ${at_risk:,.0f} (subscriptions ${subs_risk:,.0f}) + kept ${kept:,.0f} "
            f"+ already lost ${lost:,.0f}",
            f"  {reachable:,} customers still reachable; {gone:,} most likely gone (win-back pool, "
            f"${win_back:,.0f} of the value lost)",
            "  Top customers by predicted 12-month CLV:",
        ]
        for cid, p12, tier in q(
            "SELECT customer_id, predicted_clv_12m_usd, value_tier FROM mart_clv "
            "ORDER BY predicted_clv_12m_usd DESC, customer_id LIMIT 5"
        ).fetchall():
            lines.append(f"    {cid}  ${p12:>10,.2f}  {tier}")
        lines.append("  High-value customers most at risk: still reachable, by revenue at risk over 90 days")
        for cid, prob, risk, tier in q(
            "SELECT customer_id, leave_probability_90d, revenue_at_risk_usd, value_tier FROM mart_churn_risk "
            "WHERE value_tier IN ('Top 10%', 'High') AND is_reachable "
            "ORDER BY revenue_at_risk_usd DESC, customer_id LIMIT 5"
        ).fetchall():
            lines.append(f"    {cid}  leaves in 90 days {prob:.0%}  at risk ${risk:>9,.2f}  {tier}")
        checks = q(
            "SELECT layer, count(*) FILTER (outcome = 'pass'), count(*) FILTER (outcome = 'warn'), "
            "count(*) FILTER (outcome NOT IN ('pass', 'warn')) FROM check_results GROUP BY layer "
            "ORDER BY list_position(['raw', 'staging', 'core', 'intermediate', 'marts'], layer)"
        ).fetchall()
        lines.append(
            "  Checks: "
            + "; ".join(f"{layer} {p} passed, {w} warned, {f} failed" for layer, p, w, f in checks)
        )
    finally:
        con.close()
    lines.append(f"  Reports: {paths.reports}")
    return "\n".join(lines)
