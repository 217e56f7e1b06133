"""The pipeline's steps, one function each, shared by the Airflow DAGs and the `clv` CLI.

Every step takes the business date (and the data directory as the keyword ``data_dir``), opens
the warehouse only for as long as it needs it (one writer), records itself in
``ops.pipeline_runs`` and returns a small dict (JSON-serialisable, so Airflow can keep it as the
task's XCom). A step that must stop the run raises a ``clv.errors`` error; the caller (a DAG task
or the CLI) turns it into a failed or retried task or an exit code, by one rule each.

Daily order: extract → load → scan raw → staging → core → intermediate → marts → publish, where
each layer step runs that layer's SQLMesh models and then its Soda checks on the same connection.
"""

from __future__ import annotations

import datetime as dt
import logging
from contextlib import closing
from pathlib import Path

from clv import business_date as bd
from clv import notify, ops, settings
from clv.errors import CheckFailed, TransientError, UserError
from clv.names import CHECKED_LAYERS, DAILY_TASKS, DEFAULT_HISTORY_END, DEFAULT_HISTORY_START, LAYERS

logger = logging.getLogger(__name__)

__all__ = ["CandidateFailed", "CheckFailed", "SourceNotReady"]


class SourceNotReady(TransientError):
    """The business day's batch has not landed, or is still arriving (no manifest yet): retried
    with back-off."""


def _batches(landing: Path) -> list[dt.date]:
    out = []
    if landing.is_dir():
        for p in landing.iterdir():
            if (p / "_manifest.json").exists():  # a batch is complete once its manifest is written
                try:
                    out.append(dt.date.fromisoformat(p.name[:10]))
                except ValueError:
                    continue
    return sorted(set(out))


def latest_batch(data_dir: Path | None = None) -> dt.date | None:
    """The latest business date that has a batch in the landing directory."""
    found = _batches(settings.paths(data_dir).landing)
    return found[-1] if found else None


# A business date taken from Airflow's calendar may lie at most this many days past the latest
# generated batch (generator mode): further, the run would quietly simulate every day in between.
MAX_SIMULATED_CATCH_UP_DAYS = 31


def next_simulated_day(data_dir: Path | None = None) -> dt.date:
    """The demo's next business day with the generator: the day after the latest generated batch
    (the default history's end date before the first)."""
    latest = latest_batch(data_dir)
    return DEFAULT_HISTORY_END if latest is None else latest + bd.ONE_DAY


def resolve_business_date(
    requested: str | dt.date | None,
    interval_start=None,
    *,
    run_after=None,
    next_day: bool = False,
    data_dir: Path | None = None,
) -> dt.date:
    """The business date a run processes, from what the run says, never from what the folders
    hold: an explicit date; else, when asked for (``next_day``, the demo with the generator), the
    next simulated day; else the business date of the run's data interval (a scheduled or
    backfilled run, or a manual one given a logical date); else the day before the run started.

    With the generator, a date from Airflow's calendar more than ``MAX_SIMULATED_CATCH_UP_DAYS``
    past the latest generated batch is refused: the generator would simulate every day between.
    """
    if requested and next_day:
        raise UserError("give business_date or next_simulated_day, not both")
    if requested:
        return bd.parse(requested)
    generator = settings.source_mode() == "generator"
    if next_day:
        if not generator:
            raise UserError(
                "next_simulated_day needs the synthetic generator as the source: give a business_date"
            )
        return next_simulated_day(data_dir)
    if interval_start is not None:
        day = bd.from_data_interval(interval_start)
    elif run_after is not None:
        day = bd.from_run_after(run_after)
    else:
        raise UserError("no business_date given and no data interval to derive it from")
    latest = latest_batch(data_dir) if generator else None
    if latest is not None and (day - latest).days > MAX_SIMULATED_CATCH_UP_DAYS:
        raise UserError(
            f"this run's business date {day} is {(day - latest).days} days after the latest generated "
            f"batch {latest}: trigger with next_simulated_day or a business_date, or backfill the "
            "simulated dates"
        )
    return day


