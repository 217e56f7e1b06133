"""What the DAG files share: retry policies, the failure callback, and the task bodies.

Imported by the files in ``dags/`` when Airflow parses them, so it imports nothing heavy at module
level: the pipeline (DuckDB, SQLMesh, Soda, pandas, the generator) is imported inside the task
bodies. Each task body turns the Airflow context into an ``ops.StepRun`` and calls one function of
``clv.pipeline``; the logic lives there, shared with the `clv` CLI.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os

from clv import settings

log = logging.getLogger("clv.dags")

POOL = "clv_warehouse"  # created by `clv bootstrap` (clv/airflow_env.py); one slot
OWNER = "clv-data-platform"
WRITER_DAGS = ("clv_daily_refresh", "clv_quality_checks", "clv_backfill", "clv_deploy")


def retry_delay_seconds() -> float:
    """The first retry delay of extract and load, ``CLV_RETRY_DELAY_SECONDS`` (default 20 s).

    Read when the DAG files are parsed. Tests shorten it to watch a real retry in seconds."""
    value = os.environ.get("CLV_RETRY_DELAY_SECONDS", "20")
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:
        raise ValueError(f"CLV_RETRY_DELAY_SECONDS must be a number of seconds >= 0, not {value!r}")
    return seconds


# Ingestion waits out transient source problems: 3 retries, exponential back-off, capped.
INGEST_RETRIES = {
    "retries": 3,
    "retry_delay": dt.timedelta(seconds=retry_delay_seconds()),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": dt.timedelta(minutes=10),
}
# Transforms get one retry (a crashed process, a lock), after 1.5 times the ingest delay (30 s by
# default); failed checks are never retried.
TRANSFORM_RETRIES = {"retries": 1, "retry_delay": dt.timedelta(seconds=1.5 * retry_delay_seconds())}


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
    dag_id = getattr(ti, "dag_id", None)
    task_id = getattr(ti, "task_id", None)
    run_id = getattr(ti, "run_id", None)
    business_date = None
    with contextlib.suppress(Exception):  # the date is a courtesy in the alert
        business_date = dt.date.fromisoformat(ti.xcom_pull(task_ids="resolve_business_date"))
    summary = ops.summarize_error(error)
    ops.alert(
        None,
        f"{task_id} failed: {summary}",
        dag_id=dag_id,
        task_id=task_id,
        run_id=run_id,
        business_date=business_date,
    )


def step(context, business_date: str | dt.date | None):
    """The ``ops.StepRun`` describing this task."""
    from clv import ops

    ti = context["ti"]
    day = dt.date.fromisoformat(business_date) if isinstance(business_date, str) else business_date
    return ops.StepRun(
        dag_id=ti.dag_id,
        run_id=ti.run_id,
        task_id=ti.task_id,
        try_number=getattr(ti, "try_number", 1) or 1,
        business_date=day,
    )


def call(func_name: str, context, business_date, *args, **kwargs):
    """Run ``clv.pipeline.<func_name>``; a failed check or a bad parameter fails the task without
    retries (retrying cannot fix it)."""
    from airflow.sdk.exceptions import AirflowFailException

    from clv import pipeline

    day = dt.date.fromisoformat(business_date) if isinstance(business_date, str) else business_date
    try:
        return getattr(pipeline, func_name)(None, day, *args, step=step(context, business_date), **kwargs)
    except (pipeline.CheckFailed, ValueError) as e:
        raise AirflowFailException(str(e)) from e
    except Exception as e:
        from clv.ingest import IngestError, RunawayBatch
        from clv.transform import PromotionRefused

        # Retrying cannot fix these: a promotion of unchecked models, a file over the count guard
        # (raise CLV_MAX_ROWS_PER_FILE or fix the delivery), a landing path that is not there.
        if isinstance(e, PromotionRefused | RunawayBatch | IngestError):
            raise AirflowFailException(str(e)) from e
        raise


def resolve_business_date(context) -> str:
    from clv import pipeline

    params = context["params"]
    logical = context.get("logical_date")
    day = pipeline.resolve_business_date(
        None, params.get("business_date") or None, logical.date() if logical else None
    )
    log.info("business date %s (data directory %s)", day, settings.data_dir())
    return day.isoformat()


def resolve_quality_date(context) -> str:
    """The quality run checks the latest loaded business date (or the one given)."""
    from clv import pipeline

    requested = context["params"].get("business_date")
    day = dt.date.fromisoformat(requested) if requested else pipeline.latest_loaded_date(None)
    if day is None:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException("nothing has been loaded yet: run clv_daily_refresh first")
    pipeline.reset_quality_report(None, day)
    return day.isoformat()


def mart_assets() -> list:
    """One Asset per mart (the lineage the UI shows), named after the SQLMesh models."""
    from airflow.sdk import Asset

    folder = settings.PROJECT_ROOT / "sqlmesh_project" / "models" / "marts"
    return [
        Asset(name=f"marts.{p.stem}", uri=f"duckdb://warehouse/marts/{p.stem}", group="clv")
        for p in sorted(folder.glob("*.sql"))
    ]


def serving_asset():
    from airflow.sdk import Asset

    return Asset(name="serving.duckdb", uri="file://clv/serving.duckdb", group="clv")


def other_writers_running(context) -> int:
    """Running runs of the other DAGs that write the warehouse (deploy, backfill, daily, quality)."""
    ti = context["ti"]
    return sum(ti.get_dr_count(dag_id=d, states=["running"]) for d in WRITER_DAGS if d != ti.dag_id)


def resolve_backfill_date(context) -> str:
    """Backfills and deploys run as of the latest loaded batch (or the ``end`` param)."""
    from airflow.sdk.exceptions import AirflowFailException

    from clv import pipeline

    end = context["params"].get("end")
    try:
        day = dt.date.fromisoformat(end) if end else pipeline.latest_loaded_date(None)
    except ValueError:
        raise AirflowFailException(f"invalid end date {end!r}: use YYYY-MM-DD") from None
    if day is None:
        raise AirflowFailException("nothing has been loaded yet: run clv_daily_refresh first")
    return day.isoformat()


def _date_param(context, name: str) -> dt.date | None:
    from airflow.sdk.exceptions import AirflowFailException

    value = context["params"].get(name)
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        raise AirflowFailException(f"invalid {name} date {value!r}: use YYYY-MM-DD") from None


def environment_tasks() -> None:
    """The tasks of a backfill or a deploy, inside the calling DAG: plan the local models into the
    ``environment`` param's isolated environment and check every layer there; then, only if the
    ``promote`` param is set, swap prod to those versions and republish the serving file."""
    from airflow.sdk import task

    @task(retries=0)
    def resolve_business_date(**context) -> str:
        return resolve_backfill_date(context)

    @task.sensor(poke_interval=15, timeout=4 * 3600, mode="poke", retries=0)
    def wait_for_other_writers(**context) -> bool:
        return other_writers_running(context) == 0

    @task(pool=POOL, retries=0)
    def plan_and_check_environment(business_date: str, **context):
        p = context["params"]
        return call(
            "stage_environment",
            context,
            business_date,
            p["environment"],
            start=_date_param(context, "start"),
            end=_date_param(context, "end"),
            models=list(p.get("models") or []) or None,
        )

    @task.short_circuit(retries=0)
    def promotion_requested(**context) -> bool:
        return bool(context["params"]["promote"])

    @task(pool=POOL, retries=0)
    def promote(business_date: str, **context):
        p = context["params"]
        return call(
            "promote", context, business_date, p["environment"], models=list(p.get("models") or []) or None
        )

    @task(pool=POOL, outlets=[*mart_assets(), serving_asset()])
    def publish(business_date: str, **context):
        return call("publish", context, business_date)

    day = resolve_business_date()
    gate = promotion_requested()
    day >> wait_for_other_writers() >> plan_and_check_environment(day) >> gate
    gate >> promote(day) >> publish(day)


DAILY_DOC = """
### CLV daily refresh
Every morning at 02:30 (UTC): the business day's batch is **extracted** (generated, or waited for
in the landing folder), **loaded** into the warehouse's raw zone (bad rows quarantined, every row
reconciled), **checked** (Soda, raw), then each SQLMesh layer — **staging, core, intermediate,
marts** — is **run and checked** in its own task, and the marts are **published** to
`serving.duckdb` for the dashboard.

