"""clv_backfill's restate mode through real Airflow: after a source correction that no new load
brings (a raw row edited in place), restating the staging model for the row's batch date
recomputes prod in place — SQLMesh restates unchanged models only in prod — and the mart and the
serving file show the corrected row once prod's checks passed. Without models a restatement is
refused in the first task, with one line."""

from __future__ import annotations

import duckdb
import pytest

from clv.airflow import home as airflow_home
from clv.names import DEFAULT_HISTORY_END
from tests.airflow.helpers import clv, explain, query, sha256, small_run
from tests.airflow.test_environment_guard import _tasks_started

pytestmark = pytest.mark.slow

END = DEFAULT_HISTORY_END
NO_MODELS = "restate needs models: name the models to recompute (e.g. staging.stg_orders)"


def test_a_restatement_without_models_is_refused_in_the_first_task(tmp_path):
    data = tmp_path / "data"
    result = clv("backfill", "--restate", "--data-dir", str(data))
    assert result.returncode == 2 and result.stderr.count("\n") == 1, explain(result)
    assert "clv: error: --restate needs --models: name the models to recompute" in result.stderr
    assert not data.exists()

    airflow_home.bootstrap(data)
    rc, log_file = airflow_home.dags_test("clv_backfill", END, data, conf={"restate": True, "models": []})
    log = log_file.read_text()
    assert rc != 0, log[-3000:]
    assert f"AirflowFailException: {NO_MODELS}\n" in log, log[-5000:]
    assert _tasks_started(log) == ["resolve_business_date"], _tasks_started(log)
    assert "up_for_retry" not in log


def test_a_restatement_recomputes_prod_in_place_and_republishes(tmp_path):
    data = tmp_path / "data"
    small_run(data, 800, "2024-06-01", "--no-airflow")
    # The source correction: one order line's price doubled in the raw table, in place (no new load, so no
    # late-load restatement picks it up: only a restatement asked for recomputes it).
    order_id, customer_id, batch_date = query(
        data,
        "SELECT order_id, customer_id, _batch_date FROM raw.orders WHERE quantity > 0 "
        "AND unit_price_usd > 10 ORDER BY order_id LIMIT 1",
    )[0]
    (price,) = query(data, "SELECT unit_price_usd FROM staging.stg_orders WHERE order_id = ?", [order_id])[0]
    (clv_before,) = query(
        data, "SELECT historical_clv_usd FROM marts.mart_customer_360 WHERE customer_id = ?", [customer_id]
    )[0]
    con = duckdb.connect(str(data / "warehouse.duckdb"))
    try:
        con.execute(
            "UPDATE raw_data.orders SET unit_price_usd = unit_price_usd * 2 WHERE order_id = ?",
            [order_id],
        )
    finally:
        con.close()
    serving_before = sha256(data / "serving.duckdb")
    (scanned_before,) = query(data, "SELECT max(scanned_at) FROM ops.check_results")[0]
    airflow_home.bootstrap(data)

    day = str(batch_date)[:10]
    conf = {"restate": True, "models": ["staging.stg_orders"], "start": day, "end": day, "promote": True}
    rc, log = airflow_home.dags_test("clv_backfill", END, data, conf=conf, timeout=1500)
    text = log.read_text()
    assert rc == 0, text[-3000:]
    assert "restatement in place: prod's tables are recomputed for staging.stg_orders" in text
    assert "promote is set: restating in prod without asking" in text
    (corrected,) = query(
        data, "SELECT unit_price_usd FROM staging.stg_orders WHERE order_id = ?", [order_id]
    )[0]
    assert float(corrected) == pytest.approx(2 * float(price))
    (clv_after,) = query(
        data, "SELECT historical_clv_usd FROM marts.mart_customer_360 WHERE customer_id = ?", [customer_id]
    )[0]
    assert float(clv_after) > float(clv_before)
    # republished after prod's checks: the serving file serves the corrected figure
    assert sha256(data / "serving.duckdb") != serving_before
    (served,) = query(
        data,
        "SELECT historical_clv_usd FROM main.mart_customer_360 WHERE customer_id = ?",
        [customer_id],
        db="serving.duckdb",
    )[0]
    assert float(served) == float(clv_after)
    (recorded,) = query(data, "SELECT summary FROM ops.restatements ORDER BY restated_at DESC LIMIT 1")[0]
    assert recorded.startswith("restatement in place: prod's tables are recomputed for staging.stg_orders")
    # prod's checks ran after the restatement (the restate step's layer reports)
    layers = query(
        data, "SELECT DISTINCT layer FROM ops.check_results WHERE scanned_at > ? ORDER BY 1", [scanned_before]
    )
    assert {r[0] for r in layers} == {"raw", "staging", "core", "intermediate", "marts"}
