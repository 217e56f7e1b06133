"""One SQLMesh context per process (``clv.transform.shared_context``): the layer steps of one
process reuse the loaded context, hold no lock on the warehouse between steps, and load a new one
when the warehouse, the environment or the project's files change, or after a failure."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from clv import settings, transform


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    monkeypatch.delenv("CLV_REUSE_SQLMESH_CONTEXT", raising=False)
    transform.drop_shared_context()
    yield
    transform.drop_shared_context()


def _writable_by_another_process(warehouse) -> bool:
    """Whether another process can open the warehouse for writing now (DuckDB locks the file)."""
    code = (
        "import duckdb, sys; duckdb.connect(sys.argv[1]).execute('CREATE TABLE IF NOT EXISTS probe (x INT)')"
    )
    return subprocess.run([sys.executable, "-c", code, str(warehouse)], capture_output=True).returncode == 0


@pytest.mark.slow
def test_steps_of_one_process_share_the_context_and_release_the_warehouse(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "other").mkdir()
    warehouse = settings.paths(data).warehouse
    with transform.shared_context(data) as (first, how):
        assert how.startswith("loaded in")
        first.engine_adapter.execute("CREATE TABLE kept (x INT)")
        assert not _writable_by_another_process(warehouse)  # the step holds the warehouse
    assert _writable_by_another_process(warehouse)  # between steps nobody does
    with transform.shared_context(data) as (second, how):
        assert second is first and how.startswith("reused")
        assert second.engine_adapter.fetchone("SELECT count(*) FROM kept") == (0,)  # reconnected
        assert second.engine_adapter.fetchone("SELECT count(*) FROM probe") == (0,)
        assert second.console.model_seconds == {}  # each step's timings are its own
    assert _writable_by_another_process(warehouse)

    # Another warehouse: the old context is closed, a new one loaded.
    with transform.shared_context(tmp_path / "other") as (third, how):
        assert third is not first and how.startswith("loaded in")
    # A failed step drops the context.
    with pytest.raises(RuntimeError), transform.shared_context(tmp_path / "other") as (fourth, _):
        assert fourth is third
        raise RuntimeError("the step failed")
    with transform.shared_context(tmp_path / "other") as (fifth, how):
        assert fifth is not third and how.startswith("loaded in")


@pytest.mark.slow
def test_a_changed_project_file_or_setting_loads_a_new_context(tmp_path, monkeypatch):
    project = tmp_path / "project"
    shutil.copytree(settings.sqlmesh_project(), project, ignore=shutil.ignore_patterns(".cache", "logs"))
    monkeypatch.setenv("CLV_SQLMESH_PROJECT", str(project))
    data = tmp_path / "data"
    data.mkdir()
    with transform.shared_context(data) as (first, _):
        pass
    model = project / "models" / "marts" / "mart_category_ltv.sql"
    model.write_text(model.read_text().replace("Lifetime value and purchase", "Lifetime value, purchase"))
    with transform.shared_context(data) as (second, how):
        assert second is not first and how.startswith("loaded in")
    monkeypatch.setenv("SQLMESH__VARIABLES__MODEL_REFIT_DAYS", "3")
    with transform.shared_context(data) as (third, how):
        assert third is not second and how.startswith("loaded in")
        assert int(third.config.variables["model_refit_days"]) == 3
    with transform.shared_context(data) as (fourth, how):
        assert fourth is third and how.startswith("reused")


def test_reuse_can_be_switched_off(tmp_path, monkeypatch):
    monkeypatch.setenv("CLV_REUSE_SQLMESH_CONTEXT", "0")
    (tmp_path / "data").mkdir()
    with transform.shared_context(tmp_path / "data") as (first, how):
        assert "reuse off" in how
    with transform.shared_context(tmp_path / "data") as (second, how):
        assert second is not first and "reuse off" in how
