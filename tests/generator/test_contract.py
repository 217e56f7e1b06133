"""Every landed file conforms to the source contract: header, types, enums, ranges, nullability."""

from __future__ import annotations

import hashlib

import duckdb
import pytest

from clv.contract import SOURCES
from tests.generator.helpers import batches, manifest, read_typed


@pytest.fixture(scope="module")
def con():
    return duckdb.connect()


def test_every_batch_has_every_source_with_the_contract_header(clean_data):
    found = batches(clean_data.landing)
    assert [b.name for b in found] == ["2023-12-31", *[f"2024-01-0{i}" for i in range(1, 6)]]
    for batch in found:
        m = manifest(batch)
        assert set(m["files"]) == set(SOURCES)
        for name, src in SOURCES.items():
            path = batch / src.filename
            header = path.open(encoding="utf-8").readline().rstrip("\n").split(",")
            assert header == list(src.column_names), (batch.name, name)
            assert m["files"][name]["columns"] == list(src.column_names)
            data = path.read_bytes()
            assert hashlib.sha256(data).hexdigest() == m["files"][name]["sha256"]
            assert len(data) == m["files"][name]["bytes"]
            assert data.count(b"\n") - 1 == m["files"][name]["rows"]


@pytest.mark.parametrize("source", list(SOURCES))
def test_values_parse_to_contract_types_and_respect_rules(clean_data, con, source):
    src = SOURCES[source]
    for batch in batches(clean_data.landing):
        rel = read_typed(con, batch / src.filename, source)
        rows = rel.count("*").fetchone()[0]
        assert rows == manifest(batch)["files"][source]["rows"]
        if batch.name == "2023-12-31":
            assert rows > 0, f"history batch has no {source}"
        for col in src.columns:
            nulls, bad_enum, lo, hi = rel.aggregate(
                f"count(*) FILTER (WHERE {col.name} IS NULL), "
                + (
                    f"count(*) FILTER (WHERE {col.name} NOT IN ({', '.join(repr(v) for v in col.enum)})), "
                    if col.enum
                    else "0, "
                )
                + (
                    f"min({col.name}), max({col.name})"
                    if col.min is not None or col.max is not None
                    else "NULL, NULL"
                )
            ).fetchone()
            if col.required:
                assert nulls == 0, f"{batch.name}/{source}.{col.name} has {nulls} nulls"
            assert bad_enum == 0, f"{batch.name}/{source}.{col.name} has values outside its enum"
            if col.min is not None and lo is not None:
                assert lo >= col.min, f"{source}.{col.name} min {lo} < {col.min}"
            if col.max is not None and hi is not None:
                assert hi <= col.max, f"{source}.{col.name} max {hi} > {col.max}"


def test_strings_look_real(clean_data, con):
    """Emails are built from the customer's own name; cities belong to the country; OS fits device."""
    cust = read_typed(con, clean_data.landing / "2023-12-31" / "customers.csv", "customers")
    mismatched = (
        cust.filter(
            "NOT contains(lower(email), lower(strip_accents(regexp_replace(last_name, '[^[:alpha:]]', '', 'g'))))"
            " AND NOT contains(lower(email), lower(strip_accents(regexp_replace(first_name, '[^[:alpha:]]', '', 'g'))))"
        )
        .count("*")
        .fetchone()[0]
    )
    assert mismatched / cust.count("*").fetchone()[0] < 0.02
    assert cust.filter("email NOT LIKE '%_@_%._%'").count("*").fetchone()[0] == 0
    # the same city name never appears under two countries' pools in a way that crosses markets
    cities_per_country = con.sql(
        "SELECT count(DISTINCT country) AS n FROM cust GROUP BY city ORDER BY n DESC LIMIT 1"
    ).fetchone()[0]
    assert cities_per_country <= 2
    sessions = read_typed(con, clean_data.landing / "2023-12-31" / "device_sessions.csv", "device_sessions")
    wrong = (
        sessions.filter(
            "(device_type = 'desktop' AND (os_version LIKE 'iOS%' OR os_version LIKE 'Android%' OR app_version IS NOT NULL))"
            " OR (device_type = 'mobile' AND os_version NOT LIKE 'iOS%' AND os_version NOT LIKE 'Android%')"
            " OR (device_type = 'tablet' AND os_version NOT LIKE 'iPadOS%' AND os_version NOT LIKE 'Android%')"
        )
        .count("*")
        .fetchone()[0]
    )
    assert wrong == 0


def test_referential_integrity_of_clean_rows(clean_data, con):
    """Without chaos every customer_id anywhere belongs to a customer some batch delivered."""
    landing = clean_data.landing
    con.execute(
        "CREATE OR REPLACE TEMP TABLE all_customers AS SELECT DISTINCT customer_id FROM "
        f"read_csv('{landing}/*/customers.csv', header=true, all_varchar=true)"
    )
    for name in SOURCES:
        if name == "customers":
            continue
        orphans = con.sql(
            f"SELECT count(*) FROM read_csv('{landing}/*/{name}.csv', header=true, all_varchar=true) "
            "WHERE customer_id NOT IN (SELECT customer_id FROM all_customers)"
        ).fetchone()[0]
        assert orphans == 0, f"{name} has {orphans} orphan rows"


@pytest.mark.parametrize(
    "source,key",
    [
        ("orders", "order_id"),
        ("device_sessions", "session_id"),
        ("financial_profiles", "customer_id, profile_effective_date"),
        ("loyalty_balances", "customer_id, snapshot_date"),
    ],
)
def test_event_keys_never_repeat_across_batches(clean_data, con, source, key):
    dupes = con.sql(
        f"SELECT count(*) FROM (SELECT {key} FROM read_csv('{clean_data.landing}/*/{source}.csv', "
        f"header=true, all_varchar=true) GROUP BY ALL HAVING count(*) > 1)"
    ).fetchone()[0]
    assert dupes == 0


def test_an_event_late_in_the_day_keeps_its_day():
    """Timestamps are cut to the second, never rounded into the next day (a 1M-customer history
    once had orders at 00:00:00 after its business date)."""
    import numpy as np
    import pyarrow.compute as pc

    from generator.simulate import _date, _ts

    t = np.array([0.0, 0.5, 1 - 1e-7, 1096 - 2e-6, 1096.99999999])  # days since the epoch
    assert pc.cast(_ts(t), "date32").to_pylist() == _date(t).to_pylist()
