"""A real browser against the dashboard served the way `make dashboard` serves it (`clv dashboard`,
which runs `streamlit run` on localhost): the page renders the serving file's numbers, the at-risk
list downloads as CSV, the retention heatmap draws, the data-health section draws its charts, and
the page fetches nothing from the internet."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import pytest

from clv.settings import PROJECT_ROOT
from tests.browser.helpers import CHROMIUM, chromium_or_skip, free_port
from tests.dashboard.conftest import FAULTS, query

pytestmark = pytest.mark.slow

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}


def screenshot_dir(tmp_path: Path) -> Path:
    """Screenshots go to the test's temporary directory, or to $CLV_SCREENSHOT_DIR when set."""
    out = Path(os.environ.get("CLV_SCREENSHOT_DIR") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    return out


def serve(data_dir: Path, tmp_path: Path):
    """Start `clv dashboard` on a free port; return (url, process, log path) once it answers."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "CLV_DASHBOARD_PORT": str(port)}
    log_path = tmp_path / "dashboard.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "clv.cli", "dashboard", "--data-dir", str(data_dir)],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    url = f"http://localhost:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=5) as r:
                if r.read().decode().strip() == "ok":
                    break
        except OSError:
            pass
        assert proc.poll() is None, log_path.read_text()[-3000:]
        assert time.monotonic() < deadline, "the dashboard did not come up: " + log_path.read_text()[-3000:]
        time.sleep(1)
    return url, proc, log_path


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)


@pytest.fixture
def browser_page():
    from playwright.sync_api import sync_playwright

    chromium_or_skip()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1500, "height": 1800}, accept_downloads=True)
        page = context.new_page()
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        try:
            yield page, requests
        finally:
            browser.close()


def offline(requests: list[str]) -> list[str]:
    """Requests that left the machine (anything but localhost, data: and blob: URLs)."""
    return [
        u
        for u in requests
        if urlparse(u).scheme not in ("data", "blob") and urlparse(u).hostname not in LOCAL_HOSTS
    ]


def test_the_dashboard_renders_in_chromium(pipeline_data, tmp_path, browser_page):
    page, requests = browser_page
    url, proc, log_path = serve(pipeline_data, tmp_path)
    shots = screenshot_dir(tmp_path)
    ((n, at_risk),) = query(pipeline_data, "SELECT count(*), sum(revenue_at_risk_usd) FROM mart_customer_360")
    ((matches,),) = query(
        pipeline_data,
        "SELECT count(*) FROM mart_customer_360 WHERE value_tier IN ('Top 10%', 'High') AND is_reachable",
    )
    ((top_id,),) = query(
        pipeline_data,
        "SELECT customer_id FROM mart_customer_360 WHERE value_tier IN ('Top 10%', 'High') AND is_reachable "
        "ORDER BY revenue_at_risk_usd DESC, customer_id LIMIT 1",
    )
    try:
        assert f"Dashboard: http://localhost:{url.rsplit(':', 1)[1]}" in log_path.read_text()
        page.goto(url)
        metrics = page.get_by_test_id("stMetric")
        metrics.nth(4).wait_for(timeout=90_000)
        page.get_by_role("heading", name="Customer value & churn").wait_for()
        values = dict(
            zip(
                [t.strip() for t in page.get_by_test_id("stMetricLabel").all_inner_texts()],
                [t.strip() for t in page.get_by_test_id("stMetricValue").all_inner_texts()],
            )
        )
        assert values["Customers"] == f"{n:,}"
        assert values["Revenue at risk"] == f"${at_risk:,.0f}"
        assert "Business date 2024-12-31" in page.get_by_test_id("stCaptionContainer").first.inner_text()

        # the at-risk list: its count, its first row, and its CSV
        page.get_by_text(f"{matches:,} customers match").wait_for(timeout=30_000)
        page.get_by_test_id("stDataFrame").first.wait_for()
        download = page.get_by_test_id("stDownloadButton").get_by_role("button")
        download.wait_for(timeout=30_000)
        assert download.inner_text().strip() == f"Download these {min(100, matches)} customers (CSV)"
        page.screenshot(path=str(shots / "dashboard-at-risk.png"))
        with page.expect_download(timeout=30_000) as info:
            download.click()
        saved = tmp_path / "download.csv"
        info.value.save_as(saved)
        assert info.value.suggested_filename == "customers-at-risk-2024-12-31.csv"
        csv = pd.read_csv(io.BytesIO(saved.read_bytes()), dtype={"customer_id": str})
        assert len(csv) == min(100, matches)
        assert csv["customer_id"].iloc[0] == top_id
        assert csv["revenue_at_risk_usd"].is_monotonic_decreasing

        # how sure: the headline's interval line, and the value tab's table of the totals' intervals
        page.get_by_text("How sure:", exact=False).first.wait_for(timeout=30_000)
        page.get_by_role("tab", name="Value").click()
        page.get_by_role("heading", name="How sure: 80% intervals of the totals").wait_for(timeout=30_000)
        page.get_by_role("tabpanel", name="Value").get_by_test_id("stDataFrame").nth(1).wait_for()
        page.screenshot(path=str(shots / "dashboard-value.png"), full_page=True)

        # the retention heatmap draws (Vega renders into a canvas or an SVG)
        page.get_by_role("tab", name="Retention").click()
        page.get_by_role("heading", name="Retention by signup cohort").wait_for()
        chart = page.get_by_role("tabpanel", name="Retention").get_by_test_id("stVegaLiteChart").first
        chart.locator("canvas, svg").first.wait_for(timeout=30_000)
        box = chart.bounding_box()
        assert box and box["height"] > 100 and box["width"] > 300
        page.screenshot(path=str(shots / "dashboard-retention.png"))

        # customer 360
        page.get_by_role("tab", name="Customer 360").click()
        box = page.get_by_role("textbox", name="Customer id")
        box.fill(top_id.lower())
        box.press("Enter")
        page.get_by_role("heading", name=top_id).wait_for(timeout=30_000)
        page.screenshot(path=str(shots / "dashboard-customer-360.png"))

        # data quality
        page.get_by_role("tab", name="Data quality").click()
        page.get_by_role("heading", name="Last check results").wait_for()
        page.screenshot(path=str(shots / "dashboard-data-quality.png"))
        assert not page.get_by_test_id("stException").count()
    finally:
        stop(proc)
    assert requests and offline(requests) == []


def test_without_a_serving_file_the_page_says_run_make_run_first(tmp_path, browser_page):
    page, requests = browser_page
    data = tmp_path / "data"
    data.mkdir()
    url, proc, _ = serve(data, tmp_path)
    try:
        page.goto(url)
        page.get_by_text("Run make run first.").wait_for(timeout=90_000)
        warning = page.get_by_test_id("stAlertContentWarning").inner_text()
        assert f"There is no serving file at {data / 'serving.duckdb'} yet." in warning
        assert not page.get_by_test_id("stMetric").count()
        assert not page.get_by_test_id("stException").count()
        page.screenshot(path=str(screenshot_dir(tmp_path) / "dashboard-no-data.png"))
    finally:
        stop(proc)
    assert offline(requests) == []


def grid_rows(grid) -> list[dict[int, str]]:
    """The rows a data grid draws, in display order, as {column index: text} (its accessibility
    table holds the visible cells; with row selection, column 0 is the selection box)."""
    rows = []
    for tr in grid.locator("tr").all():
        cells = tr.locator("[role=gridcell]").all()
        if cells:
            rows.append({int(c.get_attribute("aria-colindex")): c.inner_text().strip() for c in cells})
    return rows


def visible_columns(grid) -> int:
    return len({c.get_attribute("aria-colindex") for c in grid.locator("[role=gridcell]").all()})


def test_re_ranking_resets_a_header_sort_and_a_row_opens_the_customer_360(
    pipeline_data, tmp_path, browser_page
):
    """Issue 17: after a click on a column header, a new "Rank by" kept the header's order (the list
    said "top 100 by churn probability" and started at 74%). And a row of the list opens that
    customer's 360 view."""
    page, requests = browser_page
    url, proc, _ = serve(pipeline_data, tmp_path)
    shots = screenshot_dir(tmp_path)
    top = query(
        pipeline_data,
        "SELECT customer_id, churn_probability FROM mart_customer_360 WHERE value_tier IN ('Top 10%', 'High') "
        "AND is_reachable ORDER BY churn_probability DESC, customer_id LIMIT 1",
    )[0]
    try:
        page.goto(url)
        page.get_by_test_id("stMetric").nth(4).wait_for(timeout=90_000)
        grid = page.get_by_test_id("stDataFrame").first
        grid.locator("[role=gridcell]").first.wait_for(state="attached", timeout=30_000)
        box = grid.bounding_box()
        assert box
        first_id = grid_rows(grid)[0][1]
        # sort by the customer column's header (the grid draws in a canvas: click where the
        # header row, 35 px high, meets the id column, right of the 30 px selection column)
        page.mouse.click(box["x"] + 70, box["y"] + 17)
        page.wait_for_timeout(1500)
        ((smallest,),) = query(
            pipeline_data,
            "SELECT min(customer_id) FROM mart_customer_360 WHERE value_tier IN ('Top 10%', 'High') "
            "AND is_reachable AND customer_id IN (SELECT customer_id FROM mart_customer_360 "
            "WHERE value_tier IN ('Top 10%', 'High') AND is_reachable "
            "ORDER BY revenue_at_risk_usd DESC, customer_id LIMIT 100)",
        )
        assert grid_rows(grid)[0][1] == smallest != first_id  # the header sort took effect
        page.screenshot(path=str(shots / "dashboard-header-sort.png"))
        # now rank by churn probability: the list must start at the highest one
        page.get_by_test_id("stSelectbox").filter(has_text="Rank by").click()
        page.get_by_role("option", name="churn probability").click()
        page.get_by_text("The table holds the top 100 by churn probability").wait_for(timeout=30_000)
        grid = page.get_by_test_id("stDataFrame").first
        grid.locator("[role=gridcell]").first.wait_for(state="attached", timeout=30_000)
        page.wait_for_timeout(1000)
        assert grid_rows(grid)[0][1] == top[0], grid_rows(grid)[:3]
        page.screenshot(path=str(shots / "dashboard-rank-by-churn.png"))
        # a click on a row's selection box opens that customer's 360 view
        picked = grid_rows(grid)[1][1]
        box = grid.bounding_box()
        assert box
        page.mouse.click(box["x"] + 15, box["y"] + 35 + 35 + 17)  # the second row's selection box
        page.get_by_role("heading", name=picked).wait_for(timeout=30_000)
        assert page.get_by_role("tab", name="Customer 360", selected=True).count() == 1
        assert page.get_by_role("textbox", name="Customer id").input_value() == picked
        page.screenshot(path=str(shots / "dashboard-click-through-360.png"))
        assert not page.get_by_test_id("stException").count()
    finally:
        stop(proc)
    assert offline(requests) == []