A failed error-level check stops the layers below it: the marts and the serving file keep the
last good data, and an alert lands in `ops.alerts`. Every task records its status, duration and
rows in `ops.pipeline_runs`. Rerunning a failed task redoes only that step (SQLMesh tracks which
intervals are done).

**Params** — `business_date` (YYYY-MM-DD, optional): the business day to process. Empty: with the
synthetic generator, the day after the latest batch; with your own files (`CLV_SOURCE=landing`),
the day before the run's logical date.
"""

QUALITY_DOC = """
### CLV quality checks
At 03:30 (UTC), after the refresh: SQLMesh's unit tests, SQLMesh audits for the latest intervals,
a full Soda scan of every layer, and the load reconciliation — summed up in one morning report
(`reports/<date>-quality/summary.md` in the data directory). The report task fails when anything
failed, which raises an alert.
"""

BACKFILL_DOC = """
### CLV backfill (manual)
Builds the local models for a date range in an **isolated SQLMesh virtual environment**
(`environment`, default `backfill`), runs every layer's Soda checks against that environment,
and — only if `promote` is set and everything passed — swaps prod to the checked versions (a
virtual update: the seed's blue-green swap). Prod is untouched otherwise; inspect the environment's
schemas (`marts__backfill`, ...) first. SQLMesh backfills models whose definition differs from
prod; to reprocess unchanged models, restate them in prod (`sqlmesh plan --restate-model`).

**Params** — `start`, `end` (YYYY-MM-DD, optional: default the models' whole history),
`models` (list of model names or `layer.*` selectors; empty: all), `environment`, `promote`.
"""

DEPLOY_DOC = """
### CLV deploy (manual)
The path for model changes: `plan` the local models into an isolated environment (`deploy` by
default), run every layer's checks there, then promote to prod and republish the serving file.
Waits while another warehouse-writing DAG runs, so a deploy and the scheduled refresh never
overlap.
"""
