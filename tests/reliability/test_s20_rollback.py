"""Scenario 20: a promotion turns out wrong and is undone. A changed mart is built in an
environment, checked and promoted; `clv rollback` puts prod back to the versions it served before
(a SQLMesh virtual update, nothing recomputed) and republishes: every mart and the serving file's
tables equal the pre-promotion ones, row for row. Promoted again, the change is undone by the
clv_rollback DAG through Airflow the same way; with nothing left to undo, a rollback is refused
with one line."""

from __future__ import annotations

import pytest

from clv import pipeline
from clv.airflow import home as airflow_home
from tests.airflow.helpers import clv, explain, query
from tests.airflow.test_backfill import NEW_COLUMN, changed_project
from tests.reliability import ledger as ledger_mod
from tests.reliability.conftest import END, copy_data

# one worker builds the shared warehouse fixture (with `--dist loadgroup`)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("reliability-base")]
MEDIAN = NEW_COLUMN.split(" AS ")[-1].strip(" ,\n")


def tables(data, schema: str, db: str) -> dict[str, tuple[list, list]]:
    """Every mart table's columns and rows (sorted), as a reader of ``db`` sees them."""
    names = query(
        data,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
        "AND table_name LIKE 'mart_%' ORDER BY 1",
        [schema],
        db=db,
    )
    out = {}
    for (name,) in names:
        cols = [r[0] for r in query(data, f"DESCRIBE {schema}.{name}", db=db)]
        out[name] = (cols, query(data, f"SELECT * FROM {schema}.{name} ORDER BY ALL", db=db))
    return out


def state(data) -> dict:
    return {
        "marts": tables(data, "marts", "warehouse.duckdb"),
        "serving": tables(data, "main", "serving.duckdb"),
    }


@pytest.mark.scenario(20, "a bad promotion rolled back", chaos="realistic")
def test_a_promotion_is_rolled_back_to_the_marts_and_serving_it_replaced(
    airflow_base, tmp_path, monkeypatch, ledger
):
    paths = copy_data(airflow_base, tmp_path / "data")
    data = paths.data_dir
    project = changed_project(tmp_path)
    monkeypatch.setenv("CLV_SQLMESH_PROJECT", str(project))  # the model files keep the change
    before = state(data)
    assert len(before["marts"]) >= 7 and before["serving"] == before["marts"]
    intervals = query(data, "SELECT count(*) FROM sqlmesh._intervals")[0][0]

    promote = ("backfill", "--data-dir", str(data), "--environment", "fix1", "--promote")
    promoted = clv(*promote)
    assert promoted.returncode == 0, explain(promoted)
    after = state(data)
    assert MEDIAN in after["marts"]["mart_category_ltv"][0] and after != before
    ledger.fault("a changed mart promoted to prod, then found wrong")

    undone = clv("rollback", "--data-dir", str(data))
    assert undone.returncode == 0, explain(undone)
    assert "rolled back the promotion of 'fix1'" in undone.stdout
    assert "marts.mart_category_ltv" in undone.stdout and "brought up to" not in undone.stdout
    assert state(data) == before
    # A virtual update: the rollback computed no interval (only the backfill in fix1 did).
    after_rollback = query(data, "SELECT count(*) FROM sqlmesh._intervals")[0][0]
    ledger.recovery("clv rollback restored the previous marts and serving file")

    # The same checked environment promoted again (the pipeline steps the command runs).
    pipeline.promote(END, "fix1", data_dir=data)
    pipeline.publish(END, data_dir=data)
    assert state(data) == after
    rc, log = airflow_home.dags_test("clv_rollback", END, data, conf={})
    assert rc == 0, log.read_text()[-4000:]
    assert state(data) == before
    assert query(data, "SELECT count(*) FROM sqlmesh._intervals")[0][0] == after_rollback > intervals
    ledger.recovery("the clv_rollback DAG restored them again")

    nothing = clv("rollback", "--data-dir", str(data))
    assert nothing.returncode == 2 and nothing.stderr.count("\n") == 1, explain(nothing)
    assert "there is no promotion to roll back" in nothing.stderr
    promotions = query(data, "SELECT environment, rolled_back_by FROM ops.promotions ORDER BY promoted_at")
    assert [e for e, _ in promotions] == ["fix1", "fix1"]
    assert promotions[0][1].startswith("clv-cli") and promotions[1][1].startswith("clv_rollback manual__")
    for a in ledger_mod.alerts(paths):
        ledger.alert(a)
    ledger.account(paths)
