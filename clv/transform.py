"""SQLMesh: the transformation layers, through its Python API.

Time is explicit: a run for business date D is given the execution time `clv.business_date`
maps D to, so the daily interval [D, D+1) — the batch that landed on D — is the last one it
processes, and SCD-2 versions opened by that run are valid from the end of D.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path

from clv import settings
from clv.business_date import execution_time
from clv.contract import RAW_LINEAGE, SOURCES
from clv.errors import TransientError, UserError
from clv.names import ENVIRONMENT_PATTERN

EXTERNAL_MODELS = settings.SQLMESH_PROJECT / "external_models.yaml"
logger = logging.getLogger(__name__)


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


def _environ(data_dir: Path | None) -> None:
    paths = settings.paths(data_dir)
    os.environ["CLV_WAREHOUSE"] = str(paths.warehouse)
    os.environ["CLV_SPARK_DIR"] = str(paths.spark)
    os.environ.setdefault("SQLMESH__DISABLE_ANONYMIZED_ANALYTICS", "1")
    # SQLMesh loads models in forked worker processes by default; forking a process that already
    # runs DuckDB's threads can crash the child (seen as a segfault in the test suite).
    os.environ.setdefault("MAX_FORK_WORKERS", "1")


def context(data_dir: Path | None = None, wait_seconds: float | None = None, **kwargs):
    """A SQLMesh context on this project and the data directory's warehouse, on the gateway
    ``CLV_SQLMESH_GATEWAY`` names (duckdb by default), its connection open: like every writer, it
    waits up to ``CLV_LOCK_WAIT_SECONDS`` while another process (a manual `clv load`, say) holds
    the warehouse, then stops with ``WarehouseBusy``. On the Spark gateway the raw zone is first
    brought up to the warehouse's (clv/spark.py), so the models read the same rows there.

    ``ctx.console.model_seconds`` collects how long each model took to evaluate (all batches,
    its audits included) during the context's plans and runs: see ``slowest_models``."""
    gateway = settings.sqlmesh_gateway()
    _environ(data_dir)
    from sqlmesh import Context

    if gateway == "spark":
        from clv import spark

        spark.require_java()
        spark.decimals_from_pandas()
    ctx = Context(paths=str(settings.sqlmesh_project()), gateway=gateway, **kwargs)
    ctx.console = _timing_console()  # plans and runs create their schedulers with ctx.console
    try:
        if gateway == "spark":
            logger.info(spark.sync_raw(ctx.engine_adapter.spark, data_dir, wait_seconds).line())
        else:
            _open_waiting(ctx, settings.paths(data_dir).warehouse, wait_seconds)
    except BaseException:
        ctx.close()
        raise
    return ctx


def _timing_console():
    """SQLMesh's silent console, keeping each model's evaluation time."""
    from sqlmesh.core.console import NoopConsole

    class TimingConsole(NoopConsole):
        def __init__(self) -> None:
            super().__init__()
            self.model_seconds: dict[str, float] = {}

        def update_snapshot_evaluation_progress(self, snapshot, interval, batch_idx, duration_ms, *a, **kw):
            if duration_ms is not None:
                name = ".".join(snapshot.name.replace('"', "").split(".")[-2:])  # schema.model
                self.model_seconds[name] = self.model_seconds.get(name, 0.0) + duration_ms / 1000

    return TimingConsole()


def slowest_models(ctx, n: int = 8) -> list[tuple[str, float]]:
    """The models that took longest in this context's plans and runs, slowest first."""
    seconds = getattr(ctx.console, "model_seconds", {})
    return sorted(seconds.items(), key=lambda item: -item[1])[:n]


def _open_waiting(ctx, warehouse: Path, wait_seconds: float | None) -> None:
    """SQLMesh opens DuckDB on first use and fails at once on a lock held elsewhere: open it now,
    waiting as ``clv.warehouse.connect`` does."""
    from clv.warehouse import wait_for_lock

    wait_for_lock(lambda: ctx.engine_adapter.connection.execute("SELECT 1"), warehouse, wait_seconds)


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


class TransformError(TransientError):
    """A model or a blocking audit failed: downstream layers must not refresh. Retried once by
    the layer task (a crashed process); a model that fails again stops the run."""


class PromotionRefused(UserError):
    """Prod would get model versions that were not built and checked in the environment."""


def environment_name(value: str) -> str:
    """A SQLMesh environment name a user gave: lower case letters, digits and underscores,
    starting with a letter, and never prod in any spelling (prod changes only by promotion)."""
    import re

    name = (value or "").strip()
    if name.lower() == "prod":
        raise UserError(f"environment {value!r} is prod: plan into an isolated environment and promote it")
    if not re.fullmatch(ENVIRONMENT_PATTERN, name):
        raise UserError(
            f"invalid environment {value!r}: use lower-case letters, digits and underscores, "
            "starting with a letter (at most 40 characters)"
        )
    return name


