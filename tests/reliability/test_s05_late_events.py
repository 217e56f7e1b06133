"""Scenario 5: late and out-of-order events, up to the generator's maximum lateness (7 days), are in
the facts and marts after the next run, and the daily runs' facts and marts equal a full rebuild
from raw."""

from __future__ import annotations

import shutil
from collections import Counter

import duckdb
import pytest

from clv import business_date, ingest, transform
from clv.contract import MAX_LATENESS_DAYS
from clv.settings import Paths
from tests.reliability.compare import FACTS, MARTS, layer_diff, physical, run_history
from tests.reliability.conftest import END, HEAVY_DAYS, copy_data, day
from tests.reliability.ledger import read_faults

# one worker builds the shared warehouse fixture (with `--dist loadgroup`)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("reliability-heavy")]
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
    and the marts equal what the daily runs with late events built.

    One kind of difference is expected, and explained: a subscription whose first delivery was
    quarantined (a bad start date) and whose corrected row came more than the 7-day lookback
    after its start. The daily runs never reprocess charges that old; the documented remedy is a
    restatement of ``core.fct_revenue`` in prod, after which the two agree exactly."""
    fresh = Paths(tmp_path / "rebuilt")
    shutil.copytree(
        heavy_project.data_dir, fresh.data_dir, ignore=shutil.ignore_patterns("warehouse.duckdb*")
    )
    ingest.load(fresh.data_dir)
    rebuilt = transform.context(fresh.data_dir)
    try:
        transform.plan_prod(rebuilt, day(HEAVY_DAYS))
    finally:
        rebuilt.close()
    daily = copy_data(heavy_project, tmp_path / "daily")

    con = duckdb.connect(str(fresh.warehouse))
    try:
        con.execute(f"ATTACH '{daily.warehouse}' AS daily (READ_ONLY)")
        a, b = (physical(con, db, "core.fct_revenue") for db in ("warehouse", "daily"))
        assert not con.execute(f"SELECT * FROM {b} EXCEPT ALL SELECT * FROM {a}").fetchall()
        missing = con.execute(
            f"SELECT revenue_event_id, revenue_type, subscription_id, revenue_date FROM "
            f"(SELECT * FROM {a} EXCEPT ALL SELECT * FROM {b})"
        ).fetchall()
        for event, kind, subscription, charged in missing:
            first_valid, quarantined = con.execute(
                """SELECT (SELECT min(_batch_date) FROM daily.raw.subscriptions WHERE subscription_id = $1),
                          (SELECT count(*) FROM daily.raw_invalid.subscriptions
                           WHERE subscription_id = $1 OR _raw_line LIKE $1 || ',%')""",
                [subscription],
            ).fetchone()
            assert kind == "subscription" and quarantined > 0, (event, kind, subscription)
            assert (first_valid - charged).days > MAX_LATENESS_DAYS, (event, first_valid, charged)
        con.execute("DETACH daily")
    finally:
        con.close()
    if missing:
        ledger.fault("quarantined row corrected after the lookback window", len({m[2] for m in missing}))
        ctx = transform.context(daily.data_dir)
        try:
            ctx.plan(
                restate_models=["core.fct_revenue"],
                start=min(m[3] for m in missing).isoformat(),
                end=day(HEAVY_DAYS).isoformat(),
                execution_time=business_date.execution_time(day(HEAVY_DAYS)),
                auto_apply=True,
                no_prompts=True,
                skip_tests=True,
            )
        finally:
            ctx.close()
        ledger.recovery("restatement of core.fct_revenue in prod")

    con = duckdb.connect(str(fresh.warehouse))
    try:
        con.execute(f"ATTACH '{daily.warehouse}' AS daily (READ_ONLY)")
        for table in (*(f"core.{f}" for f in FACTS), *(f"marts.{m}" for m in MARTS)):
            # a rebuild from raw has no earlier runs: the run-history columns differ by design
            n, diff = layer_diff(con, table, "warehouse", "daily", run_history(table))
            assert n > 0 and diff == 0, (table, n, diff)
        con.execute("DETACH daily")
        ledger.recovery("full rebuild from raw equals the daily runs")
        ledger.account(fresh, con)
    finally:
        con.close()
