"""Undo a bad promotion: put prod back to the model versions, and so the data, it served before.

Every promotion (``clv.pipeline.promote``: `clv deploy`, `clv backfill --promote` and their DAGs)
records prod's SQLMesh snapshots before and after it in ``ops.promotions``. A rollback takes the
latest promotion not rolled back yet and applies a SQLMesh plan to prod whose snapshots are the
ones prod had before it, read back from SQLMesh's state (with their model definitions as they were
then: the model files need not be reverted). Their tables still hold what they held, so the plan
is a virtual update: prod's views are pointed back at those tables, nothing is recomputed. (If
prod has run days since the promotion, the old versions catch up on those days, as any run would.)

Rollbacks stack: a second one undoes the promotion before. A rollback is refused, with one line,
when prod changed since the promotion by another way than a recorded promotion, or when SQLMesh's
janitor has already dropped the previous versions: a version that no environment uses is kept for
``snapshot_ttl`` (one week by default) after it left prod, then the next prod run drops it
(README, "Undoing a promotion").
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from clv import ops, settings
from clv.business_date import execution_time
from clv.errors import UserError

DDL = """CREATE TABLE IF NOT EXISTS ops.promotions (
    plan_id VARCHAR NOT NULL, promoted_at TIMESTAMP NOT NULL, environment VARCHAR NOT NULL,
    business_date DATE, dag_id VARCHAR, run_id VARCHAR, changed VARCHAR NOT NULL,
    snapshots_before VARCHAR NOT NULL, snapshots_after VARCHAR NOT NULL,
    rolled_back_at TIMESTAMP, rolled_back_by VARCHAR)"""


class RollbackRefused(UserError):
    """There is nothing to roll back, or prod cannot be put back safely."""


def _ids(snapshots) -> dict[str, str]:
    """Snapshot identifiers by model name (SQLMesh's fully qualified name)."""
    return {s.name: s.identifier for s in snapshots}


def _differ(a: dict[str, str], b: dict[str, str]) -> list[str]:
    return sorted(n for n in a.keys() | b.keys() if a.get(n) != b.get(n))


def _ensure(con) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS ops")
    con.execute(DDL)


def _short(name: str) -> str:
    return ".".join(name.replace('"', "").split(".")[-2:])


def record_promotion(ctx, plan, environment: str, step) -> None:
    """Keep prod's snapshots before and after a promotion that changed it (called by
    ``clv.pipeline.promote`` right after the plan is applied, on the context's connection)."""
    before = _ids(plan.context_diff.environment_snapshots)
    prod = ctx.state_reader.get_environment("prod")
    after = _ids(prod.snapshots)
    changed = _differ(before, after)
    if not changed:
        return
    con = ctx.engine_adapter.connection
    _ensure(con)
    con.execute(
        "INSERT INTO ops.promotions (plan_id, promoted_at, environment, business_date, dag_id, run_id, "
        "changed, snapshots_before, snapshots_after) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            prod.plan_id,
            dt.datetime.now(),
            environment,
            step.business_date,
            step.dag_id,
            step.run_id,
            json.dumps([_short(n) for n in changed]),
            json.dumps(before),
            json.dumps(after),
        ],
    )


def latest_promotion(con) -> dict | None:
    """The latest promotion not rolled back yet (None: there is none)."""
    _ensure(con)
    row = con.execute(
        "SELECT plan_id, promoted_at, environment, changed, snapshots_before, snapshots_after "
        "FROM ops.promotions WHERE rolled_back_at IS NULL ORDER BY promoted_at DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    keys = ("plan_id", "promoted_at", "environment", "changed", "before", "after")
    out = dict(zip(keys, row))
    for k in ("changed", "before", "after"):
        out[k] = json.loads(out[k])
    return out


def restore_previous(ctx, business_date: dt.date, by: str = "clv") -> dict:
    """Put prod back to the snapshots it had before the latest promotion (see the module's
    docstring); return what was restored."""
    from sqlmesh.core.context_diff import ContextDiff
    from sqlmesh.core.plan import PlanBuilder
    from sqlmesh.core.snapshot import SnapshotId

    con = ctx.engine_adapter.connection
    promotion = latest_promotion(con)
    if promotion is None:
        raise RollbackRefused("there is no promotion to roll back (ops.promotions has none left)")
    what = f"the promotion of {promotion['environment']!r} at {promotion['promoted_at']:%Y-%m-%d %H:%M:%S}"
    prod = ctx.state_reader.get_environment("prod")
    moved = _differ(_ids(prod.snapshots) if prod else {}, promotion["after"])
    if moved:
        raise RollbackRefused(
            f"prod changed since {what} by other means than a promotion ({', '.join(_short(n) for n in moved[:8])}); "
            "roll back by deploying the model code you want"
        )
    wanted = [SnapshotId(name=n, identifier=i) for n, i in promotion["before"].items()]
    snapshots = ctx.state_reader.get_snapshots(wanted)
    restored = _differ(promotion["before"], promotion["after"])
    gone = [
        _short(s_id.name)
        for s_id in wanted
        if s_id not in snapshots
        or (
            s_id.name in restored
            and snapshots[s_id].is_model
            and not snapshots[s_id].is_symbolic
            and not ctx.engine_adapter.table_exists(snapshots[s_id].table_name())
        )
    ]
    if gone:
        raise RollbackRefused(
            f"the versions prod had before {what} are gone ({', '.join(sorted(set(gone))[:8])}): SQLMesh's "
            "janitor drops versions no environment uses snapshot_ttl after they left prod; "
            "deploy the previous model code instead (it recomputes them)"
        )
    diff = ContextDiff.create(
        "prod",
        {s.name: s for s in snapshots.values()},
        "prod",
        ctx.state_reader,
        environment_statements=ctx.state_reader.get_environment_statements("prod"),
        gateway_managed_virtual_layer=ctx.config.gateway_managed_virtual_layer,
        infer_python_dependencies=ctx.config.infer_python_dependencies,
    )
    plan = PlanBuilder(
        diff,
        execution_time=execution_time(business_date),
        apply=ctx.apply,
        environment_suffix_target=ctx.config.environment_suffix_target,
        environment_catalog_mapping=ctx.environment_catalog_mapping,
        console=ctx.console,
    ).build()
    if plan.new_snapshots:  # every snapshot came from the state: nothing new can appear
        raise AssertionError(f"a rollback plan has new snapshots: {sorted(plan.new_snapshots)}")
    caught_up = sorted({_short(i.name) for i in plan.missing_intervals})
    ctx.apply(plan)
    con.execute(
        "UPDATE ops.promotions SET rolled_back_at = ?, rolled_back_by = ? WHERE plan_id = ?",
        [dt.datetime.now(), by, promotion["plan_id"]],
    )
    return {
        "promotion": what,
        "restored": [_short(n) for n in restored],
        "caught_up": caught_up,
    }


def roll_back(
    business_date: dt.date, *, data_dir: Path | None = None, step: ops.StepRun | None = None
) -> dict:
    """The pipeline step (`clv rollback`, the clv_rollback DAG): undo the latest promotion. The
    caller republishes the serving file."""
    from clv import transform

    paths = settings.paths(data_dir)
    step = step or ops.StepRun(task_id="rollback", business_date=business_date)
    with ops.recorded(paths.data_dir, step):
        ctx = transform.context(paths.data_dir)
        try:
            out = restore_previous(ctx, business_date, by=f"{step.dag_id} {step.run_id}")
        finally:
            ctx.close()
        step.rows = len(out["restored"])
        step.detail = out
        return out
