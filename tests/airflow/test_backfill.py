"""clv_backfill through real Airflow: a changed model is built and checked in an isolated SQLMesh
environment; prod and the serving file do not move until promotion; then they show it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from clv import pipeline, settings
from clv.airflow import home as airflow_home
from clv.names import DEFAULT_HISTORY_END
from clv.review import Review
from clv.transform import PromotionRefused
from tests.airflow.helpers import query, small_run

pytestmark = pytest.mark.slow

END = DEFAULT_HISTORY_END
MODEL = "models/marts/mart_category_ltv.sql"
NEW_COLUMN = "  CAST(MEDIAN(c.historical_clv_usd) AS DECIMAL(12, 2)) AS median_historical_clv_usd,\n"


def columns(data, schema, table="mart_category_ltv", db="warehouse.duckdb"):
    return {
        r[0]
        for r in query(
            data,
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ?",
            [schema, table],
            db=db,
        )
    }


def changed_project(tmp_path):
    project = tmp_path / "sqlmesh_project"
    shutil.copytree(settings.SQLMESH_PROJECT, project, ignore=shutil.ignore_patterns(".cache", "logs"))
    sql = (project / MODEL).read_text()
    anchor = "  CAST(SUM(c.historical_clv_usd) AS DECIMAL(16, 2)) AS total_historical_clv_usd,\n"
    assert anchor in sql
    (project / MODEL).write_text(sql.replace(anchor, anchor + NEW_COLUMN))
    # The change's author updates the model's unit test too: it now checks the old columns only.
    test = project / "tests" / "test_mart_category_ltv.yaml"
    text = test.read_text()
    assert "  outputs:\n    query:\n" in text
    test.write_text(text.replace("  outputs:\n    query:\n", "  outputs:\n    query:\n      partial: true\n"))
    return project


def test_unattended_backfill_promotes_without_asking_when_every_check_passed(tmp_path, monkeypatch):
    """``promote`` set and every check passed: the approval task approves on its own (no request
    waits for a person), prod and the serving file show the change. (Prod untouched before an
    answer, and the answers themselves: tests/airflow/test_approval.py.)"""
    data = tmp_path / "data"
    small_run(data, 1200, "2024-01-01", "--no-airflow")
    monkeypatch.setenv("CLV_SQLMESH_PROJECT", str(changed_project(tmp_path)))
    airflow_home.bootstrap(data)

    rc, log = airflow_home.dags_test(
        "clv_backfill", END, data, conf={"environment": "dev1", "promote": True}, timeout=1200
    )
    text = log.read_text()
    assert rc == 0, text[-3000:]
    assert "promote is set and every check passed: promoting without asking" in text
    # the environment's checks ran against the environment's schemas
    assert query(data, "SELECT count(*) FROM ops.check_results WHERE run_id LIKE '%@dev1'")[0][0] > 0
    assert "median_historical_clv_usd" in columns(data, "marts")
    assert "median_historical_clv_usd" in columns(data, "main", db="serving.duckdb")
    medians = query(data, "SELECT count(*) FROM marts.mart_category_ltv WHERE median_historical_clv_usd > 0")
    assert medians[0][0] > 0


def test_promotion_is_refused_when_the_models_changed_after_the_checks(tmp_path, monkeypatch):
    data = tmp_path / "data"
    small_run(data, 800, "2024-06-01", "--no-airflow")
    project = changed_project(tmp_path)
    monkeypatch.setenv("CLV_SQLMESH_PROJECT", str(project))
    staged = pipeline.stage_environment(END, "dev2", data_dir=data)
    assert "median_historical_clv_usd" in columns(data, "marts__dev2")
    assert any("mart_category_ltv" in name for name in staged["changed"])
    # The review: the added column is a non-breaking change, found again by the data diff; the
    # rows themselves did not change; the same review as Markdown (the approval page) and text.
    review = Review.read(staged["review_report"])
    assert {
        "model": "marts.mart_category_ltv",
        "change": "directly modified",
        "category": "non-breaking",
    } in (review.changes)
    (diff,) = [d for d in review.diffs if d["model"] == "marts.mart_category_ltv"]
    categories = query(data, "SELECT count(*) FROM marts.mart_category_ltv")[0][0]
    assert diff["columns_added"] == ["median_historical_clv_usd"] and diff["columns_removed"] == []
    assert (diff["prod_rows"], diff["candidate_rows"], diff["unchanged"], diff["changed"]) == (
        categories, categories, categories, 0
    )  # fmt: skip
    assert "Columns added: `median_historical_clv_usd`." in staged["review_markdown"]
    assert "Columns added: median_historical_clv_usd." in review.text()
    assert Path(staged["review_report"]).read_text() == staged["review_markdown"]
    sql = (project / MODEL).read_text()
    (project / MODEL).write_text(sql.replace("MEDIAN(", "AVG("))  # edited after the checks
    with pytest.raises(PromotionRefused, match="changed since environment 'dev2'"):
        pipeline.promote(END, "dev2", data_dir=data)
    assert "median_historical_clv_usd" not in columns(data, "marts")
