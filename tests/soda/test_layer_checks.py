"""Soda checks after staging, core, intermediate and marts, on a real SQLMesh-built warehouse: a
clean run passes, and each kind of check fails with its name on crafted bad data. These are the
rules that span tables or time (references, reconciliation, freshness, volume, distributions,
model health); what a model promises about itself is its SQLMesh audits' business
(tests/sqlmesh/test_audits.py)."""

from __future__ import annotations

import datetime as dt
import shutil

import duckdb
import pytest

from clv import quality
from clv.names import CHECKED_LAYERS
from tests.conftest import END

pytestmark = pytest.mark.slow
DAY2 = END + dt.timedelta(days=2)


@pytest.fixture
def built(project, tmp_path):
    paths, ctx, _ = project
    ctx.close()
    data = tmp_path / "data"
    shutil.copytree(paths.data_dir, data, ignore=shutil.ignore_patterns("reports"))
    con = duckdb.connect(str(data / "warehouse.duckdb"))
    yield data, con
    con.close()


def tamper(con, view: str, select: str) -> None:
    """Replace a layer's view by a query over a frozen copy of its rows (the copy is `t`)."""
    copy = view.replace(".", "_") + "_copy"
    con.execute(f"CREATE OR REPLACE TABLE main.{copy} AS SELECT * FROM {view}")
    con.execute(f"CREATE OR REPLACE VIEW {view} AS {select.format(t=f'main.{copy}')}")


def failed(con, data, layer, day=DAY2) -> set[str]:
    result = quality.scan(con, layer, day, data_dir=data, raise_on_failure=False)
    assert not result.errors, result.errors
    return {c["name"] for c in result.failed}


def test_every_layer_passes_on_the_built_warehouse(built):
    """Raw is scanned for the history batch (realistic chaos) and for a heavy-chaos day batch:
    heavy chaos quarantines a few percent of rows and drifts whole files, which warns (a drifted
    file is set aside with an alert; tests/reliability/test_s02_schema_drift.py) without
    stopping the day."""
    data, con = built
    for layer in CHECKED_LAYERS:
        day = END if layer == "raw" else DAY2
        result = quality.scan(con, layer, day, run_id="clean", data_dir=data)
        assert result.ok, (layer, result.failed, result.errors)
    heavy = quality.scan(con, "raw", DAY2, data_dir=data, raise_on_failure=False)
    assert heavy.ok, (heavy.failed, heavy.errors)
    assert any("quarantine" in c["name"] for c in heavy.warned), heavy.warned


def test_orphan_keys(built):
    data, con = built
    tamper(con, "staging.stg_orders", "SELECT * REPLACE ('C9' || customer_id AS customer_id) FROM {t}")
    assert "stg_orders rows whose customer is unknown" in failed(con, data, "staging")


def test_stale_data(built):
    data, con = built
    assert "stg_orders refreshed by the latest batch" in failed(
        con, data, "staging", DAY2 + dt.timedelta(days=30)
    )


def test_future_dated_events(built):
    data, con = built
    assert "stg_orders has no events after the business date" in failed(
        con, data, "staging", END - dt.timedelta(days=5)
    )


def test_facts_reference_existing_customers_with_a_sample_of_the_failing_rows(built):
    data, con = built
    tamper(
        con,
        "core.fct_revenue",
        "SELECT * REPLACE (CASE WHEN revenue_type = 'refund' THEN 'C9' || customer_id ELSE customer_id END "
        "AS customer_id) FROM {t}",
    )
    check = "fct_revenue customers exist in dim_customers"
    result = quality.scan(con, "core", DAY2, run_id="refs", data_dir=data, raise_on_failure=False)
    assert {c["name"] for c in result.failed} == {check}
    sample = result.samples[check]
    assert 0 < len(sample) <= quality.SAMPLE_ROWS and all(r["customer_id"].startswith("C9") for r in sample)
    report = (data / "reports" / "refs" / "core.md").read_text()
    assert f"## {check}: first" in report and sample[0]["customer_id"] in report