def landed_batch(business_date: dt.date, landing: Path) -> list[str]:
    """The business day's delivered batch folders, once every one of them is complete.

    A folder belongs to the day when its name starts with the date (``2025-01-31``,
    ``2025-01-31-<anything>``). It is complete once its ``_manifest.json`` is written: the sender
    writes it last. Raises ``SourceNotReady`` while the day has no folder, or while any of its
    folders has files but no manifest yet — loading half a day would let its interval be processed
    without the rest."""
    day = business_date.isoformat()
    folders = (
        sorted(p for p in landing.glob(f"{day}*") if p.is_dir() and not p.name.startswith("."))
        if landing.is_dir()
        else []
    )
    waiting = [p.name for p in folders if not (p / "_manifest.json").exists()]
    if waiting:
        raise SourceNotReady(
            f"the batch for {business_date} is still arriving: {', '.join(waiting)} in {landing} "
            "has no _manifest.json yet"
        )
    if not folders:
        raise SourceNotReady(f"no batch for {business_date} in {landing} yet")
    return [p.name for p in folders]


def extract(business_date: dt.date, *, data_dir: Path | None = None, step: ops.StepRun | None = None) -> dict:
    """Make sure the business day's batch has landed.

    Generator mode: generate the history if there is none (ending on the business date), then
    every missing day up to the business date, in order. Landing mode: the day's batch must be
    complete (``landed_batch``); ``SourceNotReady`` (retried with back-off, then an alert) if not.
    """
    from generator import runner

    paths = settings.paths(data_dir)
    step = step or ops.StepRun(task_id="extract", business_date=business_date)
    with ops.recorded(paths.data_dir, step):
        generated, rows = [], 0
        if settings.source_mode() == "landing":
            step.detail = {"batches": landed_batch(business_date, paths.landing)}
            return {"business_date": business_date.isoformat(), "batches": step.detail["batches"]}
        elif not (paths.state / runner.META).exists():
            if any(paths.landing.glob("*/*.csv")):
                raise UserError(
                    f"{paths.landing} holds files the generator did not make; set CLV_SOURCE=landing "
                    "to process delivered files"
                )
            customers = settings.customers()
            start = min(DEFAULT_HISTORY_START, business_date - dt.timedelta(days=365))
            chaos = settings.chaos()
            s = runner.history(paths, customers, start, business_date, chaos=chaos, progress=False)
            generated, rows = [business_date.isoformat()], sum(s.rows.values())
        else:
            meta = runner.read_meta(paths)
            latest = max([dt.date.fromisoformat(meta["end"]), *_batches(paths.landing)])
            day = latest + bd.ONE_DAY
            while day <= business_date:
                s = runner.day(paths, day, chaos=meta.get("chaos", "realistic"))
                generated.append(day.isoformat())
                rows += sum(s.rows.values())
                day += bd.ONE_DAY
        step.rows = rows
        step.detail = {"generated": generated}
        return {"business_date": business_date.isoformat(), "generated": generated, "rows": rows}


def load(business_date: dt.date, *, data_dir: Path | None = None, step: ops.StepRun | None = None) -> dict:
    """Load every landed file not loaded yet, then prove every row is in raw or in quarantine.

    A file that cannot be read (yet) raises ``SourceNotReady`` after the others have loaded, so
    the task is retried with back-off; a file quarantined whole raises a warning alert."""
    from clv import ingest, quarantine
    from clv.warehouse import connect

    paths = settings.paths(data_dir)
    step = step or ops.StepRun(task_id="load_raw", business_date=business_date)
    with ops.recorded(paths.data_dir, step):
        summary = ingest.load(paths.data_dir)
        with closing(connect(paths.warehouse)) as con:
            rows = ingest.reconcile(con)
            corrected = quarantine.record_corrections(con, paths.landing)
        bad = [r for r in rows if not r["reconciled"]]
        step.rows = summary.rows_loaded
        step.detail = {
            "files": len(summary.files),
            "rows_quarantined": summary.rows_quarantined,
            "failed_files": len(summary.failed),
            "quarantined_rows_corrected": corrected,
        }
        if bad:
            raise CheckFailed(
                f"reconciliation failed for {len(bad)} files, e.g. {bad[0]['source_file']}: "
                f"{bad[0]['rows_in_file']} rows in file vs {bad[0]['rows_in_raw']} in raw + "
                f"{bad[0]['rows_quarantined']} quarantined"
            )
        if summary.failed:
            # Everything else is committed; a retry loads only what could not be read.
            first = summary.failed[0]
            raise SourceNotReady(
                f"{len(summary.failed)} landed files could not be read yet, e.g. {first.path}: "
                f"{first.message}"
            )
        whole = [f for f in summary.files if f.status == ingest.QUARANTINED]
        if whole:
            ops.alert(
                paths.data_dir,
                f"{len(whole)} landed files were quarantined whole, e.g. {whole[0].path}: {whole[0].message}",
                severity="warning",
                dag_id=step.dag_id,
                task_id=step.task_id,
                run_id=step.run_id,
                business_date=business_date,
            )
        return {"lines": summary.lines(), "rows_loaded": summary.rows_loaded, "files": len(summary.files)}


