"""Scenario 1: an extract fails transiently. With delivered files (``CLV_SOURCE=landing``), the
daily DAG's `extract` waits for the business day's batch and `load_raw` for a file still being
written (it does not match its manifest yet): both are retried with exponential back-off by real
Airflow and succeed once the source catches up. A batch that never lands fails the run after the
last retry, with an alert.

The retry delay is shortened through ``CLV_RETRY_DELAY_SECONDS`` (read when the DAG is parsed)."""

from __future__ import annotations

import itertools
import shutil
import threading
import time

import duckdb
import pytest

from clv.airflow import home as airflow_home
from clv.airflow import policy
from clv.names import DAILY_DAG
from generator import runner
from tests.airflow.helpers import query
from tests.reliability import ledger as ledger_mod
from tests.reliability.conftest import copy_data, day

# one worker builds the shared warehouse fixture (with `--dist loadgroup`)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("reliability-base")]


def failed_attempts(warehouse, task_id: str, business_date) -> int:
    """Failed attempts of a task recorded so far; 0 while the warehouse is busy (a task holds it)."""
    try:
        con = duckdb.connect(str(warehouse), read_only=True)
    except duckdb.IOException:
        return 0
    try:
        return con.execute(
            "SELECT count(*) FROM ops.pipeline_runs WHERE task_id = ? AND business_date = ? AND status = 'failed'",
            [task_id, business_date],
        ).fetchone()[0]
    finally:
        con.close()


class LateSource(threading.Thread):
    """The source system catching up while the DAG runs: after the first failed `extract`, the
    batch folder arrives (its orders file still being written: half of it); after the first failed
    `load_raw`, the export is complete and takes its place."""

    def __init__(self, paths, business_date, parked, export):
        super().__init__(daemon=True)
        self.paths, self.day, self.parked, self.export = paths, business_date, parked, export
        self.done: list[str] = []
        self.stop = threading.Event()

    def wait_for(self, task_id: str) -> bool:
        while not self.stop.is_set():
            if failed_attempts(self.paths.warehouse, task_id, self.day):
                return True
            time.sleep(0.3)
        return False

    def run(self):
        if not self.wait_for("extract"):
            return
        shutil.move(self.parked, self.paths.landing / self.day.isoformat())
        self.done.append("batch delivered")
        if not self.wait_for("load_raw"):
            return
        shutil.move(self.export, self.paths.landing / self.day.isoformat() / "orders.csv")
        self.done.append("export completed")


@pytest.mark.scenario(1, "extract fails transiently", chaos="heavy-chaos days on a realistic history")
def test_extract_and_load_retry_with_back_off_then_alert(airflow_base, tmp_path, monkeypatch, ledger):
    monkeypatch.setenv("CLV_SOURCE", "landing")
    monkeypatch.setenv("CLV_RETRY_DELAY_SECONDS", "1")
    paths = copy_data(airflow_base, tmp_path / "data")
    d1, d2 = day(1), day(2)
    # The day's batch exists at the source but has not been delivered: park it outside landing,
    # its orders export still being written (half of it there; the manifest lists the whole).
    runner.day(paths, d1, chaos="heavy")
    parked = tmp_path / "source" / d1.isoformat()
    parked.parent.mkdir()
    shutil.move(paths.landing / d1.isoformat(), parked)
    export = tmp_path / "source" / "orders-export.csv"
    shutil.move(parked / "orders.csv", export)
    data = export.read_bytes()
    (parked / "orders.csv").write_bytes(data[: len(data) // 2])

    source = LateSource(paths, d1, parked, export)
    source.start()
    try:
        rc, log = airflow_home.dags_test(DAILY_DAG, d1, paths.data_dir)
    finally:
        source.stop.set()
        source.join(timeout=30)
    assert rc == 0, log.read_text()[-4000:]
    assert source.done == ["batch delivered", "export completed"]
    attempts = query(
        paths.data_dir,
        "SELECT task_id, try_number, status, started_at FROM ops.pipeline_runs "
        "WHERE dag_id = 'clv_daily_refresh' AND business_date = ? ORDER BY started_at",
        [d1],
    )
    for task in ("extract", "load_raw"):
        tries = [(n, s, t) for task_id, n, s, t in attempts if task_id == task]
        assert tries[0][1] == "failed" and tries[-1][1] == "success", tries
        assert tries[-1][0] > 1, "the success came from an Airflow retry"
        assert [n for n, _, _ in tries] == sorted(n for n, _, _ in tries)
        ledger.fault(f"{task}: source not ready", sum(1 for _, s, _ in tries if s == "failed"))
        ledger.recovery(f"{task} retried with back-off, then succeeded")
    assert {t: s for t, _, s, _ in attempts}["publish"] == "success"
    (run1,) = {
        r
        for (r,) in query(
            paths.data_dir, "SELECT DISTINCT run_id FROM ops.pipeline_runs WHERE business_date = ?", [d1]
        )
    }
    # a retry that succeeds is not an alert
    assert not [a for a in ledger_mod.alerts(paths, run1) if a["severity"] == "error"]
    assert query(paths.data_dir, "SELECT business_date FROM serving_info", db="serving.duckdb")[0][0] == d1

    # The next day never lands: extract gives up after the last retry, and an alert says so.
    rc, log = airflow_home.dags_test(DAILY_DAG, d2, paths.data_dir)
    assert rc != 0
    tries = query(
        paths.data_dir,
        "SELECT try_number, status, run_id, started_at FROM ops.pipeline_runs "
        "WHERE task_id = 'extract' AND business_date = ? ORDER BY started_at",
        [d2],
    )
    retries = policy.INGEST_RETRIES["retries"]
    assert [(n, s) for n, s, _, _ in tries] == [(i, "failed") for i in range(1, retries + 2)], tries
    # exponential back-off: the waits grow (Airflow adds jitter within each doubling)
    gaps = [(b[3] - a[3]).total_seconds() for a, b in itertools.pairwise(tries)]
    assert gaps[0] >= 1 and gaps[-1] > gaps[0], gaps
    ledger.fault("extract: batch never delivered", len(tries))
    run2 = tries[-1][2]
    alerts = [a for a in ledger_mod.alerts(paths, run2) if a["task_id"] == "extract"]
    assert len(alerts) == 1 and "no batch for" in alerts[0]["summary"], alerts
    for a in alerts:
        ledger.alert(a)
    assert not query(
        paths.data_dir,
        "SELECT task_id FROM ops.pipeline_runs WHERE business_date = ? AND task_id <> 'extract'",
        [d2],
    )
    ledger.faults_from_truth(paths, [d1.isoformat()])
    ledger.account(paths)
