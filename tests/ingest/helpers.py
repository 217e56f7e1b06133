"""Small landed batches written by hand, for the loader's tests."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import duckdb

from clv import ingest
from clv.contract import SOURCES
from clv.settings import Paths

HEADER = ",".join(SOURCES["orders"].column_names)
GOOD = "O1,C000000001,2024-01-05 10:00:00,P010001,electronics,1,19.99,web,site,Berlin,DE,19"


def make_batch(root, files: dict[str, bytes], batch="2024-01-05") -> Paths:
    """A landed batch holding the given files plus a good customers file; its manifest lists no
    files (a hand-made delivery: nothing to check the files against)."""
    paths = Paths(root)
    d = paths.landing / batch
    d.mkdir(parents=True)
    customers = (
        ",".join(SOURCES["customers"].column_names)
        + "\n"
        + "C000000001,Ada,Lovelace,ada@example.com,F,1990-01-01,2023-01-01 00:00:00,Berlin,DE,true\n"
    )
    (d / "customers.csv").write_text(customers)
    for name, data in files.items():
        (d / name).write_bytes(data)
    (d / "_manifest.json").write_text(json.dumps({"batch_date": batch}))
    return paths


def load(paths: Paths, **kw):
    summary = ingest.load(paths.data_dir, **kw)
    con = duckdb.connect(str(paths.warehouse))
    return summary, con


def by_file(summary) -> dict[str, ingest.FileResult]:
    return {os.path.basename(f.path): f for f in summary.files}


def relist(path: Path) -> None:
    """Re-announce a landed file in its batch's manifest (bytes, sha256, rows) after a test has
    rewritten it: the delivering system delivered these bytes on purpose, so the loader judges
    their content instead of failing them for not matching the manifest."""
    mpath = path.parent / "_manifest.json"
    manifest = json.loads(mpath.read_text())
    data = path.read_bytes()
    lines = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    entry = {"file": path.name, "rows": max(lines - 1, 0), "bytes": len(data)}
    entry["sha256"] = hashlib.sha256(data).hexdigest()
    files = manifest.setdefault("files", {})
    key = next((k for k, v in files.items() if v.get("file") == path.name), path.stem)
    files[key] = {**files.get(key, {}), **entry}
    mpath.write_text(json.dumps(manifest, indent=2))


def make_delivery(root, files: dict[str, bytes], batch="2024-01-05") -> Paths:
    """A batch as a delivering system sends it: ``make_batch``'s files, each listed in the manifest
    with its rows, bytes and sha256 (as the generator writes it)."""
    paths = make_batch(root, files, batch)
    for f in sorted((paths.landing / batch).iterdir()):
        if not f.name.startswith("_"):
            relist(f)
    return paths


def copy_batch(src: Paths, dst_root, batch: str) -> Paths:
    """One landed batch of a generated dataset, with the generator's fault log for it, in a data
    directory of its own (a small, realistic delivery for a scenario)."""
    paths = Paths(dst_root)
    shutil.copytree(src.landing / batch, paths.landing / batch)
    faults = src.truth / "faults" / f"{batch}.csv"
    if faults.exists():
        (paths.truth / "faults").mkdir(parents=True)
        shutil.copy2(faults, paths.truth / "faults" / faults.name)
    return paths
