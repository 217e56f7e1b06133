"""Task bodies the DAG files share: turn an Airflow task context into a call of a pipeline step,
and apply the one retry rule.

A DAG task passes the pipeline function itself (``run_step(pipeline.extract, context, day)``), so
an editor's "find usages" leads from the DAG to the code. The backfill, deploy and rollback DAGs
share their tasks (defined here, at module level, as Airflow task factories): the first checks the
params, then the writer gate, then the business date is read (after the gate: it opens the
warehouse); each DAG file wires them in its own order with ``chain``. Imported when Airflow
parses the DAG files: only Airflow's SDK and light `clv` modules at module level; the pipeline is
imported inside the task bodies.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable

from airflow.sdk import task

from clv import business_date as bd
from clv import settings
from clv.airflow.assets import mart_assets, model_asset, model_assets, serving_asset, upstream_assets
from clv.airflow.sensors import may_write
from clv.errors import ClvError, UserError
from clv.names import POOL, SUMMARY_PREFIX

log = logging.getLogger("clv.dags")


def step_run(context, business_date: dt.date):
    """The ``ops.StepRun`` describing this task."""
    from clv import ops

    ti = context["ti"]
    return ops.StepRun(
        dag_id=ti.dag_id,
        run_id=ti.run_id,
        task_id=ti.task_id,
        try_number=getattr(ti, "try_number", 1) or 1,
        business_date=business_date,
    )


def run_step(func: Callable, context, business_date: str | dt.date, *args, **kwargs):
    """Call a pipeline step for the business date as this task, and end the task's log with its
    summary line (``summary_line``). The one retry rule: an error that retrying cannot fix (a
    user's mistake, a failed check: ``ClvError.retry`` false) fails the task at once; transient
    errors and bugs go to the task's retry policy."""
    from airflow.sdk.exceptions import AirflowFailException

    day = bd.parse(business_date)
    step = step_run(context, day)
    t0 = time.perf_counter()
    try:
        result = func(day, *args, step=step, **kwargs)
    except ClvError as e:
        if not e.retry:
            raise AirflowFailException(str(e)) from e
        raise
    checks = result.get("checks") if isinstance(result, dict) else None
    checks = checks if isinstance(checks, dict) else None  # a layer scan's counts (check_counts)
    models = result.get("models") if isinstance(result, dict) else None
    if models:
        log.info("%s", models_table(models))
    level = logging.WARNING if checks and checks["warned"] else logging.INFO
    log.log(level, "%s", summary_line(step.task_id, time.perf_counter() - t0, step.rows, checks))
    return result


def summary_line(task_id: str, seconds: float, rows: int | None, checks: dict | None) -> str:
    """One line that ends a task's log: what ran, for how long, its rows and checks (warned checks
    by name) and the link to the layer's report (``clv.notify.report_link``: the dashboard's page
    of it, by default). `clv run` prints these lines as the pipeline moves."""
    from clv.notify import report_link

    parts = [f"{SUMMARY_PREFIX} {task_id} done in {seconds:,.1f} s"]
    if rows is not None:
        parts.append(f"{rows:,} rows")
    if checks:
        parts.append(
            f"checks {checks['passed']} passed, {checks['warned']} warned, {checks['failed']} failed"
        )
        if checks["warned_checks"]:
            parts.append("WARNED: " + "; ".join(checks["warned_checks"]))
        if checks.get("report"):
            parts.append(f"report {report_link(checks['report'])}")
    return " | ".join(parts)


def models_table(models: list[dict]) -> str:
    """The models a layer task ran, one line each: rows now, seconds spent on it in this task
    ("-": nothing of it was due) and its audits."""
    width = max(len(m["model"]) for m in models)
    lines = [f"{'model':<{width}}  {'rows':>12}  {'seconds':>8}  audits"]
    for m in models:
        sec = "-" if m["seconds"] is None else f"{m['seconds']:.2f}"
        audits = (
            f"{m['audits_passed']} passed, {m['audits_failed']} failed"
            if m["audits_passed"] or m["audits_failed"]
            else "-"
        )
        lines.append(f"{m['model']:<{width}}  {m['rows']:>12,}  {sec:>8}  {audits}")
    return "\n".join(lines)


def model_events(context, result) -> None:
    """Annotate the Asset event of each model this task ran with its rows, seconds and audits
    (Airflow emits one event per outlet when the task succeeds)."""
    models = result.get("models") if isinstance(result, dict) else None
    events = context.get("outlet_events")
    if not models or events is None:
        return
    outlets = {(a.name, a.uri) for a in context["task"].outlets}
    for m in models:
        asset = model_asset(m["model"])
        if (asset.name, asset.uri) in outlets:
            events[asset].extra = {k: v for k, v in m.items() if k != "model"}


def transform_layer(layer: str, doc_md: str | None = None):
    """The task running one SQLMesh layer and its Soda checks (``clv.pipeline.transform_layer``):
    its inlets are the layer below (the raw tables for staging), its outlets the layer's models,
    each with an Asset event carrying what the run did to it."""

    @task(
        task_id=f"transform_{layer}",
        pool=POOL,
        inlets=upstream_assets(layer),
        outlets=model_assets(layer),
        doc_md=doc_md or f"SQLMesh run of the {layer} models, then the {layer} Soda checks.",
    )
    def transform(business_date: str, **context):
        from clv import pipeline

        result = run_step(pipeline.transform_layer, context, business_date, layer)
        model_events(context, result)
        return result

    return transform


def _fail_fast(error: UserError):
    from airflow.sdk.exceptions import AirflowFailException

    return AirflowFailException(str(error))


def resolve_business_date(context) -> str:
    """The daily refresh's business date (``clv.pipeline.resolve_business_date``): the
    ``business_date`` param; else, with the ``next_simulated_day`` toggle, the day after the
    latest generated batch — chosen once per run and kept (``_chosen_once``), so clearing the run
    processes that day again; else the business date of the run's data interval."""
    from clv import pipeline

    check_params(context)
    params = context["params"]
    dag_run = context["dag_run"]
    try:
        if params.get("next_simulated_day") and not params.get("business_date"):
            day = _chosen_once(context, pipeline.next_simulated_day)
        else:
            day = pipeline.resolve_business_date(
                params.get("business_date") or None,
                context.get("data_interval_start"),
                run_after=getattr(dag_run, "run_after", None),
                next_day=bool(params.get("next_simulated_day")),
            )
    except UserError as e:
        raise _fail_fast(e) from e
    log.info("business date %s (data directory %s)", day, settings.data_dir())
    return day.isoformat()


def _chosen_once(context, choose: Callable[[], dt.date]) -> dt.date:
    """A date chosen from the data folders (the next simulated day), recorded for this run the
    first time, read back after a clear: the run's business date never moves."""
    import json

    ti = context["ti"]
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in ti.run_id)
    path = settings.paths().state / "airflow_runs" / ti.dag_id / f"{safe}.json"
    if path.exists():
        day = bd.parse(json.loads(path.read_text())["business_date"])
        log.info("business date %s: chosen by this run's first attempt (%s)", day, path)
        return day
    day = choose()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"run_id": ti.run_id, "business_date": day.isoformat()}))
    tmp.replace(path)
    return day


