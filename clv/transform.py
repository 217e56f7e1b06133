"""SQLMesh: the transformation layers, through its Python API.

Time is explicit: a run for business date D is given the execution time `clv.business_date`
maps D to, so the daily interval [D, D+1) — the batch that landed on D — is the last one it
processes, and SCD-2 versions opened by that run are valid from the end of D.

Late rows are restated, never skipped. Staging reads raw by batch date, one daily interval at a
time, and SQLMesh runs an interval once. A load whose batch date SQLMesh has already processed (a
batch that completed after its day ran, a correction of quarantined rows, a replayed batch)
would never reach staging on its own. So every run that includes staging first looks for loads
newer than the staging high-water mark (``ops.staging_watermark``: every load up to it is in
staging) whose interval is already processed, and restates them: the intervals of those sources'
staging models and of every model downstream are cleared in SQLMesh's state, and the run itself
— layer by layer, each behind its checks — recomputes them. Staging and the facts are
incremental by unique key or read the whole history through them, so they are recomputed from
their first interval (SQLMesh restates unique-key models only whole); the two models whose
restatement is disabled to protect their history (``core.dim_customers``, SCD type 2, and the
daily ``core.fct_customer_snapshot``) have their latest interval re-evaluated, which adds what
changed without rewriting history. Models tagged ``as_known`` record only what the run knew on
its own business date (the at-risk history, the prediction ledger): their latest interval is
cleared only when it is the run's own business date (a rerun of that date, e.g. a quarantine
correction, records it again with the corrected data); an earlier date's interval is left alone,
since re-evaluating it with the new run's business date would write nothing for it and so erase
it. Each restatement is recorded in ``ops.restatements``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from clv import settings
from clv.business_date import execution_time
from clv.contract import RAW_LINEAGE, SOURCES
from clv.errors import TransientError, UserError
from clv.names import ENVIRONMENT_PATTERN

EXTERNAL_MODELS = settings.SQLMESH_PROJECT / "external_models.yaml"
AS_KNOWN = "as_known"  # the tag of the models whose past a restatement never clears (see above)
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
    settings.force_refit()  # read by the fitted models as they run: a malformed value stops here, in one line
    _environ(data_dir)
    from sqlmesh import Context

    if gateway == "spark":
        from clv import spark

        spark.require_java()
        spark.decimals_from_pandas()
    _sql_at_debug()
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


# --- One context per process ------------------------------------------------------------------
#
# Loading the project (parsing ~60 models, their Python environments, the linter) costs seconds.
# Under `airflow dags test` (what `clv run` runs) and `clv run --no-airflow` every task runs in one
# process, so the layer steps share one loaded context. Between steps it holds no connection: other
# steps of the same process (the load, the raw scan, publish) open the warehouse themselves, and
# other processes (a manual `clv load`) may take it, so the context's DuckDB connections are closed
# when a step ends and reopened, waiting for the lock like every writer, when the next one starts.
# SQLMesh's state is read afresh each time (a new state sync): another process may have run or
# planned in between. A context is reused only for the same project files (paths, sizes and
# modification times), warehouse, gateway and CLV_/SQLMESH__ environment; anything else closes it
# and loads a new one. A step that fails drops it. Off with CLV_REUSE_SQLMESH_CONTEXT=0.


@dataclass
class _Shared:
    key: tuple
    ctx: object
    load_seconds: float
    uses: int = 0


_shared: _Shared | None = None


def _project_signature(project: Path) -> tuple:
    """The project's files as SQLMesh loads them: a changed, added or removed file changes it."""
    out = []
    for p in sorted(project.rglob("*")):
        rel = p.relative_to(project)
        if rel.parts[0] in (".cache", "logs") or "__pycache__" in rel.parts or not p.is_file():
            continue
        st = p.stat()
        out.append((str(rel), st.st_size, st.st_mtime_ns))
    return tuple(out)