def check_counts(result) -> dict:
    """A layer's Soda outcome as a task returns it (its XCom): passed, warned and failed counts,
    the warned checks' names and the report's path, for the task's summary line and the run's
    note."""
    n, warned, failed = len(result.checks), len(result.warned), len(result.failed)
    return {
        "passed": n - warned - failed,
        "warned": warned,
        "failed": failed,
        "warned_checks": [c["name"] for c in result.warned],
        "report": str(result.report) if result.report else None,
    }


def _scan_or_raise(
    con,
    layer: str,
    business_date: dt.date,
    run_id: str,
    data_dir: Path,
    environment=None,
    step=None,
    model_seconds: dict[str, float] | None = None,
):
    """Record the layer's metrics (and the run times of the models the step ran) and judge them
    against their history (prod only), then run the layer's Soda checks, which gate on those
    verdicts too; anomalies alert with their bands, and in prod the failed and warned checks and
    the anomalies go to their owners (``clv.notify``)."""
    from clv import anomalies, quality

    verdicts = []
    if environment in (None, "", "prod"):
        recorded, verdicts = anomalies.observe(con, layer, business_date, run_id, model_seconds)
        if step is not None:
            step.detail[f"metrics_{layer}"] = {
                "values": len(recorded.rows),
                "seconds": round(recorded.seconds, 3),
            }
    result = quality.scan(
        con,
        layer,
        business_date,
        run_id=run_id,
        data_dir=data_dir,
        raise_on_failure=False,
        environment=environment,
    )
    text = anomalies.alert_text(layer, verdicts)
    if text:
        ops.alert(
            data_dir,
            f"anomaly {text} (report: {result.report})",
            severity="error" if any(v.status == anomalies.FAIL for v in verdicts) else "warning",
            dag_id=getattr(step, "dag_id", None),
            task_id=getattr(step, "task_id", None),
            run_id=getattr(step, "run_id", None),
            business_date=business_date,
            send=False,  # notify.layer_checked sends each anomaly to its owners
        )
    if environment in (None, "", "prod"):
        notify.layer_checked(layer, business_date, result, verdicts, data_dir=data_dir)
    if not result.ok:
        failed = CheckFailed(f"{layer} checks failed: {result.failure_names()} (report: {result.report})")
        failed.notified = environment in (None, "", "prod")  # sent check by check just above
        raise failed
    return result


def scan_raw(
    business_date: dt.date, *, data_dir: Path | None = None, step: ops.StepRun | None = None
) -> dict:
    from clv.warehouse import connect

    paths = settings.paths(data_dir)
    step = step or ops.StepRun(task_id="scan_raw", business_date=business_date)
    with ops.recorded(paths.data_dir, step):
        with closing(connect(paths.warehouse)) as con:
            result = _scan_or_raise(con, "raw", business_date, step.report_id, paths.data_dir, step=step)
        step.rows = len(result.checks)
        return {
            "line": result.line(),
            "warned": [c["name"] for c in result.warned],
            "checks": check_counts(result),
        }


