"""A real serving file for the dashboard tests, built once per test session by the pipeline itself
(`clv run --no-airflow`); one published by `clv.publish` from a copy of that warehouse given three
weeks of monitoring history (for the data-health section); helpers to run the app with
Streamlit's AppTest."""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from clv import anomalies, publish
from clv.names import CHECKED_LAYERS
from clv.settings import PROJECT_ROOT

APP = str(PROJECT_ROOT / "dashboard" / "app.py")


def _build(data: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        "SQLMESH__DISABLE_ANONYMIZED_ANALYTICS": "1",
        "MAX_FORK_WORKERS": "1",
    }
    cmd = [sys.executable, "-m", "clv.cli", "run", "--no-airflow", "--data-dir", str(data)]
    cmd += ["--customers", "800", "--start", "2024-06-01", "--chaos", "none"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]


@pytest.fixture(scope="session")
def pipeline_data(tmp_path_factory) -> Path:
    """The data directory of a pipeline run: 800 customers, 2024-06-01 ... 2024-12-31, no faults.

    Under xdist the workers share one build (a lock in the session's shared temp directory)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    root = tmp_path_factory.getbasetemp().parent if worker else tmp_path_factory.getbasetemp()
    data = root / "dashboard-pipeline" / "data"
    data.parent.mkdir(parents=True, exist_ok=True)
    with (data.parent / "build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not (data.parent / "built").exists():
                shutil.rmtree(data, ignore_errors=True)
                _build(data)
                (data.parent / "built").touch()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    assert (data / "serving.duckdb").stat().st_size > 0
    return data


@pytest.fixture
def serving_copy(pipeline_data, tmp_path) -> Path:
    """A private copy of the pipeline's data directory's serving file, free to modify."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(pipeline_data / "serving.duckdb", data / "serving.duckdb")
    return data


D = dt.date(2024, 12, 31)  # the pipeline fixture's business date
EARLIER = 21  # business dates of history written before D
KEPT = 15  # CLV_HEALTH_HISTORY_DAYS of the publish under test
# The faults of D: (source, metric) -> (its value changed to, the verdict the detector must give)
FAULTS = {
    ("orders", "rows_added"): ("value * 0.3", "fail"),  # a source delivering 30% of its rows
    ("device_sessions", "freshness_lag_days"): ("3", "fail"),  # sessions three days late
    ("support_tickets", "rows_added"): ("value * 1.35", "warn"),  # a third more tickets
}
# A slow model on D (the slow-model detector: warns, never fails): (layer, dataset, metric), change
SLOW_MODEL = (("staging", "stg_orders", "run_seconds"), "value * 20 + 30")


