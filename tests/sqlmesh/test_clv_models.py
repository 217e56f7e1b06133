"""The CLV and churn models on a real SQLMesh-built warehouse: fitted parameters, probabilities in
[0, 1], marts that carry them, and SQL shared between training and scoring that agrees with the
intermediate models it mirrors."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from clv.stats import churn, scoring
from tests.conftest import END

pytestmark = pytest.mark.slow
DAY2 = END + dt.timedelta(days=2)


def rows(ctx, sql: str) -> list[tuple]:
    return ctx.engine_adapter.fetchall(sql)


def test_bgnbd_and_gamma_gamma_are_fitted_on_the_business_date(project):
    _, ctx, _ = project
    (fit,) = rows(
        ctx,
        "SELECT business_date, time_unit, customers, repeat_customers, bgnbd_r, bgnbd_alpha, bgnbd_a, "
        "bgnbd_b, bgnbd_gradient_norm, gg_p, gg_q, gg_v, gg_gradient_norm, mean_spend_usd, refund_share, "
        "bgnbd_log_likelihood FROM intermediate.int_clv_model_fit",
    )
    (day, unit, customers, repeaters, r, alpha, a, b, bg_grad, p, q, v, gg_grad, spend, refunds, ll) = fit
    assert day == DAY2 and unit == "day"
    buyers, repeat = rows(
        ctx,
        "SELECT count(*) FILTER (WHERE purchase_days > 0), count(*) FILTER (WHERE frequency > 0) "
        "FROM intermediate.int_customer_clv",
    )[0]
    assert (customers, repeaters) == (buyers, repeat)
    assert bg_grad < 1e-6 and gg_grad < 1e-6
    # one year of a business simulated with (r, alpha, a, b) = (0.75, 25, 0.8, 5) per day and
    # (p, q, v) = (4, 4, 60): 1,200 customers recover them roughly
    assert 0.4 < r < 1.3 and 12 < alpha < 45 and 0.3 < a < 2.5 and 2 < b < 15
    assert 60 < spend < 100 and q > 1 and spend == pytest.approx(p * v / (q - 1))
    assert 0.01 < refunds < 0.08  # the generator refunds 4% of order lines
    assert math.isfinite(ll) and ll < 0


def test_predictions_and_probabilities_are_in_range_and_every_customer_is_scored(project):
    _, ctx, _ = project
    n_base = rows(ctx, "SELECT count(*) FROM intermediate.int_customer_base")[0][0]
    for table, cols in (
        ("intermediate.int_clv_predictions", ("p_alive",)),
        ("intermediate.int_churn_scoring", ("churn_probability", "bgnbd_churn_probability")),
        ("intermediate.int_revenue_risk", ("churn_probability", "p_alive")),
        ("marts.mart_churn_risk", ("churn_probability", "p_alive")),
        ("marts.mart_customer_360", ("churn_probability", "p_alive")),
    ):
        checks = ", ".join(f"count(*) FILTER (WHERE {c} IS NULL OR {c} < 0 OR {c} > 1)" for c in cols)
        n, distinct, *bad = rows(ctx, f"SELECT count(*), count(DISTINCT customer_id), {checks} FROM {table}")[
            0
        ]
        assert n == distinct == n_base, table
        assert bad == [0] * len(cols), table
    # the probabilities spread: some customers are almost surely gone, others almost surely active
    lo, hi, mean = rows(
        ctx,
        "SELECT min(churn_probability), max(churn_probability), avg(churn_probability) FROM intermediate.int_churn_scoring",
    )[0]
    assert lo < 0.05 and hi > 0.95 and 0.1 < mean < 0.9
    neg = rows(
        ctx,
        "SELECT count(*) FROM intermediate.int_clv_predictions WHERE bgnbd_clv_12m_usd < 0 "
        "OR predicted_remaining_clv_usd < bgnbd_clv_12m_usd - 1e-9 OR expected_purchases_90d > expected_purchases_365d",
    )[0][0]
    assert neg == 0


def test_marts_carry_the_model_outputs(project):
    _, ctx, _ = project
    mismatched = rows(
        ctx,
        """
        SELECT count(*) FROM intermediate.int_clv_predictions p
        JOIN intermediate.int_churn_scoring s USING (customer_id)
        JOIN marts.mart_churn_risk r USING (customer_id)
        JOIN marts.mart_customer_360 c USING (customer_id)
        JOIN marts.mart_clv v USING (customer_id)
        WHERE r.churn_probability <> s.churn_probability OR c.churn_probability <> s.churn_probability
           OR r.p_alive <> p.p_alive OR c.p_alive <> p.p_alive
           OR abs(r.predicted_remaining_clv_usd - p.predicted_remaining_clv_usd) > 0.005
           OR abs(v.predicted_clv_12m_usd - p.predicted_remaining_clv_usd * (1 - s.churn_probability)) > 0.006
           OR abs(r.revenue_at_risk_usd - p.predicted_remaining_clv_usd * s.churn_probability) > 0.005
           OR abs(c.expected_purchases_365d - p.expected_purchases_365d) > 1e-12
        """,
    )[0][0]
    assert mismatched == 0
    total_risk, total_remaining, total_clv = rows(
        ctx,
        "SELECT sum(revenue_at_risk_usd), sum(predicted_remaining_clv_usd), sum(predicted_clv_12m_usd) "
        "FROM marts.mart_customer_360",
    )[0]
    assert 0 < total_risk < total_remaining and 0 < total_clv < total_remaining


def test_btyd_summary_agrees_with_int_customer_clv(project):
    """The Python models' SQL summary follows the same conventions as int_customer_clv."""
    _, ctx, _ = project
    diff = rows(
        ctx,
        """
        SELECT count(*) FROM intermediate.int_clv_predictions p
        JOIN intermediate.int_customer_clv c USING (customer_id)
        WHERE c.purchase_days > 0 AND (p.frequency <> c.frequency OR p.recency <> c.recency_days
           OR p.age <> c.age_days
               -- int_customer_clv rounds the mean to cents
               OR abs(coalesce(p.monetary_value_usd, 0) - coalesce(c.avg_repeat_order_value_usd, 0)) > 0.0051)
        """,
    )[0][0]
    assert diff == 0