def _reuse_key(data_dir: Path | None) -> tuple:
    _environ(data_dir)
    env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(("CLV_", "SQLMESH__"))))
    project = settings.sqlmesh_project().resolve()
    warehouse = settings.paths(data_dir).warehouse.resolve()
    return (str(project), str(warehouse), settings.sqlmesh_gateway(), env, _project_signature(project))


def drop_shared_context() -> None:
    """Close and forget the process's shared context (the next step loads a new one)."""
    global _shared
    if _shared is not None:
        shared, _shared = _shared, None
        try:
            _release(shared.ctx)
        except Exception:  # a context that failed may not close cleanly; it is gone either way
            logger.debug("closing the shared SQLMesh context failed", exc_info=True)


@contextmanager
def shared_context(data_dir: Path | None = None, wait_seconds: float | None = None):
    """A SQLMesh context for one step, loaded once per process and reused by the next steps (see
    above); its connections are closed when the step ends. Yields ``(ctx, how)``, ``how`` saying
    whether the context was loaded (and in how many seconds) or reused."""
    global _shared
    import time

    if not settings.reuse_sqlmesh_context() or settings.sqlmesh_gateway() != "duckdb":
        t0 = time.perf_counter()
        ctx = context(data_dir, wait_seconds)
        try:
            yield ctx, f"loaded in {time.perf_counter() - t0:.1f} s (reuse off)"
        finally:
            ctx.close()
        return
    key = _reuse_key(data_dir)
    if _shared is not None and _shared.key != key:
        drop_shared_context()
    if _shared is None:
        t0 = time.perf_counter()
        ctx = context(data_dir, wait_seconds)  # opens the connection, waiting for the lock
        _shared = _Shared(key, ctx, time.perf_counter() - t0)
        how = f"loaded in {_shared.load_seconds:.1f} s"
    else:
        ctx = _shared.ctx
        ctx._state_sync = None  # SQLMesh 0.236 caches snapshots and intervals in its state sync
        ctx.console = _timing_console()
        try:
            _open_waiting(ctx, settings.paths(data_dir).warehouse, wait_seconds)
        except BaseException:
            drop_shared_context()
            raise
        how = f"reused (loaded once in this process, {_shared.load_seconds:.1f} s)"
    _shared.uses += 1
    try:
        yield ctx, how
    except BaseException:
        drop_shared_context()
        raise
    else:
        _release(ctx)


def _release(ctx) -> None:
    """Close every connection of a context that stays loaded: no lock is held between steps.
    ``Context.close`` closes the scheduler's and the state's adapters, which exist only once a
    plan or run made them; the context's own adapter is closed here too (a context that is
    dropped closes it when it is collected)."""
    ctx.close()
    ctx.engine_adapter.close()


class _SqlAtDebugLevel(logging.Filter):
    """SQLMesh logs every statement its scheduler runs at INFO (a mart's `COMMENT ON COLUMN`
    statements were most of a task's log): record them at DEBUG instead, shown only when the
    logger is set to DEBUG. A task's log keeps what a person needs: models, rows, time, checks."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO and str(record.msg).startswith("Executing SQL"):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


def _sql_at_debug() -> None:
    engine_log = logging.getLogger("sqlmesh.core.engine_adapter.base")
    if not any(isinstance(f, _SqlAtDebugLevel) for f in engine_log.filters):
        engine_log.addFilter(_SqlAtDebugLevel())


def _timing_console():
    """SQLMesh's silent console, keeping each model's evaluation time and audit outcomes (a
    failed blocking audit stops the plan or run; a failed non-blocking one is counted here)."""
    from sqlmesh.core.console import NoopConsole

    class TimingConsole(NoopConsole):
        def __init__(self) -> None:
            super().__init__()
            self.model_seconds: dict[str, float] = {}
            self.model_audits: dict[str, list[int]] = {}  # schema.model -> [passed, failed]

        def update_snapshot_evaluation_progress(
            self,
            snapshot,
            interval,
            batch_idx,
            duration_ms,
            num_audits_passed=0,
            num_audits_failed=0,
            *a,
            **kw,
        ):
            name = _short(snapshot.name)
            if duration_ms is not None:
                self.model_seconds[name] = self.model_seconds.get(name, 0.0) + duration_ms / 1000
            audits = self.model_audits.setdefault(name, [0, 0])
            audits[0] += num_audits_passed or 0
            audits[1] += num_audits_failed or 0

    return TimingConsole()


def slowest_models(ctx, n: int = 8) -> list[tuple[str, float]]:
    """The models that took longest in this context's plans and runs, slowest first."""
    seconds = getattr(ctx.console, "model_seconds", {})
    return sorted(seconds.items(), key=lambda item: -item[1])[:n]


