"""Loaded warehouses over the shared generated datasets (one per test module that asks)."""

from __future__ import annotations

import shutil

import duckdb
import pytest

from clv import ingest
from clv.settings import Paths


def copy_data(src: Paths, dst_root) -> Paths:
    shutil.copytree(src.data_dir, dst_root, ignore=shutil.ignore_patterns("warehouse.duckdb*"))
    return Paths(dst_root)


@pytest.fixture(scope="module")
def clean_loaded(clean_data, tmp_path_factory):
    paths = copy_data(clean_data, tmp_path_factory.mktemp("clean-wh") / "data")
    summary = ingest.load(paths.data_dir)
    con = duckdb.connect(str(paths.warehouse))
    yield paths, summary, con
    con.close()


@pytest.fixture(scope="module")
def heavy_loaded(heavy_data, tmp_path_factory):
    paths = copy_data(heavy_data, tmp_path_factory.mktemp("heavy-wh") / "data")
    summary = ingest.load(paths.data_dir)
    con = duckdb.connect(str(paths.warehouse))
    yield paths, summary, con
    con.close()