def _date_param(context, name: str) -> dt.date | None:
    value = context["params"].get(name)
    try:
        return bd.parse(value, f"{name} date") if value else None
    except UserError as e:
        raise _fail_fast(e) from e


def latest_loaded_or_param(context, name: str) -> str:
    """The date param ``name``, else the latest loaded batch (quality runs, backfills, deploys)."""
    from clv import pipeline

    day = _date_param(context, name) or pipeline.latest_loaded_date()
    if day is None:
        raise _fail_fast(UserError("nothing has been loaded yet: run clv_daily_refresh first"))
    return day.isoformat()


def _models(context) -> list[str] | None:
    from clv import transform

    return transform.model_selectors(context["params"].get("models")) or None


def _range(context) -> dict:
    """The ``models``, ``start`` and ``end`` params of a backfill, a deploy or a restatement."""
    return {
        "models": _models(context),
        "start": _date_param(context, "start"),
        "end": _date_param(context, "end"),
    }


def check_params(context) -> None:
    """Refuse a bad ``environment`` (prod in any spelling, or not a name), ``models`` (anything
    but model names and SQLMesh selectors; none at all with ``restate``), toggle, or
    ``start``/``end``/``business_date`` date param with a one-line reason, before anything is
    touched: the forms' rules (``clv.airflow.params``) again, for a conf that escaped them, and the
    one rule between fields a form cannot hold."""
    from clv import transform

    params = context["params"]
    try:
        if "environment" in params:
            transform.environment_name(params["environment"])
        models = transform.model_selectors(params.get("models"))
        for name in ("promote", "next_simulated_day", "restate"):
            if name in params and not isinstance(params[name], bool):
                raise UserError(f"invalid {name} {params[name]!r}: use true or false")
        if params.get("restate") and not models:
            raise UserError("restate needs models: name the models to recompute (e.g. staging.stg_orders)")
    except UserError as e:
        raise _fail_fast(e) from e
    for name in ("start", "end", "business_date"):
        _date_param(context, name)


