"""Alerts that reach people (clv.notify): Slack and e-mail through Airflow's provider hooks, to a
real SMTP server (aiosmtpd) and a real HTTP receiver on 127.0.0.1 started here, from a real Soda
scan of a real DuckDB warehouse. What arrived is counted from the servers' own captures and from
the files on disk, not from what the code under test says it sent."""

from __future__ import annotations

import contextlib
import datetime as dt
import email
import html
import json
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pytest
from aiosmtpd.controller import Controller

from clv import anomalies, ingest, notify, ops, quality
from clv.airflow import policy
from clv.cli import main as clv_main
from clv.errors import CheckFailed

DAY = dt.date(2024, 1, 5)
T0 = dt.datetime(2024, 1, 6, 3, 0)
RUN = "2024-01-05-run1"
REPORTS_URL = "http://reports.test/clv"
ENV = (
    "CLV_SLACK_WEBHOOK_URL",
    "CLV_SLACK_CONN_ID",
    "CLV_SMTP_HOST",
    "CLV_SMTP_PORT",
    "CLV_SMTP_USER",
    "CLV_SMTP_PASSWORD",
    "CLV_SMTP_SECURITY",
    "CLV_SMTP_FROM",
    "CLV_SMTP_CONN_ID",
    "CLV_NOTIFY_EMAIL_TO",
    "CLV_NOTIFY_OWNERS",
    "CLV_NOTIFY_LEVEL",
    "CLV_NOTIFY_REMIND_HOURS",
    "CLV_NOTIFY_RESOLVED",
    "CLV_NOTIFY_TIMEOUT_SECONDS",
    "CLV_REPORTS_URL",
    "CLV_ALERT_HOOK",
)


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mailbox:
    """aiosmtpd's handler: every message the server accepted."""

    def __init__(self) -> None:
        self.messages: list[dict] = []

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content)
        html_body = "".join(
            part.get_payload(decode=True).decode()
            for part in msg.walk()
            if part.get_content_type() == "text/html"
        )
        body = html.unescape(re.sub(r"<[^>]+>", "\n", html_body))  # the text a person reads
        self.messages.append(
            {
                "to": list(envelope.rcpt_tos),
                "from": envelope.mail_from,
                "subject": msg["Subject"],
                "body": body,
            }
        )
        return "250 OK"


@pytest.fixture
def smtp():
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    box.port = controller.port
    yield box
    controller.stop()


@pytest.fixture
def slack():
    """An HTTP receiver standing in for Slack's incoming webhooks: every POST, by path."""
    posts: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            posts.append({"path": self.path, "json": json.loads(body)})
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield SimpleNamespace(posts=posts, url=f"http://127.0.0.1:{server.server_address[1]}")
    server.shutdown()
    server.server_close()


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A data directory of its own and no notifier setting from the caller's environment."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLV_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CLV_NOTIFY_TIMEOUT_SECONDS", "5")
    return monkeypatch


