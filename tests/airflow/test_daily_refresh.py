"""clv_daily_refresh end to end through real Airflow (`airflow dags test`, via `clv run`)."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest

from clv.airflow import home as airflow_home
from clv.names import CHECKED_LAYERS, DEFAULT_HISTORY_END
from tests.airflow.helpers import clv, explain, query

pytestmark = pytest.mark.slow

END = DEFAULT_HISTORY_END
TASKS = [
    "extract",
    "load_raw",
    "scan_raw",
    "transform_staging",
    "transform_core",
    "transform_intermediate",
    "transform_marts",
    "publish",
]


def tasks_of_latest_run(data, business_date):
    (run_id,) = query(
        data,
        "SELECT run_id FROM ops.pipeline_runs WHERE dag_id = 'clv_daily_refresh' AND business_date = ? "
        "ORDER BY finished_at DESC LIMIT 1",
        [business_date],
    )[0]
    rows = query(
        data,
        "SELECT task_id, status, rows_processed FROM ops.pipeline_runs WHERE run_id = ? ORDER BY started_at",
        [run_id],
    )
    return run_id, rows


def test_daily_refresh_twice(tmp_path):
    """The first run builds everything; the second processes only the next day. (A run that a
    failed check stops: tests/reliability/test_s03_dq_regression.py.)"""
    data = tmp_path / "data"
    common = ["--data-dir", str(data)]
    first = clv("run", *common, "--customers", "1500", "--start", "2024-01-01", "--chaos", "none")
    assert first.returncode == 0, explain(first)
    assert "history batch 2024-12-31" in first.stdout
    assert "High-value customers most at risk:" in first.stdout and "Checks: raw" in first.stdout
    _, rows = tasks_of_latest_run(data, END)
    assert [t for t, _, _ in rows] == TASKS and {s for _, s, _ in rows} == {"success"}, rows
    customers = query(data, "SELECT count(*) FROM mart_customer_360", db="serving.duckdb")[0][0]
    assert customers > 1400
    assert query(data, "SELECT count(*) FROM marts.mart_customer_360")[0][0] == customers
    assert query(data, "SELECT business_date FROM serving_info", db="serving.duckdb")[0][0] == END
    # Soda ran on every layer in this run, inside the layer's task.
    layers = query(data, "SELECT DISTINCT layer FROM ops.check_results ORDER BY layer")
    assert {r[0] for r in layers} == set(CHECKED_LAYERS)
    # The run's note in Airflow's grid names its business date and what it published.
    ((at_risk, clv12),) = query(
        data,
        "SELECT sum(revenue_at_risk_usd), sum(predicted_clv_12m_usd) FROM mart_customer_360",
        db="serving.duckdb",
    )
    note = run_note(data)
    assert note.startswith(f"**Business date {END}** · success"), note
    assert (
        f"revenue at risk ${at_risk:,.0f}" in note
        and f"predicted value, next 12 months ${clv12:,.0f}" in note
    )
    assert f"customers {customers:,}" in note
    # Every model is an Asset; its event says what the run did to it (issue 20, "see every model").
    extras = asset_extras(data)
    assert extras["marts.mart_customer_360"]["rows"] == customers
    staging_orders = query(data, "SELECT count(*) FROM staging.stg_orders")[0][0]
    assert extras["staging.stg_orders"]["rows"] == staging_orders
    assert set(extras["staging.stg_orders"]) == {"rows", "seconds", "audits_passed", "audits_failed"}
    # the first run builds prod in the staging task: every model's time is there
    assert extras["staging.stg_orders"]["seconds"] is not None

    # Day two: the generator delivers the next business day; only that batch is loaded.
    day2 = END + dt.timedelta(days=1)
    loads_before = query(data, "SELECT count(*) FROM ops.load_manifest")[0][0]
    second = clv("run", *common, "--business-date", day2.isoformat())
    assert second.returncode == 0, explain(second)
    _, rows = tasks_of_latest_run(data, day2)
    assert {s for _, s, _ in rows} == {"success"} and [t for t, _, _ in rows] == TASKS
    new_loads = query(data, "SELECT DISTINCT batch FROM ops.load_manifest WHERE load_id > ?", [loads_before])
    assert {b for (b,) in new_loads} <= {day2.isoformat(), f"{END.isoformat()}-redelivery"}
    loaded_rows = dict(rows_by_task(rows))["load_raw"]
    assert (
        loaded_rows
        == query(
            data,
            "SELECT coalesce(sum(rows_loaded), 0) FROM ops.load_manifest WHERE batch = ?",
            [day2.isoformat()],
        )[0][0]
    )
    assert query(data, "SELECT business_date FROM serving_info", db="serving.duckdb")[0][0] == day2
    # Each layer task recorded the run time of every model it evaluated for the slow-model
    # detector (issue 21), judged against the model's own history (one day: not enough yet).
    timed = dict(
        query(
            data,
            "SELECT layer, count(*) FROM ops.metric_history WHERE business_date = ? "
            "AND metric LIKE 'run_seconds%' GROUP BY layer",
            [day2],
        )
    )
    assert set(timed) == {"staging", "core", "intermediate", "marts"}, timed
    assert timed["intermediate"] >= 10, timed
    verdicts = query(
        data,
        "SELECT DISTINCT status FROM ops.metric_anomalies WHERE business_date = ? AND metric LIKE 'run_seconds%'",
        [day2],
    )
    assert verdicts == [("not enough history",)], verdicts


def rows_by_task(rows):
    return [(t, r) for t, _, r in rows]


def run_note(data) -> str:
    """The note of the latest clv_daily_refresh run, from Airflow's own metadata database."""
    con = sqlite3.connect(airflow_home.home(data) / "airflow.db")
    try:
        ((note,),) = con.execute(
            "SELECT n.content FROM dag_run r JOIN dag_run_note n ON n.dag_run_id = r.id "
            "WHERE r.dag_id = 'clv_daily_refresh' ORDER BY r.id DESC LIMIT 1"
        ).fetchall()
    finally:
        con.close()
    return note


def asset_extras(data) -> dict[str, dict]:
    """The extras of each Asset's latest event, by asset name, from Airflow's database."""
    import json

    con = sqlite3.connect(airflow_home.home(data) / "airflow.db")
    try:
        rows = con.execute(
            "SELECT a.name, e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id ORDER BY e.id"
        ).fetchall()
    finally:
        con.close()
    return {name: json.loads(extra) if isinstance(extra, str) else extra for name, extra in rows}
