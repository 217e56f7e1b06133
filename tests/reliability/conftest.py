"""Fixtures of the reliability scenarios: the ledger, and a small warehouse built once.

``base`` is a realistic-chaos history (800 customers, 2024) taken through the whole daily refresh
(load, checks, every SQLMesh layer, publish): prod exists, the serving file exists. Scenarios copy
it and deliver heavy-chaos day batches on top. (A whole history at heavy chaos stops at the staging
gate by design: about 2% of its rows belong to customers whose own row was quarantined, above the
1% the staging checks allow.)
"""

from __future__ import annotations

import datetime as dt
import shutil

import pytest

from clv import airflow_env, pipeline
from clv.settings import Paths
from generator import runner
from tests.reliability.ledger import Ledger, out_dir

END = dt.date(2024, 12, 31)
START = dt.date(2024, 1, 1)
CUSTOMERS = 800


def day(n: int) -> dt.date:
    return END + dt.timedelta(days=n)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    setattr(item, f"rep_{rep.when}", rep)
    return rep


@pytest.fixture
def ledger(request, tmp_path_factory):
    """The scenario's record; written at teardown with the test's outcome."""
    marker = request.node.get_closest_marker("scenario")
    assert marker, "a reliability test declares @pytest.mark.scenario(number, name)"
    number, name = marker.args[:2]
    led = Ledger(number, name, request.node.nodeid, chaos=marker.kwargs.get("chaos", "heavy"))
    yield led
    rep = getattr(request.node, "rep_call", None)
    outcome = "passed" if rep is not None and rep.passed else "failed"
    led.write(outcome, out_dir(tmp_path_factory.getbasetemp() / "reliability"))


def copy_data(src: Paths, dst) -> Paths:
    shutil.copytree(src.data_dir, dst, ignore=shutil.ignore_patterns("*.tmp"))
    return Paths(dst)


@pytest.fixture(scope="session")
def base(tmp_path_factory) -> Paths:
    """History at END through the daily refresh, in this process (the same steps as the DAG)."""
    paths = Paths(tmp_path_factory.mktemp("reliability-base") / "data")
    runner.history(paths, CUSTOMERS, START, END, seed=11, chaos="realistic", progress=False, workers=1)
    pipeline.daily(paths.data_dir, END, "base", echo=lambda _line: None)
    assert paths.serving.exists()
    return paths


@pytest.fixture(scope="session")
def airflow_base(base, tmp_path_factory) -> Paths:
    """``base`` with its Airflow home bootstrapped (metadata database, the warehouse pool)."""
    paths = copy_data(base, tmp_path_factory.mktemp("reliability-airflow") / "data")
    airflow_env.bootstrap(paths.data_dir)
    return paths