def configure(monkeypatch, tmp_path: Path, smtp, slack) -> None:
    """Both channels, plain SMTP on the local server, an owners file: the orders team owns
    everything of raw.orders (its own mailbox and webhook), the platform team the rest."""
    owners = tmp_path / "owners.yml"
    owners.write_text(
        "default:\n"
        "  email: [platform@example.com]\n"
        "  slack: [default]\n"
        "owners:\n"
        "  - name: orders team\n"
        '    match: ["raw.orders", "*.stg_orders"]\n'
        "    email: [orders@example.com]\n"
        f"    slack: ['{slack.url}/orders']\n"
    )
    monkeypatch.setenv("CLV_NOTIFY_OWNERS", str(owners))
    monkeypatch.setenv("CLV_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("CLV_SMTP_PORT", str(smtp.port))
    monkeypatch.setenv("CLV_SMTP_SECURITY", "none")
    monkeypatch.setenv("CLV_SMTP_FROM", "clv@example.com")
    monkeypatch.setenv("CLV_SLACK_WEBHOOK_URL", f"{slack.url}/default")
    monkeypatch.setenv("CLV_REPORTS_URL", REPORTS_URL)


def scan_empty_raw(data_dir: Path) -> quality.ScanResult:
    """A real Soda scan of the raw layer of a real warehouse whose raw tables are empty: every
    source's "holds rows" check fails (error level) and its batch-rows check warns."""
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"))
    try:
        ingest.ensure_schema(con)
        return quality.scan(con, "raw", DAY, run_id=RUN, data_dir=data_dir, raise_on_failure=False)
    finally:
        con.close()


def orders_anomaly() -> anomalies.Verdict:
    """raw.orders.rows_added far below its history: a fail-level anomaly."""
    history = [(DAY - dt.timedelta(days=i), 100.0 + (i % 3)) for i in range(1, 29)]
    return anomalies.judge("raw.orders.rows_added", 10.0, history, DAY)


def by_recipient(box: Mailbox) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for m in box.messages:
        for to in m["to"]:
            out.setdefault(to, []).append(m)
    return out


def test_a_failed_check_reaches_its_owner_once_then_a_reminder_then_resolved(tmp_path, env, smtp, slack):
    configure(env, tmp_path, smtp, slack)
    result = scan_empty_raw(tmp_path)
    assert len(result.failed) == 7 and len(result.warned) == 7  # one of each per source
    verdict = orders_anomaly()
    assert verdict.status == anomalies.FAIL

    notify.layer_checked("raw", DAY, result, [verdict], data_dir=tmp_path, now=T0)

    mail = by_recipient(smtp)
    assert sorted(mail) == ["orders@example.com", "platform@example.com"]
    (orders,) = mail["orders@example.com"]  # one message per recipient and layer
    assert orders["from"] == "clv@example.com"
    assert orders["subject"] == f"raw checks, business date {DAY}: 2 failed, 1 warned"
    link = f"{REPORTS_URL}/{RUN}/raw.md"
    assert (
        f'[FAIL] check "orders holds rows" on raw.orders, business date {DAY}: value 0 '
        f"(rule: row_count > 0) — report: {link}" in orders["body"]
    )
    assert (
        f'[WARN] check "orders rows delivered in the batch" on raw.orders, business date {DAY}'
        in orders["body"]
    )
    assert (
        f"[FAIL] anomaly raw.orders.rows_added, business date {DAY}: raw.orders.rows_added = 10 outside"
        in (orders["body"])
    )
    assert "expected 101" in orders["body"]
    assert "customers" not in orders["body"]  # the orders team gets the orders' problems only
    (platform,) = mail["platform@example.com"]
    assert platform["subject"] == f"raw checks, business date {DAY}: 6 failed, 6 warned"
    assert 'check "customers holds rows" on raw.customers' in platform["body"]
    assert "raw.orders" not in platform["body"]
    paths = sorted(p["path"] for p in slack.posts)
    assert paths == ["/default", "/orders"]
    orders_slack = next(p["json"]["text"] for p in slack.posts if p["path"] == "/orders")
    assert orders_slack.splitlines()[0] == f"raw checks, business date {DAY}: 2 failed, 1 warned"
    assert f'• [FAIL] check "orders holds rows" on raw.orders, business date {DAY}: value 0' in orders_slack
    assert link in orders_slack

    # the same open problems on the next run: grouped, nothing sent
    notify.layer_checked("raw", DAY, result, [verdict], data_dir=tmp_path, now=T0 + dt.timedelta(hours=1))
    assert len(smtp.messages) == 2 and len(slack.posts) == 2
    state = notify.read_state(tmp_path)
    assert len(state) == 15 and {e["seen"] for e in state.values()} == {2}

    # past the reminder interval (24 h by default): once more, with how long and how often
    notify.layer_checked("raw", DAY, result, [verdict], data_dir=tmp_path, now=T0 + dt.timedelta(hours=25))
    assert len(smtp.messages) == 4 and len(slack.posts) == 4
    reminder = by_recipient(smtp)["orders@example.com"][-1]
    assert "still open since 2024-01-06 03:00, seen 3 times" in reminder["body"]

    # the layer's checks pass again: one resolved message per owner
    passing = quality.ScanResult("raw", RUN, DAY, checks=[dict(c, outcome="pass") for c in result.checks])
    notify.layer_checked("raw", DAY, passing, [], data_dir=tmp_path, now=T0 + dt.timedelta(hours=26))
    resolved = by_recipient(smtp)["orders@example.com"][-1]
    assert resolved["subject"] == f"raw checks, business date {DAY}: 3 resolved"
    assert '[RESOLVED] check "orders holds rows" on raw.orders: clear again' in resolved["body"]
    assert notify.read_state(tmp_path) == {}
    # every message is in notifications.jsonl, delivered
    logged = [json.loads(x) for x in (tmp_path / notify.LOG_FILE).read_text().splitlines()]
    assert len(logged) == len(smtp.messages) + len(slack.posts) == 12
    assert all(r["delivered"] for r in logged)
    assert not any("/orders" in r["to"] or "/default" in r["to"] for r in logged)  # no webhook path


def test_a_dead_or_hanging_notifier_never_masks_the_alert(tmp_path, env):
    dead = free_port()
    env.setenv("CLV_SMTP_HOST", "127.0.0.1")
    env.setenv("CLV_SMTP_PORT", str(dead))
    env.setenv("CLV_SMTP_SECURITY", "none")
    env.setenv("CLV_NOTIFY_EMAIL_TO", "platform@example.com")
    # a webhook that accepts the connection and never answers
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(5)
    env.setenv("CLV_SLACK_WEBHOOK_URL", f"http://127.0.0.1:{hang.getsockname()[1]}/hook")
    env.setenv("CLV_NOTIFY_TIMEOUT_SECONDS", "1")
    try:
        for _ in range(2):
            record = ops.alert(
                tmp_path,
                "transform_core failed: TransformError: the run failed",
                dag_id="clv_daily_refresh",
                task_id="transform_core",
                run_id="scheduled__2024-01-06",
                business_date=DAY,
            )
            assert record["summary"].startswith("transform_core failed")
    finally:
        hang.close()
    assert len((tmp_path / "alerts.jsonl").read_text().splitlines()) == 2
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM ops.alerts WHERE task_id = 'transform_core'").fetchone() == (
            2,
        )
    logged = [json.loads(x) for x in (tmp_path / notify.LOG_FILE).read_text().splitlines()]
    # nothing got through, so the second alert of the open problem was tried again, not grouped
    assert [r["to"] for r in logged] == ["email platform@example.com", "slack default"] * 2
    assert not any(r["delivered"] for r in logged)
    assert "ConnectionRefusedError" in logged[0]["error"]
    assert logged[1]["error"] == "no answer within 1 s" or "timed out" in logged[1]["error"]
    (entry,) = notify.read_state(tmp_path).values()
    assert entry["seen"] == 2 and entry["last_sent"] is None


