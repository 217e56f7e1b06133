"""`day` continues the same population: new ids never collide, profiles change, events arrive late."""

from __future__ import annotations

import duckdb
import pytest

from tests.generator.helpers import batches, read_typed


@pytest.fixture(scope="module")
def con():
    return duckdb.connect()


def _union(con, data, source, where_batch="true"):
    parts = [
        f"SELECT '{b.name}' AS batch, * FROM ({read_typed(con, b / (source + '.csv'), source).sql_query()})"
        for b in batches(data.landing)
    ]
    return con.sql(f"SELECT * FROM ({' UNION ALL '.join(parts)}) WHERE {where_batch}")


def test_new_signups_get_fresh_ids_and_signup_on_their_day(clean_data, con):
    cust = _union(con, clean_data, "customers")
    con.register("cust", cust)
    history_ids = {
        r[0] for r in con.sql("SELECT customer_id FROM cust WHERE batch = '2023-12-31'").fetchall()
    }
    new = con.sql(
        "SELECT customer_id, batch, signup_datetime::DATE::VARCHAR FROM cust "
        "WHERE batch <> '2023-12-31' AND signup_datetime::DATE::VARCHAR = batch"
    ).fetchall()
    assert len(new) >= 5, "about five signups a day at this scale"
    assert not {r[0] for r in new} & history_ids
    # every other day-batch customer row is a profile change of someone who already existed
    changes = con.sql(
        "SELECT count(*) FROM cust WHERE batch <> '2023-12-31' AND signup_datetime::DATE::VARCHAR <> batch"
    ).fetchone()[0]
    assert changes > 0


def test_profile_changes_are_real_scd2_material(clean_data, con):
    cust = _union(con, clean_data, "customers")
    con.register("cust2", cust)
    changed = con.sql("""
        WITH d AS (SELECT * FROM cust2 WHERE batch <> '2023-12-31' AND signup_datetime::DATE::VARCHAR <> batch),
             h AS (SELECT * FROM cust2 WHERE batch = '2023-12-31')
        SELECT count(*) FILTER (WHERE d.city <> h.city),
               count(*) FILTER (WHERE d.email <> h.email),
               count(*) FILTER (WHERE d.marketing_opt_in <> h.marketing_opt_in),
               count(*) FILTER (WHERE d.first_name <> h.first_name OR d.signup_datetime <> h.signup_datetime
                                 OR d.country <> h.country),
               count(*)
        FROM d JOIN h USING (customer_id)
    """).fetchone()
    city, email, opt_in, identity, total = changed
    assert total > 0 and city + email + opt_in >= total  # each version changes something
    assert identity == 0  # name, signup and country never change


def test_day_batches_only_carry_events_up_to_their_date(heavy_data, con):
    for source, col in (("orders", "order_datetime"), ("device_sessions", "session_start_ts")):
        rows = con.sql(f"""
            SELECT count(*) FILTER (WHERE {col}::DATE > batch::DATE),
                   count(*) FILTER (WHERE {col}::DATE < batch::DATE),
                   count(*)
            FROM (SELECT {col}, regexp_extract(filename, '/([0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}})[^/]*/[^/]+$', 1) AS batch
                  FROM read_csv('{heavy_data.landing}/2024-*/{source}.csv', header=true, all_varchar=true,
                                filename=true, union_by_name=true))
            WHERE TRY_CAST({col} AS TIMESTAMP) IS NOT NULL
        """).fetchone()
        future, past, total = rows
        assert future == 0
        assert 0 < past < total  # heavy chaos: some late arrivals, most on time


def test_ticket_updates_reuse_the_ticket_id(clean_data, con):
    """A ticket opened one day and closed later appears again with its new state."""
    t = _union(con, clean_data, "support_tickets")
    con.register("t", t)
    again = con.sql("""
        SELECT count(*) FROM (SELECT ticket_id FROM t GROUP BY ticket_id HAVING count(*) > 1)
    """).fetchone()[0]
    assert again > 0
    regress = con.sql("""
        SELECT count(*) FROM t a JOIN t b USING (ticket_id)
        WHERE a.batch < b.batch AND a.status = 'closed' AND b.status <> 'closed'
    """).fetchone()[0]
    assert regress == 0, "a closed ticket never reopens in a later batch"
