"""The DAG bundle as Airflow sees it: a real DagBag parsed in a clean Airflow process."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
import textwrap

import pytest

from clv.airflow import home as airflow_home
from clv.names import DAG_IDS, DAILY_TASKS, LAYERS, POOL
from clv.settings import PROJECT_ROOT

HEAVY = ("duckdb", "sqlmesh", "soda", "pandas", "mimesis", "pyarrow", "scipy", "generator")

PROBE = textwrap.dedent(
    """
    import json, sys, time
    t0 = time.perf_counter()
    from airflow.dag_processing.dagbag import DagBag
    bag = DagBag(dag_folder=sys.argv[1])
    out = {"errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": {}}
    for dag_id, dag in bag.dags.items():
        out["dags"][dag_id] = {
            "tags": sorted(dag.tags), "doc_md": bool(dag.doc_md and dag.doc_md.strip()),
            "schedule": str(getattr(dag.timetable, "_expression", dag.timetable)), "max_active_runs": dag.max_active_runs,
            "catchup": dag.catchup, "timetable": type(dag.timetable).__name__,
            "params": {k: dag.params.get_param(k).schema for k in dag.params},
            "deadlines": [{"minutes": d.interval.total_seconds() / 60, "reference": type(d.reference).__name__,
                           "callback": getattr(d.callback, "path", str(d.callback))}
                          for d in (getattr(dag, "deadline", None) or [])],
            "tasks": {t.task_id: {"retries": t.retries, "pool": t.pool, "owner": t.owner,
                                  "exp": bool(t.retry_exponential_backoff),
                                  "max_retry_delay": str(t.max_retry_delay),
                                  "on_failure": bool(t.on_failure_callback),
                                  "outlets": [getattr(o, "name", str(o)) for o in t.outlets],
                                  "inlets": [getattr(o, "name", str(o)) for o in t.inlets],
                                  "upstream": sorted(t.upstream_task_ids)}
                      for t in dag.tasks},
        }
    out["heavy"] = sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(sys.argv[2])))
    print(json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory) -> dict:
    data = tmp_path_factory.mktemp("dagbag")
    env = airflow_home.environ(data)
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(PROJECT_ROOT / "dags"), json.dumps(HEAVY)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_dags_import_without_errors(dagbag):
    assert dagbag["errors"] == {}
    assert set(dagbag["dags"]) == set(DAG_IDS)


def test_dag_files_import_nothing_heavy(dagbag):
    assert dagbag["heavy"] == [], f"DAG files imported {dagbag['heavy']} at parse time"


def test_every_dag_has_tags_docs_owner_retries_and_one_active_run(dagbag):
    for dag_id, dag in dagbag["dags"].items():
        assert "clv" in dag["tags"] and len(dag["tags"]) >= 2, dag_id
        assert dag["doc_md"], dag_id
        assert dag["max_active_runs"] == 1, dag_id
        for task_id, t in dag["tasks"].items():
            assert t["owner"] == "clv-data-platform", (dag_id, task_id)
            assert t["on_failure"], f"{dag_id}.{task_id} has no failure callback"
            assert t["retries"] is not None, (dag_id, task_id)


def test_daily_refresh_shape(dagbag):
    daily = dagbag["dags"]["clv_daily_refresh"]
    assert "30 2 * * *" in daily["schedule"]
    assert "30 3 * * *" in dagbag["dags"]["clv_quality_checks"]["schedule"]
    tasks = daily["tasks"]
    order = ["resolve_business_date", "wait_for_other_writers", *DAILY_TASKS]
    assert set(tasks) == set(order)
    for before, after in itertools.pairwise(order):
        assert before in tasks[after]["upstream"], f"{after} must run after {before}"
    for name in ("extract", "load_raw"):  # ingestion: 3 retries, exponential back-off, capped
        assert tasks[name]["retries"] == 3 and tasks[name]["exp"] and tasks[name]["max_retry_delay"] != "None"
    for layer in LAYERS:
        assert tasks[f"transform_{layer}"]["retries"] == 1
    assert {f"marts.mart_{m}" for m in ("clv", "churn_risk", "customer_360")} <= set(
        tasks["transform_marts"]["outlets"]
    )
    assert tasks["publish"]["outlets"] == ["serving.duckdb"]