def test_nothing_configured_sends_nothing_and_writes_nothing(tmp_path, env, smtp, slack):
    result = scan_empty_raw(tmp_path)
    assert result.failed
    assert notify.layer_checked("raw", DAY, result, [orders_anomaly()], data_dir=tmp_path) == []
    ops.alert(
        tmp_path, "load_raw failed: boom", dag_id="d", task_id="load_raw", run_id="r", business_date=DAY
    )
    assert smtp.messages == [] and slack.posts == []
    assert not (tmp_path / notify.STATE_FILE).exists() and not (tmp_path / notify.LOG_FILE).exists()
    assert (tmp_path / "alerts.jsonl").exists()  # the alert itself is recorded as ever


def test_a_failed_task_is_sent_once_and_resolved_when_it_succeeds(tmp_path, env, slack):
    env.setenv("CLV_SLACK_WEBHOOK_URL", f"{slack.url}/default")
    for attempt in range(2):
        ops.alert(
            tmp_path,
            f"load_raw failed: SourceNotReady: no batch yet ({attempt})",
            dag_id="clv_daily_refresh",
            task_id="load_raw",
            run_id=f"run{attempt}",
            business_date=DAY,
        )
    (first,) = slack.posts
    text = first["json"]["text"]
    assert text.startswith(f"[FAIL] task clv_daily_refresh.load_raw, business date {DAY}: load_raw failed:")
    assert f"report: {tmp_path / 'alerts.jsonl'}" in text  # no run report folder: the alert log
    # the task's next successful run resolves it (ops.recorded, as every step is recorded)
    with ops.recorded(
        tmp_path, ops.StepRun(dag_id="clv_daily_refresh", task_id="load_raw", business_date=DAY)
    ):
        pass
    assert len(slack.posts) == 2
    assert slack.posts[1]["json"]["text"].startswith(
        "[RESOLVED] task clv_daily_refresh.load_raw: clear again"
    )
    # a failed check's task alert is recorded, not sent again (its checks were, one by one)
    error = CheckFailed("raw checks failed: orders holds rows (report: /x/raw.md)")
    error.notified = True
    ti = SimpleNamespace(
        task_id="scan_raw", dag_id="clv_daily_refresh", run_id="run3", xcom_pull=lambda **_: DAY.isoformat()
    )
    policy.on_failure({"ti": ti, "exception": error})
    assert len(slack.posts) == 2
    assert "scan_raw failed: CheckFailed" in (tmp_path / "alerts.jsonl").read_text().splitlines()[-1]