def transform_layer(
    business_date: dt.date, layer: str, *, data_dir: Path | None = None, step: ops.StepRun | None = None
) -> dict:
    """Run one layer's SQLMesh models for the missing intervals (the new day, and any day a failed
    run left out), then the layer's Soda checks on the same connection. The very first time (no
    prod environment yet) the staging step builds prod with a plan; that is the initial
    deployment, not a change to existing models.

    The staging step also takes in late loads — rows whose batch date SQLMesh had already
    processed — by restating them (`clv.transform`): the restated intervals are recomputed by
    this step and the layer steps after it, each behind its checks, and a warning alert says
    which batch dates came late."""
    from clv import transform

    if layer not in LAYERS:
        raise UserError(f"unknown layer {layer!r}; use one of {', '.join(LAYERS)}")
    paths = settings.paths(data_dir)
    step = step or ops.StepRun(task_id=f"transform_{layer}", business_date=business_date)
    with ops.recorded(paths.data_dir, step):
        restatement = None
        try:
            with transform.shared_context(paths.data_dir) as (ctx, loaded):
                step.detail["sqlmesh_context"] = loaded
                if not transform.has_prod(ctx):
                    transform.plan_prod(ctx, business_date)
                    how = "planned prod (first build of every model)"
                else:
                    outcome = transform.run(ctx, business_date, layer=layer)
                    restatement = outcome.restatement
                    if not outcome:
                        raise transform.TransformError(
                            f"the SQLMesh run of the {layer} models up to {business_date} failed; see the log"
                        )
                    how = "restated late loads, then ran" if restatement else "ran"
                slowest = {name: round(sec, 2) for name, sec in transform.slowest_models(ctx, 5)}
                con = ctx.engine_adapter.connection
                models = model_outcomes(ctx, con, layer)
                step.rows = sum(m["rows"] for m in models)
                seconds = {m["model"]: m["seconds"] for m in models if m["seconds"] is not None}
                result = _scan_or_raise(
                    con,
                    layer,
                    business_date,
                    step.report_id,
                    paths.data_dir,
                    step=step,
                    model_seconds=seconds,
                )
        finally:
            if restatement:  # the intervals are cleared: said whether or not the run went through
                step.detail["restated"] = {
                    "batch_dates": [d.isoformat() for d in restatement.batch_dates],
                    "load_ids": restatement.load_ids,
                    "models": restatement.models,
                }
                ops.alert(
                    paths.data_dir,
                    restatement.line(),
                    severity="warning",
                    dag_id=step.dag_id,
                    task_id=step.task_id,
                    run_id=step.run_id,
                    business_date=business_date,
                )
        step.detail.update(
            {
                "transform": how,
                "checks": len(result.checks),
                "slowest_models": slowest,
                # every model this step evaluated (the Data health tab's trends, the slow-model alert)
                "model_seconds": seconds,
            }
        )
        return {
            "transform": how,
            "rows": step.rows,
            "line": result.line(),
            "checks": check_counts(result),
            "models": models,
        }


def table_rows(con, schema: str) -> dict[str, int]:
    """Rows per table and view of a schema (a layer's output), by name."""
    names = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
        "AND table_catalog = current_database() ORDER BY table_name",
        [schema],
    ).fetchall()
    return {n: con.execute(f'SELECT count(*) FROM {schema}."{n}"').fetchone()[0] for (n,) in names}


def layer_rows(con, schema: str) -> int:
    """Rows across a schema's tables and views (the layer's output)."""
    return sum(table_rows(con, schema).values())


def model_outcomes(ctx, con, layer: str) -> list[dict]:
    """What a layer step did to each of its models: ``model`` (schema.model), ``rows`` now,
    ``seconds`` spent evaluating it in this step (None: nothing of it was due) and its audits
    ``audits_passed`` / ``audits_failed`` — the layer task's log table and Asset events."""
    from clv import transform

    seconds = dict(transform.slowest_models(ctx, n=10_000))
    audits = transform.model_audits(ctx)
    out = []
    for table, rows in table_rows(con, layer).items():
        name = f"{layer}.{table}"
        passed, failed = audits.get(name, (0, 0))
        sec = seconds.get(name)
        out.append(
            {
                "model": name,
                "rows": rows,
                "seconds": None if sec is None else round(sec, 2),
                "audits_passed": passed,
                "audits_failed": failed,
            }
        )
    return out


