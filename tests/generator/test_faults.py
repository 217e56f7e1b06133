"""Injected faults appear at their configured rates, and the truth records each one exactly."""

from __future__ import annotations

import datetime as dt
import math
import shutil

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pytest

from clv.contract import SOURCES
from generator import chaos, runner
from tests.generator.helpers import batches, manifest

HEAVY = chaos.PROFILES["heavy"]


def read_faults(paths) -> pa.Table:
    files = sorted((paths.truth / "faults").glob("*.csv"))
    opts = pcsv.ConvertOptions(column_types={f.name: f.type for f in chaos.FAULT_FIELDS})
    return pa.concat_tables([pcsv.read_csv(f, convert_options=opts) for f in files])


def read_text(path) -> pa.Table:
    """All columns as text, empty fields as null, in file order."""
    header = path.open(encoding="utf-8").readline().rstrip("\n").split(",")
    opts = pcsv.ConvertOptions(
        column_types=dict.fromkeys(header, pa.string()),
        strings_can_be_null=True,
        null_values=[""],
        quoted_strings_can_be_null=False,
    )
    return pcsv.read_csv(path, convert_options=opts)


@pytest.fixture(scope="module")
def faults(heavy_data):
    return read_faults(heavy_data).to_pylist()


def _within(observed: int, n: int, rate: float) -> bool:
    expected = n * rate
    return abs(observed - expected) <= 5 * math.sqrt(expected * (1 - rate)) + 2


@pytest.mark.parametrize(
    "kind", ["bad_date", "bad_enum", "missing_id", "orphan_fk", "bad_quantity", "duplicate"]
)
def test_row_fault_rates_match_the_profile(heavy_data, faults, kind):
    history = heavy_data.landing / "2023-12-31"
    rate = {
        "bad_date": HEAVY.bad_date_rate,
        "bad_enum": HEAVY.bad_enum_rate,
        "missing_id": HEAVY.missing_id_rate,
        "orphan_fk": HEAVY.orphan_rate,
        "bad_quantity": HEAVY.bad_quantity_rate,
        "duplicate": HEAVY.duplicate_rate,
    }[kind]
    eligible = 0
    for name, src in SOURCES.items():
        if kind == "bad_quantity" and name != "orders":
            continue
        if kind == "orphan_fk" and "customer_id" not in src.foreign_keys:
            continue
        if kind == "bad_enum" and not any(c.enum for c in src.columns):
            continue
        rows = manifest(history)["files"][name]["rows"]
        dups = sum(
            1
            for f in faults
            if f["batch"] == history.name and f["source"] == name and f["fault"] == "duplicate"
        )
        eligible += rows - dups
    observed = sum(1 for f in faults if f["batch"] == history.name and f["fault"] == kind)
    assert observed > 0
    assert _within(observed, eligible, rate), (kind, observed, eligible * rate)


def test_every_recorded_row_fault_is_in_the_file(heavy_data, faults):
    cache: dict = {}
    customers = set()
    for b in batches(heavy_data.landing):
        customers |= set(read_text(b / "customers.csv").column("customer_id").to_pylist())
    checked = 0
    for f in faults:
        if f["fault"] in ("schema_drift", "batch_redelivered", "late_event"):
            continue
        path = heavy_data.landing / f["batch"] / SOURCES[f["source"]].filename
        if path not in cache:
            cache[path] = read_text(path)
        table = cache[path]
        row = table.slice(f["row_number"] - 1, 1).to_pylist()[0]
        if f["fault"] == "duplicate":
            original = int(f["detail"].removeprefix("copy of row "))
            assert row == table.slice(original - 1, 1).to_pylist()[0]
        elif f["fault"] == "missing_id":
            assert row[f["column"]] is None
        elif f["fault"] == "orphan_fk":
            assert row["customer_id"] == f["value"] and row["customer_id"] not in customers
        else:
            assert row[f["column"]] == f["value"], f
        checked += 1
    assert checked > 100


def test_late_events_are_dated_before_their_batch(heavy_data, faults):
    late = [f for f in faults if f["fault"] == "late_event" and f["batch"] != "2023-12-31"]
    assert late, "heavy chaos delivers some events late"
    corrupted = {
        (f["batch"], f["source"], f["row_number"])
        for f in faults
        if f["fault"] in ("bad_date", "missing_id", "orphan_fk")
    }
    for f in late[:300]:
        if (f["batch"], f["source"], f["row_number"]) in corrupted:
            continue
        src = SOURCES[f["source"]]
        table = read_text(heavy_data.landing / f["batch"] / src.filename)
        row = table.slice(f["row_number"] - 1, 1).to_pylist()[0]
        days = int(f["detail"].split()[0])
        assert 1 <= days <= HEAVY.max_lateness_days
        event_date = dt.date.fromisoformat(row[src.event_time][:10])
        assert event_date == dt.date.fromisoformat(f["batch"]) - dt.timedelta(days=days)
        assert row[src.primary_key[0]] == f["key"]


def test_late_rate_matches_the_profile(heavy_data, faults):
    history = heavy_data.landing / "2023-12-31"
    m = manifest(history)["files"]
    # in the history batch an event is late when delivered after its event day but by the end date
    late = sum(1 for f in faults if f["fault"] == "late_event" and f["batch"] == history.name)
    n = m["orders"]["rows"] + m["device_sessions"]["rows"]
    assert 0.5 * HEAVY.late_rate * n < late < 1.1 * HEAVY.late_rate * n


def test_schema_drift_is_recorded_and_matches_the_header(heavy_data, faults):
    drifts = [f for f in faults if f["fault"] == "schema_drift"]
    assert drifts, "heavy chaos drifts some day files (deterministic for this seed)"
    assert all(f["batch"] != "2023-12-31" for f in drifts), "history files never drift"
    for f in drifts:
        src = SOURCES[f["source"]]
        header = (heavy_data.landing / f["batch"] / src.filename).open().readline().rstrip("\n").split(",")
        assert header != list(src.column_names)
        if f["value"] == "extra_column":
            assert header == [*src.column_names, chaos.EXTRA_COLUMN]
        elif f["value"] == "missing_column":
            missing = f["detail"].split()[0]
            assert header == [c for c in src.column_names if c != missing]
        else:
            old, new = f["detail"].split(" renamed to ")
            assert header == [new if c == old else c for c in src.column_names]
        assert manifest(heavy_data.landing / f["batch"])["files"][f["source"]]["columns"] == header


def test_a_redelivered_batch_is_byte_identical_and_recorded(clean_data, tmp_path):
    paths = runner.Paths(tmp_path / "data")
    shutil.copytree(clean_data.data_dir, paths.data_dir)
    always = chaos.ChaosProfile("always-redeliver", redelivery_prob=1.0)
    runner.day(paths, dt.date(2024, 1, 6), chaos=always)
    copy = paths.landing / "2024-01-05-redelivery"
    assert copy.is_dir()
    for name in SOURCES:
        f = SOURCES[name].filename
        assert (copy / f).read_bytes() == (paths.landing / "2024-01-05" / f).read_bytes()
    log = read_faults(paths)
    rows = log.filter(pc.equal(log.column("fault"), "batch_redelivered")).to_pylist()
    assert [(r["batch"], r["detail"]) for r in rows] == [
        ("2024-01-05-redelivery", "copy of batch 2024-01-05")
    ]
    # the copy sorts between its original and the next day
    names = [b.name for b in batches(paths.landing)]
    assert names.index("2024-01-05") < names.index("2024-01-05-redelivery") < names.index("2024-01-06")