# SQLMesh 0.236's model selector grammar (sqlmesh/core/selector.py, `parse`), which it applies to
# each selection wrapped in parentheses:
#     selection := unary ["&" unary] ["|" selection]
#     unary     := "^" unary | term
#     term      := ["+"] [kind ":"] ( ["*"] word ["*"] ["+"] | "(" selection ["+"] ")" | "*" )
# Its tokenizer takes any run of other characters as a word and its parser ignores what it cannot
# read ("a b" selects a), so the words are checked here: model names, tag names, the two resource
# types, and git branch names that cannot be read as an option of the git command SQLMesh runs.
_SELECTOR_TOKEN = r"\s*(?:([()&|^+*:])|([^\s()&|^+*:]+))"
_SELECTOR_OPERATORS = frozenset("()&|^+*:")
_SELECTOR_WORDS = {
    None: r"\.?[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*\.?",  # schema.model, or marts. of marts.*
    "tag": r"[A-Za-z0-9_][A-Za-z0-9_-]*",
    "resource_type": r"model|audit",
    "git": r"[A-Za-z0-9_](?!.*\.\.)[A-Za-z0-9_./-]*",  # a branch; never an option (-...)
}
_SELECTOR_KINDS = {
    None: "a model name",
    "tag": "a tag name",
    "resource_type": "a resource type (model or audit)",
    "git": "a git branch name",
}
_SELECTOR_HELP = (
    "use model names or SQLMesh selectors such as marts.mart_clv, 'marts.*', +marts.mart_clv, "
    "marts.mart_clv+, tag:name, git:main"
)


def model_selectors(values) -> list[str]:
    """Model names and SQLMesh selectors a user gave (the ``models`` of a backfill), checked
    against SQLMesh's selector grammar before anything runs; one line says what is wrong."""
    if isinstance(values, str):
        values = [values]
    selected = []
    for value in values or []:
        text = str(value).strip()
        problem = _selector_problem(text)
        if problem:
            raise UserError(f"invalid model selector {value!r}: {problem}; {_SELECTOR_HELP}")
        selected.append(text)
    return selected


def _selector_problem(text: str) -> str | None:
    import re

    tokens = [m.group(1) or m.group(2) for m in re.finditer(_SELECTOR_TOKEN, text)]
    if not tokens:
        return "it is empty"
    pos = 0

    def peek(offset: int = 0) -> str | None:
        return tokens[pos + offset] if pos + offset < len(tokens) else None

    def take(token: str) -> bool:
        nonlocal pos
        if peek() == token:
            pos += 1
            return True
        return False

    def selection() -> str | None:
        problem = unary()
        if not problem and take("&"):
            problem = unary()
        if not problem and take("|"):
            problem = selection()
        return problem

    def unary() -> str | None:
        return unary() if take("^") else term()

    def term() -> str | None:
        nonlocal pos
        take("+")
        kind = None
        word = peek()
        if word and word.lower() in ("tag", "resource_type", "git") and peek(1) == ":":
            kind, pos = word.lower(), pos + 2
        star = take("*")
        word = peek()
        if word is not None and word not in _SELECTOR_OPERATORS:
            pos += 1
            if not re.fullmatch(_SELECTOR_WORDS[kind], word):
                return f"{word!r} is not {_SELECTOR_KINDS[kind]}"
            rstar = peek() == "*"
            if (star or rstar) and kind in ("resource_type", "git"):
                return f"{kind} takes no wildcard"
            if (word.startswith(".") and not star) or (word.endswith(".") and not rstar):
                return f"{word!r} is not {_SELECTOR_KINDS[kind]}"
            take("*")
            take("+")
            return None
        if not star and take("("):
            problem = selection()
            take("+")
            return problem or (None if take(")") else "a parenthesis is not closed")
        if star:
            return None
        return f"{_SELECTOR_KINDS[kind]} is missing " + (f"before {word!r}" if word else "at the end")

    problem = selection()
    if problem:
        return problem
    if pos < len(tokens):
        return f"SQLMesh would ignore {' '.join(tokens[pos:])!r}"
    return None


def plan_environment(
    ctx,
    environment: str,
    business_date: dt.date,
    start: dt.date | None = None,
    end: dt.date | None = None,
    models: list[str] | None = None,
):
    """Build the local model versions in an isolated virtual environment: changed models are
    backfilled into new tables for [start, end] (default: their whole history); prod's tables
    and views are not touched. Every model gets a view in ``<layer>__<environment>``."""
    environment = environment_name(environment)
    plan = ctx.plan(
        environment,
        start=start.isoformat() if start else None,
        end=end.isoformat() if end else None,
        execution_time=execution_time(business_date),
        select_models=models or None,
        include_unmodified=True,
        auto_apply=True,
        no_prompts=True,
        skip_tests=False,
    )
    return plan


def environment_snapshot_ids(ctx, environment: str) -> set:
    env = ctx.state_reader.get_environment(environment)
    if env is None:
        raise PromotionRefused(f"there is no environment {environment!r} to promote; plan it first")
    return {s.snapshot_id for s in env.snapshots}


def promote(ctx, environment: str, business_date: dt.date, models: list[str] | None = None):
    """Swap prod to the versions built in the environment (a virtual update: views repointed,
    nothing recomputed). Refused when the local models differ from what the environment holds,
    so prod only ever gets versions that were built and checked in isolation."""
    environment = environment_name(environment)
    checked = environment_snapshot_ids(ctx, environment)
    plan = ctx.plan_builder(
        "prod",
        execution_time=execution_time(business_date),
        select_models=models or None,
        skip_tests=True,
    ).build()
    unchecked = sorted(s.name for s in plan.new_snapshots if s.snapshot_id not in checked)
    unchecked += sorted(
        s.name
        for s_id, s in plan.modified_snapshots.items()
        if s_id not in checked and s_id not in plan.context_diff.removed_snapshots and s.name not in unchecked
    )
    if unchecked:
        raise PromotionRefused(
            f"the models changed since environment {environment!r} was built and checked: "
            + ", ".join(unchecked[:10])
            + f"; plan {environment!r} again before promoting"
        )
    if plan.has_changes or plan.requires_backfill:
        ctx.apply(plan)
    return plan
