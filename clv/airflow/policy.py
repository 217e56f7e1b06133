"""How the DAGs behave when things go wrong: retry policies, default arguments and the failure
callback (an alert row, `alerts.jsonl`, the optional ``CLV_ALERT_HOOK`` and the Slack and e-mail
notifiers of ``clv.notify``)."""

from __future__ import annotations

import contextlib
import datetime as dt

from clv import settings

OWNER = "clv-data-platform"

# Ingestion waits out transient source problems: 3 retries, exponential back-off, capped.
INGEST_RETRIES = {
    "retries": 3,
    "retry_delay": dt.timedelta(seconds=settings.retry_delay_seconds()),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": dt.timedelta(minutes=10),
}
# Transforms get one retry (a crashed process, a lock), after 1.5 times the ingest delay (30 s by
# default); failed checks and user errors are never retried (clv.airflow.tasks.run_step).
TRANSFORM_RETRIES = {"retries": 1, "retry_delay": dt.timedelta(seconds=1.5 * settings.retry_delay_seconds())}


def default_args() -> dict:
    return {
        "owner": OWNER,
        "depends_on_past": False,
        "on_failure_callback": on_failure,
        **TRANSFORM_RETRIES,
    }


def on_failure(context) -> None:
    """Write an alert row (``ops.alerts`` + ``alerts.jsonl`` + the optional CLV_ALERT_HOOK) and log
    a one-line explanation."""
    from clv import ops

    ti = context.get("ti") or context.get("task_instance")
    error = context.get("exception")
    business_date = None
    with contextlib.suppress(Exception):  # the date is a courtesy in the alert
        business_date = dt.date.fromisoformat(ti.xcom_pull(task_ids="resolve_business_date"))
    ops.alert(
        None,
        f"{getattr(ti, 'task_id', None)} failed: {ops.summarize_error(error)}",
        dag_id=getattr(ti, "dag_id", None),
        task_id=getattr(ti, "task_id", None),
        run_id=getattr(ti, "run_id", None),
        business_date=business_date,
        send=not getattr(error, "notified", False),  # failed checks were sent check by check
    )


def daily_deadline():
    """The daily refresh's deadline (the seed's SLA-miss row): Airflow 3.3's deadline alert, the
    run's logical date (its 02:30 schedule) plus ``CLV_DEADLINE_MINUTES``. The scheduler checks
    it while the run is going and hands a missed deadline to ``deadline_missed`` on the executor.
    None under ``airflow dags test`` (``settings.in_dags_test``): no scheduler watches those runs,
    and Airflow 3.3.2's ``dag.test`` fails at the end of a run that has a deadline."""
    if settings.in_dags_test():
        return None
    from airflow.sdk import DeadlineAlert, DeadlineReference, SyncCallback

    from clv.names import DAILY_DAG

    minutes = settings.deadline_minutes()
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
        interval=dt.timedelta(minutes=minutes),
        callback=SyncCallback(deadline_missed, kwargs={"dag_id": DAILY_DAG, "minutes": minutes}),
        name="serving published",
    )


def deadline_missed(
    context: dict | None = None, dag_id: str | None = None, minutes: float | None = None, **_
):
    """A missed deadline is an alert like a failed task (``ops.alerts``, ``alerts.jsonl``, the
    hook); ``context`` is what Airflow's scheduler sends: the run and the deadline's time."""
    from clv import ops

    run = (context or {}).get("dag_run") or {}
    deadline = (context or {}).get("deadline") or {}
    ops.alert(
        None,
        f"{dag_id} missed its deadline: not finished {minutes:g} minutes after its scheduled start "
        f"(deadline {deadline.get('deadline_time')}, run {run.get('run_id')}, state {run.get('state')})",
        dag_id=dag_id,
        task_id="deadline",
        run_id=run.get("run_id"),
    )
