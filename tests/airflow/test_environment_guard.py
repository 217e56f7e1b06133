"""Never plan into prod by accident: `clv deploy`/`clv backfill` and the clv_backfill/clv_deploy
DAGs refuse prod in any spelling, a malformed environment name and anything in ``models`` but
model names and SQLMesh selectors — with one line, before anything is touched (the CLI before it
opens the warehouse, the DAGs in their first task, without retries)."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from clv import transform
from clv.airflow import home as airflow_home
from clv.errors import UserError
from tests.airflow.helpers import clv, explain

END = dt.date(2024, 12, 31)
PROD = "is prod: plan into an isolated environment and promote it"
SELECTOR = "invalid model selector 'git:--output=x': '--output=x' is not a git branch name"
MODELS_REFUSED = "Invalid input for param models: 'git:--output=x' does not match"

# SQLMesh 0.236's selector forms (sqlmesh/core/selector.py): names, wildcards, upstream and
# downstream, tags, resource types, git branches, negation, intersection, union, parentheses.
ACCEPTED = [
    "marts.mart_clv",
    "mart_clv",
    "marts.*",
    "*_clv",
    "*",
    "+marts.mart_clv",
    "marts.mart_clv+",
    "+intermediate.int_customer_clv+",
    "tag:intermediate",
    "tag:inter*",
    "resource_type:model",
    "git:main",
    "git:feature/new-mart",
    "^marts.*",
    "(marts.* | core.*) & tag:daily",
    "marts.mart_clv | core.fct_revenue | staging.*",
]
REFUSED = {
    "git:--output=x": "'--output=x' is not a git branch name",  # an option to the git SQLMesh runs
    "git:-o": "'-o' is not a git branch name",
    "git:main..other": "is not a git branch name",
    "marts.mart_clv marts.mart_churn_risk": "SQLMesh would ignore 'marts.mart_churn_risk'",
    "marts.mart_clv; drop": "is not a model name",
    '"marts"."mart_clv"': "is not a model name",
    "a & b & c": "SQLMesh would ignore '& c'",
    "(marts.*": "a parenthesis is not closed",
    "marts.": "is not a model name",
    "tag:": "a tag name is missing at the end",
    "resource_type:table": "is not a resource type",
    "": "it is empty",
}


def test_model_selectors_accept_what_sqlmesh_parses_in_full():
    from sqlmesh.core.selector import parse

    assert transform.model_selectors(ACCEPTED) == ACCEPTED
    for selector in ACCEPTED:
        parse(f"({selector})")  # SQLMesh reads each selection wrapped in parentheses
    assert transform.model_selectors(None) == [] and transform.model_selectors("marts.*") == ["marts.*"]


@pytest.mark.parametrize("selector", list(REFUSED))
def test_model_selectors_refuse_anything_else_with_one_line(selector):
    with pytest.raises(UserError) as e:
        transform.model_selectors(["marts.*", selector])
    assert REFUSED[selector] in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["deploy", "--environment", "PROD"], f"environment 'PROD' {PROD}"),
        (["backfill", "--environment", "Prod", "--promote"], f"environment 'Prod' {PROD}"),
        (["deploy", "--environment", "Dev-1"], "invalid environment 'Dev-1'"),
        (["backfill", "--models", "marts.*", "git:--output=x"], SELECTOR),
    ],
)
def test_the_cli_refuses_before_touching_anything(tmp_path, args, expected):
    """An empty data directory: the refusal comes before the command looks for a warehouse, and
    nothing is created."""
    data = tmp_path / "data"
    result = clv(*args, "--data-dir", str(data))
    assert result.returncode == 2, explain(result)
    assert result.stderr.startswith("clv: error: ")
    assert expected in result.stderr and result.stderr.count("\n") == 1, explain(result)
    assert not data.exists()


def _tasks_started(log: str) -> list[str]:
    marker = "[DAG TEST] starting task_id="
    return [line.split(marker)[1].split()[0] for line in log.splitlines() if marker in line]


@pytest.mark.slow
def test_the_dags_refuse_in_their_first_task(tmp_path):
    """Real `airflow dags test` runs. A value the trigger form's schema refuses (clv.airflow.params)
    is refused when the run is created, before any task, by Airflow itself (the form, the REST API
    and the CLI apply the same schema). A selector whose characters pass the schema but whose
    grammar SQLMesh would misread fails in resolve_business_date with the one-line reason, no other
    task starts, and the only trace in the warehouse is the alert."""
    data = tmp_path / "data"
    airflow_home.bootstrap(data)
    schema_cases = [
        (
            "clv_backfill",
            {"environment": "PROD"},
            "Invalid input for param environment: 'PROD' does not match",
        ),
        ("clv_deploy", {"environment": "prod"}, "Invalid input for param environment: 'prod' does not match"),
        ("clv_backfill", {"environment": "fix1", "models": ["marts.*", "git:--output=x"]}, MODELS_REFUSED),
    ]
    for dag_id, conf, expected in schema_cases:
        rc, log_file = airflow_home.dags_test(dag_id, END, data, conf=conf)
        log = log_file.read_text()
        assert rc != 0, log[-3000:]
        assert f"ParamValidationError: {expected}" in log, log[-5000:]
        assert _tasks_started(log) == [], _tasks_started(log)
    cases = [
        (
            "clv_backfill",
            {"environment": "fix1", "models": ["marts.*", "git:-o"]},
            "'-o' is not a git branch name",
        ),
    ]
    for dag_id, conf, expected in cases:
        rc, log_file = airflow_home.dags_test(dag_id, END, data, conf=conf)
        log = log_file.read_text()
        assert rc != 0, log[-3000:]
        assert "AirflowFailException: invalid model selector 'git:-o': " + expected in log, log[-5000:]
        assert _tasks_started(log) == ["resolve_business_date"], _tasks_started(log)
        assert "up_for_retry" not in log
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        tables = con.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables ORDER BY 1"
        ).fetchall()
        alerts = con.execute("SELECT dag_id, task_id, summary FROM ops.alerts ORDER BY alerted_at").fetchall()
        steps = con.execute("SELECT count(*) FROM ops.pipeline_runs").fetchone()[0]
    finally:
        con.close()
    assert tables == [("ops.alerts",), ("ops.pipeline_runs",)]  # the alert's table and its sibling
    assert steps == 0  # no pipeline step ran
    assert [(d, t) for d, t, _ in alerts] == [(d, "resolve_business_date") for d, _, _ in cases]
    assert all(expected in summary for (_, _, expected), (_, _, summary) in zip(cases, alerts, strict=True))
