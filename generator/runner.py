"""The two ways to run the generator: a whole history, or one more business day.

``history`` simulates every customer from signup to a horizon one year past the business end
date. Rows the source systems would have exported by the end date form the history batch; the
rest wait in ``state/pending/`` for the ``day`` batches that deliver them, and the holdout year
becomes the ground truth. ``day`` therefore continues exactly the story the truth describes, plus
the customers who sign up that day.
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from clv.contract import SOURCE_NAMES
from clv.settings import Paths
from generator import chaos as chaos_mod
from generator import names
from generator.export import (
    MANIFEST,
    STATEFUL,
    BatchWriter,
    Rendered,
    atomic_write_text,
    latest_versions,
    render,
    write_faults,
)
from generator.model import PARAMS, BehaviourChange, daily_signup_rate, signup_days
from generator.profiles import GeneratorError
from generator.simulate import LAST_DAY, Window, simulate_chunk

GENERATOR_VERSION = 1
HOLDOUT_DAYS = 365
CHUNK_CUSTOMERS = 5_000
#: Day-batch signups get ids in a block per day after the history's ids, so days never collide.
DAY_SIGNUP_CAP = 100_000
META = "meta.json"


@dataclass
class Summary:
    mode: str
    batch: str
    rows: dict[str, int]
    bytes: int
    seconds: float
    customers: int
    batch_dir: Path

    def line(self) -> str:
        rows = " ".join(f"{k}={v:,}" for k, v in self.rows.items())
        who = "customers" if self.mode == "history" else "new signups"
        return (
            f"{self.mode} batch {self.batch}: {self.customers:,} {who}; rows {rows} | "
            f"{self.bytes / 1e6:,.1f} MB in {self.seconds:.1f} s -> {self.batch_dir}"
        )


EPOCH = dt.date(1970, 1, 1)


def to_day(value: dt.date) -> int:
    return (value - EPOCH).days


def from_day(day: int) -> dt.date:
    return EPOCH + dt.timedelta(days=int(day))


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in key]))


def read_meta(paths: Paths) -> dict:
    path = paths.state / META
    if not path.exists():
        raise GeneratorError(
            f"no generated history in {paths.data_dir}; run `python -m generator history` first"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(
        total=total, desc=desc, unit="cust", unit_scale=True, disable=not enabled or None, leave=False
    )


def history(
    paths: Paths,
    customers: int,
    start: dt.date,
    end: dt.date,
    seed: int = 42,
    chaos: str = "realistic",
    force: bool = False,
    progress: bool = True,
    workers: int | None = None,
    behaviour: BehaviourChange | None = None,
) -> Summary:
    """The history batch. ``behaviour``: a planned change of the customers' behaviour midway
    (``generator.model.BehaviourChange``; none by default), applied to everything simulated,
    the later day batches included, and recorded in meta.json."""
    if seed < 0:
        raise GeneratorError(f"--seed must be zero or a positive whole number, got {seed}")
    if customers <= 0:
        raise GeneratorError(f"--customers must be a positive number, got {customers}")
    if end < start:
        raise GeneratorError(f"--end {end} is before --start {start}")
    if start < EPOCH:
        raise GeneratorError(
            f"--start {start} is before {EPOCH}, where simulated time begins; use a later --start"
        )
    last_end = from_day(LAST_DAY - HOLDOUT_DAYS)
    if end > last_end:
        raise GeneratorError(
            f"--end {end} is too late: the simulation runs {HOLDOUT_DAYS} days past --end and stops at "
            f"{from_day(LAST_DAY)}; use an --end on or before {last_end}"
        )
    profile = chaos_mod.profile(chaos)
    _check_data_dir(paths)
    if not force:
        if (paths.state / META).exists():
            raise GeneratorError(
                f"{paths.data_dir} already holds a generated history; pass --force to replace it"
            )
        if paths.landing.exists() and any(paths.landing.iterdir()):
            raise GeneratorError(
                f"{paths.landing} is not empty and was not made by the generator; pass --force to replace it"
            )
    t_start = time.perf_counter()
    for d in (paths.landing, paths.state, paths.truth):
        if d.exists():
            shutil.rmtree(d)
    start_day, end_day = to_day(start), to_day(end)
    window = Window(end_day, end_day + HOLDOUT_DAYS)
    signups = signup_days(_rng(seed, 0), customers, start_day, end_day)
    params = behaviour.params() if behaviour else PARAMS
    batch = end.isoformat()
    writer = BatchWriter(
        paths.landing,
        batch,
        batch,
        "history",
        profile,
        paths.truth / "faults",
        meta={
            "seed": seed,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "generator_version": GENERATOR_VERSION,
        },
    )
    paths.truth.mkdir(parents=True, exist_ok=True)
    truth_tmp = paths.truth / ".customers.csv.tmp"
    truth_writer = None
    jobs = [
        (paths, seed, i, lo, signups[lo : lo + CHUNK_CUSTOMERS], window, chaos, params)
        for i, lo in enumerate(range(0, customers, CHUNK_CUSTOMERS))
    ]
    for name in names.KINDS:  # build the string pools once, before workers fork
        names.pool(name)
    bar = _progress(customers, "history", progress)
    with _pool(workers, len(jobs)) as pool:
        for rendered, truth in pool.map(_history_chunk, jobs):
            for source in SOURCE_NAMES:
                writer.add(source, rendered[source])
            truth_writer = _append_csv(truth_tmp, truth, truth_writer)
            bar.update(truth.num_rows)
    bar.close()
    manifest = writer.close()
    truth_writer.close()
    truth_tmp.replace(paths.truth / "customers.csv")
    meta = {
        "seed": seed,
        "customers": customers,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "horizon": from_day(window.horizon_day).isoformat(),
        "chaos": chaos,
        "signup_rate_per_day": daily_signup_rate(customers, start_day, end_day, PARAMS),
        "generator_version": GENERATOR_VERSION,
    }
    if behaviour:
        meta["behaviour_change"] = {"on": behaviour.on, "purchase_rate_factor": behaviour.factor}
    atomic_write_text(paths.state / META, json.dumps(meta, indent=2) + "\n")
    return _summary("history", manifest, customers, time.perf_counter() - t_start, writer.dir)


def _check_data_dir(paths: Paths) -> None:
    """A data directory the history cannot be written to is the user's to fix, not a traceback."""
    d = paths.data_dir
    if d.exists() and not d.is_dir():
        raise GeneratorError(f"data directory {d} is a file; pass a directory as --data-dir")
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GeneratorError(
            f"cannot create data directory {d}: {e.strerror}; pass another --data-dir"
        ) from None
    if not os.access(d, os.W_OK | os.X_OK):
        raise GeneratorError(f"data directory {d} is not writable; pass another --data-dir")