def model_audits(ctx) -> dict[str, tuple[int, int]]:
    """Audits passed and failed per model (schema.model) in this context's plans and runs."""
    return {name: (p, f) for name, (p, f) in getattr(ctx.console, "model_audits", {}).items() if p or f}


def _open_waiting(ctx, warehouse: Path, wait_seconds: float | None) -> None:
    """SQLMesh opens DuckDB on first use and fails at once on a lock held elsewhere: open it now,
    waiting as ``clv.warehouse.connect`` does."""
    from clv.warehouse import wait_for_lock

    wait_for_lock(lambda: ctx.engine_adapter.connection.execute("SELECT 1"), warehouse, wait_seconds)


def plan_prod(ctx, business_date: dt.date, environment: str | None = None):
    """Create or change the models and backfill everything up to the business date. In prod, late
    loads are restated first (see the module's docstring); the very first build takes in every
    load there is."""
    tracked = environment is None and _tracks_loads(ctx)
    if tracked and has_prod(ctx):
        _, seen = restate_late_loads(ctx, business_date)
    else:
        seen = _latest_load_id(ctx.engine_adapter.connection) if tracked else None
    plan = ctx.plan(
        environment,
        execution_time=execution_time(business_date),
        auto_apply=True,
        no_prompts=True,
        skip_tests=True,
    )
    if seen is not None:
        _advance_watermark(ctx.engine_adapter.connection, seen, business_date)
    return plan


@dataclass
class RunResult:
    """How a run went: truthy when it succeeded; ``restatement`` says what late loads it took in."""

    ok: bool
    restatement: Restatement | None = None

    def __bool__(self) -> bool:
        return self.ok


def run(ctx, business_date: dt.date, layer: str | None = None, environment: str | None = None) -> RunResult:
    """Process the missing intervals up to the business date (all layers, or one layer's models):
    the new day, any day a failed run left out, and — when staging is part of the run — the
    intervals of late loads, restated first. Truthy when the run succeeded."""
    restatement = seen = None
    if environment is None and layer in (None, "staging") and _tracks_loads(ctx):
        restatement, seen = restate_late_loads(ctx, business_date)
    select = [f"{layer}.*"] if layer else None
    status = ctx.run(
        environment,
        execution_time=execution_time(business_date),
        select_models=select,
        no_auto_upstream=layer is not None,
    )
    ok = not status.is_failure  # "nothing to do" (no new interval) is a success
    if ok and seen is not None:
        _advance_watermark(ctx.engine_adapter.connection, seen, business_date)
    return RunResult(ok, restatement)


# --- Late loads: rows whose interval SQLMesh had already processed -----------------------------

RESTATEMENT_DDL = (
    "CREATE SCHEMA IF NOT EXISTS ops",
    """CREATE TABLE IF NOT EXISTS ops.staging_watermark (
        load_id INTEGER NOT NULL, business_date DATE, recorded_at TIMESTAMP NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS ops.restatements (
        restated_at TIMESTAMP NOT NULL, business_date DATE NOT NULL, batch_dates DATE[] NOT NULL,
        load_ids INTEGER[] NOT NULL, staging_models VARCHAR[] NOT NULL, models_cleared INTEGER NOT NULL,
        summary VARCHAR NOT NULL)""",
)