def test_airflow_connections_and_the_cli_test_message(tmp_path, env, smtp, slack, capsys):
    """The Airflow route: connections by id (here from AIRFLOW_CONN_*, as a secrets backend or the
    metadata database would give them), and `clv notify --test` to every destination."""
    env.setenv(
        "AIRFLOW_CONN_CLV_SMTP",
        json.dumps(
            {
                "conn_type": "smtp",
                "host": "127.0.0.1",
                "port": smtp.port,
                "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "airflow@example.com"},
            }
        ),
    )
    env.setenv(
        "AIRFLOW_CONN_CLV_SLACK", json.dumps({"conn_type": "slackwebhook", "password": f"{slack.url}/conn"})
    )
    env.setenv("CLV_SMTP_CONN_ID", "clv_smtp")
    env.setenv("CLV_SLACK_CONN_ID", "clv_slack")
    env.setenv("CLV_NOTIFY_EMAIL_TO", "platform@example.com, oncall@example.com")
    assert clv_main(["notify", "--test"]) == 0
    out = capsys.readouterr().out
    assert "3/3 test messages sent" in out
    assert sorted(to for m in smtp.messages for to in m["to"]) == [
        "oncall@example.com",
        "platform@example.com",
    ]
    assert {m["from"] for m in smtp.messages} == {"airflow@example.com"}
    assert [p["path"] for p in slack.posts] == ["/conn"]
    assert slack.posts[0]["json"]["text"].startswith("[TEST] clv notifications reach slack default")


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("CLV_SMTP_SECURITY", "tls", "CLV_SMTP_SECURITY='tls' is not one of starttls, ssl, none"),
        ("CLV_SLACK_WEBHOOK_URL", "hooks.slack.com/x", "is not an http(s):// URL"),
        ("CLV_NOTIFY_EMAIL_TO", "platform", "'platform', which is not an e-mail address"),
        ("CLV_NOTIFY_OWNERS", "owners: [{name: x, email: [a@b.c]}]", "owner 'x' has no match patterns"),
        ("CLV_NOTIFY_OWNERS", "owners: [{match: ['*'], emails: [a@b.c]}]", "unknown keys ['emails']"),
    ],
)
def test_a_bad_setting_is_one_line_and_exit_2(tmp_path, env, capsys, name, value, says):
    if name == "CLV_NOTIFY_OWNERS":
        (tmp_path / "owners.yml").write_text(value)
        value = str(tmp_path / "owners.yml")
    env.setenv(name, value)
    env.setenv("CLV_NOTIFY_EMAIL_TO" if name != "CLV_NOTIFY_EMAIL_TO" else "CLV_SMTP_HOST", "a@b.c")
    assert clv_main(["notify", "--test"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and says in err
    # and an alert under the same bad setting is still recorded, without a traceback
    with contextlib.suppress(Exception):
        ops.alert(tmp_path, "x failed", task_id="x")
    assert (tmp_path / "alerts.jsonl").read_text().count("x failed") == 1
