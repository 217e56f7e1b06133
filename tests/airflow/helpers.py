"""Running the real `clv` CLI and reading the warehouse the way a user would."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import duckdb

from clv.settings import PROJECT_ROOT


def clv(*args: str, env: dict | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    full_env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        "SQLMESH__DISABLE_ANONYMIZED_ANALYTICS": "1",
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "clv.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
    )


def small_run(data: Path, customers: int, start: str, *extra: str, env: dict | None = None):
    """`clv run` on a small, fault-free generated history ending 2024-12-31 (extra flags such as
    --no-airflow appended); fails the test with the output when the run fails."""
    result = clv(
        "run", "--data-dir", str(data), "--customers", str(customers), "--start", start, "--chaos", "none",
        *extra, env=env,
    )  # fmt: skip
    assert result.returncode == 0, explain(result)
    return result


def explain(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


def query(data: Path, sql: str, params: list | None = None, db: str = "warehouse.duckdb") -> list[tuple]:
    con = duckdb.connect(str(data / db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
