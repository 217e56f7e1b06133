"""Scenario 13: a delivered batch arrives in two steps around the 02:30 run — its CSVs first, its
``_manifest.json`` later. With delivered files (``CLV_SOURCE=landing``) the daily DAG's `extract`
does not take a half-delivered day: it fails (retried with back-off by real Airflow) until the
manifest is there, and the run then processes the whole day. And when a day's interval was
processed before its rows could load (an operator's `clv transform`, or the old `extract` that
let such a run through), the next run restates it. Either way every mart equals a run where the
day arrived on time."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import duckdb
import pytest

from clv import ingest, transform
from clv.airflow import home as airflow_home
from clv.contract import SOURCES
from clv.names import DAILY_DAG
from clv.settings import Paths
from generator import runner
from tests.airflow.helpers import query
from tests.reliability import ledger as ledger_mod
from tests.reliability.compare import MARTS, layer_diff, run_history, snapshot_copy
from tests.reliability.conftest import copy_data, day, run_models

# one worker builds the shared warehouse fixture (with `--dist loadgroup`)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("reliability-base")]
D = day(1)
MANIFEST = ledger_mod.MANIFEST


def deliver(src: Paths, dst: Paths, business_date) -> list[str]:
    """Copy a generated day — its batch folders, the generator's fault log and state — from one
    data directory to another, as the source system would deliver it. Returns the batch names."""
    names = []
    for folder in sorted(src.landing.glob(f"{business_date.isoformat()}*")):
        shutil.copytree(folder, dst.landing / folder.name)
        names.append(folder.name)
        fault_log = src.truth / "faults" / f"{folder.name}.csv"
        if fault_log.exists():
            shutil.copy(fault_log, dst.truth / "faults" / fault_log.name)
    shutil.rmtree(dst.state)
    shutil.copytree(src.state, dst.state)
    return names


def withhold_manifests(paths: Paths, business_date, parked: Path) -> list[tuple[Path, Path]]:
    """The day's files are there, its manifests not yet: (where each manifest goes, where it waits)."""
    parked.mkdir(parents=True, exist_ok=True)
    moved = []
    for folder in sorted(paths.landing.glob(f"{business_date.isoformat()}*")):
        held = parked / f"{folder.name}{MANIFEST}"
        shutil.move(folder / MANIFEST, held)
        moved.append((folder / MANIFEST, held))
    return moved


def release(manifests: list[tuple[Path, Path]]) -> None:
    for final, held in manifests:
        shutil.move(held, final)


def assert_marts_equal(paths: Paths, reference: Paths, tmp_path: Path, runs_differ: bool = False) -> int:
    """Every mart of ``paths`` equals the reference's, row for row; returns the rows compared.
    ``runs_differ``: the two were built by different runs, so the columns read from the run
    history (``compare.RUN_HISTORY``) are left out."""
    other = snapshot_copy(reference.warehouse, tmp_path / "reference.duckdb")
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        con.execute(f"ATTACH '{other}' AS reference (READ_ONLY)")
        rows = 0
        for mart in MARTS:
            skip = run_history(mart) if runs_differ else ()
            n, diff = layer_diff(con, f"marts.{mart}", "warehouse", "reference", skip)
            assert n > 0 and diff == 0, (mart, n, diff)
            rows += n
        return rows
    finally:
        con.close()


def batch_rows_in_staging(paths: Paths, business_date) -> tuple[int, int]:
    """(keys the day's batch loaded into raw, those of them missing from staging)."""
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        loaded = missing = 0
        for name, src in SOURCES.items():
            keys = ", ".join(f"r.{k}" for k in src.primary_key)
            # staging trims ids; compare keys as text
            same = " AND ".join(
                f"CAST(s.{k} AS VARCHAR) = TRIM(CAST(r.{k} AS VARCHAR))" for k in src.primary_key
            )
            n, lost = con.execute(
                f"""SELECT count(DISTINCT ({keys})),
                           count(DISTINCT ({keys})) FILTER (
                               WHERE NOT EXISTS (SELECT 1 FROM staging.stg_{name} s WHERE {same}))
                    FROM raw.{name} r WHERE r._batch_date = ?""",
                [business_date],
            ).fetchone()
            loaded += n
            missing += lost
        return loaded, missing
    finally:
        con.close()


def on_time_day_1(base: Paths, tmp_path_factory) -> Paths:
    """The reference of scenarios 13, 17 and 19: ``base`` with day 1 (realistic chaos) delivered
    whole before its run. Built once per test session (scenarios 13, 17 and 19 share the xdist
    group, so one worker runs them all); treat it as read-only."""
    paths = Paths(tmp_path_factory.getbasetemp() / "on-time-day-1" / "data")
    done = paths.data_dir.parent / "built"
    if not done.exists():
        if paths.data_dir.exists():  # a build interrupted before it was complete
            shutil.rmtree(paths.data_dir)
        copy_data(base, paths.data_dir)
        runner.day(paths, D, chaos="realistic")
        ingest.load(paths.data_dir)
        run_models(paths, D)
        done.touch()
    return paths


