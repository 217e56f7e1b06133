"""clv_deploy through real Airflow stops at its approval task; the task's page shows the review
(the changed mart, its data diff, the business deltas), and the answer given through Airflow's
REST API decides: Approve promotes and republishes, Reject leaves prod and the serving file as
they were and keeps the environment.

The DAG runs under `airflow dags test` (which keeps a run waiting at a Human-in-the-loop task
until an answer is recorded in the metadata database); the answer goes through the API server's
own app in a second process (tests/airflow/approval_client.py) rather than a started server."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from clv import settings
from clv.airflow import home as airflow_home
from clv.business_date import logical_date
from clv.names import DEFAULT_HISTORY_END
from tests.airflow.helpers import query, sha256, small_run

pytestmark = pytest.mark.slow

END = DEFAULT_HISTORY_END
MODEL = "models/marts/mart_churn_risk.sql"
OLD_BAND = "@risk_band(r.churn_probability) AS risk_band"  # high >= 0.6, medium >= 0.3 (macros/risk.py)
# The change under review: this mart alone cuts the high band at 0.5, so more customers are in it.
NEW_BAND = (
    "CASE WHEN r.churn_probability >= 0.5 THEN 'high' WHEN r.churn_probability >= 0.3 THEN 'medium' "
    "ELSE 'low' END AS risk_band"
)
CLIENT = Path(__file__).with_name("approval_client.py")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A small prod (warehouse and serving file) and a project whose mart_churn_risk cuts the
    high risk band at 0.5 instead of 0.6."""
    root = tmp_path_factory.mktemp("approval")
    small_run(root / "data", 1000, "2024-01-01", "--no-airflow")
    project = root / "sqlmesh_project"
    shutil.copytree(settings.SQLMESH_PROJECT, project, ignore=shutil.ignore_patterns(".cache", "logs"))
    sql = (project / MODEL).read_text()
    assert OLD_BAND in sql
    (project / MODEL).write_text(sql.replace(OLD_BAND, NEW_BAND))
    return root


def deploy_and_answer(built: Path, tmp_path: Path, monkeypatch, option: str) -> tuple[Path, dict]:
    data = tmp_path / "data"
    shutil.copytree(built / "data", data)
    monkeypatch.setenv("CLV_SQLMESH_PROJECT", str(built / "sqlmesh_project"))
    airflow_home.bootstrap(data)
    env = airflow_home.environ(data)
    log = tmp_path / "dags-test.log"
    conf = {"environment": "candidate", "promote": False}
    with log.open("w") as out:
        run = subprocess.Popen(
            [airflow_home.airflow_bin(), "dags", "test", "clv_deploy", logical_date(END).isoformat(),
             "--conf", json.dumps(conf)],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            client = subprocess.run(
                [sys.executable, str(CLIENT), "clv_deploy", option, airflow_home.admin_password(data),
                 str(run.pid), "900"],
                env=env, capture_output=True, text=True, timeout=1000,
            )  # fmt: skip
            rc = run.wait(timeout=900)
        finally:
            if run.poll() is None:
                run.kill()
    assert client.returncode == 0, client.stdout[-2000:] + client.stderr[-3000:] + log.read_text()[-3000:]
    assert rc == 0, log.read_text()[-3000:]
    return data, json.loads(client.stdout.strip().splitlines()[-1])


def task_states(data: Path) -> dict[str, str]:
    con = sqlite3.connect(airflow_home.home(data) / "airflow.db")
    try:
        rows = con.execute("SELECT task_id, state FROM task_instance WHERE dag_id = 'clv_deploy'").fetchall()
    finally:
        con.close()
    return dict(rows)


def high_band(data: Path, schema: str = "marts", db: str = "warehouse.duckdb") -> int:
    table = f"{schema}.mart_churn_risk" if db == "warehouse.duckdb" else "mart_churn_risk"
    return query(data, f"SELECT count(*) FROM {table} WHERE risk_band = 'high'", db=db)[0][0]


def moved(data: Path) -> tuple[int, int]:
    """Counted from prod's scores, independently of the review: customers in the high band today,
    and those the new cut moves into it (0.5 <= churn probability < 0.6)."""
    high, between = query(
        data,
        "SELECT count(*) FILTER (churn_probability >= 0.6), "
        "count(*) FILTER (churn_probability >= 0.5 AND churn_probability < 0.6) FROM marts.mart_churn_risk",
    )[0]
    return high, between


def check_page(page: dict, high: int, between: int) -> None:
    assert page["task_id"] == "approve" and page["options"] == ["Approve", "Reject"]
    assert page["defaults"] == ["Reject"]  # what no answer in time means
    assert page["subject"].startswith("Promote candidate to prod?")
    body = page["body"]
    assert "| `marts.mart_churn_risk` | directly modified | breaking |" in body
    assert "**`marts.mart_churn_risk`** (joined on customer_id)" in body
    assert "| `risk_band` |" in body  # the per-column match of the data diff
    assert between > 0, "the dataset has nobody between 0.5 and 0.6: the test proves nothing"
    expected = f"| customers in risk band high | {high:,} | {high + between:,} | +{between:,} ({between / high:+.1%}) |"
    assert expected in body, body[-3000:]
    assert "**Approve** promotes `candidate` to prod" in body


def test_reject_leaves_prod_and_the_serving_file_and_keeps_the_environment(built, tmp_path, monkeypatch):
    high, between = moved(built / "data")
    serving = sha256(built / "data" / "serving.duckdb")
    data, page = deploy_and_answer(built, tmp_path, monkeypatch, "Reject")
    assert page["status"] == 200 and page["answer"]["chosen_options"] == ["Reject"]
    check_page(page, high, between)
    states = task_states(data)
    assert states["approve"] == "success"
    assert states["promote"] == "skipped" and states["publish"] == "skipped"
    assert high_band(data) == high, "prod changed after a reject"
    assert sha256(data / "serving.duckdb") == serving
    assert high_band(data, "marts__candidate") == high + between, "the environment was not kept"


def test_approve_promotes_and_republishes(built, tmp_path, monkeypatch):
    high, between = moved(built / "data")
    data, page = deploy_and_answer(built, tmp_path, monkeypatch, "Approve")
    assert page["status"] == 200 and page["answer"]["chosen_options"] == ["Approve"]
    check_page(page, high, between)
    states = task_states(data)
    assert states["approve"] == states["promote"] == states["publish"] == "success"
    assert high_band(data) == high + between
    assert high_band(data, db="serving.duckdb") == high + between
