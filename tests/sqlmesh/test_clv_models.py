"""The CLV and churn models on a real SQLMesh-built warehouse: fitted parameters, probabilities in
[0, 1], marts that carry them, and features written once (sqlmesh_project/macros/features.py):
the Python models train on the feature models' rows of the training cutoff and score those of the
business date, which the intermediate SQL models show."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from clv.stats import churn, renewal, scoring
from tests.conftest import END

pytestmark = pytest.mark.slow
DAY2 = END + dt.timedelta(days=2)
CUTOFF = DAY2 - dt.timedelta(days=180)  # churn_label_window_days


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
        LEFT JOIN intermediate.int_subscription_value b USING (customer_id)
        WHERE r.churn_probability <> s.churn_probability OR c.churn_probability <> s.churn_probability
           OR r.p_alive <> p.p_alive OR c.p_alive <> p.p_alive
           OR abs(r.predicted_remaining_clv_usd - p.predicted_remaining_clv_usd
                  - coalesce(b.predicted_subscription_value_12m_usd, 0)) > 0.01
           OR abs(v.predicted_clv_12m_usd - p.predicted_remaining_clv_usd * (1 - s.churn_probability)
                  - coalesce(b.predicted_subscription_value_12m_usd, 0)) > 0.011
           OR abs(r.value_lost_usd - p.predicted_remaining_clv_usd * s.churn_probability) > 0.005
           OR abs(r.revenue_at_risk_usd - CASE WHEN r.is_reachable
                  THEN p.predicted_remaining_clv_usd * r.leave_probability_90d ELSE 0 END
                  - coalesce(b.predicted_subscription_value_12m_usd * b.subscription_cancel_probability_90d, 0))
              > 0.011
           OR r.is_reachable <> ((r.lifecycle_stage <> 'churned' AND s.churn_probability < 0.5)
                                 OR coalesce(b.active_subscriptions, 0) > 0)
           OR r.leave_probability_90d > 1 - s.churn_probability + 1e-12
           OR abs(v.predicted_clv_12m_usd - r.revenue_at_risk_usd - r.value_kept_usd) > 0.015
              AND r.is_reachable
           OR abs(c.expected_purchases_365d - p.expected_purchases_365d) > 1e-12
        """,
    )[0][0]
    assert mismatched == 0
    total_risk, total_kept, total_lost, total_remaining, total_clv, gone_at_risk, n = rows(
        ctx,
        "SELECT sum(revenue_at_risk_usd), sum(value_kept_usd), sum(value_lost_usd), "
        "sum(predicted_remaining_clv_usd), sum(predicted_clv_12m_usd), "
        "sum(revenue_at_risk_usd) FILTER (NOT is_reachable), count(*) "
        "FROM marts.mart_customer_360",
    )[0]
    assert 0 < total_risk < total_remaining and 0 < total_clv < total_remaining
    assert 0 < total_lost < total_remaining and gone_at_risk in (0, None)
    assert abs(total_risk + total_kept + total_lost - total_remaining) <= 0.01 * n


def as_of(ctx, model: str, day: dt.date) -> pd.DataFrame:
    return ctx.engine_adapter.fetchdf(
        f"SELECT * FROM {model} WHERE as_of_date = DATE '{day}' ORDER BY customer_id"
    )


