"""Soda's raw-zone checks: generated from the contract, passing on loaded data, failing (with the
expected check name) on crafted bad data, recorded in ops.check_results and reported on disk."""

from __future__ import annotations

import json

import duckdb
import pytest

from clv import ingest, quality
from clv.contract import SOURCES
from tests.conftest import END
from tests.ingest.conftest import copy_data


def test_raw_checks_are_generated_from_the_contract():
    for src in SOURCES.values():
        path = quality.CHECKS_DIR / "raw" / f"{src.name}.yml"
        assert path.read_text() == quality.raw_checks_yaml(src), (
            f"{path} is stale: run `clv scan --write-raw-checks`"
        )


@pytest.fixture
def warehouse(heavy_data, tmp_path):
    paths = copy_data(heavy_data, tmp_path / "data")
    ingest.load(paths.data_dir)
    con = duckdb.connect(str(paths.warehouse))
    yield paths, con
    con.close()


def test_loaded_heavy_chaos_passes_with_a_quarantine_warning(warehouse):
    paths, con = warehouse
    result = quality.scan(con, "raw", END, run_id="r1", data_dir=paths.data_dir)
    assert result.ok and len(result.checks) > 50
    # heavy chaos quarantines a few percent of rows: above the warning threshold, below failure
    assert {c["name"] for c in result.warned} >= {"orders quarantine rate of the batch"}
    stored = con.sql(
        "SELECT count(*), count(DISTINCT check_name) FROM ops.check_results WHERE run_id = 'r1'"
    ).fetchone()
    assert stored == (len(result.checks), len(result.checks))
    report = json.loads((paths.reports / "r1" / "raw.json").read_text())
    assert report["business_date"] == END.isoformat() and len(report["checks"]) == len(result.checks)
    assert (
        "| orders | orders quarantine rate of the batch | warn |"
        in (paths.reports / "r1" / "raw.md").read_text()
    )


@pytest.mark.parametrize(
    "damage,check",
    [
        (
            "UPDATE raw_data.orders SET device_type = 'smartwatch' WHERE rowid < 3",
            "orders.device_type within the contract's values",
        ),
        (
            "UPDATE raw_data.support_tickets SET csat_score = 9 WHERE rowid < 3",
            "support_tickets.csat_score not above 5",
        ),
        ("UPDATE raw_data.orders SET customer_id = NULL WHERE rowid < 3", "orders.customer_id present"),
        (
            "CREATE OR REPLACE VIEW raw.orders AS SELECT * EXCLUDE (city) FROM raw_data.orders",
            "orders has the contract's columns and types",
        ),
        (
            "UPDATE ops.load_manifest SET rows_quarantined = rows_in_file WHERE source = 'orders'",
            "orders quarantine rate of the batch",
        ),
    ],
)
def test_each_kind_of_raw_check_fails_on_bad_data(warehouse, damage, check):
    paths, con = warehouse
    con.execute(damage)
    with pytest.raises(quality.ScanFailed, match="raw checks failed"):
        quality.scan(con, "raw", END, data_dir=paths.data_dir)
    result = quality.scan(con, "raw", END, data_dir=paths.data_dir, raise_on_failure=False)
    assert check in {c["name"] for c in result.failed}


def test_a_missing_table_is_an_error_not_a_pass(warehouse):
    paths, con = warehouse
    con.execute("DROP VIEW raw.support_tickets")
    result = quality.scan(con, "raw", END, data_dir=paths.data_dir, raise_on_failure=False)
    assert not result.ok and result.errors