def observe(
    business_date: dt.date,
    *,
    layers: tuple[str, ...] = CHECKED_LAYERS,
    data_dir: Path | None = None,
    step: ops.StepRun | None = None,
) -> dict:
    """Record every layer's metrics for the business date and judge them against their history,
    outside a layer step (`clv metrics`): the daily layer steps do the same for their own layer
    before their Soda scan. Layers not built yet are skipped."""
    from clv import anomalies
    from clv.warehouse import connect

    paths = settings.paths(data_dir)
    step = step or ops.StepRun(task_id="observe", business_date=business_date)
    with ops.recorded(paths.data_dir, step):
        out: dict[str, dict] = {}
        with closing(connect(paths.warehouse)) as con:
            built = {
                r[0]
                for r in con.execute("SELECT DISTINCT table_schema FROM information_schema.tables").fetchall()
            }
            for layer in layers:
                if layer not in built:
                    continue
                recorded, verdicts = anomalies.observe(con, layer, business_date, step.report_id)
                out[layer] = {
                    "line": recorded.line(),
                    "seconds": round(recorded.seconds, 3),
                    "values": len(recorded.rows),
                    "statuses": {
                        s: sum(v.status == s for v in verdicts) for s in sorted({v.status for v in verdicts})
                    },
                    "anomalies": [
                        v.explanation() for v in verdicts if v.status in (anomalies.FAIL, anomalies.WARN)
                    ],
                    "failed": any(v.status == anomalies.FAIL for v in verdicts),
                }
        step.rows = sum(o["values"] for o in out.values())
        step.detail = {layer: o["statuses"] for layer, o in out.items()}
        return out


def publish(business_date: dt.date, *, data_dir: Path | None = None, step: ops.StepRun | None = None) -> dict:
    """Rebuild the serving file from the marts and swap it in atomically. Returns the serving
    file, rows per table and the published marts' headline figures (customers, predicted value,
    revenue at risk, ...: ``clv.review.totals``), which the run's note in Airflow shows."""
    from clv import publish as publish_mod
    from clv import review
    from clv.warehouse import connect

    paths = settings.paths(data_dir)
    step = step or ops.StepRun(task_id="publish", business_date=business_date)
    with ops.recorded(paths.data_dir, step):
        with closing(connect(paths.warehouse)) as con:
            counts = publish_mod.publish(con, business_date, paths.data_dir)
            figures = review.totals(con, layers=("marts",))
        step.rows = sum(counts.values())
        return {"serving": str(paths.serving), "tables": counts, "figures": figures}


def stage_environment(
    business_date: dt.date,
    environment: str,
    *,
    data_dir: Path | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    models: list[str] | None = None,
    step: ops.StepRun | None = None,
) -> dict:
    """Plan the local models into an isolated SQLMesh environment (backfilling changed models for
    the range), run every layer's Soda checks against that environment, and review it against
    prod (``clv.review``: plan, data diff of the changed marts, checks, business figures). Prod
    is untouched. The review is written beside the environment's layer reports
    (``review_report``) and its Markdown returned (``review_markdown``, the approval page); when an
    error-level check failed, ``CandidateFailed`` carries it after it is written."""
    from clv import quality, review, transform

    paths = settings.paths(data_dir)
    step = step or ops.StepRun(task_id="plan_environment", business_date=business_date)
    with ops.recorded(paths.data_dir, step):
        ctx = transform.context(paths.data_dir)
        try:
            if not transform.has_prod(ctx):
                raise transform.TransformError(
                    "there is no prod environment yet: run the daily refresh first"
                )
            planned = transform.plan_environment(ctx, environment, business_date, start, end, models)
            con = ctx.engine_adapter.connection
            scans = [
                quality.scan(
                    con,
                    layer,
                    business_date,
                    run_id=step.report_id,
                    data_dir=paths.data_dir,
                    raise_on_failure=False,
                    environment=environment,
                )
                for layer in LAYERS
            ]
            candidate = review.build(
                ctx, environment, business_date, planned.backfills, scans, transform.model_audits(ctx)
            )
        finally:
            ctx.close()
        report = candidate.write(paths.reports / f"{step.report_id}@{environment}")
        logger.info("%s", candidate.text())
        step.rows = len(candidate.changes)
        step.detail = {
            "environment": environment,
            "changed": candidate.changed_models,
            "review": str(report),
            "failed": len(candidate.failed) + len(candidate.scan_errors),
            "warned": len(candidate.warned),
        }
        if not candidate.ok:
            names = [c["name"] for c in candidate.failed] + [
                e["message"][:100] for e in candidate.scan_errors
            ]
            raise CandidateFailed(
                f"checks failed in environment {environment}: {', '.join(names[:5])} (review: {report})",
                candidate,
            )
        return {
            "environment": environment,
            "changed": candidate.changed_models,
            "scan_lines": [s.line() for s in scans],
            "ok": candidate.ok,
            "warned": len(candidate.warned),
            "review_report": str(report),  # review.md; review.json beside it (Review.read)
            "review_markdown": candidate.markdown(),
        }