def test_training_and_scoring_signals_agree_with_the_intermediate_models(project):
    """behaviour_sql (the churn model's features, at any date) reproduces the intermediate models'
    definitions on the business date."""
    _, ctx, _ = project
    tables = scoring.Tables(
        customers="core.dim_customers",
        revenue="core.fct_revenue",
        sessions="core.fct_activity_logs",
        tickets="core.fct_support_logs",
        subscriptions="staging.stg_subscriptions",
    )
    sql = scoring.behaviour_sql(tables, DAY2, scoring.Lifecycle())
    ctx.engine_adapter.execute(f"CREATE OR REPLACE TEMP TABLE behaviour AS {sql}")
    try:
        n, matched = rows(
            ctx,
            """
            SELECT count(*), count(*) FILTER (WHERE
                b.sessions_30d = e.sessions_30d AND b.sessions_90d = e.sessions_90d
                AND b.sessions_prior_90d = e.sessions_prior_90d
                AND b.days_since_last_session IS NOT DISTINCT FROM e.days_since_last_session
                AND b.lifetime_sessions = e.lifetime_sessions
                AND b.tickets_90d = s.tickets_90d AND b.billing_tickets_90d = s.billing_tickets_90d
                AND b.low_csat_tickets_90d = s.low_csat_tickets_90d
                AND b.lifecycle_stage = l.lifecycle_stage AND b.days_since_last_activity = l.days_since_last_activity
                AND b.tenure_days = c.tenure_days)
            FROM behaviour b
            JOIN intermediate.int_engagement_summary e USING (customer_id)
            JOIN intermediate.int_support_summary s USING (customer_id)
            JOIN intermediate.int_lifecycle_stage l USING (customer_id)
            JOIN intermediate.int_customer_base c USING (customer_id)
            """,
        )[0]
        assert n == rows(ctx, "SELECT count(*) FROM intermediate.int_customer_base")[0][0]
        assert matched == n
        # subscription status: the date-based reading agrees with the latest status, except for
        # customers whose latest subscription started after an earlier one that is still open
        sub_mismatch = rows(
            ctx,
            """
            SELECT count(*) FROM behaviour b JOIN intermediate.int_customer_base c USING (customer_id)
            WHERE b.has_active_subscription <> c.has_active_subscription
            """,
        )[0][0]
        assert sub_mismatch <= 0.01 * n
    finally:
        ctx.engine_adapter.execute("DROP TABLE IF EXISTS behaviour")


def test_churn_model_is_trained_with_a_time_split_and_beats_bgnbd_alone(project):
    _, ctx, _ = project
    model = rows(
        ctx,
        "SELECT feature, coefficient, feature_scale, trained_as_of, label_window_days, train_customers, "
        "holdout_customers, holdout_log_loss, holdout_log_loss_bgnbd, holdout_auc, holdout_auc_bgnbd "
        "FROM intermediate.int_churn_model ORDER BY feature",
    )
    assert sorted(r[0] for r in model) == sorted(["intercept", *churn.FEATURES])
    _, _, _, cutoff, window, n_train, n_hold, ll, ll_bg, auc, auc_bg = model[0]
    assert window == 180 and cutoff == DAY2 - dt.timedelta(days=180)
    signed_up_by_cutoff = rows(
        ctx,
        f"SELECT count(*) FROM core.dim_customers WHERE valid_to IS NULL AND signup_date <= DATE '{cutoff}'",
    )[0][0]
    assert n_train + n_hold == signed_up_by_cutoff and 0.1 < n_hold / signed_up_by_cutoff < 0.3
    assert ll < ll_bg and auc > auc_bg
    coef = {r[0]: r[1] for r in model}
    assert coef["bgnbd_dropout_logit"] > 0  # BG/NBD's own view still counts
    assert all(math.isfinite(r[1]) and r[2] > 0 for r in model)
