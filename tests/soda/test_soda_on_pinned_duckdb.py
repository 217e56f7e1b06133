"""Soda Core's DuckDB adapter on the DuckDB we pin, not the stale duckdb<1.1.0 it declares.

soda-core-duckdb is installed without its dependencies (see requirements-nodeps.txt). This test runs
every kind of SodaCL check the project relies on, against a real DuckDB file, and shows each one
both passing on good data and failing on bad data; and that a scan makes no telemetry attempt.
"""

from __future__ import annotations

import importlib.metadata

import duckdb
import pytest

from clv.soda_runtime import new_scan

CHECKS = """
checks for customers:
  - row_count > 0:
      name: customers present
  - missing_count(customer_id) = 0:
      name: customer ids present
  - duplicate_count(customer_id) = 0:
      name: customer ids unique
  - invalid_count(gender) = 0:
      name: gender in enum
      valid values: [M, F, Other, Unknown]
  - schema:
      name: customers columns
      fail:
        when required column missing: [customer_id, gender, signup_at]
        when wrong column type:
          customer_id: varchar
  - freshness(signup_at) < 2d:
      name: customers fresh
checks for orders:
  - values in (customer_id) must exist in customers (customer_id):
      name: orders reference customers
  - min(quantity) >= 1:
      name: quantity positive
  - max(unit_price_usd) <= 5000:
      name: price plausible
  - avg(unit_price_usd) between 1 and 1000:
      name: average price plausible
  - failed rows:
      name: no orders before signup
      fail query: |
        SELECT o.* FROM orders o JOIN customers c USING (customer_id) WHERE o.ordered_at < c.signup_at
  - late_orders = 0:
      name: no orders after the business date
      late_orders query: |
        SELECT count(*) FROM orders WHERE ordered_at > TIMESTAMP '${BUSINESS_DATE} 23:59:59'
"""

EXPECTED = {
    "customers present",
    "customer ids present",
    "customer ids unique",
    "gender in enum",
    "customers columns",
    "customers fresh",
    "orders reference customers",
    "quantity positive",
    "price plausible",
    "average price plausible",
    "no orders before signup",
    "no orders after the business date",
}


def _load(con: duckdb.DuckDBPyConnection, bad: bool) -> None:
    con.execute("CREATE TABLE customers (customer_id VARCHAR, gender VARCHAR, signup_at TIMESTAMP)")
    con.execute(
        "CREATE TABLE orders (order_id VARCHAR, customer_id VARCHAR, ordered_at TIMESTAMP, "
        "quantity INTEGER, unit_price_usd DECIMAL(10,2))"
    )
    con.execute("""INSERT INTO customers VALUES ('C1', 'F', TIMESTAMP '2024-01-05 10:00:00'),
                                                ('C2', 'M', TIMESTAMP '2024-01-05 11:00:00')""")
    con.execute("""INSERT INTO orders VALUES ('O1', 'C1', TIMESTAMP '2024-01-05 12:00:00', 1, 10.00),
                                             ('O2', 'C2', TIMESTAMP '2024-01-05 13:00:00', 2, 20.00)""")
    if bad:
        con.execute("""INSERT INTO customers VALUES ('C1', 'x', TIMESTAMP '2024-01-01 00:00:00'),
                                                    (NULL, 'F', TIMESTAMP '2024-01-01 00:00:00')""")
        con.execute("""INSERT INTO orders VALUES ('O3', 'C9', TIMESTAMP '2024-01-09 00:00:00', 0, 9000.00),
                                                 ('O4', 'C2', TIMESTAMP '2024-01-01 00:00:00', 1, 5.00)""")


def _scan(tmp_path, bad: bool):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    _load(con, bad)
    scan = new_scan(
        con,
        "smoke",
        data_source="warehouse",
        # freshness is measured against NOW: a day after the data, or five days (stale)
        variables={
            "BUSINESS_DATE": "2024-01-05",
            "NOW": "2024-01-10T00:00:00" if bad else "2024-01-06T00:00:00",
        },
        data_dir=tmp_path,
    )
    scan.add_sodacl_yaml_str(CHECKS)
    scan.execute()
    outcomes = {c["name"]: c["outcome"] for c in scan.get_scan_results()["checks"]}
    return scan, outcomes


def test_pinned_duckdb_is_what_soda_runs_on():
    assert duckdb.__version__ == "1.5.6"
    assert importlib.metadata.version("soda-core-duckdb") == "3.5.6"


def test_every_check_kind_passes_on_good_data(tmp_path):
    scan, outcomes = _scan(tmp_path, bad=False)
    assert not scan.has_error_logs(), scan.get_logs_text()
    assert set(outcomes) == EXPECTED
    assert all(o == "pass" for o in outcomes.values()), outcomes


@pytest.mark.parametrize(
    "check", sorted(EXPECTED - {"customers present", "customers columns", "average price plausible"})
)
def test_each_check_kind_fails_on_bad_data(tmp_path, check):
    _, outcomes = _scan(tmp_path, bad=True)
    assert outcomes[check] == "fail"


def test_schema_check_fails_on_a_missing_column(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("CREATE TABLE customers (customer_id VARCHAR, gender VARCHAR)")
    scan = new_scan(con, "schema", data_dir=tmp_path)
    scan.add_sodacl_yaml_str(
        "checks for customers:\n  - schema:\n      name: cols\n      fail:\n"
        "        when required column missing: [customer_id, signup_at]\n"
    )
    scan.execute()
    assert [c["outcome"] for c in scan.get_scan_results()["checks"]] == ["fail"]


def test_a_missing_table_is_an_error_not_a_pass(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    scan = new_scan(con, "missing", data_dir=tmp_path)
    scan.add_sodacl_yaml_str("checks for nowhere:\n  - row_count > 0:\n      name: there\n")
    scan.execute()
    assert scan.has_error_logs()


def test_scans_make_no_telemetry_attempt(tmp_path):
    scan, _ = _scan(tmp_path, bad=False)
    logs = (scan.get_logs_text() or "").lower()
    for word in ("telemetry", "collect.soda.io", "otlp", "exporter"):
        assert word not in logs
    from soda.telemetry.soda_telemetry import SodaTelemetry

    assert SodaTelemetry.get_instance()._SodaTelemetry__send is False
    assert (tmp_path / ".soda" / "config.yml").read_text().startswith("send_anonymous_usage_stats: false")