def _write_history(con: duckdb.DuckDBPyConnection) -> None:
    """EARLIER business dates before D of every ops table the page reads, from D's real rows."""
    # metrics: D's values, each moved by a few per cent a day (deterministic), then D's faults
    con.execute(
        "INSERT INTO ops.metric_history SELECT business_date - k::INT, layer, dataset, metric, "
        "value * (1 + 0.03 * sin(k * 1.7 + length(dataset || metric))), 'seeded', recorded_at "
        "FROM ops.metric_history, range(1, ?) AS t(k) WHERE business_date = ?",
        [EARLIER + 1, D],
    )
    for (dataset, metric), (change, _) in FAULTS.items():
        con.execute(
            f"UPDATE ops.metric_history SET value = {change} WHERE business_date = ? AND layer = 'raw' "
            "AND dataset = ? AND metric = ?",
            [D, dataset, metric],
        )
    (layer, dataset, metric), change = SLOW_MODEL
    con.execute(
        f"UPDATE ops.metric_history SET value = {change} WHERE business_date = ? AND layer = ? "
        "AND dataset = ? AND metric = ?",
        [D, layer, dataset, metric],
    )
    # checks: D's outcomes on every earlier date; a failure on D-3, a rerun on D-2 that warned,
    # and a SQLMesh environment's failing scan on D-1 (not prod: left out)
    con.execute(
        "INSERT INTO ops.check_results SELECT 'seeded-' || k, layer, dataset, check_name, outcome, value, "
        "business_date - k::INT, scanned_at - to_days(k::INT) FROM ops.check_results, range(1, ?) AS t(k) "
        "WHERE business_date = ?",
        [EARLIER + 1, D],
    )
    first_raw = "(SELECT min(check_name) FROM ops.check_results WHERE layer = 'raw')"
    con.execute(
        f"UPDATE ops.check_results SET outcome = 'fail' WHERE business_date = ? AND layer = 'raw' "
        f"AND check_name = {first_raw}",
        [D - dt.timedelta(days=3)],
    )
    for run_id, outcome, day in (("rerun", "warn", 2), ("staged@dev", "fail", 1)):
        con.execute(
            f"INSERT INTO ops.check_results SELECT ?, layer, dataset, check_name, ?, value, business_date, "
            f"scanned_at + INTERVAL 1 HOUR FROM ops.check_results WHERE business_date = ? AND layer = 'raw' "
            f"AND check_name = {first_raw}",
            [run_id, outcome, D - dt.timedelta(days=day)],
        )
    # model run times: each earlier run took half of D's seconds; a failed try is left out
    steps = con.execute(
        "SELECT task_id, detail, finished_at FROM ops.pipeline_runs WHERE task_id LIKE 'transform%'"
    ).fetchall()
    for k in range(1, EARLIER + 1):
        for task_id, detail, finished in steps:
            recorded = json.loads(detail)
            times = {
                m: s / 2 for m, s in (recorded.get("model_seconds") or recorded["slowest_models"]).items()
            }
            for status, seconds in (("success", times), ("failed", {m: 999.0 for m in times})):
                con.execute(
                    "INSERT INTO ops.pipeline_runs VALUES ('clv_daily_refresh', ?, ?, 1, ?, ?, ?, ?, 1, 0, ?)",
                    [
                        f"seeded-{k}-{status}",
                        task_id,
                        D - dt.timedelta(days=k),
                        status,
                        finished - dt.timedelta(days=k, minutes=5),
                        finished - dt.timedelta(days=k),
                        json.dumps({"model_seconds": seconds}),
                    ],
                )
    # verdicts of every date, oldest first, by the detector itself
    for k in range(EARLIER, -1, -1):
        for layer in CHECKED_LAYERS:
            anomalies.evaluate(con, layer, D - dt.timedelta(days=k))


@pytest.fixture(scope="module")
def history_data(pipeline_data, tmp_path_factory):
    """A data directory whose serving file `clv.publish` wrote from a copy of the pipeline's
    warehouse with EARLIER business dates of history, keeping the last KEPT."""
    data = tmp_path_factory.mktemp("health") / "data"
    data.mkdir()
    shutil.copy(pipeline_data / "warehouse.duckdb", data / "warehouse.duckdb")
    con = duckdb.connect(str(data / "warehouse.duckdb"))
    try:
        _write_history(con)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("CLV_HEALTH_HISTORY_DAYS", str(KEPT))
            publish.publish(con, D, data)
    finally:
        con.close()
    return data


def query(data_dir: Path, sql: str, params=None):
    con = duckdb.connect(str(data_dir / "serving.duckdb"), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def execute(data_dir: Path, *statements: str) -> None:
    con = duckdb.connect(str(data_dir / "serving.duckdb"))
    try:
        for sql in statements:
            con.execute(sql)
    finally:
        con.close()


@pytest.fixture
def run_app(monkeypatch):
    """Run the dashboard with AppTest against a data directory; returns the finished AppTest."""
    from streamlit.testing.v1 import AppTest

    def run(data_dir: Path, at: AppTest | None = None) -> AppTest:
        monkeypatch.setenv("CLV_DATA_DIR", str(data_dir))
        at = at or AppTest.from_file(APP, default_timeout=60)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return run