def test_at_1440_px_every_support_column_and_category_shows(pipeline_data, tmp_path, browser_page):
    """Issue 17: at 1440 px the support tables lost their "Revenue at risk" column and the
    categories table showed 10 of its 12 rows."""
    page, requests = browser_page
    page.set_viewport_size({"width": 1440, "height": 1000})
    url, proc, _ = serve(pipeline_data, tmp_path)
    shots = screenshot_dir(tmp_path)
    ((categories,),) = query(pipeline_data, "SELECT count(*) FROM mart_category_ltv")
    try:
        page.goto(url)
        page.get_by_test_id("stMetric").nth(4).wait_for(timeout=90_000)
        page.get_by_role("tab", name="Support & churn").click()
        panel = page.get_by_role("tabpanel", name="Support & churn")
        grids = panel.get_by_test_id("stDataFrame")
        grids.nth(2).locator("[role=gridcell]").first.wait_for(state="attached", timeout=30_000)
        assert grids.count() == 3
        for i in range(3):
            grids.nth(i).scroll_into_view_if_needed()
            # band, customers, avg churn, avg leaves within 90 days, revenue at risk, value lost
            assert visible_columns(grids.nth(i)) == 6, i
        page.screenshot(path=str(shots / "dashboard-support-1440.png"), full_page=True)
        page.get_by_role("tab", name="Categories").click()
        grid = page.get_by_role("tabpanel", name="Categories").get_by_test_id("stDataFrame")
        grid.locator("[role=gridcell]").first.wait_for(state="attached", timeout=30_000)
        grid.scroll_into_view_if_needed()
        assert categories >= 10
        assert len(grid_rows(grid)) == categories
        page.screenshot(path=str(shots / "dashboard-categories-1440.png"), full_page=True)
    finally:
        stop(proc)
    assert offline(requests) == []


