"""Scenario 2: a schema-drifted file is quarantined whole, the rest of its batch loads, an alert is
raised, and every layer downstream refreshes on the valid data."""

from __future__ import annotations

import pytest

from clv import pipeline
from clv.contract import SOURCES
from generator import runner
from tests.airflow.helpers import query
from tests.reliability import ledger as ledger_mod
from tests.reliability.conftest import copy_data, day

# one worker builds the shared warehouse fixture (with `--dist loadgroup`)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("reliability-base")]


@pytest.mark.scenario(2, "schema-drifted file", chaos="heavy-chaos days on a realistic history")
def test_a_drifted_file_is_quarantined_and_the_run_goes_on(base, tmp_path, ledger):
    paths = copy_data(base, tmp_path / "data")
    # Heavy chaos drifts 15% of a day batch's files: deliver days until one drifted.
    drifted: dict[tuple[str, str], str] = {}
    n = 0
    while not drifted:
        n += 1
        assert n <= 8, "heavy chaos drifts a file within a week of batches"
        runner.day(paths, day(n), chaos="heavy")
        faults = ledger_mod.read_faults(paths, [day(n).isoformat()])
        drifted = {(f["batch"], f["source"]): f["detail"] for f in faults if f["fault"] == "schema_drift"}
    batches = [day(i).isoformat() for i in range(1, n + 1)]
    business_date = day(n)
    marts_before = query(paths.data_dir, "SELECT max(business_date) FROM ops.pipeline_runs")[0][0]

    pipeline.daily(business_date, "drift", data_dir=paths.data_dir, echo=lambda _line: None)

    files = {
        (b, s): (status, reason)
        for b, s, status, reason in query(
            paths.data_dir,
            "SELECT m.batch, m.source, m.status, f.reason FROM ops.load_manifest m "
            "LEFT JOIN raw_invalid.files f USING (load_id) WHERE m.batch = ANY(?)",
            [batches],
        )
    }
    for key, detail in drifted.items():
        status, reason = files[key]
        assert status == "quarantined" and reason.startswith("schema drift:"), (key, detail, reason)
    batch = business_date.isoformat()
    siblings = [s for s in SOURCES if (batch, s) not in drifted]
    assert siblings and all(files[(batch, s)][0] == "loaded" for s in siblings)
    # an alert says which file was quarantined
    alerts = ledger_mod.alerts(paths, "drift")
    drift_alerts = [a for a in alerts if a["task_id"] == "load_raw" and "quarantined whole" in a["summary"]]
    assert drift_alerts, alerts
    for a in drift_alerts:
        ledger.alert(a)
    # downstream ran on the valid rows: staging holds the siblings' rows of the drifted batch and
    # nothing of the drifted file; the marts and the serving file are as of the new business date
    for source in SOURCES:
        staged = query(
            paths.data_dir,
            f"SELECT count(*) FROM staging.stg_{source} WHERE loaded_batch_date = ?",
            [business_date],
        )[0][0]
        valid = query(
            paths.data_dir,
            f"SELECT count(*) FROM raw.{source} WHERE _batch = ?",
            [batch],
        )[0][0]
        if (batch, source) in drifted:
            assert valid == 0 and staged == 0, source
        elif valid:
            assert staged > 0, source
    statuses = dict(
        query(paths.data_dir, "SELECT task_id, status FROM ops.pipeline_runs WHERE run_id = 'drift'")
    )
    assert set(statuses.values()) == {"success"} and "publish" in statuses, statuses
    assert query(paths.data_dir, "SELECT business_date FROM serving_info", db="serving.duckdb")[0][0] == (
        business_date
    )
    assert marts_before < business_date

    ledger.faults_from_truth(paths, batches)
    ledger.account(paths)
