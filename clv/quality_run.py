"""The morning quality run (the `clv_quality_checks` DAG and `clv quality`): SQLMesh's unit tests,
SQLMesh's audits over the latest interval, every layer's Soda checks and the load reconciliation,
each recorded as one part of the day's report; ``report`` sums them up and gates.

Each part writes ``reports/<date>-quality/<part>.json`` whatever its outcome, so one failing part
never hides another; only ``report`` raises.
"""

from __future__ import annotations

import datetime as dt
import json
from contextlib import closing
from pathlib import Path

from clv import business_date as bd
from clv import ops, settings
from clv.errors import CheckFailed
from clv.names import CHECKED_LAYERS


def dumps(value) -> str:
    return json.dumps(value, default=str)


def _quality_dir(data_dir: Path | None, business_date: dt.date) -> Path:
    folder = settings.paths(data_dir).reports / f"{business_date.isoformat()}-quality"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _quality_part(data_dir, business_date, name: str, ok: bool, summary: str, details) -> dict:
    part = {"part": name, "ok": ok, "summary": summary, "details": details}
    (_quality_dir(data_dir, business_date) / f"{name}.json").write_text(dumps(part))
    return part


def sqlmesh_tests(
    business_date: dt.date, *, data_dir: Path | None = None, step: ops.StepRun | None = None
) -> dict:
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


def sqlmesh_audits(
    business_date: dt.date, *, data_dir: Path | None = None, step: ops.StepRun | None = None
) -> dict:
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
                execution_time=bd.execution_time(business_date),
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


def full_scan(
    business_date: dt.date, *, data_dir: Path | None = None, step: ops.StepRun | None = None
) -> dict:
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
                    run_id=step.report_id,
                    data_dir=paths.data_dir,
                    raise_on_failure=False,
                )
                for layer in CHECKED_LAYERS
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


def reconcile_loads(
    business_date: dt.date, *, data_dir: Path | None = None, step: ops.StepRun | None = None
) -> dict:
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


PARTS = ("sqlmesh_tests", "sqlmesh_audits", "soda_scan", "reconciliation")


def reset_report(business_date: dt.date, *, data_dir: Path | None = None) -> None:
    """Forget an earlier attempt's parts, so the report only shows this run's findings."""
    folder = _quality_dir(data_dir, business_date)
    for name in (*PARTS, "summary"):
        for f in folder.glob(f"{name}.*"):
            f.unlink()


def report(business_date: dt.date, *, data_dir: Path | None = None, step: ops.StepRun | None = None) -> dict:
    """One morning report from the parts; raises when a part failed or is missing."""
    paths = settings.paths(data_dir)
    step = step or ops.StepRun(task_id="morning_report", business_date=business_date)
    with ops.recorded(paths.data_dir, step):
        folder = _quality_dir(paths.data_dir, business_date)
        lines = [f"# Data quality — business date {business_date}", ""]
        problems = []
        for name in PARTS:
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
        step.rows = len(PARTS) - len(problems)
        if problems:
            raise CheckFailed("morning quality report: " + "; ".join(problems))
        return {"report": str(folder / "summary.md"), "lines": lines[2:]}
