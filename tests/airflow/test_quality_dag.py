"""clv_quality_checks through real Airflow: one morning report; a broken reconciliation fails it."""

from __future__ import annotations

import duckdb
import pytest

from clv.airflow import home as airflow_home
from clv.names import DEFAULT_HISTORY_END
from tests.airflow.helpers import query, small_run

pytestmark = pytest.mark.slow

END = DEFAULT_HISTORY_END


def test_morning_report_passes_then_flags_a_broken_reconciliation(tmp_path):
    data = tmp_path / "data"
    small_run(data, 800, "2024-06-01", "--no-airflow")
    airflow_home.bootstrap(data)
    rc, log = airflow_home.dags_test("clv_quality_checks", END, data, conf={})
    assert rc == 0, log.read_text()[-3000:]
    report = (data / "reports" / f"{END.isoformat()}-quality" / "summary.md").read_text()
    for part in ("sqlmesh_tests: ok", "sqlmesh_audits: ok", "soda_scan: ok", "reconciliation: ok"):
        assert part in report, report
    tasks = query(data, "SELECT DISTINCT task_id FROM ops.pipeline_runs WHERE dag_id = 'clv_quality_checks'")
    assert {t for (t,) in tasks} >= {
        "sqlmesh_unit_tests",
        "sqlmesh_audits",
        "soda_full_scan",
        "reconcile_loads",
        "morning_report",
    }

    con = duckdb.connect(str(data / "warehouse.duckdb"))
    con.execute("DELETE FROM raw_data.orders WHERE _row_number % 10 = 0")  # rows lost after loading
    con.close()
    rc, log = airflow_home.dags_test("clv_quality_checks", END, data, conf={})
    assert rc != 0
    report = (data / "reports" / f"{END.isoformat()}-quality" / "summary.md").read_text()
    assert "reconciliation: FAILED" in report, report
    alerts = query(data, "SELECT task_id, summary FROM ops.alerts WHERE dag_id = 'clv_quality_checks'")
    assert any(t == "morning_report" and "reconciliation" in s for t, s in alerts), alerts
