"""A business date already published: confirm it instead of running the day again.

A second `make run` (`clv run`) for the business date the serving file already holds used to run
the whole daily refresh again through Airflow — every layer's SQLMesh run (nothing to do) and Soda
scan, and a new serving file with the same rows — about half a first run's time. Nothing can have
changed when all of these hold, and then the run only confirms the date and reprints its summary:

- the serving file holds the business date, built from prod's marts;
- the daily run that published it has every step recorded as a success, and its checks (the
  latest outcome of each in ``ops.check_results``) have no failure;
- no pipeline step has touched the warehouse since that publish, other than confirmations;
- nothing new landed: every file of every complete batch in the landing folder is in
  ``ops.load_manifest`` with its size, no batch up to the date is still arriving, and every load
  is in staging (``ops.staging_watermark``);
- SQLMesh's state has not changed since the publish: prod was last promoted, and the last
  interval recorded, before it (SQLMesh's own state tables in the warehouse; with the state in
  PostgreSQL or on the Spark gateway there is nothing to compare, and the day runs again).

Anything else — or any doubt, such as a table that is not there — runs the day as before. One
read-only connection; no SQLMesh project load, no Airflow. `clv run --rerun` runs it anyway.
"""

from __future__ import annotations

import datetime as dt
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from clv import ops, settings
from clv.names import DAILY_TASKS

CONFIRM_TASK = "confirm_published"


@dataclass
class Confirmation:
    """Whether the business date can be confirmed (truthy) or must run (``reason`` says why)."""

    business_date: dt.date
    reason: str | None = None  # None: confirmed
    dag_id: str | None = None
    run_id: str | None = None
    published_at: dt.datetime | None = None
    checks: dict[str, dict[str, int]] = field(default_factory=dict)  # layer -> outcome -> count

    def __bool__(self) -> bool:
        return self.reason is None

    def line(self) -> str:
        if not self:
            return f"business date {self.business_date} runs: {self.reason}"
        checks = "; ".join(
            f"{layer} " + ", ".join(f"{n} {outcome}" for outcome, n in sorted(c.items()))
            for layer, c in self.checks.items()
        )
        return (
            f"business date {self.business_date} is already published ({self.published_at:%Y-%m-%d %H:%M:%S}, "
            f"run {self.run_id}): nothing new landed, nothing ran since, SQLMesh state unchanged; "
            f"checks: {checks or 'none recorded'}. Nothing to do (--rerun runs it again)"
        )


def _serving(paths: settings.Paths) -> tuple[dt.date, dt.datetime, str] | None:
    if not paths.serving.exists():
        return None
    try:
        with closing(duckdb.connect(str(paths.serving), read_only=True)) as con:
            return con.execute(
                "SELECT business_date, published_at, source_schema FROM serving_info"
            ).fetchone()
    except duckdb.Error:
        return None


def _nothing_new_landed(con, landing: Path, business_date: dt.date) -> str | None:
    """Why the landing folder holds something the warehouse has not taken in (None: nothing)."""
    from clv import ingest

    try:
        files, waiting = ingest.discover(landing)
    except ingest.IngestError as e:
        return str(e)
    arriving = [w for w in waiting if w[:10] <= business_date.isoformat()]
    if arriving:
        return f"batch {arriving[0]} is still arriving"
    recorded = {
        (path, size)
        for path, size in con.execute(
            "SELECT source_file, file_bytes FROM ops.load_manifest WHERE status IN ('loaded', 'quarantined', 'duplicate')"
        ).fetchall()
    }
    for f in files:
        try:
            size = f.path.stat().st_size
        except OSError:
            return f"{f.path} cannot be read"
        if (str(f.path), size) not in recorded:
            return f"{f.path} has not been loaded"
    return None


