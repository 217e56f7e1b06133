"""clv_deploy through real Airflow stops at its approval task; the task's page shows the review
(the changed mart, its data diff, the business deltas), and the answer given through Airflow's
REST API decides: Approve promotes and republishes, Reject leaves prod and the serving file as
they were and keeps the environment.

The DAG runs under `airflow dags test` (which keeps a run waiting at a Human-in-the-loop task
until an answer is recorded in the metadata database); the answer goes through the API server's
own app in a second process (tests/airflow/approval_client.py) rather than a started server.
One test takes the person's path instead: a real `airflow api-server` on the same metadata
database, and a headless Chromium that opens the task's Required Action page, reads the review
and clicks Reject."""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from clv import settings
from clv.airflow import home as airflow_home
from clv.business_date import logical_date
from clv.names import DEFAULT_HISTORY_END
from tests.airflow.helpers import query, sha256, small_run
from tests.browser.helpers import CHROMIUM, chromium_or_skip, free_port, log_in, stop_group

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


@contextlib.contextmanager
def waiting_deploy(built: Path, tmp_path: Path, monkeypatch):
    """`airflow dags test clv_deploy` of the changed project on a copy of the small prod, started
    and left running (it waits at `approve` for an answer); yields the data directory, the
    Airflow environment, the process and its log. Killed on the way out if still running."""
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
            yield data, env, run, log
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()


def deploy_and_answer(built: Path, tmp_path: Path, monkeypatch, option: str) -> tuple[Path, dict]:
    with waiting_deploy(built, tmp_path, monkeypatch) as (data, env, run, log):
        client = subprocess.run(
            [sys.executable, str(CLIENT), "clv_deploy", option, airflow_home.admin_password(data),
             str(run.pid), "900"],
            env=env, capture_output=True, text=True, timeout=1000,
        )  # fmt: skip
        rc = run.wait(timeout=900)
    assert client.returncode == 0, client.stdout[-2000:] + client.stderr[-3000:] + log.read_text()[-3000:]
    assert rc == 0, log.read_text()[-3000:]
    return data, json.loads(client.stdout.strip().splitlines()[-1])


@contextlib.contextmanager
def api_server(env: dict, port: int, log: Path):
    """`airflow api-server` (the REST API and the UI) on 127.0.0.1:``port`` against the same
    Airflow home and metadata database as the waiting run; yields its URL once it answers."""
    url = f"http://localhost:{port}"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [airflow_home.airflow_bin(), "api-server", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 300
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=5):
                        break
                except OSError:
                    pass
                assert proc.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, (
                    "the API server did not come up: " + log.read_text()[-3000:]
                )
                time.sleep(2)
            yield url
        finally:
            stop_group(proc)


def api(url: str, path: str, token: str | None = None, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        url + path,
        data=None if body is None else json.dumps(body).encode(),
        headers={
            "Content-Type": "application/json",
            **({"Authorization": f"Bearer {token}"} if token else {}),
        },
    )
    with urllib.request.urlopen(request, timeout=30) as r:
        return json.load(r)


def pending_request(url: str, password: str, run: subprocess.Popen, log: Path, seconds: float = 900) -> dict:
    """The approval request once the run asks, read from the running API server."""
    token = api(url, "/auth/token", body={"username": "admin", "password": password})["access_token"]
    deadline = time.monotonic() + seconds
    while True:
        details = api(url, "/api/v2/dags/clv_deploy/dagRuns/~/hitlDetails?response_received=false", token)
        if details["hitl_details"]:
            return details["hitl_details"][0]
        assert run.poll() is None, "the run ended without asking: " + log.read_text()[-3000:]
        assert time.monotonic() < deadline, "no approval request in time: " + log.read_text()[-3000:]
        time.sleep(3)


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


def assert_rejected(data: Path, high: int, between: int, serving: str) -> None:
    """A rejected deploy: answered, nothing promoted or published, prod's marts and the serving
    file as they were, and the candidate environment kept for inspection."""
    states = task_states(data)
    assert states["approve"] == "success"
    assert states["promote"] == "skipped" and states["publish"] == "skipped"
    assert high_band(data) == high, "prod changed after a reject"
    assert sha256(data / "serving.duckdb") == serving
    assert high_band(data, "marts__candidate") == high + between, "the environment was not kept"