class CandidateFailed(CheckFailed):
    """An error-level check failed in the environment: it cannot be promoted. Carries the review
    (``review``), so the caller can show what failed next to the plan and the deltas."""

    def __init__(self, message: str, review) -> None:
        super().__init__(message)
        self.review = review


def promote(
    business_date: dt.date,
    environment: str,
    *,
    data_dir: Path | None = None,
    models: list[str] | None = None,
    step: ops.StepRun | None = None,
) -> dict:
    """Point prod at the versions built and checked in the environment (blue-green swap)."""
    from clv import rollback, transform

    paths = settings.paths(data_dir)
    step = step or ops.StepRun(task_id="promote", business_date=business_date)
    with ops.recorded(paths.data_dir, step):
        ctx = transform.context(paths.data_dir)
        try:
            plan = transform.promote(ctx, environment, business_date, models)
            rollback.record_promotion(ctx, plan, environment, step)  # what `clv rollback` undoes
            changed = sorted({s.name for s in plan.modified_snapshots.values()})
            con = ctx.engine_adapter.connection
            for layer in LAYERS:
                _scan_or_raise(con, layer, business_date, step.report_id, paths.data_dir)
        finally:
            ctx.close()
        step.rows = len(changed)
        step.detail = {"environment": environment, "changed": changed}
        return {"environment": environment, "promoted": changed}


def review_restatement(
    business_date: dt.date,
    *,
    data_dir: Path | None = None,
    models: list[str] | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    step: ops.StepRun | None = None,
) -> dict:
    """The approval page of a restatement (``clv.transform.plan_restatement``): what prod will
    recompute, in place. Nothing is changed; a selector matching no model is refused here."""
    from clv import review, transform
    from clv.warehouse import connect

    paths = settings.paths(data_dir)
    step = step or ops.StepRun(task_id="review_restatement", business_date=business_date)
    with ops.recorded(paths.data_dir, step):
        ctx = transform.context(paths.data_dir)
        try:
            plan, _ = transform.plan_restatement(ctx, business_date, models or [], start, end)
        finally:
            ctx.close()
        with closing(connect(paths.warehouse)) as con:
            figures = review.totals(con, layers=("marts",))
        markdown = review.restatement_markdown(plan, figures)
        logger.info("%s", markdown)
        step.rows = len(plan.cleared)
        step.detail = {"restate": plan.models, "start": plan.start.isoformat(), "end": plan.end.isoformat()}
        return {
            "restate": plan.models,
            "start": plan.start.isoformat(),
            "end": plan.end.isoformat(),
            "cleared": sorted(plan.cleared),
            # nothing is built before approval: the checks run on prod after the restatement
            "ok": True,
            "in_place": True,
            "review_markdown": markdown,
        }


