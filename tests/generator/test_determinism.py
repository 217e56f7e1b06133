"""Same seed and arguments, same bytes: whatever the number of worker processes."""

from __future__ import annotations

import datetime as dt
import hashlib

from clv.settings import Paths
from generator import runner
from tests.generator.helpers import batches, manifest

START, END = dt.date(2023, 6, 1), dt.date(2023, 12, 31)


def _digest(paths: Paths) -> dict[str, str]:
    out = {}
    for d in (paths.landing, paths.truth):
        for f in sorted(d.rglob("*.csv")):
            out[str(f.relative_to(paths.data_dir))] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def _make(root, seed: int, workers: int) -> Paths:
    paths = Paths(root)
    # small chunks so that two workers really split the population
    runner.history(paths, 900, START, END, seed=seed, chaos="heavy", progress=False, workers=workers)
    for i in (1, 2):
        runner.day(paths, END + dt.timedelta(days=i), chaos="heavy")
    return paths


def test_same_seed_same_bytes_serial_and_parallel(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "CHUNK_CUSTOMERS", 300)
    a = _make(tmp_path / "a", seed=11, workers=1)
    b = _make(tmp_path / "b", seed=11, workers=2)
    da, db = _digest(a), _digest(b)
    assert len(da) == 7 * 3 + 1 + 3  # 3 batches x 7 sources, truth, 3 fault logs
    assert da == db
    for x, y in zip(batches(a.landing), batches(b.landing)):
        assert manifest(x)["files"] == manifest(y)["files"]


def test_another_seed_gives_another_dataset(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "CHUNK_CUSTOMERS", 300)
    a = _make(tmp_path / "a", seed=11, workers=1)
    c = _make(tmp_path / "c", seed=12, workers=1)
    da, dc = _digest(a), _digest(c)
    assert all(da[k] != dc[k] for k in da if "orders" in k or "customers" in k)
