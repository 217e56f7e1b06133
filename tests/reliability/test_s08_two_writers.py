"""Scenario 8: two writers at once. DuckDB lets one process write the warehouse: a second writer
(a manual `clv load` during a DAG run) waits for it or stops with a one-line message; the DAG run
succeeds, nothing is corrupted, nothing is lost."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from clv.settings import PROJECT_ROOT
from generator import runner
from tests.airflow.helpers import clv, explain, query
from tests.ingest.helpers import GOOD, HEADER, make_batch
from tests.reliability import ledger as ledger_mod
from tests.reliability.conftest import copy_data, day

BUSY = "in use by another process"
# one worker builds the shared warehouse fixture (with `--dist loadgroup`)
pytestmark = pytest.mark.xdist_group("reliability-base")


@pytest.mark.scenario(8, "two writers at once", chaos="none (a hand-made batch)")
def test_a_second_writer_gets_a_clear_message(tmp_path, ledger):
    """Another process holds the warehouse: `clv load` waits CLV_LOCK_WAIT_SECONDS, then stops
    with one line and exit code 2, having changed nothing; once the holder is gone it loads."""
    paths = make_batch(tmp_path, {"orders.csv": (HEADER + "\n" + GOOD + "\n").encode()})
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
            "print('locked', flush=True); time.sleep(60)",
            str(paths.warehouse),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        r = clv("load", "--data-dir", str(paths.data_dir), env={"CLV_LOCK_WAIT_SECONDS": "1"})
        assert r.returncode == 2, explain(r)
        assert BUSY in r.stderr and "nothing was changed" in r.stderr and r.stderr.count("\n") == 1
        ledger.fault("second writer while the warehouse is held")
    finally:
        holder.kill()
        holder.wait()
    r = clv("load", "--data-dir", str(paths.data_dir))
    assert r.returncode == 0 and "2 loaded" in r.stdout
    ledger.recovery("load after the other writer finished")
    ledger.account(paths)


@pytest.mark.slow
@pytest.mark.scenario(8, "two writers at once", chaos="heavy-chaos days on a realistic history")
def test_manual_loads_during_a_dag_run(airflow_base, tmp_path, ledger):
    """`clv load` started again and again while clv_daily_refresh runs (through Airflow) for a
    heavy-chaos day: each one either gets the warehouse between two tasks (and loads, or finds
    nothing new), or waits and stops with the one-line message. The DAG run succeeds — its
    SQLMesh tasks wait for the lock too — and the reconciliation is exact."""
    paths = copy_data(airflow_base, tmp_path / "data")
    d1 = day(1)
    runner.day(paths, d1, chaos="heavy")
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        "SQLMESH__DISABLE_ANONYMIZED_ANALYTICS": "1",
        "CLV_RETRY_DELAY_SECONDS": "1",
    }
    dag = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "clv.cli",
            "run",
            "--data-dir",
            str(paths.data_dir),
            "--business-date",
            str(d1),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    outcomes = {"loaded": 0, "nothing new": 0, "busy": 0}
    try:
        while dag.poll() is None:
            r = subprocess.run(
                [sys.executable, "-m", "clv.cli", "load", "--data-dir", str(paths.data_dir)],
                env={**env, "CLV_LOCK_WAIT_SECONDS": "2"},
                capture_output=True,
                text=True,
                timeout=300,
            )
            if r.returncode == 2:
                assert BUSY in r.stderr and r.stderr.count("\n") == 1, explain(r)
                outcomes["busy"] += 1
            else:
                assert r.returncode == 0, explain(r)
                assert "0 failed" in r.stdout
                outcomes["nothing new" if r.stdout.startswith("load: 0 files") else "loaded"] += 1
            time.sleep(0.5)
        out = dag.communicate(timeout=60)[0]
    finally:
        if dag.poll() is None:
            dag.kill()
            dag.wait()
    assert dag.returncode == 0, out[-4000:]
    assert sum(outcomes.values()) >= 3, outcomes
    ledger.fault("manual clv load during the DAG run", sum(outcomes.values()))
    ledger.recovery(
        "manual load got the warehouse and succeeded", outcomes["loaded"] + outcomes["nothing new"]
    )
    ledger.recovery("manual load stopped with the one-line message", outcomes["busy"])

    (run_id,) = query(
        paths.data_dir,
        "SELECT run_id FROM ops.pipeline_runs WHERE dag_id = 'clv_daily_refresh' AND business_date = ? "
        "ORDER BY finished_at DESC LIMIT 1",
        [d1],
    )[0]
    tasks = query(
        paths.data_dir,
        "SELECT task_id, status, try_number FROM ops.pipeline_runs WHERE run_id = ? ORDER BY started_at",
        [run_id],
    )
    final = {t: s for t, s, _ in tasks}
    assert final.get("publish") == "success" and all(s == "success" for s in final.values()), tasks
    retried = sum(1 for _, s, _ in tasks if s == "failed")
    ledger.recovery("DAG task retried after a conflict", retried)
    # Every file of the day loaded exactly once, whoever loaded it; a final load has nothing to do.
    loads = query(
        paths.data_dir,
        "SELECT source_file, count(*) FROM ops.load_manifest WHERE batch = ? AND status = 'loaded' GROUP BY 1",
        [d1.isoformat()],
    )
    assert loads and all(n == 1 for _, n in loads), loads
    final_load = clv("load", "--data-dir", str(paths.data_dir))
    assert final_load.returncode == 0 and final_load.stdout.startswith("load: 0 files"), explain(final_load)
    reconcile = clv("reconcile", "--data-dir", str(paths.data_dir))
    assert reconcile.returncode == 0 and "0 mismatched" in reconcile.stdout, explain(reconcile)
    assert query(paths.data_dir, "SELECT business_date FROM serving_info", db="serving.duckdb")[0][0] == d1
    # nothing corrupted: the warehouse opens and every mart answers
    for (mart,) in query(
        paths.data_dir, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts'"
    ):
        query(paths.data_dir, f"SELECT count(*) FROM marts.{mart}")
    ledger.faults_from_truth(paths, [d1.isoformat()])
    ledger.account(paths)
    for a in ledger_mod.alerts(paths, run_id):
        ledger.alert(a)