def test_reject_leaves_prod_and_the_serving_file_and_keeps_the_environment(built, tmp_path, monkeypatch):
    high, between = moved(built / "data")
    serving = sha256(built / "data" / "serving.duckdb")
    data, page = deploy_and_answer(built, tmp_path, monkeypatch, "Reject")
    assert page["status"] == 200 and page["answer"]["chosen_options"] == ["Reject"]
    check_page(page, high, between)
    assert_rejected(data, high, between, serving)


def test_approve_promotes_and_republishes(built, tmp_path, monkeypatch):
    high, between = moved(built / "data")
    data, page = deploy_and_answer(built, tmp_path, monkeypatch, "Approve")
    assert page["status"] == 200 and page["answer"]["chosen_options"] == ["Approve"]
    check_page(page, high, between)
    states = task_states(data)
    assert states["approve"] == states["promote"] == states["publish"] == "success"
    assert high_band(data) == high + between
    assert high_band(data, db="serving.duckdb") == high + between


def test_the_approval_page_in_a_browser_shows_the_review_and_its_reject_button_answers(
    built, tmp_path, monkeypatch
):
    """The person's path: while the run waits at `approve`, a real Chromium opens the task's
    Required Action page in the UI of a running `airflow api-server` (same metadata database),
    sees the plan and the business deltas, and clicks Reject; the run ends with prod untouched."""
    from playwright.sync_api import expect, sync_playwright

    chromium_or_skip()
    high, between = moved(built / "data")
    serving = sha256(built / "data" / "serving.duckdb")
    port = free_port()
    monkeypatch.setenv("CLV_AIRFLOW_PORT", str(port))  # the environment's API URLs name this port
    with (
        waiting_deploy(built, tmp_path, monkeypatch) as (data, env, run, log),
        api_server(env, port, tmp_path / "api-server.log") as url,
    ):
        password = airflow_home.admin_password(data)
        request = pending_request(url, password, run, log)
        ti = request["task_instance"]
        check_page({"task_id": ti["task_id"], **request}, high, between)  # what the page is given
        page_url = f"{url}/dags/clv_deploy/runs/{ti['dag_run_id']}/tasks/approve/required_actions"
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            try:
                log_in(page, url, password)
                page.goto(page_url, wait_until="networkidle")
                page.get_by_text("Promote candidate to prod?").first.wait_for(timeout=60_000)
                # the plan: the changed mart, directly modified and breaking
                plan = page.locator("tr", has_text="marts.mart_churn_risk").filter(has_text="directly")
                expect(plan.first.locator("td")).to_have_text(
                    ["marts.mart_churn_risk", "directly modified", "breaking"]
                )
                # the business deltas: the high risk band, prod vs candidate (as check_page expects)
                band = page.locator("tr", has_text="customers in risk band high")
                expect(band.first.locator("td")).to_have_text(
                    [
                        "customers in risk band high",
                        f"{high:,}",
                        f"{high + between:,}",
                        f"+{between:,} ({between / high:+.1%})",
                    ]
                )
                page.screenshot(path=str(tmp_path / "approval-page.png"))  # the subject and the plan
                band.first.scroll_into_view_if_needed()
                page.screenshot(path=str(tmp_path / "approval-page-figures.png"))  # the business figures
                reject = page.get_by_role("button", name="Reject", exact=True)
                with page.expect_response(
                    lambda r: r.request.method == "PATCH" and "hitlDetails" in r.url, timeout=60_000
                ) as answered:
                    reject.click()
                assert answered.value.ok, f"the answer failed: HTTP {answered.value.status}"
                assert answered.value.json()["chosen_options"] == ["Reject"]
                expect(page.get_by_text("Response received at").first).to_be_visible(timeout=30_000)
                page.screenshot(path=str(tmp_path / "approval-page-answered.png"))
            except Exception:
                page.screenshot(path=str(tmp_path / "approval-page-failed.png"))
                raise
            finally:
                browser.close()
        rc = run.wait(timeout=900)
    assert rc == 0, log.read_text()[-3000:]
    assert_rejected(data, high, between, serving)
