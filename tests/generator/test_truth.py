"""The ground truth agrees with the latent state and with what the sources later deliver."""

from __future__ import annotations

import datetime as dt

import duckdb
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pytest

from clv.settings import Paths
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


@pytest.mark.slow
def test_holdout_truth_equals_what_the_day_batches_deliver(tmp_path):
    """Generate the first 90 holdout days: each customer's orders match future_orders_90d."""
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
