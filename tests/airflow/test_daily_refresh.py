"""clv_daily_refresh end to end through real Airflow (`airflow dags test`, via `clv run`)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from tests.airflow.helpers import clv, explain, query, sha256

pytestmark = pytest.mark.slow

END = dt.date(2024, 12, 31)
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


def test_daily_refresh_twice_then_a_failed_check_keeps_the_last_good_marts(tmp_path):
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
    assert {r[0] for r in layers} == {"raw", "staging", "core", "intermediate", "marts"}

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

    # Day three is a data-quality regression: most order rows are garbage. The raw checks stop
    # the run; nothing downstream runs, the serving file is byte-identical, an alert names it.
    day3 = day2 + dt.timedelta(days=1)
    generated = clv("generate", "day", "--data-dir", str(data), "--quiet", day3.isoformat())
    assert generated.returncode == 0, explain(generated)
    orders = data / "landing" / day3.isoformat() / "orders.csv"
    good = len(orders.read_text().splitlines()) - 1
    with orders.open("a") as f:
        for i in range(max(good, 20) * 2):
            f.write(f"garbage-{i},not a customer,yesterday\n")
    serving_before = sha256(data / "serving.duckdb")
    marts_before = query(data, "SELECT count(*), sum(historical_clv_usd) FROM marts.mart_customer_360")
    third = clv("run", *common, "--business-date", day3.isoformat())
    assert third.returncode == 1, explain(third)
    assert "FAILED" in third.stdout
    run3, rows = tasks_of_latest_run(data, day3)
    statuses = dict((t, s) for t, s, _ in rows)
    assert statuses.get("scan_raw") == "failed", rows
    assert not any(t.startswith("transform_") or t == "publish" for t in statuses), rows
    assert sha256(data / "serving.duckdb") == serving_before
    assert (
        query(data, "SELECT count(*), sum(historical_clv_usd) FROM marts.mart_customer_360") == marts_before
    )
    alerts = query(data, "SELECT task_id, summary FROM ops.alerts WHERE run_id = ?", [run3])
    assert any(t == "scan_raw" and "orders quarantine rate of the batch" in s for t, s in alerts), alerts
    logged = [json.loads(line) for line in (data / "alerts.jsonl").read_text().splitlines()]
    assert any(a["task_id"] == "scan_raw" and a["run_id"] == run3 for a in logged)


def rows_by_task(rows):
    return [(t, r) for t, _, r in rows]