def restate(
    business_date: dt.date,
    *,
    data_dir: Path | None = None,
    models: list[str] | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    step: ops.StepRun | None = None,
) -> dict:
    """Restate models in prod for [start, end] (``clv.transform.restate``: in place, SQLMesh
    restates unchanged models in prod only), then run every layer's Soda checks on prod. A failed
    model or error-level check raises: the serving file, published after this step, stays as it
    was."""
    from clv import transform

    paths = settings.paths(data_dir)
    step = step or ops.StepRun(task_id="restate", business_date=business_date)
    with ops.recorded(paths.data_dir, step):
        ctx = transform.context(paths.data_dir)
        try:
            plan, outcome = transform.restate(ctx, business_date, models or [], start, end)
            if not outcome:
                raise transform.TransformError(
                    f"the prod run of the restatement failed ({plan.line()}): see the SQLMesh log; "
                    "the serving file is unchanged"
                )
            con = ctx.engine_adapter.connection
            for layer in CHECKED_LAYERS:
                _scan_or_raise(con, layer, business_date, step.report_id, paths.data_dir, step=step)
        finally:
            ctx.close()
        step.rows = len(plan.cleared)
        step.detail = {"restated": plan.models, "cleared": sorted(plan.cleared), "line": plan.line()}
        return {"restated": plan.models, "cleared": sorted(plan.cleared), "line": plan.line()}


def write_correction(
    business_date: dt.date, file: str | Path, *, data_dir: Path | None = None, step: ops.StepRun | None = None
) -> dict:
    """Hand a data steward's corrected export back as a new delivery: a batch in the landing
    folder that references the original (`clv.quarantine.reprocess`). The load and the layer steps
    after it take it in; its batch date is the original's, so the staging step restates it."""
    from clv import quarantine

    paths = settings.paths(data_dir)
    step = step or ops.StepRun(task_id="write_correction", business_date=business_date)
    with ops.recorded(paths.data_dir, step):
        out = quarantine.reprocess(Path(file), data_dir=paths.data_dir)
        step.rows = out["rows"]
        step.detail = out
        return out


DAILY_STEPS = (
    (extract, ()),
    (load, ()),
    (scan_raw, ()),
    *((transform_layer, (layer,)) for layer in LAYERS),
    (publish, ()),
)
assert len(DAILY_STEPS) == len(DAILY_TASKS)


def daily(business_date: dt.date, run_id: str, *, data_dir: Path | None = None, echo=print) -> None:
    """The daily refresh without Airflow: the same steps, in the same order, in this process."""
    _run_steps(DAILY_TASKS, DAILY_STEPS, business_date, run_id, data_dir, echo)


def refresh(business_date: dt.date, run_id: str, *, data_dir: Path | None = None, echo=print) -> None:
    """The daily steps after extract: load what landed, check raw, run every layer (restating late
    loads such as a correction), publish. `clv quarantine reprocess` runs it after writing a
    correction; the ``clv_quarantine_reprocess`` DAG runs the same steps as tasks."""
    _run_steps(DAILY_TASKS[1:], DAILY_STEPS[1:], business_date, run_id, data_dir, echo)


def _run_steps(task_ids, steps, business_date: dt.date, run_id: str, data_dir: Path | None, echo) -> None:
    for task_id, (func, args) in zip(task_ids, steps, strict=True):
        step = ops.StepRun(dag_id="clv-cli", run_id=run_id, task_id=task_id, business_date=business_date)
        result = func(business_date, *args, data_dir=data_dir, step=step)
        echo(f"  {task_id}: done" + (f" ({step.rows:,} rows)" if step.rows is not None else ""))
        for line in result.get("lines", []) if isinstance(result, dict) else []:
            echo(f"    {line}")


def latest_loaded_date(data_dir: Path | None = None) -> dt.date | None:
    """The latest business date whose batch loaded into the warehouse (None before the first)."""
    import duckdb

    from clv.warehouse import connect

    paths = settings.paths(data_dir)
    if not paths.warehouse.exists():
        return None
    with closing(connect(paths.warehouse)) as con:
        try:
            row = con.execute(
                "SELECT max(batch_date) FROM ops.load_manifest WHERE status = 'loaded'"
            ).fetchone()
        except duckdb.CatalogException:  # nothing loaded yet: no manifest table
            return None
    return row[0] if row else None
