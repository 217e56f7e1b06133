"""Every environment variable is read in clv/settings.py; a malformed value is a one-line error
naming the variable (exit code 2) and never breaks `clv --help`."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from clv.settings import PROJECT_ROOT


def clv(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        [sys.executable, "-m", "clv.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_only_settings_reads_the_environment():
    """No module of clv/, dags/ or generator/ but clv/settings.py reads os.environ or getenv
    (writing the variables SQLMesh's config.yaml and Airflow read is allowed)."""
    readers = []
    for folder in ("clv", "dags", "generator"):
        for path in sorted((PROJECT_ROOT / folder).rglob("*.py")):
            if path == PROJECT_ROOT / "clv" / "settings.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                reads = (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("get", "getenv")
                    and "environ" in ast.unparse(node.func.value) + node.func.attr
                ) or (
                    isinstance(node, ast.Subscript)
                    and ast.unparse(node.value).endswith("environ")
                    and isinstance(node.ctx, ast.Load)
                )
                if reads:
                    readers.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}")
    assert readers == [], f"read these variables through clv.settings: {readers}"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("CLV_CUSTOMERS", "abc", "CLV_CUSTOMERS='abc' is not a number of customers (1 or more)"),
        ("CLV_SOURCE", "ftp", "CLV_SOURCE='ftp' is not one of generator, landing"),
        ("CLV_LOCK_WAIT_SECONDS", "soon", "CLV_LOCK_WAIT_SECONDS='soon' is not a number of seconds >= 0"),
    ],
)
def test_a_malformed_variable_is_one_line_and_help_still_works(tmp_path, variable, value, message):
    env = {variable: value, "CLV_DATA_DIR": str(tmp_path / "data")}
    assert clv("--help", env=env).returncode == 0
    assert clv("run", "--help", env=env).returncode == 0
    r = clv("run", "--no-airflow", env=env)
    assert r.returncode == 2, r.stderr
    assert r.stderr == f"clv: error: {message}\n"
