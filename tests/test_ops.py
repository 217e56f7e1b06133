"""clv.ops on a real warehouse file: recording a step's outcome never replaces the step's own
error, and the alert hook (CLV_ALERT_HOOK) can neither raise nor hang the failure handler it runs
in — its failure or timeout is logged."""

from __future__ import annotations

import json
import logging
import sys
import threading

import duckdb
import pytest

from clv import ops
from clv.settings import Paths


class StepBroke(Exception):
    pass


def broken_run_history(paths: Paths) -> None:
    """An ``ops.pipeline_runs`` the recorder cannot write to (a table of another shape)."""
    paths.data_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(paths.warehouse))
    con.execute("CREATE SCHEMA ops")
    con.execute("CREATE TABLE ops.pipeline_runs (note VARCHAR)")
    con.close()


def test_a_failed_record_never_replaces_the_steps_error(tmp_path, caplog):
    paths = Paths(tmp_path / "data")
    broken_run_history(paths)
    step = ops.StepRun(task_id="transform_marts")
    with pytest.raises(StepBroke, match="the real failure"), ops.recorded(paths.data_dir, step):
        raise StepBroke("the real failure")
    assert "could not record transform_marts (failed) in ops.pipeline_runs" in caplog.text


def test_a_failed_record_does_not_fail_a_step_that_succeeded(tmp_path, caplog):
    paths = Paths(tmp_path / "data")
    broken_run_history(paths)
    with ops.recorded(paths.data_dir, ops.StepRun(task_id="publish")) as step:
        step.rows = 7
    assert "could not record publish (success) in ops.pipeline_runs" in caplog.text


def test_a_step_is_recorded_as_before(tmp_path):
    paths = Paths(tmp_path / "data")
    with pytest.raises(StepBroke), ops.recorded(paths.data_dir, ops.StepRun(task_id="load_raw")):
        raise StepBroke("late file")
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        rows = con.execute("SELECT task_id, status, detail FROM ops.pipeline_runs").fetchall()
    finally:
        con.close()
    assert [(t, s) for t, s, _ in rows] == [("load_raw", "failed")]
    assert json.loads(rows[0][2])["error"] == "StepBroke: late file"


HOOKS = """
import threading

released = threading.Event()
received = []


def hang(alert):
    received.append(alert)
    released.wait()


def exit_(alert):
    received.append(alert)
    raise SystemExit(3)


def refuse(alert):
    raise RuntimeError("webhook refused the alert")
"""


@pytest.fixture
def hooks(tmp_path, monkeypatch):
    """A real hook module on the import path."""
    (tmp_path / "clv_test_hooks.py").write_text(HOOKS)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("clv_test_hooks", None)
    import clv_test_hooks

    yield clv_test_hooks
    clv_test_hooks.released.set()
    sys.modules.pop("clv_test_hooks", None)


def alert_in_thread(paths: Paths) -> tuple[threading.Thread, list]:
    """Raise an alert the way a failure callback does, in a thread the test can give up on."""
    out: list = []

    def run():
        try:
            out.append(ops.alert(paths.data_dir, "transform_marts failed: boom", task_id="transform_marts"))
        except BaseException as e:
            out.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def test_a_hanging_hook_times_out_and_the_alert_is_kept(tmp_path, hooks, monkeypatch, caplog):
    caplog.set_level(logging.ERROR, logger="clv")
    paths = Paths(tmp_path / "data")
    monkeypatch.setenv("CLV_ALERT_HOOK", "clv_test_hooks:hang")
    monkeypatch.setattr(ops, "ALERT_HOOK_TIMEOUT_SECONDS", 0.5, raising=False)
    thread, out = alert_in_thread(paths)
    thread.join(60)  # far beyond the timeout: a handler still inside the hook is hung
    hung = thread.is_alive()
    hooks.released.set()
    assert not hung, "ops.alert waited for a hook that never returns"
    assert isinstance(out[0], dict) and out[0]["summary"] == "transform_marts failed: boom"
    assert len(hooks.received) == 1 and hooks.received[0]["task_id"] == "transform_marts"
    assert "did not return within 0.5 s" in caplog.text
    lines = (paths.data_dir / "alerts.jsonl").read_text().splitlines()
    assert [json.loads(line)["summary"] for line in lines] == ["transform_marts failed: boom"]


@pytest.mark.parametrize(
    ("hook", "logged"), [("exit_", "SystemExit"), ("refuse", "webhook refused the alert")]
)
def test_a_failing_hook_is_logged_not_raised(tmp_path, hooks, monkeypatch, caplog, hook, logged):
    caplog.set_level(logging.ERROR, logger="clv")
    paths = Paths(tmp_path / "data")
    monkeypatch.setenv("CLV_ALERT_HOOK", f"clv_test_hooks:{hook}")
    thread, out = alert_in_thread(paths)
    thread.join(60)
    assert not thread.is_alive()
    assert isinstance(out[0], dict), f"ops.alert raised {out[0]!r}"
    assert f"the alert hook clv_test_hooks:{hook} failed: " in caplog.text and logged in caplog.text
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        assert con.execute("SELECT summary FROM ops.alerts").fetchall() == [("transform_marts failed: boom",)]
    finally:
        con.close()


def test_a_slow_hook_within_the_timeout_is_waited_for(tmp_path, monkeypatch, caplog):
    """The timeout is a ceiling, not a delay: a hook that answers is waited for and not logged."""
    (tmp_path / "clv_slow_hook.py").write_text(
        "import time\nseen = []\ndef hook(alert):\n    time.sleep(0.2)\n    seen.append(alert['summary'])\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("CLV_ALERT_HOOK", "clv_slow_hook:hook")
    caplog.set_level(logging.ERROR, logger="clv")
    ops.alert(Paths(tmp_path / "data").data_dir, "scan_raw failed")
    import clv_slow_hook

    assert clv_slow_hook.seen == ["scan_raw failed"]
    assert "alert hook" not in caplog.text