@pytest.fixture(scope="module")
def on_time(base, tmp_path_factory) -> Paths:
    """The reference: ``base`` with day D delivered whole before its run."""
    return on_time_day_1(base, tmp_path_factory)


class LateManifest(threading.Thread):
    """The sender finishing the delivery: after `extract` has failed once, the manifests land."""

    def __init__(self, paths: Paths, manifests):
        super().__init__(daemon=True)
        self.paths, self.manifests = paths, manifests
        self.stop = threading.Event()
        self.released = False

    def run(self):
        while not self.stop.is_set():
            try:
                con = duckdb.connect(str(self.paths.warehouse), read_only=True)
            except duckdb.IOException:  # a task holds the warehouse
                time.sleep(0.3)
                continue
            try:
                failed = con.execute(
                    "SELECT count(*) FROM ops.pipeline_runs WHERE task_id = 'extract' "
                    "AND business_date = ? AND status = 'failed'",
                    [D],
                ).fetchone()[0]
            finally:
                con.close()
            if failed:
                release(self.manifests)
                self.released = True
                return
            time.sleep(0.3)


@pytest.mark.scenario(13, "batch files before their manifest", chaos="realistic")
def test_extract_waits_for_the_manifest_and_the_run_takes_the_whole_day(
    airflow_base, on_time, tmp_path, monkeypatch, ledger
):
    monkeypatch.setenv("CLV_SOURCE", "landing")
    monkeypatch.setenv("CLV_RETRY_DELAY_SECONDS", "1")
    paths = copy_data(airflow_base, tmp_path / "data")
    batches = deliver(on_time, paths, D)
    manifests = withhold_manifests(paths, D, tmp_path / "parked")
    ledger.fault("batch files landed before their manifest (02:30 run started)", len(manifests))

    sender = LateManifest(paths, manifests)
    sender.start()
    try:
        rc, log = airflow_home.dags_test(DAILY_DAG, D, paths.data_dir)
    finally:
        sender.stop.set()
        sender.join(timeout=30)
    assert rc == 0, log.read_text()[-4000:]
    if not sender.released:  # the run went through without the day: deliver it now, for the record
        release(manifests)
    loaded, missing = batch_rows_in_staging(paths, D)
    assert loaded > 0 and missing == 0, (loaded, missing)
    assert_marts_equal(paths, on_time, tmp_path)
    ledger.recovery("every mart equals the on-time run")
    tries = query(
        paths.data_dir,
        "SELECT try_number, status, detail FROM ops.pipeline_runs WHERE task_id = 'extract' "
        "AND business_date = ? ORDER BY started_at",
        [D],
    )
    assert tries[0][1] == "failed" and "still arriving" in tries[0][2], tries
    assert tries[-1][1] == "success" and tries[-1][0] > 1, tries
    ledger.recovery("extract retried with back-off until the manifest landed")
    # a retry that succeeds is not an alert
    assert not [a for a in ledger_mod.alerts(paths) if a["severity"] == "error"]
    assert query(paths.data_dir, "SELECT business_date FROM serving_info", db="serving.duckdb")[0][0] == D
    ledger.faults_from_truth(paths, batches)
    ledger.account(paths)


@pytest.mark.scenario(13, "batch files before their manifest", chaos="realistic")
def test_a_day_processed_before_its_rows_loaded_is_restated(base, on_time, tmp_path, ledger):
    paths = copy_data(base, tmp_path / "data")
    batches = deliver(on_time, paths, D)
    manifests = withhold_manifests(paths, D, tmp_path / "parked")
    ledger.fault("day's interval processed before its batch was complete", len(manifests))
    # `clv load` then `clv transform --business-date D` while the day is still arriving: nothing of
    # it loads, and SQLMesh processes (and marks done) D's interval without it.
    ingest.load(paths.data_dir)
    run_models(paths, D)
    assert batch_rows_in_staging(paths, D)[0] == 0
    release(manifests)
    summary = ingest.load(paths.data_dir)
    assert summary.rows_loaded > 0

    ctx = transform.context(paths.data_dir)
    try:
        outcome = transform.run(ctx, D)
    finally:
        ctx.close()
    assert outcome
    loaded, missing = batch_rows_in_staging(paths, D)
    assert loaded > 0 and missing == 0, (loaded, missing)
    assert_marts_equal(paths, on_time, tmp_path)
    ledger.recovery("every mart equals the on-time run")
    assert outcome.restatement.batch_dates == [D]
    assert query(paths.data_dir, "SELECT batch_dates FROM ops.restatements") == [([D],)]
    ledger.recovery("late rows restated: staging and everything downstream recomputed")
    ledger.faults_from_truth(paths, batches)
    ledger.account(paths)
