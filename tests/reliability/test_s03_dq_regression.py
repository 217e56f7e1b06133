"""Scenario 3: a data-quality regression. A heavy-chaos day batch with a file that is mostly garbage
breaks an error-level raw check: through real Airflow, the run stops at `scan_raw`, no layer below
refreshes, the serving file stays byte-identical, and an alert names the check."""

from __future__ import annotations

import json

import pytest

from clv.airflow import home as airflow_home
from clv.names import DAILY_DAG
from generator import runner
from tests.airflow.helpers import query, sha256
from tests.ingest.helpers import relist
from tests.reliability import ledger as ledger_mod
from tests.reliability.conftest import copy_data, day

# one worker builds the shared warehouse fixture (with `--dist loadgroup`)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("reliability-base")]


@pytest.mark.scenario(3, "data-quality regression", chaos="heavy-chaos days on a realistic history")
def test_a_dq_regression_stops_the_layers_below(airflow_base, tmp_path, ledger):
    paths = copy_data(airflow_base, tmp_path / "data")
    d1 = day(1)
    runner.day(paths, d1, chaos="heavy")
    # Poison a file heavy chaos did not drift (a drifted file is quarantined whole: scenario 2).
    drifted = {
        f["source"] for f in ledger_mod.read_faults(paths, [d1.isoformat()]) if f["fault"] == "schema_drift"
    }
    source = next(s for s in ("orders", "device_sessions", "loyalty_balances") if s not in drifted)
    check = f"{source} quarantine rate of the batch"
    target = paths.landing / d1.isoformat() / f"{source}.csv"
    good = len(target.read_text().splitlines()) - 1
    garbage = max(good, 20) * 2
    with target.open("a") as f:
        for i in range(garbage):
            f.write(f"garbage-{i},not a customer,yesterday\n")
    relist(target)  # the source system exported the garbage itself: its manifest counts it
    ledger.fault(f"garbage rows appended to a day's {source}", garbage)
    serving_before = sha256(paths.serving)
    marts_before = query(
        paths.data_dir, "SELECT count(*), sum(historical_clv_usd) FROM marts.mart_customer_360"
    )
    runs_before = query(paths.data_dir, "SELECT count(*) FROM ops.pipeline_runs")[0][0]

    rc, log = airflow_home.dags_test(DAILY_DAG, d1, paths.data_dir)

    assert rc != 0, log.read_text()[-3000:]
    steps = query(
        paths.data_dir,
        "SELECT task_id, status, run_id FROM ops.pipeline_runs WHERE dag_id = 'clv_daily_refresh' "
        "AND business_date = ? ORDER BY started_at",
        [d1],
    )
    statuses = {t: s for t, s, _ in steps}
    assert statuses == {"extract": "success", "load_raw": "success", "scan_raw": "failed"}, steps
    run_id = steps[-1][2]
    # scan_raw failed once: a failed check is not retried
    assert sum(1 for t, _, _ in steps if t == "scan_raw") == 1
    # nothing below raw moved
    assert sha256(paths.serving) == serving_before
    assert (
        query(paths.data_dir, "SELECT count(*), sum(historical_clv_usd) FROM marts.mart_customer_360")
        == marts_before
    )
    assert query(paths.data_dir, "SELECT business_date FROM serving_info", db="serving.duckdb")[0][0] < d1
    assert query(paths.data_dir, "SELECT count(*) FROM ops.pipeline_runs")[0][0] == runs_before + 3
    # the alert names the check, in the warehouse and in alerts.jsonl
    alerts = ledger_mod.alerts(paths, run_id)
    named = [a for a in alerts if a["task_id"] == "scan_raw" and check in a["summary"]]
    assert named, alerts
    logged = [json.loads(line) for line in (paths.data_dir / "alerts.jsonl").read_text().splitlines()]
    assert any(a["task_id"] == "scan_raw" and a["run_id"] == run_id and check in a["summary"] for a in logged)
    for a in alerts:
        ledger.alert(a)
    # every garbage row is in quarantine with its reason, none lost
    quarantined = query(
        paths.data_dir,
        f"SELECT count(*) FROM raw_invalid.{source} q JOIN ops.load_manifest m ON m.load_id = q._load_id "
        "WHERE m.batch = ? AND q._raw_line LIKE 'garbage-%'",
        [d1.isoformat()],
    )[0][0]
    assert quarantined == garbage
    ledger.faults_from_truth(paths, [d1.isoformat()])
    ledger.account(paths)
