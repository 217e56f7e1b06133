"""The note each run of our DAGs carries in the UI's grid: the business date it processed, the rows
loaded, the checks passed, warned and failed with a link to each layer's check report, and what it
published (customers, predicted value, revenue at risk, value already lost) — so a run that
processed 2025-01-01 says so, and a layer whose checks warned is visible without opening a log.

Written when a run ends, by an Airflow listener (``plugins/clv_plugin.py`` registers this module)
in the process that records the run's end — the scheduler, or ``airflow dags test`` — from the
runs' task results (XComs), in the same database session; tasks themselves cannot write a note
through Airflow 3's Task SDK. A note a person wrote is never replaced. Nothing here opens the
warehouse.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from airflow.listeners import hookimpl

from clv.names import DAG_IDS

log = logging.getLogger("clv.dags")

HEADING = "**Business date"  # every note we write starts so; other notes are a person's
DATE_TASKS = ("business_date", "resolve_business_date")  # in order of preference


def note_text(state: str, results: dict[str, object], failed_tasks: list[str]) -> str:
    """The note for a run that ended in ``state``, from its tasks' return values by task id."""
    day = next((results[t] for t in DATE_TASKS if _is_date(results.get(t))), None)
    lines = [f"{HEADING} {day}** · {state}" if day else f"{HEADING}: not chosen** · {state}"]
    loaded = [r["rows_loaded"] for r in results.values() if isinstance(r, dict) and "rows_loaded" in r]
    if loaded:
        lines.append(f"- rows loaded: {sum(loaded):,}")
    checks = {
        t: r["checks"]
        for t, r in results.items()
        if isinstance(r, dict) and isinstance(r.get("checks"), dict)
    }
    if checks:
        total = {k: sum(c.get(k, 0) for c in checks.values()) for k in ("passed", "warned", "failed")}
        lines.append(
            f"- checks: {total['passed']} passed, {total['warned']} warned, {total['failed']} failed"
        )
        for task_id, c in checks.items():
            if c.get("warned_checks"):
                lines.append(f"- warned in {task_id}: " + "; ".join(c["warned_checks"]))
        links = [_report(c["report"]) for c in checks.values() if c.get("report")]
        if links:
            lines.append("- check reports: " + " · ".join(links))
    figures = next(
        (
            r["figures"]
            for r in results.values()
            if isinstance(r, dict) and isinstance(r.get("figures"), list)
        ),
        None,
    )
    if figures:
        lines.append("- published: " + " · ".join(_figure(f) for f in figures if f.get("value") is not None))
    if failed_tasks:
        lines.append("- failed: " + ", ".join(failed_tasks))
    return "\n".join(lines)


def _report(path: str) -> str:
    """One layer's report in the note: a Markdown link named after the layer, or its file's path
    when there is no URL for it (``clv.notify.report_link``)."""
    from clv.notify import report_link

    link = report_link(path)
    name = Path(path).stem
    return f"[{name}]({link})" if link.startswith(("http://", "https://")) else f"{name} `{link}`"


def _figure(figure: dict) -> str:
    value = figure["value"]
    text = f"${value:,.0f}" if figure.get("unit") == "usd" else f"{value:,.0f}"
    return f"{figure['name']} {text}"


def _is_date(value) -> bool:
    if not isinstance(value, str):
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def write_note(dag_run) -> None:
    """Set the note of one of our runs that just ended (unless a person wrote one): in the session
    that holds the run (the scheduler's), else in a session of its own (``airflow dags test``
    hands the listener a run no session holds)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select
    from sqlalchemy.orm import object_session

    if dag_run.dag_id not in DAG_IDS:
        return
    session = object_session(dag_run)
    if session is not None:
        _write(session, dag_run)
        return
    with create_session() as session:
        attached = session.scalar(
            select(DagRun).where(DagRun.dag_id == dag_run.dag_id, DagRun.run_id == dag_run.run_id)
        )
        if attached is not None:
            _write(session, attached, state=dag_run.state)


def _write(session, dag_run, state=None) -> None:
    from airflow.models.xcom import XComModel

    current = dag_run.note
    if current and not current.startswith(HEADING):
        return
    rows = session.scalars(
        XComModel.get_many(run_id=dag_run.run_id, dag_ids=dag_run.dag_id, key="return_value")
    )
    results = {x.task_id: XComModel.deserialize_value(x) for x in rows if x.map_index in (-1, None)}
    failed = sorted(ti.task_id for ti in dag_run.get_task_instances(state=["failed"], session=session))
    state = state or dag_run.state
    dag_run.note = note_text(str(getattr(state, "value", state)), results, failed)


def _hook(dag_run, msg: str) -> None:
    try:
        write_note(dag_run)
    except Exception:  # a note is a courtesy: never let it disturb the scheduler
        log.exception("clv: could not write the note of %s", getattr(dag_run, "run_id", "?"))


@hookimpl
def on_dag_run_success(dag_run, msg: str) -> None:
    _hook(dag_run, msg)


@hookimpl
def on_dag_run_failed(dag_run, msg: str) -> None:
    _hook(dag_run, msg)
