"""Operational records in the warehouse's ``ops`` schema: what ran, and what went wrong.

- ``ops.pipeline_runs``: one row per pipeline step (an Airflow task or a `clv` CLI step) with its
  status, duration, rows processed and business date — the run history the seed asks for.
- ``ops.alerts``: one row per failure (DAG, task, run, error summary, time). Every alert is also
  appended to ``<data dir>/alerts.jsonl`` (so an alert is never lost when the warehouse itself is
  busy or broken) and handed to an optional hook for email/Slack/pager: set
  ``CLV_ALERT_HOOK=package.module:function``; the function receives the alert as a dict, in a
  thread the alert waits for at most ``ALERT_HOOK_TIMEOUT_SECONDS`` (a hook's failure or hang is
  logged, never raised), and to the ready-made Slack and e-mail notifiers when they are configured
  (``clv.notify``: the owners of what broke, once per open problem).
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from clv import notify, settings

log = logging.getLogger("clv")
ALERT_HOOK_TIMEOUT_SECONDS = 10.0  # how long an alert waits for CLV_ALERT_HOOK (see _call_hook)

DDL = (
    "CREATE SCHEMA IF NOT EXISTS ops",
    """CREATE TABLE IF NOT EXISTS ops.pipeline_runs (
        dag_id VARCHAR NOT NULL, run_id VARCHAR NOT NULL, task_id VARCHAR NOT NULL, try_number INTEGER,
        business_date DATE, status VARCHAR NOT NULL, started_at TIMESTAMP NOT NULL,
        finished_at TIMESTAMP NOT NULL, duration_seconds DOUBLE NOT NULL, rows_processed BIGINT,
        detail VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS ops.alerts (
        alerted_at TIMESTAMP NOT NULL, severity VARCHAR NOT NULL, dag_id VARCHAR, task_id VARCHAR,
        run_id VARCHAR, business_date DATE, summary VARCHAR NOT NULL)""",
)


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    for statement in DDL:
        con.execute(statement)


@dataclass
class StepRun:
    """Who is running a step: the Airflow task, or the CLI."""

    dag_id: str = "clv-cli"
    run_id: str = "manual"
    task_id: str = "step"
    try_number: int = 1
    business_date: dt.date | None = None
    rows: int | None = None
    detail: dict = field(default_factory=dict)

    @property
    def report_id(self) -> str:
        """Reports of one pipeline run share a folder: ``<business date>-<run id>``."""
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in self.run_id)
        return f"{self.business_date.isoformat()}-{safe}" if self.business_date else safe


def _write(data_dir: Path | None, sql: str, params: list, wait_seconds: float = 60) -> bool:
    from clv.warehouse import WarehouseBusy, connect

    try:
        con = connect(settings.paths(data_dir).warehouse, wait_seconds=wait_seconds)
    except (WarehouseBusy, duckdb.Error) as e:
        log.warning("clv: could not record in the warehouse (%s)", e)
        return False
    try:
        ensure_tables(con)
        con.execute(sql, params)
        return True
    finally:
        con.close()


@contextmanager
def recorded(data_dir: Path | None, step: StepRun) -> Iterator[StepRun]:
    """Time a step and record its outcome in ``ops.pipeline_runs``, success or failure.

    The row is written after the step has closed its own connection to the warehouse (one writer).
    Recording is bookkeeping: when it fails, the failure is logged and the step's own outcome
    stands — its exception, if it raised one, is what the caller sees.
    """
    started = dt.datetime.now()
    t0 = time.perf_counter()
    status, error = "success", None
    try:
        yield step
    except BaseException as e:
        status, error = "failed", f"{type(e).__name__}: {e}"
        raise
    finally:
        if status == "success":  # its open failure, if it had one, is resolved (clv.notify)
            notify.task_succeeded(step.dag_id, step.task_id, data_dir=data_dir)
        try:
            detail = dict(step.detail)
            if error:
                detail["error"] = error[:2000]
            _write(
                data_dir,
                "INSERT INTO ops.pipeline_runs (dag_id, run_id, task_id, try_number, business_date, "
                "status, started_at, finished_at, duration_seconds, rows_processed, detail) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    step.dag_id,
                    step.run_id,
                    step.task_id,
                    step.try_number,
                    step.business_date,
                    status,
                    started,
                    dt.datetime.now(),
                    round(time.perf_counter() - t0, 3),
                    step.rows,
                    json.dumps(detail, default=str) if detail else None,
                ],
            )
        except Exception as e:  # never in place of the step's own outcome
            log.error("clv: could not record %s (%s) in ops.pipeline_runs: %s", step.task_id, status, e)


def summarize_error(error: BaseException | str | None) -> str:
    """One line: the exception's own message, without the traceback."""
    if error is None:
        return "failed (no error recorded)"
    if isinstance(error, BaseException):
        text = str(error).strip() or type(error).__name__
        name = type(error).__name__
        line = text.splitlines()[0] if text else name
        return line if line.startswith(name) else f"{name}: {line}"
    return str(error).strip().splitlines()[0] if str(error).strip() else "failed"


def alert(
    data_dir: Path | None,
    summary: str,
    *,
    severity: str = "error",
    dag_id: str | None = None,
    task_id: str | None = None,
    run_id: str | None = None,
    business_date: dt.date | None = None,
    send: bool = True,
) -> dict:
    """Record an alert everywhere it must go; never raises (it runs in failure handlers).

    ``send=False`` records it without the Slack and e-mail notifiers: what it says has reached
    its owners already, problem by problem (a layer's failed checks, its anomalies)."""
    record = {
        "alerted_at": dt.datetime.now().isoformat(timespec="seconds"),
        "severity": severity,
        "dag_id": dag_id,
        "task_id": task_id,
        "run_id": run_id,
        "business_date": business_date.isoformat() if business_date else None,
        "summary": summary[:2000],
    }
    where = f"{dag_id}.{task_id}" if dag_id else (task_id or "clv")
    log.error("ALERT [%s] %s (run %s): %s", severity, where, run_id, summary)
    paths = settings.paths(data_dir)
    try:
        paths.data_dir.mkdir(parents=True, exist_ok=True)
        with (paths.data_dir / "alerts.jsonl").open("a") as f:
            f.write(json.dumps(record) + "\n")
    except OSError as e:
        log.error("clv: could not append to alerts.jsonl: %s", e)
    try:
        _write(
            data_dir,
            "INSERT INTO ops.alerts (alerted_at, severity, dag_id, task_id, run_id, business_date, summary) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                dt.datetime.fromisoformat(record["alerted_at"]),
                severity,
                dag_id,
                task_id,
                run_id,
                business_date,
                record["summary"],
            ],
            wait_seconds=30,
        )
    except Exception as e:  # an alert must never mask the failure that caused it
        log.error("clv: could not record the alert in the warehouse: %s", e)
    _call_hook(record)
    if send:
        report = paths.reports / StepRun(run_id=run_id or "", business_date=business_date).report_id
        notify.alert(record, data_dir=data_dir, report=report if run_id else None)
    return record