@dataclass
class Restatement:
    """Loads whose batch dates staging had already processed, and the models cleared to take them in."""

    business_date: dt.date
    load_ids: list[int]
    batch_dates: list[dt.date]
    staging_models: list[str]
    models: list[str] = field(default_factory=list)  # every model whose intervals were cleared

    def line(self) -> str:
        dates = ", ".join(d.isoformat() for d in self.batch_dates[:5])
        more = f" and {len(self.batch_dates) - 5} more" if len(self.batch_dates) > 5 else ""
        return (
            f"{len(self.load_ids)} loads brought rows for batch dates SQLMesh had already processed "
            f"({dates}{more}): restating {', '.join(self.staging_models)} and "
            f"{len(self.models) - len(self.staging_models)} models downstream"
        )


def _tracks_loads(ctx) -> bool:
    """Late loads are followed on the DuckDB warehouse the loader writes (on Spark the raw zone is
    an export, and later runs are not supported there yet: README, "The Spark gateway")."""
    return settings.sqlmesh_gateway() == "duckdb"


def _latest_load_id(con) -> int:
    import duckdb

    try:
        return con.execute("SELECT coalesce(max(load_id), 0) FROM ops.load_manifest").fetchone()[0]
    except duckdb.CatalogException:  # nothing loaded yet
        return 0


def _watermark(con) -> int:
    """Every load up to this id is in staging, or in an interval SQLMesh has still to run. 0 when
    nothing was recorded (a warehouse from before this rule: every load counts as new once)."""
    for statement in RESTATEMENT_DDL:
        con.execute(statement)
    return con.execute("SELECT coalesce(max(load_id), 0) FROM ops.staging_watermark").fetchone()[0]


def _advance_watermark(con, load_id: int, business_date: dt.date) -> None:
    if load_id > _watermark(con):
        con.execute(
            "INSERT INTO ops.staging_watermark VALUES (?, ?, ?)", [load_id, business_date, dt.datetime.now()]
        )


def _short(name: str) -> str:
    return ".".join(name.replace('"', "").split(".")[-2:])


def _clearance(
    snapshots: dict, roots: set[str], business_date: dt.date, window: tuple[int, int] | None = None
) -> dict[str, tuple[int, int]]:
    """The intervals to clear so that a run recomputes ``roots`` and everything downstream of them,
    in dependency order: ``{model: (start, end)}`` in epoch milliseconds.

    A model whose restatement is disabled (its history cannot be rebuilt) re-evaluates its latest
    interval. Without a ``window`` (late loads) the others recompute every interval they have, as
    SQLMesh's own restatement of a unique-key parent would make them. With a ``window`` (a
    restatement asked for a date range) a root recomputes the window — widened to its whole
    history when its kind restates only whole (SQLMesh's ``get_removal_interval``) — and a model
    downstream recomputes from the earliest cleared start of its parents up to its latest
    interval: its later intervals may read the corrected rows. Models tagged ``as_known`` are
    cleared only when the interval is the business date's own (module docstring)."""
    from sqlmesh.utils.dag import DAG
    from sqlmesh.utils.date import to_timestamp

    dag = DAG({name: {p.name for p in s.parents} for name, s in snapshots.items()})
    today = to_timestamp(business_date)
    cleared: dict[str, tuple[int, int]] = {}
    for name in dag:
        s = snapshots[name]
        parents = [cleared[p.name] for p in s.parents if p.name in cleared]
        if not (name in roots or parents):
            continue
        if not s.is_model or s.is_seed or s.is_symbolic or not s.intervals:
            continue
        first, last = s.intervals[0][0], s.intervals[-1][1]
        if s.disable_restatement:
            start, end = to_timestamp(s.node.cron_prev(last)), last
        elif window is None:
            start, end = first, last
        else:
            ask_start = min([window[0]] * (name in roots) + [p[0] for p in parents])
            ask_end = window[1] if not parents else last
            start, end = s.get_removal_interval(ask_start, ask_end, strict=False)
            start, end = max(start, first), min(end, last)
            if start >= end:
                continue  # the window is outside what the model has computed
        if AS_KNOWN in s.node.tags and start != today:
            continue  # an earlier business date's record: never re-evaluated
        cleared[name] = (start, end)
    return cleared


