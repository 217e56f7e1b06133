"""The pipeline's steps, one function each, shared by the Airflow DAGs and the `clv` CLI.

Every step takes the data directory and the business date, opens the warehouse only for as long
as it needs it (one writer), records itself in ``ops.pipeline_runs`` and returns a small dict
(JSON-serialisable, so Airflow can keep it as the task's XCom). A step that must stop the run
raises; the caller (a DAG task or the CLI) turns that into a failed task or an exit code.

Daily order: extract → load → scan raw → staging → core → intermediate → marts → publish, where
each layer step runs that layer's SQLMesh models and then its Soda checks on the same connection.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from contextlib import closing
from pathlib import Path

from clv import ops, settings

LAYERS = ("staging", "core", "intermediate", "marts")
DEFAULT_START = dt.date(2022, 1, 1)
DEFAULT_END = dt.date(2024, 12, 31)


class SourceNotReady(Exception):
    """The business day's source files have not landed (yet): retried with back-off."""


class CheckFailed(Exception):
    """An error-level check failed: not transient, so not retried; downstream does not run."""


def source_mode() -> str:
    """``generator`` (default): the synthetic sources produce each business day's batch.
    ``landing``: files are delivered into the landing directory by someone else (your data)."""
    mode = os.environ.get("CLV_SOURCE", "generator")
    if mode not in ("generator", "landing"):
        raise ValueError(f"CLV_SOURCE must be generator or landing, not {mode!r}")
    return mode


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


def resolve_business_date(
    data_dir: Path | None, requested: str | dt.date | None, logical_date: dt.date | None = None
) -> dt.date:
    """The business date a run processes.

    An explicit date wins. Otherwise, with the generator as the source, each run advances the
    simulated business day by one (the first run processes the generated history's end date);
    with delivered files, a run processes the day before its logical date (the 02:30 run handles
    yesterday's batch).
    """
    if requested:
        if isinstance(requested, dt.date):
            return requested
        try:
            return dt.date.fromisoformat(str(requested)[:10])
        except ValueError:
            raise ValueError(f"invalid business_date {requested!r}: use YYYY-MM-DD") from None
    if source_mode() == "generator":
        latest = latest_batch(data_dir)
        return DEFAULT_END if latest is None else latest + dt.timedelta(days=1)
    if logical_date is None:
        raise ValueError("no business_date given and no logical date to derive it from")
    return logical_date - dt.timedelta(days=1)


def extract(data_dir: Path | None, business_date: dt.date, step: ops.StepRun | None = None) -> dict:
    """Make sure the business day's batch has landed.

    Generator mode: generate the history if there is none (ending on the business date), then
    every missing day up to the business date, in order. Landing mode: check the batch folder is
    there; raise ``SourceNotReady`` (retried) if not.
    """
    from generator import runner
    from generator.profiles import GeneratorError

    paths = settings.paths(data_dir)
    step = step or ops.StepRun(task_id="extract", business_date=business_date)
    with ops.recorded(paths.data_dir, step):
        generated, rows = [], 0
        if source_mode() == "landing":
            folder = paths.landing / business_date.isoformat()
            if not (folder / "_manifest.json").exists() and not any(folder.glob("*.csv")):
                raise SourceNotReady(f"no batch for {business_date} in {paths.landing} yet")
        elif not (paths.state / runner.META).exists():
            if any(paths.landing.glob("*/*.csv")):
                raise ValueError(
                    f"{paths.landing} holds files the generator did not make; set CLV_SOURCE=landing "
                    "to process delivered files"
                )
            customers = settings.default_customers()
            start = min(DEFAULT_START, business_date - dt.timedelta(days=365))
            chaos = os.environ.get("CLV_CHAOS", "realistic")
            s = runner.history(paths, customers, start, business_date, chaos=chaos, progress=False)
            generated, rows = [business_date.isoformat()], sum(s.rows.values())
        else:
            meta = runner.read_meta(paths)
            latest = max([dt.date.fromisoformat(meta["end"]), *_batches(paths.landing)])
            day = latest + dt.timedelta(days=1)
            while day <= business_date:
                try:
                    s = runner.day(paths, day, chaos=meta.get("chaos", "realistic"))
                except GeneratorError as e:
                    raise ValueError(str(e)) from None
                generated.append(day.isoformat())
                rows += sum(s.rows.values())
                day += dt.timedelta(days=1)
        step.rows = rows
        step.detail = {"generated": generated}
        return {"business_date": business_date.isoformat(), "generated": generated, "rows": rows}


