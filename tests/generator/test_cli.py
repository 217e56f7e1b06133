"""The generator's command line: help, the summary line, and one-line errors with exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from clv.settings import PROJECT_ROOT


def gen(*args: str, data_dir=None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **(env or {})}
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
        # numpy seeds must not be negative
        (
            ["history", "--customers", "50", "--seed", "-1"],
            "--seed must be zero or a positive whole number, got -1",
        ),
        # the simulation runs a year past --end, and its clock stops at 2149-06-06
        (["history", "--customers", "50", "--end", "9999-12-31"], "--end 9999-12-31 is too late"),
        (
            ["history", "--customers", "50", "--start", "2150-01-01", "--end", "2150-12-31"],
            "--end 2150-12-31 is too late",
        ),
        # and starts at 1970-01-01
        (
            ["history", "--customers", "50", "--start", "1969-12-31", "--end", "1970-03-31"],
            "--start 1969-12-31 is before 1970-01-01",
        ),
    ],
)
def test_bad_arguments_exit_2_with_one_line(tmp_path, args, message):
    r = gen(*args, data_dir=tmp_path / "empty")
    assert r.returncode == 2
    assert message in r.stderr
    assert r.stderr.count("\n") == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "empty" / "landing").exists()


@pytest.mark.parametrize("value", ["many", "0"])
def test_bad_customers_variable_names_the_variable(tmp_path, value):
    """$CLV_CUSTOMERS is --customers' default: a bad value is an error only where the default is used."""
    r = gen("history", "--quiet", data_dir=tmp_path, env={"CLV_CUSTOMERS": value})
    assert r.returncode == 2
    assert r.stderr == f"generator: error: CLV_CUSTOMERS='{value}' is not a number of customers (1 or more)\n"
    assert gen("history", "--help", env={"CLV_CUSTOMERS": value}).returncode == 0
    day = gen("day", "2025-01-01", data_dir=tmp_path, env={"CLV_CUSTOMERS": value})
    assert day.returncode == 2 and "no generated history" in day.stderr


def test_data_dir_that_is_a_file(tmp_path):
    not_a_dir = tmp_path / "data"
    not_a_dir.write_text("a file\n")
    r = gen("history", "--customers", "50", "--quiet", data_dir=not_a_dir)
    assert r.returncode == 2
    assert (
        r.stderr
        == f"generator: error: data directory {not_a_dir} is a file; pass a directory as --data-dir\n"
    )
    assert not_a_dir.read_text() == "a file\n"


@pytest.mark.parametrize(
    "start,end",
    [
        # signups in the first weeks of 1970: a fade-before-churn span used to round below zero
        ("1970-01-01", "1970-03-31"),
        # the last --end whose holdout year still fits the simulated clock
        ("2148-01-01", "2148-06-06"),
    ],
)
def test_history_at_the_edges_of_the_simulated_clock(tmp_path, start, end):
    r = gen("history", "--customers", "300", "--start", start, "--end", end, "--quiet", data_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"history batch {end}: 300 customers;")


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
