"""SQLMesh: the transformation layers, through its Python API.

Time is explicit: a run for business date D is given execution time D + 1 day (00:00), so the
daily interval [D, D+1) — the batch that landed on D — is the last one it processes, and SCD-2
versions opened by that run are valid from the end of D.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from clv import settings
from clv.contract import SOURCES

PROJECT = settings.PROJECT_ROOT / "sqlmesh_project"
EXTERNAL_MODELS = PROJECT / "external_models.yaml"
RAW_LINEAGE = {
    "_load_id": "INT",
    "_batch_date": "DATE",
    "_row_number": "BIGINT",
    "_loaded_at": "TIMESTAMP",
    "_source_file": "TEXT",
    "_file_sha256": "TEXT",
    "_batch": "TEXT",
}
LAYERS = ("staging", "core", "intermediate", "marts")


def external_models_yaml() -> str:
    """The raw tables as SQLMesh external models, written from the source contract."""
    lines = [
        "# Generated from clv/contract.py by `clv transform --write-external-models`; do not edit.",
        "# The raw zone's views: the contract's columns plus the loader's lineage columns.",
    ]
    for src in SOURCES.values():
        lines += [f"- name: raw.{src.name}", f"  description: {src.system} export, as loaded", "  columns:"]
        for c in src.columns:
            lines.append(f"    {c.name}: {c.type.replace('VARCHAR', 'TEXT')}")
        for name, typ in RAW_LINEAGE.items():
            lines.append(f"    {name}: {typ}")
    return "\n".join(lines) + "\n"


def execution_time(business_date: dt.date) -> str:
    return (business_date + dt.timedelta(days=1)).isoformat()


def _environ(data_dir: Path | None) -> None:
    paths = settings.paths(data_dir)
    os.environ["CLV_WAREHOUSE"] = str(paths.warehouse)
    os.environ.setdefault("SQLMESH__DISABLE_ANONYMIZED_ANALYTICS", "1")
    # SQLMesh loads models in forked worker processes by default; forking a process that already
    # runs DuckDB's threads can crash the child (seen as a segfault in the test suite).
    os.environ.setdefault("MAX_FORK_WORKERS", "1")


def context(data_dir: Path | None = None, **kwargs):
    """A SQLMesh context on this project and the data directory's warehouse."""
    _environ(data_dir)
    from sqlmesh import Context

    return Context(paths=str(PROJECT), **kwargs)


def plan_prod(ctx, business_date: dt.date, environment: str | None = None):
    """Create or change the models and backfill everything up to the business date."""
    return ctx.plan(
        environment,
        execution_time=execution_time(business_date),
        auto_apply=True,
        no_prompts=True,
        skip_tests=True,
    )


def run(ctx, business_date: dt.date, layer: str | None = None, environment: str | None = None) -> bool:
    """Process the new intervals up to the business date (all layers, or one layer's models)."""
    select = [f"{layer}.*"] if layer else None
    status = ctx.run(
        environment,
        execution_time=execution_time(business_date),
        select_models=select,
        no_auto_upstream=layer is not None,
    )
    return not status.is_failure  # "nothing to do" (no new interval) is a success


def has_prod(ctx) -> bool:
    return ctx.state_reader.get_environment("prod") is not None


def refresh(ctx, business_date: dt.date) -> str:
    """The first time, plan prod (create every model and backfill the history); afterwards run
    the new intervals. Model changes are deployed with a plan, never by a run."""
    if not has_prod(ctx):
        plan_prod(ctx, business_date)
        return "planned"
    if not run(ctx, business_date):
        raise TransformError(f"the SQLMesh run up to {business_date} failed; see the log above")
    return "ran"


class TransformError(Exception):
    """A model or a blocking audit failed: downstream layers must not refresh."""
