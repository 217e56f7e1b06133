"""A real serving file for the dashboard tests, built once per test session by the pipeline itself
(`clv run --no-airflow`), and helpers to run the app with Streamlit's AppTest."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from clv.settings import PROJECT_ROOT

APP = str(PROJECT_ROOT / "dashboard" / "app.py")


def _build(data: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        "SQLMESH__DISABLE_ANONYMIZED_ANALYTICS": "1",
        "MAX_FORK_WORKERS": "1",
    }
    cmd = [sys.executable, "-m", "clv.cli", "run", "--no-airflow", "--data-dir", str(data)]
    cmd += ["--customers", "800", "--start", "2024-06-01", "--chaos", "none"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]


@pytest.fixture(scope="session")
def pipeline_data(tmp_path_factory) -> Path:
    """The data directory of a pipeline run: 800 customers, 2024-06-01 ... 2024-12-31, no faults.

    Under xdist the workers share one build (a lock in the session's shared temp directory)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    root = tmp_path_factory.getbasetemp().parent if worker else tmp_path_factory.getbasetemp()
    data = root / "dashboard-pipeline" / "data"
    data.parent.mkdir(parents=True, exist_ok=True)
    with (data.parent / "build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not (data.parent / "built").exists():
                shutil.rmtree(data, ignore_errors=True)
                _build(data)
                (data.parent / "built").touch()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    assert (data / "serving.duckdb").stat().st_size > 0
    return data


@pytest.fixture
def serving_copy(pipeline_data, tmp_path) -> Path:
    """A private copy of the pipeline's data directory's serving file, free to modify."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(pipeline_data / "serving.duckdb", data / "serving.duckdb")
    return data


def query(data_dir: Path, sql: str, params=None):
    con = duckdb.connect(str(data_dir / "serving.duckdb"), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def execute(data_dir: Path, *statements: str) -> None:
    con = duckdb.connect(str(data_dir / "serving.duckdb"))
    try:
        for sql in statements:
            con.execute(sql)
    finally:
        con.close()


@pytest.fixture
def run_app(monkeypatch):
    """Run the dashboard with AppTest against a data directory; returns the finished AppTest."""
    from streamlit.testing.v1 import AppTest

    def run(data_dir: Path, at: AppTest | None = None) -> AppTest:
        monkeypatch.setenv("CLV_DATA_DIR", str(data_dir))
        at = at or AppTest.from_file(APP, default_timeout=60)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return run
