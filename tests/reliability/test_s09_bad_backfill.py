"""Scenario 9: a bad backfill in a dev environment. A model change with an off-by-one bug (revenue
of the business date itself left out of customers' value) passes SQLMesh's unit tests, is built in
an isolated environment and caught there by the Soda reconciliation of the marts with the revenue
facts: prod and the serving file are untouched. After the fix, the same environment is built
again, passes, is promoted, and prod shows the change."""

from __future__ import annotations

import pytest

from tests.airflow.helpers import clv, explain, query, sha256
from tests.airflow.test_backfill import NEW_COLUMN, changed_project, columns
from tests.reliability import ledger as ledger_mod
from tests.reliability.conftest import END, copy_data

# one worker builds the shared warehouse fixture (with `--dist loadgroup`)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("reliability-base")]
MODEL = "models/intermediate/int_customer_clv.sql"
RIGHT, WRONG = "revenue_date <= @business_date()", "revenue_date < @business_date()"
CHECK = "mart_clv historical CLV reconciles with fct_revenue"
MEDIAN = NEW_COLUMN.split(" AS ")[-1].strip(" ,\n")


def marts_state(data) -> list:
    return query(
        data,
        "SELECT count(*), sum(historical_clv_usd), sum(predicted_clv_12m_usd) FROM marts.mart_clv",
    )


@pytest.mark.scenario(9, "bad backfill in a dev environment", chaos="realistic")
def test_a_bad_backfill_is_caught_in_dev_then_the_fix_is_promoted(base, tmp_path, ledger):
    paths = copy_data(base, tmp_path / "data")
    data = paths.data_dir
    # The change: a new column in a mart (the intended work) and an off-by-one in a model below it.
    project = changed_project(tmp_path)
    model = project / MODEL
    good = model.read_text()
    assert RIGHT in good
    model.write_text(good.replace(RIGHT, WRONG))
    ledger.fault("model change with an off-by-one bug, backfilled in dev")
    env = {"CLV_SQLMESH_PROJECT": str(project)}
    serving, prod = sha256(paths.serving), marts_state(data)
    revenue_today = query(data, "SELECT count(*) FROM core.fct_revenue WHERE revenue_date = ?", [END])[0][0]
    assert revenue_today > 0, "the bug only shows when the business date has revenue"

    bad = clv("backfill", "--data-dir", str(data), "--environment", "fix1", "--promote", env=env)
    assert bad.returncode == 1, explain(bad)
    assert "checks failed in environment fix1; prod is unchanged" in bad.stderr and CHECK in bad.stderr
    # the environment holds the bad numbers; prod and the serving file do not
    assert MEDIAN in columns(data, "marts__fix1") and MEDIAN not in columns(data, "marts")
    env_clv, prod_clv = (
        query(data, f"SELECT sum(historical_clv_usd) FROM {schema}.mart_clv")[0][0]
        for schema in ("marts__fix1", "marts")
    )
    assert env_clv < prod_clv
    assert marts_state(data) == prod and sha256(paths.serving) == serving
    failed = query(
        data,
        "SELECT count(*) FROM ops.check_results WHERE run_id LIKE '%@fix1' AND check_name = ? "
        "AND outcome = 'fail'",
        [CHECK],
    )[0][0]
    assert failed == 1
    ledger.recovery("bad backfill stopped in dev, prod untouched")

    # The fix: keep the new column, restore the date filter. Build, check, promote, publish.
    model.write_text(good)
    fixed = clv("backfill", "--data-dir", str(data), "--environment", "fix1", "--promote", env=env)
    assert fixed.returncode == 0, explain(fixed)
    assert "promoted" in fixed.stdout
    assert MEDIAN in columns(data, "marts") and MEDIAN in columns(data, "main", db="serving.duckdb")
    assert marts_state(data) == prod  # the bug never reached prod; the fix changes no CLV
    assert sha256(paths.serving) != serving
    ledger.recovery("fixed backfill promoted to prod")
    for a in ledger_mod.alerts(paths):
        ledger.alert(a)
    ledger.account(paths)