def test_every_customer_is_scored(built):
    data, con = built
    tamper(con, "intermediate.int_churn_scoring", "SELECT * FROM {t} WHERE hash(customer_id) % 10 <> 0")
    assert failed(con, data, "intermediate") == {"int_churn_scoring every customer scored"}


def test_volume_jump_against_the_previous_run(built):
    data, con = built
    assert quality.scan(con, "marts", DAY2, run_id="day2", data_dir=data).ok
    tamper(
        con, "marts.mart_customer_360", "SELECT * FROM {t} WHERE hash(customer_id) % 4 = 0"
    )  # three quarters vanish
    names = failed(con, data, "marts", DAY2 + dt.timedelta(days=1))
    assert "mart_customer_360 customer count change against the previous run" in names


def test_clv_and_churn_model_checks(built):
    """The model-health checks fail on what they guard: a predicted year far from the last one, and
    a churn model no better than BG/NBD alone on its holdout. (Probabilities out of range are the
    models' audits.)"""
    data, con = built
    tamper(
        con,
        "intermediate.int_clv_predictions",
        "SELECT * REPLACE (bgnbd_clv_12m_usd * 10 AS bgnbd_clv_12m_usd, "
        "predicted_remaining_clv_usd * 10 AS predicted_remaining_clv_usd) FROM {t}",
    )
    assert failed(con, data, "intermediate") == {
        "int_clv_predictions next year's revenue against the last year's"
    }
    tamper(
        con,
        "intermediate.int_churn_model",
        "SELECT * REPLACE (holdout_log_loss_bgnbd - 0.01 AS holdout_log_loss) FROM {t}",
    )
    assert "int_churn_model beats BG/NBD alone on the held-out customers" not in failed(
        con, data, "intermediate"
    )
    tamper(
        con,
        "intermediate.int_churn_model",
        "SELECT * REPLACE (holdout_log_loss_bgnbd + 0.01 AS holdout_log_loss) FROM {t}",
    )
    assert "int_churn_model beats BG/NBD alone on the held-out customers" in failed(con, data, "intermediate")


def test_mrr_and_retention_checks(built):
    """The MRR reconciliation fails on a month whose movements do not add up and on a missing
    month (the chain of closings and openings broken); the retention checks fail on a plan left
    out and on a month still running on the business date."""
    data, con = built
    reconciles = "mart_mrr_movements reconciles month to month"
    assert quality.scan(con, "marts", DAY2, data_dir=data).ok
    tamper(
        con,
        "marts.mart_mrr_movements",
        "SELECT * REPLACE (CASE WHEN mrr_month = (SELECT max(mrr_month) FROM {t} WHERE is_complete_month) "
        "THEN new_mrr_usd + 1 ELSE new_mrr_usd END AS new_mrr_usd) FROM {t}",
    )
    assert failed(con, data, "marts") == {reconciles}
    tamper(
        con,
        "marts.mart_mrr_movements",
        "SELECT * FROM {t} WHERE mrr_month <> (SELECT min(mrr_month) + INTERVAL 2 MONTH FROM {t})",
    )
    assert failed(con, data, "marts") == {reconciles}
    tamper(
        con,
        "marts.mart_subscription_retention",
        "SELECT * FROM {t} WHERE plan_id <> (SELECT min(plan_id) FROM {t})",
    )
    assert failed(con, data, "marts") == {
        reconciles,
        "mart_subscription_retention counts every subscription started by the business date",
    }
    tamper(
        con,
        "marts.mart_subscription_retention",
        "SELECT * REPLACE (months_since_start + CASE WHEN cohort = (SELECT max(cohort) FROM {t} WHERE cohort <> 'all') "
        "THEN 1 ELSE 0 END AS months_since_start) FROM {t}",
    )
    assert "mart_subscription_retention shows complete months only" in failed(con, data, "marts")
