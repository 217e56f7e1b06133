"""A missed deadline alerts like a failed task: ``ops.alerts``, ``alerts.jsonl`` and the hook.

The callback gets what Airflow 3.3's scheduler sends when a deadline passes
(``airflow.models.deadline.Deadline.handle_miss``: the run and the deadline's time)."""

from __future__ import annotations

import json

import duckdb

from clv.airflow import policy

RECEIVED: list[dict] = []


def receive(alert: dict) -> None:
    RECEIVED.append(alert)


def test_a_missed_deadline_alerts_everywhere(tmp_path, monkeypatch):
    monkeypatch.setenv("CLV_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CLV_ALERT_HOOK", f"{__name__}:receive")
    RECEIVED.clear()
    context = {
        "dag_run": {"run_id": "scheduled__2025-01-02T02:30:00+00:00", "state": "running"},
        "deadline": {"id": "x", "deadline_time": "2025-01-02T06:00:00+00:00"},
    }
    policy.deadline_missed(context=context, dag_id="clv_daily_refresh", minutes=210)
    (line,) = (tmp_path / "alerts.jsonl").read_text().splitlines()
    alert = json.loads(line)
    assert alert["run_id"] == "scheduled__2025-01-02T02:30:00+00:00"
    assert "missed its deadline" in alert["summary"] and "2025-01-02T06:00:00" in alert["summary"]
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("SELECT task_id, severity FROM ops.alerts").fetchall() == [("deadline", "error")]
    assert [a["summary"] for a in RECEIVED] == [alert["summary"]]