def test_feature_models_hold_every_customer_at_the_business_date_and_the_training_cutoff(project):
    """int_purchase_summary and int_churn_features: one row per customer signed up by each of the
    two dates, and the cutoff's rows count only what happened by the cutoff (recounted here from
    the core tables, written independently of macros/features.py)."""
    _, ctx, _ = project
    for model in ("intermediate.int_purchase_summary", "intermediate.int_churn_features"):
        counts = dict(rows(ctx, f"SELECT as_of_date, count(*) FROM {model} GROUP BY 1"))
        assert set(counts) == {DAY2, CUTOFF}, model
        for day, n in counts.items():
            signed_up = rows(
                ctx,
                "SELECT count(*) FROM core.dim_customers "
                f"WHERE valid_to IS NULL AND signup_date <= DATE '{day}'",
            )[0][0]
            assert n == signed_up, (model, day)
    recount = ctx.engine_adapter.fetchdf(f"""
        SELECT
          c.customer_id,
          (SELECT count(*) FROM core.fct_activity_logs AS s WHERE s.customer_id = c.customer_id
             AND s.session_date BETWEEN DATE '{CUTOFF - dt.timedelta(days=89)}' AND DATE '{CUTOFF}') AS sessions_90d,
          (SELECT count(*) FROM core.fct_support_logs AS k WHERE k.customer_id = c.customer_id
             AND k.opened_date BETWEEN DATE '{CUTOFF - dt.timedelta(days=89)}' AND DATE '{CUTOFF}') AS tickets_90d,
          (SELECT count(DISTINCT r.revenue_date) FROM core.fct_revenue AS r WHERE r.customer_id = c.customer_id
             AND r.revenue_type = 'order' AND r.revenue_date <= DATE '{CUTOFF}') AS purchase_days
        FROM core.dim_customers AS c
        WHERE c.valid_to IS NULL AND c.signup_date <= DATE '{CUTOFF}'
        ORDER BY c.customer_id""")
    features = as_of(ctx, "intermediate.int_churn_features", CUTOFF)
    summary = as_of(ctx, "intermediate.int_purchase_summary", CUTOFF)
    assert (
        features["customer_id"].tolist() == recount["customer_id"].tolist() == summary["customer_id"].tolist()
    )
    assert features["sessions_90d"].tolist() == recount["sessions_90d"].tolist()
    assert features["tickets_90d"].tolist() == recount["tickets_90d"].tolist()
    assert summary["frequency"].tolist() == (recount["purchase_days"] - 1).clip(lower=0).tolist()
    assert (pd.to_datetime(features["last_activity_date"]) <= pd.Timestamp(CUTOFF)).all()
    # the two dates differ: a customer's signals move between the cutoff and the business date
    later = as_of(ctx, "intermediate.int_churn_features", DAY2).set_index("customer_id")
    assert (later.loc[features["customer_id"], "sessions_90d"].to_numpy() != features["sessions_90d"]).any()


def test_churn_model_is_trained_on_the_feature_rows_of_the_training_cutoff(project):
    """The Python models read the feature models and nothing else: training again on
    int_purchase_summary's and int_churn_features' rows of the cutoff reproduces int_churn_model,
    and fitting on the business date's summary reproduces int_clv_model_fit."""
    _, ctx, _ = project
    training = scoring.train_churn(
        as_of(ctx, "intermediate.int_purchase_summary", CUTOFF),
        as_of(ctx, "intermediate.int_churn_features", CUTOFF),
        as_of(ctx, "intermediate.int_purchase_summary", DAY2),
        CUTOFF,
        180,
        "day",
    )
    again = scoring.churn_model_frame(training).set_index("feature")
    stored = ctx.engine_adapter.fetchdf("SELECT * FROM intermediate.int_churn_model").set_index("feature")
    assert sorted(stored.index) == sorted(again.index)
    for column in ("coefficient", "rate_coefficient", "feature_mean", "feature_scale", "holdout_log_loss"):
        np.testing.assert_allclose(stored.loc[again.index, column], again[column], rtol=1e-12, err_msg=column)
    assert (stored["train_customers"] == again["train_customers"].iloc[0]).all()
    assert (pd.to_datetime(stored["trained_as_of"]) == pd.Timestamp(CUTOFF)).all()

    fit = scoring.fit_frame(
        scoring.fit_clv(as_of(ctx, "intermediate.int_purchase_summary", DAY2), DAY2, "day")
    ).iloc[0]
    stored_fit = ctx.engine_adapter.fetchdf("SELECT * FROM intermediate.int_clv_model_fit").iloc[0]
    for column in ("bgnbd_r", "bgnbd_alpha", "bgnbd_a", "bgnbd_b", "gg_p", "gg_q", "gg_v", "refund_share"):
        assert stored_fit[column] == pytest.approx(fit[column], rel=1e-12), column


def test_churn_scoring_reads_the_feature_rows_of_the_business_date(project):
    _, ctx, _ = project
    fetch = ctx.engine_adapter.fetchdf
    model = scoring.churn_model_from_frame(fetch("SELECT * FROM intermediate.int_churn_model"))
    again = scoring.churn_scores(
        fetch("SELECT * FROM intermediate.int_clv_predictions"),
        as_of(ctx, "intermediate.int_churn_features", DAY2),
        model,
    ).set_index("customer_id")
    stored = fetch("SELECT * FROM intermediate.int_churn_scoring").set_index("customer_id")
    assert sorted(stored.index) == sorted(again.index)
    np.testing.assert_allclose(
        stored.loc[again.index, "churn_probability"], again["churn_probability"], rtol=1e-12
    )


