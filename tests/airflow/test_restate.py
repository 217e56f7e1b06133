"""clv_backfill's restate mode through real Airflow: after a source correction that no new load
brings (a raw row edited in place), restating the staging model for the row's batch date
recomputes prod in place — SQLMesh restates unchanged models only in prod — and the mart and the
serving file show the corrected row once prod's checks passed; a correction that fails prod's
checks publishes nothing. Without models a restatement is refused in the first task, with one
line."""

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


def correct(data, sql: str, params: list) -> None:
    """A source correction made in place in the raw table (no new load: no late-load restatement
    picks it up, only a restatement asked for recomputes it)."""
    con = duckdb.connect(str(data / "warehouse.duckdb"))
    try:
        con.execute(sql, params)
    finally:
        con.close()


def test_a_restatement_recomputes_prod_in_place_and_republishes_only_after_prod_checks(tmp_path):
    """A bad correction (an order dated after the business date) is restated, fails prod's staging
    check and leaves the serving file as it was; the good one (that date put back, another line's
    price doubled) is restated, prod's checks pass, the mart and the serving file show it."""
    data = tmp_path / "data"
    small_run(data, 800, "2024-06-01", "--no-airflow")
    order_id, customer_id, batch_date = query(
        data,
        "SELECT order_id, customer_id, _batch_date FROM raw.orders WHERE quantity > 0 "
        "AND unit_price_usd > 10 ORDER BY order_id LIMIT 1",
    )[0]
    other_id, other_at = query(
        data,
        "SELECT order_id, order_datetime FROM raw.orders WHERE order_id > ? ORDER BY order_id LIMIT 1",
        [order_id],
    )[0]
    (price,) = query(data, "SELECT unit_price_usd FROM staging.stg_orders WHERE order_id = ?", [order_id])[0]
    (clv_before,) = query(
        data, "SELECT historical_clv_usd FROM marts.mart_customer_360 WHERE customer_id = ?", [customer_id]
    )[0]
    serving_before = sha256(data / "serving.duckdb")
    airflow_home.bootstrap(data)
    day = str(batch_date)[:10]
    conf = {"restate": True, "models": ["staging.stg_orders"], "start": day, "end": day, "promote": True}

    # 1. A bad correction: restated in prod, prod's staging check fails, nothing is published.
    correct(
        data,
        "UPDATE raw_data.orders SET order_datetime = TIMESTAMP '2025-01-20 10:00' WHERE order_id = ?",
        [other_id],
    )
    rc, log = airflow_home.dags_test("clv_backfill", END, data, conf=conf, timeout=1500)
    text = log.read_text()
    assert rc != 0, text[-3000:]
    assert "staging checks failed: stg_orders has no events after the business date" in text, text[-5000:]
    assert "promote" in _tasks_started(text) and "publish" not in _tasks_started(text), _tasks_started(text)
    assert sha256(data / "serving.duckdb") == serving_before

    # 2. The good correction: restated, checked, republished.
    correct(data, "UPDATE raw_data.orders SET order_datetime = ? WHERE order_id = ?", [other_at, other_id])
    correct(
        data, "UPDATE raw_data.orders SET unit_price_usd = unit_price_usd * 2 WHERE order_id = ?", [order_id]
    )
    (scanned_before,) = query(data, "SELECT max(scanned_at) FROM ops.check_results")[0]
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
    summaries = query(data, "SELECT summary FROM ops.restatements WHERE summary LIKE 'restatement in place%'")
    assert len(summaries) == 2  # the failed restatement is recorded too: its tables were recomputed
    # prod's checks ran after the restatement, every layer
    layers = query(
        data, "SELECT DISTINCT layer FROM ops.check_results WHERE scanned_at > ? ORDER BY 1", [scanned_before]
    )
    assert {r[0] for r in layers} == {"raw", "staging", "core", "intermediate", "marts"}
