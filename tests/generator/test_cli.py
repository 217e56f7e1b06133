"""The generator's command line: help, the summary line, and one-line errors with exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from clv.settings import PROJECT_ROOT


def gen(*args: str, data_dir=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    cmd = [sys.executable, "-m", "generator", *args]
    if data_dir is not None:
        cmd += ["--data-dir", str(data_dir)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)


def test_help_explains_every_option():
    out = gen("history", "--help").stdout
    for opt in ("--customers", "--start", "--end", "--seed", "--chaos", "--data-dir", "--force"):
        assert opt in out
    assert "date" in gen("day", "--help").stdout


def test_history_then_day_print_one_line_summaries(tmp_path):
    h = gen(
        "history",
        "--customers",
        "300",
        "--start",
        "2024-01-01",
        "--end",
        "2024-03-31",
        "--quiet",
        data_dir=tmp_path,
    )
    assert h.returncode == 0, h.stderr
    assert h.stdout.count("\n") == 1 and "orders=" in h.stdout and " MB in " in h.stdout
    d = gen("day", "2024-04-01", data_dir=tmp_path)
    assert d.returncode == 0, d.stderr
    assert d.stdout.startswith("day batch 2024-04-01:")
    again = gen("history", "--customers", "300", "--quiet", data_dir=tmp_path)
    assert again.returncode == 2 and "--force" in again.stderr


@pytest.mark.parametrize(
    "args,message",
    [
        (["history", "--chaos", "extreme"], "invalid choice: 'extreme'"),
        (["history", "--customers", "0"], "must be a positive number"),
        (["history", "--customers", "many"], "invalid count 'many'"),
        (["history", "--start", "2024-02-01", "--end", "2024-01-01"], "is before --start"),
        (["history", "--end", "2024-13-01"], "invalid date '2024-13-01'"),
        (["day", "2025-01-01"], "no generated history"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(tmp_path, args, message):
    r = gen(*args, data_dir=tmp_path / "empty")
    assert r.returncode == 2
    assert message in r.stderr
    assert r.stderr.count("\n") == 1, r.stderr
    assert "Traceback" not in r.stderr


def test_day_outside_the_simulated_range(tmp_path):
    assert (
        gen(
            "history",
            "--customers",
            "200",
            "--start",
            "2024-01-01",
            "--end",
            "2024-01-31",
            "--quiet",
            data_dir=tmp_path,
        ).returncode
        == 0
    )
    early = gen("day", "2024-01-15", data_dir=tmp_path)
    assert early.returncode == 2 and "not after the history's end date 2024-01-31" in early.stderr
    late = gen("day", "2025-03-01", data_dir=tmp_path)
    assert late.returncode == 2 and "past the simulated horizon 2025-01-30" in late.stderr