def check(business_date: dt.date, data_dir: Path | None = None) -> Confirmation:
    """Whether ``business_date`` is published and nothing has changed since (module docstring)."""
    from clv.warehouse import WarehouseBusy, connect

    paths = settings.paths(data_dir)
    no = lambda reason: Confirmation(business_date, reason)  # noqa: E731
    served = _serving(paths)
    if served is None:
        return no("no serving file yet")
    if served[0] != business_date or served[2] != "marts":
        return no(f"the serving file holds {served[0]} from {served[2]}")
    if settings.sqlmesh_gateway() != "duckdb" or settings.secret("CLV_SQLMESH_STATE_HOST"):
        return no("SQLMesh's state is not in the warehouse")
    try:
        con = connect(paths.warehouse, read_only=True)
    except WarehouseBusy as e:
        return no(str(e))
    try:
        return _check(con, paths, business_date, served[1])
    except duckdb.CatalogException as e:  # a table that is not there: the day runs
        return no(f"the warehouse has no record of it ({str(e).splitlines()[0]})")
    finally:
        con.close()


def _check(con, paths: settings.Paths, business_date: dt.date, served_at: dt.datetime) -> Confirmation:
    no = lambda reason: Confirmation(business_date, reason)  # noqa: E731
    row = con.execute(
        "SELECT dag_id, run_id, finished_at FROM ops.pipeline_runs WHERE task_id = 'publish' "
        "AND status = 'success' AND business_date = ? ORDER BY finished_at DESC LIMIT 1",
        [business_date],
    ).fetchone()
    if row is None:
        return no("no publish of it is recorded")
    dag_id, run_id, published = row
    if published > served_at + dt.timedelta(seconds=60) or served_at > published:
        return no("the serving file was not written by its last recorded publish")
    done = {
        task
        for (task,) in con.execute(
            "SELECT DISTINCT task_id FROM ops.pipeline_runs WHERE dag_id = ? AND run_id = ? AND status = 'success'",
            [dag_id, run_id],
        ).fetchall()
    }
    missing = [t for t in DAILY_TASKS if t not in done]
    if missing:
        return no(f"its run {run_id} has no successful {', '.join(missing)}")
    (later,) = con.execute(
        "SELECT count(*) FROM ops.pipeline_runs WHERE finished_at > ? AND task_id <> ?",
        [published, CONFIRM_TASK],
    ).fetchone()
    if later:
        return no(f"{later} pipeline steps ran after it was published")
    reason = _nothing_new_landed(con, paths.landing, business_date)
    if reason:
        return no(reason)
    (loads, mark) = con.execute(
        "SELECT (SELECT coalesce(max(load_id), 0) FROM ops.load_manifest), "
        "(SELECT coalesce(max(load_id), 0) FROM ops.staging_watermark)"
    ).fetchone()
    if loads > mark:
        return no("loads are waiting for staging")
    (promoted, interval) = con.execute(
        "SELECT (SELECT max(finalized_ts) FROM sqlmesh._environments WHERE name = 'prod'), "
        "(SELECT max(created_ts) FROM sqlmesh._intervals)"
    ).fetchone()
    if promoted is None:
        return no("SQLMesh has no prod environment")
    last_change = dt.datetime.fromtimestamp(max(promoted, interval or 0) / 1000)  # local, as ops records
    if last_change > published:
        return no("SQLMesh's state changed after it was published")
    report_id = ops.StepRun(run_id=run_id, business_date=business_date).report_id
    checks: dict[str, dict[str, int]] = {}
    for layer, outcome, n in con.execute(
        "SELECT layer, outcome, count(*) FROM ops.check_results WHERE run_id = ? GROUP BY ALL ORDER BY ALL",
        [report_id],
    ).fetchall():
        checks.setdefault(layer, {})[outcome] = n
    failed = sum(c.get("fail", 0) for c in checks.values())
    if failed:
        return no(f"{failed} checks of its run failed")
    return Confirmation(business_date, None, dag_id, run_id, published, checks)


def record(confirmation: Confirmation, data_dir: Path | None = None, run_id: str = "confirm") -> None:
    """Keep the confirmation in ``ops.pipeline_runs`` (a step of its own, with the run it confirms)."""
    step = ops.StepRun(
        dag_id="clv-cli", run_id=run_id, task_id=CONFIRM_TASK, business_date=confirmation.business_date
    )
    with ops.recorded(settings.paths(data_dir).data_dir, step):
        step.rows = 0
        step.detail = {"confirms": {"dag_id": confirmation.dag_id, "run_id": confirmation.run_id}}