# -- The tasks of a backfill, a deploy or a rollback (their DAG files wire them). ----------------


@task(task_id="resolve_business_date", retries=0)
def environment_params(**context) -> str | None:
    """The first task: refuse bad params at once, and read the ``end`` date param if any (the
    latest loaded batch is read after the gate: the warehouse may be busy until then)."""
    check_params(context)
    end = _date_param(context, "end")
    return end.isoformat() if end else None


@task.sensor(poke_interval=15, timeout=4 * 3600, mode="poke", retries=0)
def wait_for_other_writers(**context) -> bool:
    """Wait while another writer DAG's run holds the warehouse or goes first
    (``clv.airflow.sensors``)."""
    return may_write(context)


@task(pool=POOL, retries=0)
def business_date(end: str | None, **context) -> str:
    """Backfills, deploys and rollbacks run as of the ``end`` param, else the latest loaded batch."""
    return end or latest_loaded_or_param(context, "end")


@task(pool=POOL, retries=0)
def plan_and_check_environment(business_date: str, **context):
    """Plan the local models into the ``environment`` param's isolated environment, backfill the
    changed ones for [start, end], run every layer's Soda checks there and review it against prod
    (its XCom carries the review the approval task shows). With ``restate``: the review of a
    restatement in prod (SQLMesh restates unchanged models only there), nothing built yet."""
    from clv import pipeline

    if context["params"].get("restate"):
        return run_step(pipeline.review_restatement, context, business_date, **_range(context))
    return run_step(
        pipeline.stage_environment,
        context,
        business_date,
        context["params"]["environment"],
        **_range(context),
    )


def approve():
    """Stop for a person's approval, the review on the task's page (``clv.airflow.approval``);
    the ``promote`` param skips the question only when every check passed."""
    from clv.airflow.approval import approval_task

    return approval_task()


@task(pool=POOL, retries=0)
def promote(business_date: str, **context):
    """Swap prod to the versions checked in the environment (a virtual update). With ``restate``:
    restate the models in prod, then every layer's checks on prod (a failure stops publish)."""
    from clv import pipeline

    if context["params"].get("restate"):
        return run_step(pipeline.restate, context, business_date, **_range(context))
    return run_step(
        pipeline.promote, context, business_date, context["params"]["environment"], models=_models(context)
    )


@task(pool=POOL, outlets=[*mart_assets(), serving_asset()])
def publish(business_date: str, **context):
    """Rebuild the serving file from prod's marts."""
    from clv import pipeline

    return run_step(pipeline.publish, context, business_date)