def test_the_data_health_section_draws_in_chromium(history_data, tmp_path, browser_page):
    """Three weeks of history with three injected faults: the check outcomes, an anomaly chart per
    fault, a volume chart per source and the model run times all draw."""
    page, requests = browser_page
    page.set_viewport_size({"width": 1440, "height": 4200})  # the whole section in one screenshot
    url, proc, _ = serve(history_data, tmp_path)
    ((sources,),) = query(
        history_data,
        "SELECT count(DISTINCT dataset) FROM metric_history WHERE layer = 'raw' AND metric = 'rows_added'",
    )
    try:
        page.goto(url)
        page.get_by_test_id("stMetric").nth(4).wait_for(timeout=90_000)
        page.get_by_role("tab", name="Data health").click()
        panel = page.get_by_role("tabpanel", name="Data health")
        panel.get_by_role("heading", name="Slowest models").wait_for(timeout=30_000)
        panel.get_by_text("Business date 2024-12-31. Every layer").wait_for()
        charts = panel.get_by_test_id("stVegaLiteChart")
        # check outcomes, anomalies (the faults and the slow model), volumes, model run times
        expected = 1 + len(FAULTS) + 1 + sources + 1
        charts.nth(expected - 1).locator("canvas, svg").first.wait_for(timeout=30_000)
        assert charts.count() == expected == 13
        for i in range(expected):
            box = charts.nth(i).bounding_box()
            assert box and box["height"] > 150 and box["width"] > 300, i
        page.wait_for_timeout(1000)
        page.screenshot(path=str(screenshot_dir(tmp_path) / "dashboard-data-health.png"))
        assert not page.get_by_test_id("stException").count()
    finally:
        stop(proc)
    assert offline(requests) == []