def load(data_dir: Path | None, business_date: dt.date, step: ops.StepRun | None = None) -> dict:
    """Load every landed file not loaded yet, then prove every row is in raw or in quarantine.

    A file that cannot be read (yet) raises ``SourceNotReady`` after the others have loaded, so
    the task is retried with back-off; a file quarantined whole raises a warning alert."""
    from clv import ingest
    from clv.warehouse import connect

    paths = settings.paths(data_dir)
    step = step or ops.StepRun(task_id="load_raw", business_date=business_date)
    with ops.recorded(paths.data_dir, step):
        summary = ingest.load(paths.data_dir)
        with closing(connect(paths.warehouse)) as con:
            rows = ingest.reconcile(con)
        bad = [r for r in rows if not r["reconciled"]]
        step.rows = summary.rows_loaded
        step.detail = {
            "files": len(summary.files),
            "rows_quarantined": summary.rows_quarantined,
            "failed_files": len(summary.failed),
        }
        if bad:
            raise RuntimeError(
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


def _scan_or_raise(con, layer: str, business_date: dt.date, run_id: str, data_dir: Path, environment=None):
    from clv import quality

    result = quality.scan(
        con,
        layer,
        business_date,
        run_id=run_id,
        data_dir=data_dir,
        raise_on_failure=False,
        environment=environment,
    )
    if not result.ok:
        names = ", ".join(c["name"] for c in result.failed) or "; ".join(result.errors)[:300]
        raise CheckFailed(f"{layer} checks failed: {names} (report: {result.report})")
    return result


def scan_raw(data_dir: Path | None, business_date: dt.date, step: ops.StepRun | None = None) -> dict:
    from clv.warehouse import connect

    paths = settings.paths(data_dir)
    step = step or ops.StepRun(task_id="scan_raw", business_date=business_date)
    with ops.recorded(paths.data_dir, step):
        with closing(connect(paths.warehouse)) as con:
            result = _scan_or_raise(con, "raw", business_date, _run_id(step), paths.data_dir)
        step.rows = len(result.checks)
        return {"line": result.line(), "warned": [c["name"] for c in result.warned]}


def _run_id(step: ops.StepRun) -> str:
    """Reports of one pipeline run share a folder: <business date>-<run id>."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in step.run_id)
    return f"{step.business_date.isoformat()}-{safe}" if step.business_date else safe


def transform_layer(
    data_dir: Path | None, business_date: dt.date, layer: str, step: ops.StepRun | None = None
) -> dict:
    """Run one layer's SQLMesh models for the new intervals, then the layer's Soda checks on the
    same connection. The very first time (no prod environment yet) the staging step builds prod
    with a plan; that is the initial deployment, not a change to existing models."""
    from clv import transform

    if layer not in LAYERS:
        raise ValueError(f"unknown layer {layer!r}; use one of {', '.join(LAYERS)}")
    paths = settings.paths(data_dir)
    step = step or ops.StepRun(task_id=f"transform_{layer}", business_date=business_date)
    with ops.recorded(paths.data_dir, step):
        ctx = transform.context(paths.data_dir)
        try:
            if not transform.has_prod(ctx):
                transform.plan_prod(ctx, business_date)
                how = "planned prod (first build of every model)"
            elif transform.run(ctx, business_date, layer=layer):
                how = "ran"
            else:
                raise transform.TransformError(
                    f"the SQLMesh run of the {layer} models up to {business_date} failed; see the log"
                )
            slowest = {name: round(sec, 2) for name, sec in transform.slowest_models(ctx, 5)}
            con = ctx.engine_adapter.connection
            step.rows = layer_rows(con, layer)
            result = _scan_or_raise(con, layer, business_date, _run_id(step), paths.data_dir)
        finally:
            ctx.close()
        step.detail = {"transform": how, "checks": len(result.checks), "slowest_models": slowest}
        return {"transform": how, "rows": step.rows, "line": result.line()}


def layer_rows(con, schema: str) -> int:
    """Rows across a schema's tables and views (the layer's output)."""
    names = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
        "AND table_catalog = current_database()",
        [schema],
    ).fetchall()
    return sum(con.execute(f'SELECT count(*) FROM {schema}."{n}"').fetchone()[0] for (n,) in names)


def publish(data_dir: Path | None, business_date: dt.date, step: ops.StepRun | None = None) -> dict:
    """Rebuild the serving file from the marts and swap it in atomically."""
    from clv import publish as publish_mod
    from clv.warehouse import connect

    paths = settings.paths(data_dir)
    step = step or ops.StepRun(task_id="publish", business_date=business_date)
    with ops.recorded(paths.data_dir, step):
        with closing(connect(paths.warehouse)) as con:
            counts = publish_mod.publish(con, business_date, paths.data_dir)
        step.rows = sum(counts.values())
        return {"serving": str(paths.serving), "tables": counts}


def stage_environment(
    data_dir: Path | None,
    business_date: dt.date,
    environment: str,
    start: dt.date | None = None,
    end: dt.date | None = None,
    models: list[str] | None = None,
    step: ops.StepRun | None = None,
) -> dict:
    """Plan the local models into an isolated SQLMesh environment (backfilling changed models for
    the range), then run every layer's Soda checks against that environment. Prod is untouched."""
    from clv import transform

    paths = settings.paths(data_dir)
    step = step or ops.StepRun(task_id="plan_environment", business_date=business_date)
    with ops.recorded(paths.data_dir, step):
        ctx = transform.context(paths.data_dir)
        try:
            if not transform.has_prod(ctx):
                raise transform.TransformError(
                    "there is no prod environment yet: run the daily refresh first"
                )
            plan = transform.plan_environment(ctx, environment, business_date, start, end, models)
            changed = sorted({s.name for s in plan.modified_snapshots.values()})
            con = ctx.engine_adapter.connection
            lines = []
            for layer in LAYERS:
                result = _scan_or_raise(
                    con, layer, business_date, _run_id(step), paths.data_dir, environment=environment
                )
                lines.append(result.line())
        finally:
            ctx.close()
        step.rows = len(changed)
        step.detail = {"environment": environment, "changed": changed}
        return {"environment": environment, "changed": changed, "checks": lines}