def restate_late_loads(ctx, business_date: dt.date) -> tuple[Restatement | None, int]:
    """Find the loads past the staging watermark whose batch date prod's staging has already
    processed, and clear what must be recomputed to take them in (the run that follows does it).
    Returns the restatement (None when there was nothing late) and the latest load id seen, to
    which the watermark may advance once the run has succeeded."""
    from sqlmesh.utils.date import to_timestamp

    con = ctx.engine_adapter.connection
    seen = _latest_load_id(con)
    mark = _watermark(con)
    if seen <= mark:
        return None, seen
    loads = con.execute(
        "SELECT load_id, source, batch_date FROM ops.load_manifest WHERE load_id > ? AND load_id <= ? "
        "AND status = 'loaded' AND rows_loaded > 0 AND batch_date IS NOT NULL ORDER BY load_id",
        [mark, seen],
    ).fetchall()
    env = ctx.state_reader.get_environment("prod")
    if not loads or env is None:
        return None, seen
    snapshots = {s.name: s for s in ctx.state_reader.get_snapshots(env.snapshots).values()}
    by_short = {_short(name): s for name, s in snapshots.items()}

    def processed(s, day: dt.date) -> bool:
        start, end = to_timestamp(day), to_timestamp(day + dt.timedelta(days=1))
        return any(a <= start and end <= b for a, b in s.intervals)

    late = [
        (load_id, source, day)
        for load_id, source, day in loads
        if (s := by_short.get(f"staging.stg_{source}")) is not None and processed(s, day)
    ]
    if not late:
        return None, seen
    restated = {by_short[f"staging.stg_{source}"].name for _, source, _ in late}
    cleared = _clearance(snapshots, restated, business_date)
    ctx.state_sync.remove_intervals(
        [(snapshots[name], interval) for name, interval in cleared.items()], remove_shared_versions=True
    )
    restatement = Restatement(
        business_date,
        sorted({load_id for load_id, _, _ in late}),
        sorted({day for _, _, day in late}),
        sorted(_short(name) for name in restated),
        sorted(_short(name) for name in cleared),
    )
    con.execute(
        "INSERT INTO ops.restatements VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            dt.datetime.now(),
            business_date,
            restatement.batch_dates,
            restatement.load_ids,
            restatement.staging_models,
            len(restatement.models),
            restatement.line(),
        ],
    )
    logger.warning("clv: %s", restatement.line())
    return restatement, seen


# --- Restatement asked for by a person (clv_backfill's restate mode, `clv backfill --restate`) ----
#
# SQLMesh 0.236 restates unchanged models only in prod: in a dev environment an unchanged model
# shares prod's snapshot, which is unpaused, and PlanBuilder._build_restatements skips it with
# "Cannot restate model ... because the current version is used in production"
# (sqlmesh/core/plan/builder.py). So a restatement recomputes prod's own tables, in place, and is
# checked after it: its intervals are cleared as late loads' are (``_clearance``), a prod run
# recomputes them behind the models' audits, and the caller runs every layer's checks on prod
# (``clv.pipeline.restate``) before anything is published.


@dataclass
class RestatementPlan:
    """What a restatement of ``models`` for [start, end] recomputes in prod: the models asked for
    (short names) and every model cleared with its interval ``(start_ms, end_ms)``."""

    models: list[str]
    start: dt.date
    end: dt.date
    cleared: dict[str, tuple[int, int]]

    def line(self) -> str:
        return (
            f"restatement in place: prod's tables are recomputed for {', '.join(self.models)} "
            f"{self.start.isoformat()}..{self.end.isoformat()}"
        )


