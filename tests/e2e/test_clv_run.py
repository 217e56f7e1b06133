"""The main job end to end through the real CLI, twice: the second run reuses everything."""

from __future__ import annotations

import os
import subprocess
import sys

import duckdb
import pytest

from clv.settings import PROJECT_ROOT

pytestmark = pytest.mark.slow


def clv(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "SQLMESH__DISABLE_ANONYMIZED_ANALYTICS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "clv.cli", *args], capture_output=True, text=True, env=env, timeout=600
    )


def test_clv_run_twice(tmp_path):
    data = tmp_path / "data"
    first = clv("run", "--data-dir", str(data), "--customers", "1500")
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    out = first.stdout
    assert "history batch 2024-12-31" in out and "0 mismatched" in out
    assert "transform: planned the SQLMesh models up to business date 2024-12-31" in out
    for layer in ("raw", "staging", "core", "intermediate", "marts"):
        assert f"scan {layer}: " in out and f"{layer}.md" in out
    assert "High-value customers most at risk:" in out
    second = clv("run", "--data-dir", str(data))
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-2000:]
    assert "7 already loaded" in second.stdout and "transform: ran the SQLMesh models" in second.stdout
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    assert con.sql(
        "SELECT count(DISTINCT run_id), count(DISTINCT layer) FROM ops.check_results"
    ).fetchone() == (1, 5)
    assert con.sql("SELECT count(*) FROM marts.mart_customer_360").fetchone()[0] > 1400
    con.close()