def promote(
    data_dir: Path | None,
    business_date: dt.date,
    environment: str,
    models: list[str] | None = None,
    step: ops.StepRun | None = None,
) -> dict:
    """Point prod at the versions built and checked in the environment (blue-green swap)."""
    from clv import transform

    paths = settings.paths(data_dir)
    step = step or ops.StepRun(task_id="promote", business_date=business_date)
    with ops.recorded(paths.data_dir, step):
        ctx = transform.context(paths.data_dir)
        try:
            plan = transform.promote(ctx, environment, business_date, models)
            changed = sorted({s.name for s in plan.modified_snapshots.values()})
            con = ctx.engine_adapter.connection
            for layer in LAYERS:
                _scan_or_raise(con, layer, business_date, _run_id(step), paths.data_dir)
        finally:
            ctx.close()
        step.rows = len(changed)
        step.detail = {"environment": environment, "changed": changed}
        return {"environment": environment, "promoted": changed}


DAILY_STEPS = (
    ("extract", extract, ()),
    ("load_raw", load, ()),
    ("scan_raw", scan_raw, ()),
    *((f"transform_{layer}", transform_layer, (layer,)) for layer in LAYERS),
    ("publish", publish, ()),
)


def daily(data_dir: Path | None, business_date: dt.date, run_id: str, echo=print) -> None:
    """The daily refresh without Airflow: the same steps, in the same order, in this process."""
    for task_id, func, args in DAILY_STEPS:
        step = ops.StepRun(dag_id="clv-cli", run_id=run_id, task_id=task_id, business_date=business_date)
        result = func(data_dir, business_date, *args, step=step)
        echo(f"  {task_id}: done" + (f" ({step.rows:,} rows)" if step.rows is not None else ""))
        for line in result.get("lines", []) if isinstance(result, dict) else []:
            echo(f"    {line}")


# -- The morning quality run: each part records its findings; the report gates. ---------------


def _quality_dir(data_dir: Path | None, business_date: dt.date) -> Path:
    folder = settings.paths(data_dir).reports / f"{business_date.isoformat()}-quality"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _quality_part(data_dir, business_date, name: str, ok: bool, summary: str, details) -> dict:
    part = {"part": name, "ok": ok, "summary": summary, "details": details}
    (_quality_dir(data_dir, business_date) / f"{name}.json").write_text(dumps(part))
    return part


def sqlmesh_tests(data_dir: Path | None, business_date: dt.date, step: ops.StepRun | None = None) -> dict:
    """SQLMesh's unit tests (the YAML tests in sqlmesh_project/tests), on an in-memory engine."""
    import io

    from clv import transform

    paths = settings.paths(data_dir)
    step = step or ops.StepRun(task_id="sqlmesh_unit_tests", business_date=business_date)
    with ops.recorded(paths.data_dir, step):
        ctx = transform.context(paths.data_dir)
        out = io.StringIO()
        try:
            result = ctx.test(stream=out)
        finally:
            ctx.close()
        failures = [str(t) for t, _ in [*result.failures, *result.errors]]
        step.rows = result.testsRun
        ok = result.wasSuccessful()
        return _quality_part(
            paths.data_dir,
            business_date,
            "sqlmesh_tests",
            ok,
            f"{result.testsRun} SQLMesh unit tests, {len(failures)} failed",
            {"failed": failures, "output": out.getvalue()[-4000:]},
        )