def test_intermediate_models_show_the_feature_rows_of_the_business_date(project):
    """The intermediate SQL models call the same macros as the feature models, so on the business
    date their columns are the feature rows, exactly."""
    _, ctx, _ = project
    n, matched = rows(
        ctx,
        f"""
        SELECT count(*), count(*) FILTER (WHERE
            f.sessions_30d = e.sessions_30d AND f.sessions_90d = e.sessions_90d
            AND f.sessions_prior_90d = e.sessions_prior_90d
            AND f.days_since_last_session IS NOT DISTINCT FROM e.days_since_last_session
            AND f.lifetime_sessions = e.lifetime_sessions
            AND f.tickets_90d = s.tickets_90d AND f.billing_tickets_90d = s.billing_tickets_90d
            AND f.low_csat_tickets_90d = s.low_csat_tickets_90d
            AND f.last_activity_date = l.last_activity_date AND f.lifecycle_stage = l.lifecycle_stage
            AND f.days_since_last_activity = l.days_since_last_activity
            AND f.tenure_days = b.tenure_days
            AND p.frequency = c.frequency AND p.has_purchased = (c.purchase_days > 0)
            AND p.last_purchase_date IS NOT DISTINCT FROM c.last_purchase_date
            AND (NOT p.has_purchased OR (p.recency = c.recency_days AND p.age = c.age_days))
            AND CAST(p.monetary_value AS DECIMAL(12, 2)) IS NOT DISTINCT FROM c.avg_repeat_order_value_usd
            AND p.frequency = v.frequency AND p.recency = v.recency AND p.age = v.age
            AND p.monetary_value IS NOT DISTINCT FROM v.monetary_value_usd)
        FROM intermediate.int_churn_features AS f
        JOIN intermediate.int_purchase_summary AS p USING (as_of_date, customer_id)
        JOIN intermediate.int_engagement_summary AS e USING (customer_id)
        JOIN intermediate.int_support_summary AS s USING (customer_id)
        JOIN intermediate.int_lifecycle_stage AS l USING (customer_id)
        JOIN intermediate.int_customer_base AS b USING (customer_id)
        JOIN intermediate.int_customer_clv AS c USING (customer_id)
        JOIN intermediate.int_clv_predictions AS v USING (customer_id)
        WHERE f.as_of_date = DATE '{DAY2}'
        """,
    )[0]
    assert n == rows(ctx, "SELECT count(*) FROM intermediate.int_customer_base")[0][0]
    assert matched == n


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


def test_subscription_renewal_model_reads_the_charges_fct_revenue_bills(project):
    """The renewal periods come from the same charge convention as core.fct_revenue: the charges
    clv.stats.renewal counts per subscription up to the business date are the ones billed."""
    _, ctx, _ = project
    subs = ctx.engine_adapter.fetchdf("SELECT * FROM staging.stg_subscriptions")
    plans = ctx.engine_adapter.fetchdf("SELECT * FROM core.dim_plans")
    seg = renewal._segments(subs, plans, DAY2)
    billed = dict(
        rows(
            ctx,
            "SELECT subscription_id, count(*) FROM core.fct_revenue WHERE revenue_type = 'subscription' "
            f"AND revenue_date <= DATE '{DAY2}' GROUP BY 1",
        )
    )
    known = {c for (c,) in rows(ctx, "SELECT customer_id FROM core.dim_customers WHERE valid_to IS NULL")}
    ours = {
        s: int(n)
        for s, n, c in zip(seg["subscription_id"], seg["segment_charges"], seg["customer_id"])
        if c in known
    }
    assert sum(ours.values()) > 500
    assert {s: n for s, n in ours.items() if n} == billed

    fit = ctx.engine_adapter.fetchdf("SELECT * FROM intermediate.int_subscription_model_fit")
    covered = sorted(p for c in fit["covers_plans"] for p in c.split(","))
    assert covered == sorted(plans["plan_id"])  # every plan valued by exactly one fit
    assert set(fit["status"]) <= {"fitted", "capped", "not_fitted"}
    monthly = fit[fit["billing_cycle"] == "monthly"]
    assert (monthly["status"] != "not_fitted").all() and (monthly["alpha"] > 0).all()
    assert (monthly["log_likelihood"] >= monthly["geometric_log_likelihood"] - 1e-6).all()