def test_every_model_is_an_asset_with_its_layer_upstream(dagbag, tmp_path):
    """Issue 20, "see every model": each layer task's outlets are exactly the SQLMesh models of
    that layer (as a loaded SQLMesh context knows them), its inlets the layer below (the raw tables
    for staging); the load produces the raw tables and the publish reads the marts — the lineage
    raw -> staging -> core -> intermediate -> marts -> serving file in the Assets view."""
    from clv import transform
    from clv.contract import SOURCES

    ctx = transform.context(tmp_path)
    try:
        by_layer = {layer: sorted(m.name.replace('"', "") for m in ctx.models.values() if m.name.replace('"', "").split(".")[-2] == layer) for layer in LAYERS}  # fmt: skip
    finally:
        ctx.close()
    by_layer = {layer: [".".join(n.split(".")[-2:]) for n in names] for layer, names in by_layer.items()}
    raw = sorted(f"raw_data.{s}" for s in SOURCES)
    for dag_id in ("clv_daily_refresh", "clv_quarantine_reprocess"):
        tasks = dagbag["dags"][dag_id]["tasks"]
        assert sorted(tasks["load_raw"]["outlets"]) == raw, dag_id
        below = raw
        for layer in LAYERS:
            t = tasks[f"transform_{layer}"]
            assert by_layer[layer] and sorted(t["outlets"]) == by_layer[layer], (dag_id, layer)
            assert sorted(t["inlets"]) == below, (dag_id, layer)
            below = by_layer[layer]
        assert sorted(tasks["publish"]["inlets"]) == by_layer["marts"], dag_id
        assert tasks["publish"]["outlets"] == ["serving.duckdb"], dag_id


def test_the_daily_refresh_runs_on_data_intervals(dagbag):
    """Its logical date is the start of a data interval: the business date it processes."""
    assert dagbag["dags"]["clv_daily_refresh"]["timetable"] == "CronDataIntervalTimetable"


def test_every_dag_takes_its_params_from_the_forms(dagbag):
    from tests.airflow.test_params import FORMS

    for dag_id, dag in dagbag["dags"].items():
        expected = {k: p.schema for k, p in FORMS[dag_id]().items()} if dag_id in FORMS else {}
        assert dag["params"] == expected, dag_id


def test_every_task_that_opens_the_warehouse_uses_the_one_slot_pool(dagbag):
    no_warehouse = {"resolve_business_date", "wait_for_other_writers", "approve"}
    for dag_id, dag in dagbag["dags"].items():
        for task_id, t in dag["tasks"].items():
            if task_id not in no_warehouse:
                assert t["pool"] == POOL, f"{dag_id}.{task_id} is not in the warehouse pool"


def test_bootstrap_creates_the_pool_with_one_slot(tmp_path):
    first = tmp_path / "first"
    airflow_home.bootstrap(first)
    assert airflow_home.pool_slots(first) == 1
    assert airflow_home.admin_password(first)
    # A copied data directory is bootstrapped already and uses its own metadata database, not
    # the one the original's airflow.cfg names: a change in the copy leaves the original alone.
    copy = tmp_path / "copy"
    shutil.copytree(first, copy)
    stamp = (airflow_home.home(copy) / ".bootstrapped").stat().st_mtime_ns
    airflow_home.bootstrap(copy)
    assert (airflow_home.home(copy) / ".bootstrapped").stat().st_mtime_ns == stamp
    airflow_home.airflow(["pools", "set", POOL, "3", "copy"], copy, log=tmp_path / "pool.log")
    assert airflow_home.pool_slots(copy) == 3
    assert airflow_home.pool_slots(first) == 1


def test_daily_refresh_has_its_deadline(dagbag):
    """The seed's SLA-miss row: serving published by 06:00, 210 minutes after the 02:30 start."""
    (deadline,) = dagbag["dags"]["clv_daily_refresh"]["deadlines"]
    assert deadline["minutes"] == 210
    assert deadline["reference"] == "DagRunLogicalDateDeadline"
    assert deadline["callback"].endswith("clv.airflow.policy.deadline_missed")