def sqlmesh_audits(data_dir: Path | None, business_date: dt.date, step: ops.StepRun | None = None) -> dict:
    """Every model's audits over the latest interval (the business date)."""
    from clv import transform

    paths = settings.paths(data_dir)
    step = step or ops.StepRun(task_id="sqlmesh_audits", business_date=business_date)
    with ops.recorded(paths.data_dir, step):
        ctx = transform.context(paths.data_dir)
        try:
            count = sum(len(s.node.audits_with_args) for s in ctx.snapshots.values() if s.is_model)
            ok = ctx.audit(
                business_date.isoformat(),
                business_date.isoformat(),
                execution_time=transform.execution_time(business_date),
            )
        finally:
            ctx.close()
        step.rows = count
        return _quality_part(
            paths.data_dir,
            business_date,
            "sqlmesh_audits",
            bool(ok),
            f"{count} SQLMesh audits over {business_date}: {'all passed' if ok else 'some FAILED'}",
            {},
        )


def full_scan(data_dir: Path | None, business_date: dt.date, step: ops.StepRun | None = None) -> dict:
    """Every layer's Soda checks, whatever their outcome (the report gates, not this step)."""
    from clv import quality
    from clv.warehouse import connect

    paths = settings.paths(data_dir)
    step = step or ops.StepRun(task_id="soda_full_scan", business_date=business_date)
    with ops.recorded(paths.data_dir, step):
        with closing(connect(paths.warehouse)) as con:
            results = [
                quality.scan(
                    con,
                    layer,
                    business_date,
                    run_id=_run_id(step),
                    data_dir=paths.data_dir,
                    raise_on_failure=False,
                )
                for layer in quality.LAYERS
            ]
        step.rows = sum(len(r.checks) for r in results)
        return _quality_part(
            paths.data_dir,
            business_date,
            "soda_scan",
            all(r.ok for r in results),
            "; ".join(r.line().split(" -> ")[0] for r in results),
            {
                r.layer: {
                    "failed": [c["name"] for c in r.failed],
                    "warned": [c["name"] for c in r.warned],
                    "errors": r.errors,
                    "report": str(r.report),
                }
                for r in results
            },
        )


def reconcile_loads(data_dir: Path | None, business_date: dt.date, step: ops.StepRun | None = None) -> dict:
    from clv import ingest
    from clv.warehouse import connect

    paths = settings.paths(data_dir)
    step = step or ops.StepRun(task_id="reconcile_loads", business_date=business_date)
    with ops.recorded(paths.data_dir, step):
        with closing(connect(paths.warehouse)) as con:
            rows = ingest.reconcile(con)
        bad = [r for r in rows if not r["reconciled"]]
        step.rows = sum(r["rows_in_file"] for r in rows)
        return _quality_part(
            paths.data_dir,
            business_date,
            "reconciliation",
            not bad,
            f"{len(rows)} files, {step.rows:,} rows in files = "
            f"{sum(r['rows_in_raw'] for r in rows):,} in raw + "
            f"{sum(r['rows_quarantined'] for r in rows):,} quarantined; {len(bad)} mismatched",
            {"mismatched": bad},
        )


QUALITY_PARTS = ("sqlmesh_tests", "sqlmesh_audits", "soda_scan", "reconciliation")


def reset_quality_report(data_dir: Path | None, business_date: dt.date) -> None:
    """Forget an earlier attempt's parts, so the report only shows this run's findings."""
    folder = _quality_dir(data_dir, business_date)
    for name in (*QUALITY_PARTS, "summary"):
        for f in folder.glob(f"{name}.*"):
            f.unlink()


def quality_report(data_dir: Path | None, business_date: dt.date, step: ops.StepRun | None = None) -> dict:
    """One morning report from the parts; raises when a part failed or is missing."""
    paths = settings.paths(data_dir)
    step = step or ops.StepRun(task_id="morning_report", business_date=business_date)
    with ops.recorded(paths.data_dir, step):
        folder = _quality_dir(paths.data_dir, business_date)
        lines = [f"# Data quality — business date {business_date}", ""]
        problems = []
        for name in QUALITY_PARTS:
            f = folder / f"{name}.json"
            if not f.exists():
                problems.append(f"{name} did not run")
                lines.append(f"- **{name}: did not run**")
                continue
            part = json.loads(f.read_text())
            mark = "ok" if part["ok"] else "FAILED"
            lines.append(f"- {name}: {mark} — {part['summary']}")
            if not part["ok"]:
                problems.append(f"{name}: {part['summary']}")
                for layer, d in (part["details"] or {}).items() if name == "soda_scan" else ():
                    for check in d.get("failed", []):
                        lines.append(f"  - {layer}: failed check **{check}**")
        (folder / "summary.md").write_text("\n".join(lines) + "\n")
        step.rows = len(QUALITY_PARTS) - len(problems)
        if problems:
            raise CheckFailed("morning quality report: " + "; ".join(problems))
        return {"report": str(folder / "summary.md"), "lines": lines[2:]}


def latest_loaded_date(data_dir: Path | None) -> dt.date | None:
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


def dumps(value) -> str:
    return json.dumps(value, default=str)
