"""The pipeline with clv_purchase_model = pareto_nbd on a real SQLMesh-built warehouse (the shared
`project` fixture): the variable changes the CLV models, which are built in an isolated virtual
environment as a deploy would; prod keeps BG/NBD."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from clv import transform
from clv.stats import pareto_nbd
from tests.conftest import END

pytestmark = pytest.mark.slow
DAY2 = END + dt.timedelta(days=2)


def test_the_pipeline_runs_with_pareto_nbd(project, monkeypatch):
    paths, prod_ctx, _ = project
    prod_fit = prod_ctx.engine_adapter.fetchdf("SELECT * FROM intermediate.int_clv_model_fit")
    # a second context in this process shares the fixture's DuckDB instance; the fixture's stays open
    monkeypatch.setenv("SQLMESH__VARIABLES__CLV_PURCHASE_MODEL", "pareto_nbd")
    ctx = transform.context(paths.data_dir)
    try:
        transform.plan_environment(ctx, "pnbd", DAY2)
        q = ctx.engine_adapter.fetchdf
        fit = q("SELECT * FROM intermediate__pnbd.int_clv_model_fit").iloc[0]
        pred = q("SELECT * FROM intermediate__pnbd.int_clv_predictions ORDER BY customer_id")
        summary = q(
            "SELECT customer_id, frequency, recency, age FROM intermediate.int_purchase_summary "
            f"WHERE as_of_date = DATE '{DAY2}' AND has_purchased ORDER BY customer_id"
        )
        prod_pred = q(
            "SELECT customer_id, p_alive FROM intermediate.int_clv_predictions ORDER BY customer_id"
        )
        marts = q(
            "SELECT count(*) AS n, count(*) FILTER (WHERE p_alive IS NULL) AS missing FROM marts__pnbd.mart_customer_360"
        )
        risk = q("SELECT count(*) FILTER (WHERE revenue_at_risk_usd + value_kept_usd + value_lost_usd "
                 "- predicted_remaining_clv_usd > 0.05) AS off FROM intermediate__pnbd.int_revenue_risk")  # fmt: skip
    finally:
        ctx.close()
    assert fit.purchase_model == "pareto_nbd" and prod_fit.iloc[0].purchase_model == "bgnbd"
    assert fit.pnbd_gradient_norm < 1e-6 and np.isfinite(fit.pnbd_log_likelihood)
    # BG/NBD is still fitted, to the same parameters as prod's
    assert fit.bgnbd_r == pytest.approx(prod_fit.iloc[0].bgnbd_r, rel=1e-9)
    model = pareto_nbd.ParetoNBD(fit.pnbd_r, fit.pnbd_alpha, fit.pnbd_s, fit.pnbd_beta, 0.0, 0)
    # the environment's predictions are Pareto/NBD's, customer by customer
    mine = pred.set_index("customer_id").loc[summary["customer_id"]]
    x, tx, T = (summary[c].to_numpy(float) for c in ("frequency", "recency", "age"))
    np.testing.assert_allclose(mine["p_alive"], pareto_nbd.p_alive(model, x, tx, T), rtol=1e-9)
    # BG/NBD would say 1 for customers without repeat purchases (but first seen before today)
    assert (mine.loc[(mine["frequency"] == 0) & (mine["age"] > 0), "p_alive"] < 1).all()
    assert not np.allclose(pred["p_alive"], prod_pred["p_alive"])  # prod untouched, and different
    assert (pred["clv_12m_p10_usd"] <= pred["clv_12m_p90_usd"] + 1e-9).all()
    assert marts.n.iloc[0] == len(pred) and marts.missing.iloc[0] == 0
    assert risk.off.iloc[0] == 0