def test_a_check_report_opens_by_its_link(pipeline_data, serving_copy, tmp_path, browser_page):
    """The link an alert carries (`?report=<run>/<layer>`) opens that layer's report, drawn, with
    every check of it, from a data directory holding the serving file alone (as the team
    deployment mounts it); a link out of the reports folder is refused."""
    from clv import notify

    page, requests = browser_page
    page.set_viewport_size({"width": 1440, "height": 2400})
    ((key, n, warned),) = query(
        serving_copy,
        "SELECT report_key, passed + warned + failed, warned FROM check_reports "
        "WHERE layer = 'raw' AND business_date = '2024-12-31'",
    )
    checks = query(
        pipeline_data,
        "SELECT check_name FROM check_results WHERE layer = 'raw' AND business_date = '2024-12-31'",
    )
    assert len(checks) == n > 10
    url, proc, _ = serve(serving_copy, tmp_path)
    link = notify.report_link(pipeline_data / "reports" / f"{key}.md", pipeline_data)
    try:
        assert link.endswith(f"/?report={key}")  # the one link function points at this page
        page.goto(url + "/?report=" + key)
        body = page.get_by_test_id("stVerticalBlock").and_(page.locator(".st-key-report_body"))
        body.get_by_role("heading", name="raw checks — business date 2024-12-31").wait_for(timeout=90_000)
        assert page.get_by_role("tab", name="Check reports", selected=True).count() == 1
        table = body.locator("table").first
        rows = table.locator("tbody tr")
        assert rows.count() == n
        shown = set(rows.locator("td:nth-child(2)").all_inner_texts())
        assert shown == {c for (c,) in checks}
        assert table.locator("td:nth-child(3)", has_text="warn").count() == warned
        page.wait_for_timeout(500)
        page.screenshot(path=str(screenshot_dir(tmp_path) / "dashboard-check-report.png"))
        assert not page.get_by_test_id("stException").count()
        # a link leading out of the reports folder shows nothing of the file system
        page.goto(url + "/?report=../../../etc/passwd")
        page.get_by_text("The link's report cannot be shown").wait_for(timeout=90_000)
        assert "root:" not in page.content()
    finally:
        stop(proc)
    assert offline(requests) == []
