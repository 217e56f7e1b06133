"""The ground truth agrees with the latent state and with what the sources later deliver."""

from __future__ import annotations

import datetime as dt

import duckdb
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pytest

from clv.settings import SEEDS_DIR, Paths
from generator import runner
from tests.conftest import END, START


def truth(paths: Paths):
    return pcsv.read_csv(paths.truth / "customers.csv")


def test_truth_columns_and_latent_consistency(clean_data):
    t = truth(clean_data)
    required = {
        "customer_id",
        "churned",
        "churn_date",
        "future_orders_90d",
        "future_revenue_90d",
        "future_orders_365d",
        "future_revenue_365d",
        "future_subscription_revenue_90d",
        "future_subscription_revenue_365d",
        "future_total_revenue_90d",
        "future_total_revenue_365d",
        "lambda_per_day",
        "dropout_p",
    }
    assert required <= set(t.column_names)
    assert t.num_rows == 1_500
    rows = t.to_pylist()
    churned = [r for r in rows if r["churned"]]
    assert 0.2 < len(churned) / len(rows) < 0.7
    for r in rows:
        assert r["future_orders_365d"] >= r["future_orders_90d"] >= 0
        assert r["future_subscription_revenue_365d"] >= r["future_subscription_revenue_90d"] >= 0
        for w in (90, 365):
            total = r[f"future_revenue_{w}d"] + r[f"future_subscription_revenue_{w}d"]
            assert r[f"future_total_revenue_{w}d"] == pytest.approx(total, abs=0.011)
        assert r["future_purchase_days_365d"] <= r["future_orders_365d"]
        if r["churned"]:
            assert r["churn_date"] is not None and r["churn_date"] <= END
            assert r["future_orders_365d"] == 0, "a churned customer never orders again"
            assert r["future_revenue_365d"] <= 0  # only refunds of earlier orders can follow
        else:
            assert r["churn_date"] is None
    alive = [r for r in rows if not r["churned"]]
    assert sum(r["future_orders_365d"] > 0 for r in alive) / len(alive) > 0.5


def test_calibration_summary_matches_the_landed_orders(clean_data):
    """Repeat purchase days and recency in the truth follow the literature's conventions exactly."""
    con = duckdb.connect()
    observed = dict(
        con.sql(f"""
        SELECT customer_id, count(DISTINCT order_datetime::DATE) - 1
        FROM read_csv('{clean_data.landing}/*/orders.csv', header=true)
        WHERE quantity > 0 AND order_datetime < DATE '{END + dt.timedelta(days=1)}'
        GROUP BY 1
    """).fetchall()
    )
    t = truth(clean_data).to_pylist()
    assert all(observed[r["customer_id"]] == r["repeat_purchase_days"] for r in t)


# core.fct_revenue's charge convention, written again here in SQL over the landed files (the truth
# computes it with clv.stats.renewal): the latest delivered state of each subscription, charged
# its plan's list price at the start and every billing_months months after it, end day excluded.
DELIVERED_CHARGES = """
WITH subs AS (
  SELECT subscription_id, min(customer_id) AS customer_id, min(plan_id) AS plan_id,
         min(start_date) AS start_date, max(end_date) AS end_date  -- a cancellation is final
  FROM read_csv('{landing}/*/subscriptions.csv', header=true)
  GROUP BY subscription_id
), plans AS (
  SELECT * FROM read_csv('{seeds}/plans.csv', header=true)
), charges AS (
  SELECT s.customer_id, p.list_price_usd AS price,
         CAST(s.start_date + TO_MONTHS(CAST(k * p.billing_months AS INT)) AS DATE) AS charge_date, s.end_date
  FROM subs AS s JOIN plans AS p USING (plan_id),
       UNNEST(GENERATE_SERIES(0, 60)) AS g(k)
)
SELECT customer_id, round(sum(price), 2)
FROM charges
WHERE charge_date BETWEEN DATE '{first}' AND DATE '{last}' AND (end_date IS NULL OR charge_date < end_date)
GROUP BY 1
"""


@pytest.mark.slow
def test_holdout_truth_equals_what_the_day_batches_deliver(tmp_path):
    """Generate the first 90 holdout days: each customer's orders match future_orders_90d, and the
    subscription charges the delivered subscriptions bill in those days (by core.fct_revenue's
    convention) match future_subscription_revenue_90d."""
    paths = Paths(tmp_path)
    runner.history(paths, 400, START, END, seed=3, chaos="none", progress=False, workers=1)
    for i in range(1, 91 + 1):  # one day past the window: nothing dated inside it arrives later
        runner.day(paths, END + dt.timedelta(days=i), chaos="none")
    con = duckdb.connect()
    delivered = con.sql(f"""
        SELECT customer_id, count(*) FILTER (WHERE quantity > 0) AS orders,
               round(sum(quantity * unit_price_usd), 2) AS revenue
        FROM read_csv('{paths.landing}/2024-*/orders.csv', header=true)
        WHERE order_datetime >= DATE '2024-01-01' AND order_datetime < DATE '2024-03-31'
        GROUP BY 1
    """).fetchall()
    got = {c: (o, float(r)) for c, o, r in delivered}
    t = truth(paths)
    assert pc.sum(t["future_orders_90d"]).as_py() > 50
    for r in t.to_pylist():
        orders, revenue = got.get(r["customer_id"], (0, 0.0))
        assert orders == r["future_orders_90d"], r["customer_id"]
        assert revenue == pytest.approx(r["future_revenue_90d"], abs=0.02)
    charged = dict(
        con.sql(
            DELIVERED_CHARGES.format(
                landing=paths.landing, seeds=SEEDS_DIR, first="2024-01-01", last="2024-03-30"
            )
        ).fetchall()
    )
    assert pc.sum(t["future_subscription_revenue_90d"]).as_py() > 1_000
    for r in t.to_pylist():
        expected = float(charged.get(r["customer_id"], 0.0))
        assert expected == pytest.approx(r["future_subscription_revenue_90d"], abs=0.02), r["customer_id"]
