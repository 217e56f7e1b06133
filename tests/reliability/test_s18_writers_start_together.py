"""Scenario 18: two writer DAGs started in the same second. The daily refresh (a heavy-chaos day)
and the backup DAG are started together by two `airflow dags test` processes on one Airflow home:
each gate sees the other run through the metadata database, the backup waits (the refresh goes
first in ``WRITER_DAGS``, then holds the warehouse), and both finish — where a gate that counted
every running writer DAG had them wait for each other until their sensors timed out."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from clv.airflow import home as airflow_home
from clv.business_date import logical_date
from clv.names import BACKUP_DAG, DAILY_DAG
from generator import runner
from tests.airflow.helpers import query
from tests.reliability import ledger as ledger_mod
from tests.reliability.conftest import copy_data, day

# one worker builds the shared warehouse fixture (with `--dist loadgroup`)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("reliability-base")]
DEADLINE_SECONDS = 600  # both runs take about a minute and a half; a deadlock never ends


def start(dag_id: str, conf: dict, data, log) -> subprocess.Popen:
    d1 = day(1)
    return subprocess.Popen(
        [
            airflow_home.airflow_bin(),
            "dags",
            "test",
            dag_id,
            logical_date(d1).isoformat(),
            "--conf",
            json.dumps(conf),
        ],
        env=airflow_home.dags_test_environ(data),
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


@pytest.mark.scenario(
    18, "two writer DAGs started together", chaos="a heavy-chaos day on a realistic history"
)
def test_two_writer_dags_started_together_both_finish(airflow_base, tmp_path, ledger):
    paths = copy_data(airflow_base, tmp_path / "data")
    d1 = day(1)
    runner.day(paths, d1, chaos="heavy")
    # In a deployment the DAG processor has put the bundle in the metadata database before any
    # run starts; two `dags test` processes would otherwise both insert it at once.
    airflow_home.airflow(["dags", "reserialize"], paths.data_dir, log=tmp_path / "reserialize.log")
    logs = {DAILY_DAG: tmp_path / "daily.log", BACKUP_DAG: tmp_path / "backup.log"}
    procs = {
        DAILY_DAG: start(DAILY_DAG, {"business_date": d1.isoformat()}, paths.data_dir, logs[DAILY_DAG]),
        BACKUP_DAG: start(BACKUP_DAG, {}, paths.data_dir, logs[BACKUP_DAG]),
    }
    ledger.fault("two writer DAG runs started in the same second")
    deadline = time.monotonic() + DEADLINE_SECONDS
    try:
        while any(p.poll() is None for p in procs.values()) and time.monotonic() < deadline:
            time.sleep(2)
    finally:
        stuck = [d for d, p in procs.items() if p.poll() is None]
        for p in procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    text = {d: log.read_text() for d, log in logs.items()}
    assert not stuck, f"still running after {DEADLINE_SECONDS} s: {stuck}\n" + text[BACKUP_DAG][-3000:]
    for dag_id, p in procs.items():
        assert p.returncode == 0, f"{dag_id} failed:\n{text[dag_id][-4000:]}"
    # The backup's gate saw the refresh's run (waiting, then holding) in the metadata database.
    assert "waiting for the warehouse: a waiting clv_daily_refresh run goes first" in text[BACKUP_DAG] or (
        "waiting for the warehouse: a clv_daily_refresh run holds the warehouse" in text[BACKUP_DAG]
    ), text[BACKUP_DAG][-3000:]
    assert "waiting for the warehouse" not in text[DAILY_DAG]
    ledger.recovery("the waiting run took the warehouse after the other run ended")

    # One after the other, from the run history: the backup started after the refresh's last step.
    steps = query(
        paths.data_dir,
        "SELECT dag_id, task_id, status, started_at, finished_at FROM ops.pipeline_runs "
        "WHERE dag_id IN (?, ?) ORDER BY started_at",
        [DAILY_DAG, BACKUP_DAG],
    )
    daily = [s for s in steps if s[0] == DAILY_DAG]
    backups = [s for s in steps if s[0] == BACKUP_DAG]
    assert [s[1] for s in daily][-1] == "publish" and {s[2] for s in daily} == {"success"}, daily
    assert [(s[1], s[2]) for s in backups] == [("back_up", "success")], backups
    assert backups[0][3] >= max(s[4] for s in daily)
    # The backup holds the day: its warehouse has the day's loads.
    (folder,) = (paths.data_dir / "backups").iterdir()
    manifest = json.loads((folder / "backup.json").read_text())
    last_load = query(paths.data_dir, "SELECT max(load_id) FROM ops.load_manifest")[0][0]
    assert manifest["watermark"]["last_load_id"] == last_load
    assert query(folder, "SELECT count(*) FROM ops.load_manifest WHERE batch = ?", [d1.isoformat()])[0][0] > 0

    ledger.faults_from_truth(paths, [d1.isoformat()])
    ledger.account(paths)
    for a in ledger_mod.alerts(paths):
        ledger.alert(a)