def plan_restatement(
    ctx, business_date: dt.date, models: list[str], start: dt.date | None, end: dt.date | None
) -> tuple[RestatementPlan, dict]:
    """The restatement of the models matching the selectors for [start, end] (inclusive dates;
    default: the models' first day, the business date), and prod's snapshots by name. Nothing is
    changed. A selector matching no model, or an empty range, is the user's mistake."""
    from sqlmesh.utils.date import to_timestamp

    if not models:
        raise UserError("a restatement needs models: name the models to recompute (e.g. staging.stg_orders)")
    env = ctx.state_reader.get_environment("prod")
    if env is None:
        raise UserError("there is no prod environment yet: run the daily refresh first")
    roots = ctx._new_selector().expand_model_selections(models)  # what Context.plan's restate_models does
    snapshots = {s.name: s for s in ctx.state_reader.get_snapshots(env.snapshots).values()}
    roots = {name for name in roots if name in snapshots}
    if not roots:
        raise UserError(f"no model in prod matches {', '.join(models)}: use model names or selectors")
    end = end or business_date
    first = min((s.intervals[0][0] for name in roots if (s := snapshots[name]).intervals), default=None)
    if start is None:
        start = dt.datetime.fromtimestamp(first / 1000, dt.UTC).date() if first is not None else end
    if start > end:
        raise UserError(f"start {start} is after end {end}: give a range with start <= end")
    window = (to_timestamp(start), to_timestamp(end + dt.timedelta(days=1)))
    cleared = _clearance(snapshots, roots, business_date, window)
    plan = RestatementPlan(
        sorted(_short(name) for name in roots),
        start,
        end,
        {_short(name): interval for name, interval in cleared.items()},
    )
    return plan, snapshots


def restate(
    ctx, business_date: dt.date, models: list[str], start: dt.date | None, end: dt.date | None
) -> tuple[RestatementPlan, RunResult]:
    """Restate in prod: clear the intervals ``plan_restatement`` names (recorded in
    ``ops.restatements``), then a prod run recomputes them. Returns the plan and the run."""
    plan, snapshots = plan_restatement(ctx, business_date, models, start, end)
    by_short = {_short(name): s for name, s in snapshots.items()}
    ctx.state_sync.remove_intervals(
        [(by_short[name], interval) for name, interval in plan.cleared.items()], remove_shared_versions=True
    )
    con = ctx.engine_adapter.connection
    _watermark(con)  # creates ops.restatements when missing
    con.execute(
        "INSERT INTO ops.restatements VALUES (?, ?, ?, ?, ?, ?, ?)",
        [dt.datetime.now(), business_date, [], [], plan.models, len(plan.cleared), plan.line()],
    )
    logger.warning("clv: %s (%d models cleared)", plan.line(), len(plan.cleared))
    return plan, run(ctx, business_date)


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
    and views are not touched. Every model gets a view in ``<layer>__<environment>``. Returns the
    applied plan and the intervals it backfilled (the review's "plan" part, ``clv.review``)."""
    environment = environment_name(environment)
    plan = ctx.plan_builder(
        environment,
        start=start.isoformat() if start else None,
        end=end.isoformat() if end else None,
        execution_time=execution_time(business_date),
        select_models=models or None,
        include_unmodified=True,
        skip_tests=False,
    ).build()
    # What the plan backfills, read before it is applied: applying fills the snapshots' intervals.
    backfills = [
        Backfill(
            _short(plan.snapshots[i.snapshot_id].name),
            len(i.intervals),
            i.intervals[0][0],
            i.intervals[-1][1],
        )
        for i in plan.missing_intervals
        if i.intervals
    ]
    ctx.apply(plan)
    return PlannedEnvironment(plan, backfills)


@dataclass(frozen=True)
class Backfill:
    """The intervals a plan computed for one model: [start, end) in epoch milliseconds."""

    model: str
    intervals: int
    start_ms: int
    end_ms: int


class PlannedEnvironment(NamedTuple):
    """An applied environment plan and what it backfilled."""

    plan: object
    backfills: list[Backfill]


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