def _history_chunk(job) -> tuple[dict[str, Rendered], pa.Table]:
    """Simulate one chunk of customers and render its part of the history batch (in a worker)."""
    paths, seed, i, lo, chunk_signups, window, chaos, params = job
    profile = chaos_mod.profile(chaos)
    chunk = simulate_chunk(_rng(seed, 1, i), lo + 1, chunk_signups, window, profile, params)
    fault_rng = _rng(seed, 3, i)
    rendered = {}
    for source in SOURCE_NAMES:
        table = chunk.tables[source]
        delivery = table.column("_delivery")
        now = latest_versions(table.filter(pc.less_equal(delivery, window.end_day)), source)
        rendered[source] = render(source, now, window.end_day, profile, fault_rng)
        _write_pending(paths, source, f"history-{i:05d}", table.filter(pc.greater(delivery, window.end_day)))
    return rendered, chunk.truth


class _Serial:
    """Stands in for a process pool when one worker is enough."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    @staticmethod
    def map(fn, jobs):
        return map(fn, jobs)


def _pool(workers: int | None, n_jobs: int):
    workers = min(workers or os.cpu_count() or 1, n_jobs)
    if workers <= 1:
        return _Serial()
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))


def day(
    paths: Paths,
    date: dt.date,
    chaos: str | chaos_mod.ChaosProfile = "realistic",
    anomalies: tuple[chaos_mod.DeliveryAnomaly, ...] = (),
) -> Summary:
    """One more business day's batch. ``anomalies``: delivery-level faults planned for this day
    (``generator.chaos.DeliveryAnomaly``), applied to their source's rows and recorded in the
    truth's fault log."""
    profile = chaos if isinstance(chaos, chaos_mod.ChaosProfile) else chaos_mod.profile(chaos)
    meta = read_meta(paths)
    end, horizon = dt.date.fromisoformat(meta["end"]), dt.date.fromisoformat(meta["horizon"])
    if date <= end:
        raise GeneratorError(f"day {date} is not after the history's end date {end}")
    if date > horizon:
        raise GeneratorError(
            f"day {date} is past the simulated horizon {horizon}; regenerate the history with a later --end"
        )
    t_start = time.perf_counter()
    seed, d = int(meta["seed"]), to_day(date)
    offset = (date - end).days
    window = Window(d, to_day(horizon))
    rng = _rng(seed, 2, d)
    n_new = min(int(rng.poisson(meta["signup_rate_per_day"])), DAY_SIGNUP_CAP - 1)
    fresh: dict[str, pa.Table] = {}
    if n_new:
        signup_t = d + np.sort(rng.random(n_new))
        first_idx = int(meta["customers"]) + (offset - 1) * DAY_SIGNUP_CAP + 1
        change = meta.get("behaviour_change")
        params = BehaviourChange(change["on"], change["purchase_rate_factor"]).params() if change else PARAMS
        chunk = simulate_chunk(rng, first_idx, signup_t, window, profile, params, with_truth=False)
        for source, table in chunk.tables.items():
            delivery = table.column("_delivery")
            fresh[source] = table.filter(pc.equal(delivery, d))
            _write_pending(paths, source, f"day-{date.isoformat()}", table.filter(pc.greater(delivery, d)))
    batch = date.isoformat()
    writer = BatchWriter(
        paths.landing,
        batch,
        batch,
        "day",
        profile,
        paths.truth / "faults",
        meta={"seed": seed, "generator_version": GENERATOR_VERSION},
    )
    fault_rng = _rng(seed, 4, d)
    for source in SOURCE_NAMES:
        if fault_rng.random() < profile.schema_drift_prob:
            writer.drift(source, fault_rng)
    for source in SOURCE_NAMES:
        due = _read_pending(paths, source, d)
        parts = [t for t in (due, fresh.get(source)) if t is not None and t.num_rows]
        table = pa.concat_tables([p.cast(parts[-1].schema) for p in parts]) if parts else pa.table({})
        if table.num_rows and source in STATEFUL:
            table = latest_versions(table, source)
        for anomaly in (a for a in anomalies if a.source == source):
            table, log = chaos_mod.apply_delivery_anomaly(table, anomaly, _rng(seed, 5, d))
            writer._log_many(source, log)
        writer.add(source, render(source, table, d, profile, fault_rng, writer.columns(source)))
    manifest = writer.close()
    _maybe_redeliver(paths, date, profile, fault_rng)
    return _summary("day", manifest, n_new, time.perf_counter() - t_start, writer.dir)


