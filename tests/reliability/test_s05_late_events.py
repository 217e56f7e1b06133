"""Scenario 5: late and out-of-order events, up to the generator's maximum lateness (7 days), are in
the facts and marts after the next run, and the daily runs' facts and marts equal a full rebuild
from raw."""

from __future__ import annotations

import shutil
from collections import Counter

import duckdb
import pytest

from clv import ingest, transform
from clv.contract import MAX_LATENESS_DAYS
from clv.settings import Paths
from tests.reliability.compare import FACTS, MARTS, layer_diff, physical, snapshot_copy
from tests.reliability.conftest import END, HEAVY_DAYS, day
from tests.reliability.ledger import read_faults

pytestmark = pytest.mark.slow
#: where each event-time source's rows land in core: (fact, its key, the source's key)
FACT_OF = {
    "orders": ("core.fct_revenue", "revenue_event_id", "order_id"),
    "device_sessions": ("core.fct_activity_logs", "session_id", "session_id"),
}


@pytest.mark.scenario(5, "late and out-of-order events")
def test_late_events_up_to_the_maximum_lateness_reach_facts_and_marts(heavy_project, ledger):
    paths = heavy_project
    batches = [day(i).isoformat() for i in range(1, HEAVY_DAYS + 1)]
    late = [f for f in read_faults(paths, batches) if f["fault"] == "late_event"]
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        checked: Counter = Counter()
        for source, (fact, fact_key, key) in FACT_OF.items():
            lateness = {f["key"]: int(f["detail"].split()[0]) for f in late if f["source"] == source}
            assert lateness, source
            # The late rows that loaded (not quarantined for another fault) and whose customer is
            # known: each is in the fact, whatever day it belongs to.
            rows = con.execute(
                f"""SELECT r.{key}, r._batch_date - CAST(r.{"order_datetime" if source == "orders" else "session_start_ts"} AS DATE)
                    FROM raw.{source} r
                    JOIN core.dim_customers c ON c.customer_id = r.customer_id AND c.valid_to IS NULL
                    WHERE r._batch = ANY(?) AND r.{key} = ANY(?)""",
                [batches, list(lateness)],
            ).fetchall()
            in_fact = {
                k
                for (k,) in con.execute(
                    f"SELECT {fact_key} FROM {fact} WHERE {fact_key} = ANY(?)", [[k for k, _ in rows]]
                ).fetchall()
            }
            for k, days_late in rows:
                assert days_late == lateness[k], (source, k)  # the delivery really was that late
                assert k in in_fact, (source, k, days_late)
                checked[days_late] += 1
        assert max(checked) == MAX_LATENESS_DAYS and checked[MAX_LATENESS_DAYS] >= 3, checked
        # Out of order: the latest batch delivered events older than ones the earlier batches did.
        newest_before = con.execute(
            "SELECT max(session_start_ts) FROM raw.device_sessions WHERE _batch_date < ?", [day(HEAVY_DAYS)]
        ).fetchone()[0]
        assert con.execute(
            "SELECT count(*) FROM raw.device_sessions WHERE _batch_date = ? AND session_start_ts < ?",
            [day(HEAVY_DAYS), newest_before],
        ).fetchone()[0]
        # The marts include them: every customer's historical value equals their revenue facts.
        mismatch = con.execute(
            """SELECT count(*) FROM marts.mart_clv m
               JOIN (SELECT customer_id, sum(revenue_usd) AS total FROM core.fct_revenue
                     WHERE revenue_date <= ? GROUP BY 1) f USING (customer_id)
               WHERE abs(m.historical_clv_usd - f.total) > 0.005""",
            [day(HEAVY_DAYS)],
        ).fetchone()[0]
        assert mismatch == 0
        for days_late, n in sorted(checked.items()):
            ledger.fault(f"late event, {days_late} days late (checked in facts)", n)
        ledger.faults_from_truth(paths, [END.isoformat(), *batches])
        ledger.account(paths, con)
    finally:
        con.close()


@pytest.mark.scenario(5, "late and out-of-order events")
def test_a_rebuild_from_raw_equals_the_daily_runs(heavy_project, tmp_path, ledger):
    """Load every landed batch into a new warehouse and build everything in one plan: the facts
    and the marts equal what three daily runs with late events built."""
    fresh = Paths(tmp_path / "data")
    shutil.copytree(
        heavy_project.data_dir, fresh.data_dir, ignore=shutil.ignore_patterns("warehouse.duckdb*")
    )
    ingest.load(fresh.data_dir)
    rebuilt = transform.context(fresh.data_dir)
    daily = snapshot_copy(heavy_project.warehouse, tmp_path / "daily.duckdb")
    try:
        transform.plan_prod(rebuilt, day(HEAVY_DAYS))
        con = rebuilt.engine_adapter.connection
        con.execute(f"ATTACH '{daily}' AS daily (READ_ONLY)")
        for table in (*(f"core.{f}" for f in FACTS), *(f"marts.{m}" for m in MARTS)):
            n, diff = layer_diff(con, table, "warehouse", "daily")
            assert n > 0 and diff == 0, (table, n, diff)
        totals = [
            con.execute(
                f"SELECT count(*), sum(revenue_usd) FROM {physical(con, db, 'core.fct_revenue')}"
            ).fetchone()
            for db in ("warehouse", "daily")
        ]
        assert totals[0] == totals[1]
        con.execute("DETACH daily")
        ledger.recovery("full rebuild from raw equals the daily runs")
        ledger.account(fresh, con)
    finally:
        rebuilt.close()
