"""A real browser against the Airflow UI started the way `make ui` starts it (`clv ui`, which runs
`airflow standalone`): log in, see the DAGs, trigger clv_daily_refresh, watch the run succeed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request

import pytest

from clv.names import DAG_IDS
from clv.settings import PROJECT_ROOT
from tests.browser.helpers import CHROMIUM, chromium_or_skip, free_port, log_in, stop_group

pytestmark = pytest.mark.slow

DAGS = DAG_IDS


@pytest.fixture
def airflow_ui(tmp_path):
    chromium_or_skip()
    data, port = tmp_path / "data", free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        "CLV_DATA_DIR": str(data),
        "CLV_CUSTOMERS": "600",
        "CLV_AIRFLOW_PORT": str(port),
    }
    log = (tmp_path / "ui.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "clv.cli", "ui"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://localhost:{port}"
    deadline = time.monotonic() + 240
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=5) as r:
                    health = json.load(r)
                if all(health.get(k, {}).get("status") == "healthy" for k in ("scheduler", "dag_processor")):
                    break
            except OSError:
                pass
            assert proc.poll() is None, (tmp_path / "ui.log").read_text()[-3000:]
            assert time.monotonic() < deadline, (
                "Airflow UI did not come up: " + (tmp_path / "ui.log").read_text()[-3000:]
            )
            time.sleep(2)
        password = json.loads((data / "airflow" / "passwords.json").read_text())["admin"]
        yield url, password, data, tmp_path
    finally:
        stop_group(proc)
        log.close()


def test_log_in_see_the_dags_trigger_the_daily_refresh_and_watch_it_succeed(airflow_ui):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect, sync_playwright

    url, password, data, tmp_path = airflow_ui
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        try:
            log_in(page, url, password)

            page.goto(f"{url}/dags", wait_until="networkidle")
            for dag_id in DAGS:
                page.get_by_text(dag_id, exact=True).first.wait_for(timeout=60_000)

            page.goto(f"{url}/dags/clv_daily_refresh", wait_until="networkidle")
            page.get_by_role("button", name="Trigger Dag").click()
            dialog = page.get_by_role("dialog")
            unpause = dialog.get_by_role("checkbox", name=re.compile("^Unpause"))
            if not unpause.is_checked():  # DAGs start paused; the run must be scheduled
                unpause.check()
            # the form validates its params; the demo's explicit choice: the next simulated day
            # (a manual run otherwise takes its data interval's date, far past the simulation)
            # (a switch: its input is hidden, so the click goes to the switch itself, as a user's)
            toggle = dialog.get_by_role("checkbox", name="next_simulated_day")
            dialog.locator('[id="switch:element_next_simulated_day"] [data-part="control"]').click()
            try:
                expect(toggle).to_be_checked(timeout=5_000)
            except AssertionError:
                page.screenshot(path=str(tmp_path / "trigger-form.png"))
                raise
            with page.expect_response(
                lambda r: r.request.method == "POST" and "/dagRuns" in r.url, timeout=180_000
            ) as triggered:
                dialog.get_by_role("button", name="Trigger").click()
            assert triggered.value.ok, f"trigger failed: HTTP {triggered.value.status}"

            # Unpausing also schedules the latest 02:30 run; wait for the manual one to succeed.
            # (on a loaded machine the list can render before the new run reaches it: reload
            # until the deadline rather than fail on one slow page)
            manual = page.locator("tr", has_text="Manual")
            deadline = time.monotonic() + 900
            row = ""
            while True:
                page.goto(f"{url}/dags/clv_daily_refresh/runs", wait_until="networkidle")
                try:
                    manual.first.wait_for(timeout=30_000)
                    row = manual.first.inner_text()
                except PlaywrightTimeout:
                    row = ""
                if "Success" in row:
                    break
                assert "Failed" not in row, row
                if time.monotonic() > deadline:
                    page.screenshot(path=str(tmp_path / "airflow-runs-timeout.png"))
                    table = page.locator("table").first.inner_text() if page.locator("table").count() else ""
                    raise AssertionError(
                        f"the triggered run did not finish: {row!r}; runs page: {table[:1500]!r}"
                    )
                time.sleep(5)
            page.screenshot(path=str(tmp_path / "airflow-runs.png"))
        finally:
            browser.close()
    assert (data / "serving.duckdb").exists()
