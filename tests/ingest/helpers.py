"""Small landed batches written by hand, for the loader's tests."""

from __future__ import annotations

import json
import os

import duckdb

from clv import ingest
from clv.contract import SOURCES
from clv.settings import Paths

HEADER = ",".join(SOURCES["orders"].column_names)
GOOD = "O1,C000000001,2024-01-05 10:00:00,P010001,electronics,1,19.99,web,site,Berlin,DE,19"


def make_batch(root, files: dict[str, bytes], batch="2024-01-05") -> Paths:
    """A landed batch holding the given files plus a good customers file."""
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