def _maybe_redeliver(paths: Paths, date: dt.date, profile, rng: np.random.Generator) -> None:
    """Now and then the previous day's batch arrives a second time, byte for byte."""
    if rng.random() >= profile.redelivery_prob:
        return
    prev = paths.landing / (date - dt.timedelta(days=1)).isoformat()
    if not (prev / MANIFEST).exists() or json.loads((prev / MANIFEST).read_text())["kind"] != "day":
        return
    target = paths.landing / f"{prev.name}-redelivery"
    if target.exists():
        shutil.rmtree(target)
    tmp = paths.landing / f".{target.name}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(prev, tmp)
    tmp.rename(target)
    faults = {
        "batch": [target.name],
        "source": ["*"],
        "fault": ["batch_redelivered"],
        "row_number": [None],
        "key": [""],
        "column": [""],
        "value": [""],
        "detail": [f"copy of batch {prev.name}"],
    }
    write_faults(paths.truth / "faults" / f"{target.name}.csv", faults)


def _pending_dir(paths: Paths, source: str) -> Path:
    return paths.state / "pending" / source


def _write_pending(paths: Paths, source: str, part: str, table: pa.Table) -> None:
    if table.num_rows == 0:
        return
    d = _pending_dir(paths, source)
    d.mkdir(parents=True, exist_ok=True)
    table = table.sort_by("_delivery")
    tmp = d / f".{part}.parquet.tmp"
    pq.write_table(table, tmp, row_group_size=32_768)
    tmp.replace(d / f"{part}.parquet")


def _read_pending(paths: Paths, source: str, day_: int) -> pa.Table | None:
    d = _pending_dir(paths, source)
    files = sorted(str(p) for p in d.glob("*.parquet")) if d.exists() else []
    if not files:
        return None
    return ds.dataset(files, format="parquet").to_table(filter=ds.field("_delivery") == day_)


def _append_csv(path: Path, table: pa.Table, writer):
    import pyarrow.csv as pcsv

    if writer is None:
        writer = pcsv.CSVWriter(
            str(path), table.schema, write_options=pcsv.WriteOptions(quoting_style="needed")
        )
    writer.write_table(table)
    return writer


def _summary(mode: str, manifest: dict, customers: int, seconds: float, batch_dir: Path) -> Summary:
    files = manifest["files"]
    return Summary(
        mode,
        manifest["batch"],
        {k: v["rows"] for k, v in files.items()},
        sum(v["bytes"] for v in files.values()),
        seconds,
        customers,
        batch_dir,
    )