def test_customer_value_is_orders_plus_subscriptions(project):
    _, ctx, _ = project
    ((n, bad_sum, bad_clv, unreachable_subscribers, subscribers, sub_value, lost_subscribers),) = rows(
        ctx,
        """
        SELECT
          count(*),
          count(*) FILTER (WHERE abs(predicted_remaining_order_value_usd + predicted_subscription_value_12m_usd
                                     - predicted_remaining_clv_usd) > 0.011),
          count(*) FILTER (WHERE abs(predicted_order_value_12m_usd + predicted_subscription_value_12m_usd
                                     - predicted_clv_12m_usd) > 0.011),
          count(*) FILTER (WHERE active_subscriptions > 0 AND NOT is_reachable),
          count(*) FILTER (WHERE active_subscriptions > 0),
          sum(predicted_subscription_value_12m_usd),
          count(*) FILTER (WHERE active_subscriptions > 0 AND subscription_revenue_at_risk_usd
                           > predicted_subscription_value_12m_usd * subscription_cancel_probability_90d + 0.011)
        FROM intermediate.int_revenue_risk
        """,
    )
    assert n > 1000 and bad_sum == 0 and bad_clv == 0 and lost_subscribers == 0
    assert subscribers > 50 and unreachable_subscribers == 0
    # each subscriber's value: at most 12 months of their MRR, and more than nothing
    ((over, total_value),) = rows(
        ctx,
        "SELECT count(*) FILTER (WHERE predicted_subscription_value_12m_usd > 13 * mrr_usd + 0.01), "
        "sum(predicted_subscription_value_12m_usd) FROM intermediate.int_subscription_value",
    )
    assert over == 0 and total_value == pytest.approx(float(sub_value), abs=1)
    # the marts carry the split and the serving summary reads it
    (mart_sub,) = rows(ctx, "SELECT sum(predicted_subscription_value_12m_usd) FROM marts.mart_customer_360")[
        0
    ]
    assert float(mart_sub) == pytest.approx(float(sub_value), abs=1)


def test_the_whole_value_interval_covers_orders_and_running_subscriptions(project):
    """mart_clv's value_12m_p10/p50/p90_usd: for a customer with a running subscription, the
    distribution of orders + subscription charges (at least the order part's quantiles, and
    above them where the subscription surely pays something); for the others, the order interval."""
    _, ctx, _ = project
    frame = ctx.engine_adapter.fetchdf(
        "SELECT c.customer_id, c.value_12m_p10_usd, c.value_12m_p50_usd, c.value_12m_p90_usd, "
        "c.order_value_12m_p10_usd, c.order_value_12m_p50_usd, c.order_value_12m_p90_usd, "
        "c.predicted_subscription_value_12m_usd, COALESCE(s.active_subscriptions, 0) AS running, "
        "m.value_12m_p90_usd AS m360_p90 "
        "FROM marts.mart_clv c LEFT JOIN intermediate.int_subscription_value s USING (customer_id) "
        "JOIN marts.mart_customer_360 m USING (customer_id)"
    ).astype({c: float for c in ("value_12m_p10_usd", "value_12m_p50_usd", "value_12m_p90_usd",
                                 "order_value_12m_p10_usd", "order_value_12m_p50_usd", "order_value_12m_p90_usd",
                                 "predicted_subscription_value_12m_usd", "m360_p90")})  # fmt: skip
    whole = frame[[f"value_12m_{q}_usd" for q in ("p10", "p50", "p90")]].to_numpy()
    orders = frame[[f"order_value_12m_{q}_usd" for q in ("p10", "p50", "p90")]].to_numpy()
    assert not np.isnan(whole).any()
    assert (whole[:, 0] <= whole[:, 1]).all() and (whole[:, 1] <= whole[:, 2]).all()
    assert (whole >= orders - 0.005).all()
    running = frame["running"].to_numpy() > 0
    assert running.sum() > 50 and (~running).sum() > 50
    np.testing.assert_allclose(whole[~running], orders[~running])
    # a subscriber's interval holds their subscription: its P90 is above the order part's
    assert (whole[running, 2] > orders[running, 2]).mean() > 0.95
    assert frame["m360_p90"].to_numpy() == pytest.approx(whole[:, 2])