def _call_hook(record: dict) -> None:
    """Hand the alert to ``CLV_ALERT_HOOK`` in a thread of its own, waiting at most
    ``ALERT_HOOK_TIMEOUT_SECONDS``: a hook that hangs (an unreachable webhook) or fails in any way
    is logged, never raised, and never holds up the failure handler it runs in. A hook still
    running after the timeout is left behind (a daemon thread: it does not keep the process up)."""
    try:
        hook = settings.alert_hook()
    except Exception as e:  # a malformed setting must not mask the failure being alerted
        log.error("clv: CLV_ALERT_HOOK is unusable: %s", e)
        return
    if not hook:
        return
    failure: list[str] = []

    def call() -> None:
        try:
            module, _, func = hook.partition(":")
            getattr(importlib.import_module(module), func)(record)
        except BaseException as e:  # SystemExit and KeyboardInterrupt from a hook included
            failure.append(f"{type(e).__name__}: {e}")

    thread = threading.Thread(target=call, name="clv-alert-hook", daemon=True)
    thread.start()
    thread.join(ALERT_HOOK_TIMEOUT_SECONDS)
    if thread.is_alive():
        log.error(
            "clv: the alert hook %s did not return within %s s; carrying on", hook, ALERT_HOOK_TIMEOUT_SECONDS
        )
    elif failure:
        log.error("clv: the alert hook %s failed: %s", hook, failure[0])


def run_report(paths: settings.Paths, dag_id: str, business_date: dt.date, run_id: str | None) -> str:
    """Per-task status, duration and rows of a run (the latest for the business date when
    ``run_id`` is None), from ``ops.pipeline_runs``, and its alerts."""
    from clv.warehouse import WarehouseBusy, connect

    if not paths.warehouse.exists():
        return "no warehouse yet"
    try:
        con = connect(paths.warehouse, read_only=True)  # waits while a manual `clv load` writes
    except WarehouseBusy as e:
        return f"no run report: {e}"
    try:
        if run_id is None:
            row = con.execute(
                "SELECT run_id FROM ops.pipeline_runs WHERE dag_id = ? AND business_date = ? "
                "ORDER BY finished_at DESC LIMIT 1",
                [dag_id, business_date],
            ).fetchone()
            run_id = row[0] if row else ""
        steps = con.execute(
            "SELECT task_id, status, duration_seconds, rows_processed FROM ops.pipeline_runs "
            "WHERE dag_id = ? AND run_id = ? ORDER BY started_at",
            [dag_id, run_id],
        ).fetchall()
        alerts = con.execute(
            "SELECT severity, task_id, summary FROM ops.alerts WHERE run_id = ? ORDER BY alerted_at",
            [run_id],
        ).fetchall()
    except duckdb.CatalogException:
        return "no pipeline runs recorded yet"
    finally:
        con.close()
    lines = [f"Run {run_id} (business date {business_date}):"]
    for task_id, status, seconds, rows in steps:
        rows_txt = "" if rows is None else f"{rows:>12,} rows"
        lines.append(f"  {task_id:<24} {status:<8} {seconds:>7.1f} s {rows_txt}")
    lines += [f"  ALERT [{sev}] {task}: {summary}" for sev, task, summary in alerts]
    return "\n".join(lines)
