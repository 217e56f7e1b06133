/* Value per customer, orders and subscriptions, split three ways: at risk, already lost, expected
   to be kept.
   Two parts make the remaining 12-month value:
   - the order part R (predicted_remaining_order_value_usd): what the customer would buy over the
     next 12 months if still active (BG/NBD + Gamma-Gamma, int_clv_predictions);
   - the subscription part V (predicted_subscription_value_12m_usd): the charges their running
     subscriptions are expected to pay over the next 12 months (int_subscription_value, the sBG
     renewal model). V already contains the probability of cancelling, so the churn model never
     multiplies it: counting churn twice would shrink it.
   predicted_remaining_clv_usd = R + V. Three events that cannot happen together share it out:
   - already left, with the churn model's probability churn_probability c (int_churn_scoring):
     value_lost_usd = c x R. A subscription still being charged has not left: its part of the
     lost value is 0;
   - still here today but leaving within the next 90 days. Orders: leave_probability_90d =
     (1 - c) x P(drop out within 90 days | active); BG/NBD's own mechanism gives the second factor:
     a customer drops out right after a purchase with probability p, so given they are active,
     P(no dropout in 90 days) = exp(-p x purchases in 90 days), with p at its posterior mean for an
     active customer with `frequency` repeat purchases, a / (a + b + frequency) (int_clv_model_fit),
     and the purchases at BG/NBD's expectation given active, expected_purchases_90d / p_alive.
     Subscriptions: subscription_cancel_probability_90d q (a cancellation at a renewal within 90
     days, int_subscription_value). Only customers still reachable (lifecycle stage other than
     churned and c < 0.5, or a running subscription) carry revenue_at_risk_usd =
     leave_probability_90d x R + q x V; for customers most likely gone the order part is 0 (they
     are the win-back pool) and, having no running subscription, they have no subscription part;
   - the rest is kept: value_kept_usd.
   predicted_clv_12m_usd = (1 - c) x R + V = predicted_order_value_12m_usd +
   predicted_subscription_value_12m_usd = value_kept_usd + revenue_at_risk_usd for a reachable
   customer; BG/NBD alone would weigh the order part by P(alive) (bgnbd_clv_12m_usd, orders only,
   kept for comparison). Invariant (audit risk_within_remaining_value): revenue_at_risk_usd +
   value_kept_usd + value_lost_usd = predicted_remaining_clv_usd, each part >= 0.
   Grain: one row per customer_id. */
MODEL (
  name intermediate.int_revenue_risk,
  kind FULL,
  grain customer_id,
  tags [intermediate],
  audits (
    unique_values(columns := (customer_id)),
    not_null(
      columns := (customer_id, churn_probability, p_alive, leave_probability_90d, is_reachable, revenue_at_risk_usd, value_kept_usd, value_lost_usd, predicted_remaining_clv_usd, predicted_order_value_12m_usd, predicted_subscription_value_12m_usd, subscription_revenue_at_risk_usd)
    ),
    accepted_range(column := predicted_remaining_clv_usd, min_v := 0),
    accepted_range(column := predicted_clv_12m_usd, min_v := 0),
    accepted_range(column := p_alive, min_v := 0, max_v := 1),
    accepted_range(column := churn_probability, min_v := 0, max_v := 1),
    accepted_range(column := leave_probability_90d, min_v := 0, max_v := 1),
    accepted_range(column := subscription_cancel_probability_90d, min_v := 0, max_v := 1),
    accepted_range(column := p_purchase_90d, min_v := 0, max_v := 1),
    quantiles_in_order(low := order_value_12m_p10_usd, middle := order_value_12m_p50_usd, high := order_value_12m_p90_usd),
    quantiles_in_order(low := value_12m_p10_usd, middle := value_12m_p50_usd, high := value_12m_p90_usd),
    risk_within_remaining_value
  ),
  description 'Remaining 12-month value per customer (orders + subscriptions) split into revenue at risk (90 days), value kept and value already lost.',
  column_descriptions (
    customer_id = 'Customer identifier',
    churn_probability = 'From int_churn_scoring: probability that the customer has already left',
    p_alive = 'From int_clv_predictions: BG/NBD probability that the customer is still active',
    leave_probability_90d = 'Orders: probability that the customer is active today and leaves within the next 90 days: (1 - churn_probability) x (1 - exp(-a / (a + b + frequency) x expected_purchases_90d / p_alive))',
    active_subscriptions = 'Subscriptions running on the business date, paused ones included (int_subscription_value)',
    mrr_usd = 'Monthly recurring revenue now (int_subscription_value)',
    subscription_cancel_probability_90d = 'Subscriptions: probability of cancelling at a renewal within 90 days, value-weighted over running subscriptions (int_subscription_value); 0 without one',
    is_reachable = 'Still reachable for retention: a running subscription, or lifecycle stage onboarding, active or dormant and churn_probability < 0.5; the others are most likely gone (win-back pool)',
    expected_purchases_90d = 'Expected purchase days in the next 90 days',
    expected_purchases_365d = 'Expected purchase days in the next 365 days',
    expected_spend_per_purchase_usd = 'Expected net value of one purchase',
    p_purchase_90d = 'Probability of at least one purchase in the next 90 days (the purchase model, int_clv_predictions)',
    p_purchase_365d = 'Probability of at least one purchase in the next 365 days (the purchase model)',
    order_value_12m_p10_usd = 'Orders: 10th percentile of what the customer may actually spend over the next 12 months (int_clv_predictions clv_12m_p10_usd: purchases, spend per purchase and parameter uncertainty, with the purchase model''s P(alive))',
    order_value_12m_p50_usd = 'Orders: median of the next 12 months'' net order revenue (0 when no purchase is more likely than not)',
    order_value_12m_p90_usd = 'Orders: 90th percentile of the next 12 months'' net order revenue; with order_value_12m_p10_usd an 80% predictive interval',
    value_12m_p10_usd = 'Orders + running subscriptions: 10th percentile of what the customer may bring over the next 12 months (int_subscription_value; the order interval for a customer without a running subscription)',
    value_12m_p50_usd = 'Orders + running subscriptions: median of the next 12 months'' value',
    value_12m_p90_usd = 'Orders + running subscriptions: 90th percentile; with value_12m_p10_usd an 80% predictive interval of the customer''s whole value',
    predicted_remaining_order_value_usd = 'Orders: net revenue expected over the next 12 months if the customer is still active and stays (R)',
    predicted_remaining_clv_usd = 'Value over the next 12 months if the customer stays: the order part R + the subscription part V',
    predicted_order_value_12m_usd = 'Orders: expected net revenue over the next 12 months, R x (1 - churn_probability)',
    predicted_subscription_value_12m_usd = 'Subscriptions: expected charges over the next 12 months (V, sBG renewal model, discounted like the order part); churn_probability does not multiply it: the renewal model contains cancelling',
    predicted_clv_12m_usd = 'Expected value over the next 12 months: predicted_order_value_12m_usd + predicted_subscription_value_12m_usd',
    bgnbd_clv_12m_usd = 'Orders only, by BG/NBD alone: R x p_alive',
    subscription_revenue_at_risk_usd = 'Subscription part of revenue at risk: subscription_cancel_probability_90d x V',
    revenue_at_risk_usd = 'Reachable customers: leave_probability_90d x R + subscription_cancel_probability_90d x V; the order part is 0 for customers most likely gone',
    value_kept_usd = 'predicted_remaining_clv_usd - revenue_at_risk_usd - value_lost_usd: value expected to stay',
    value_lost_usd = 'Value already lost: churn_probability x R (a subscription still charged has not left: no subscription part)'
  )
);

WITH fit AS (
  SELECT bgnbd_a, bgnbd_b FROM intermediate.int_clv_model_fit
), subscriptions AS (
  SELECT
    customer_id,
    active_subscriptions,
    mrr_usd,
    predicted_subscription_value_12m_usd,
    subscription_cancel_probability_90d,
    value_12m_p10_usd,
    value_12m_p50_usd,
    value_12m_p90_usd
  FROM intermediate.int_subscription_value
), leaving AS (
  SELECT
    p.customer_id,
    s.churn_probability,
    p.p_alive,
    p.expected_purchases_90d,
    p.expected_purchases_365d,
    p.expected_spend_per_purchase_usd,
    p.predicted_remaining_clv_usd AS remaining_order_value,
    p.bgnbd_clv_12m_usd,
    p.p_purchase_90d,
    p.p_purchase_365d,
    p.clv_12m_p10_usd,
    p.clv_12m_p50_usd,
    p.clv_12m_p90_usd,
    COALESCE(v.value_12m_p10_usd, p.clv_12m_p10_usd) AS value_12m_p10_usd,
    COALESCE(v.value_12m_p50_usd, p.clv_12m_p50_usd) AS value_12m_p50_usd,
    COALESCE(v.value_12m_p90_usd, p.clv_12m_p90_usd) AS value_12m_p90_usd,
    COALESCE(v.active_subscriptions, 0) AS active_subscriptions,
    COALESCE(v.mrr_usd, 0) AS mrr_usd,
    COALESCE(v.predicted_subscription_value_12m_usd, 0) AS subscription_value,
    COALESCE(v.subscription_cancel_probability_90d, 0) AS subscription_cancel_probability_90d,
    (1 - s.churn_probability) * CASE
      WHEN p.p_alive > 0 AND p.expected_purchases_90d > 0
      THEN 1 - EXP(-f.bgnbd_a / (f.bgnbd_a + f.bgnbd_b + COALESCE(p.frequency, 0)) * p.expected_purchases_90d / p.p_alive)
      ELSE 0
    END AS leave_probability_90d,
    (
      l.lifecycle_stage <> 'churned' AND s.churn_probability < 0.5
    )
    OR COALESCE(v.active_subscriptions, 0) > 0 AS is_reachable
  FROM intermediate.int_clv_predictions AS p
  JOIN intermediate.int_churn_scoring AS s
    ON s.customer_id = p.customer_id
  JOIN intermediate.int_lifecycle_stage AS l
    ON l.customer_id = p.customer_id
  CROSS JOIN fit AS f
  LEFT JOIN subscriptions AS v
    ON v.customer_id = p.customer_id
), valued AS (
  SELECT
    *,
    CAST(remaining_order_value AS DECIMAL(14, 2)) AS order_remaining_usd,
    CAST(subscription_value AS DECIMAL(14, 2)) AS subscription_value_usd,
    CAST(remaining_order_value * (1 - churn_probability) AS DECIMAL(14, 2)) AS order_value_usd,
    CAST(remaining_order_value * churn_probability AS DECIMAL(14, 2)) AS lost_usd,
    CAST(
      CASE WHEN is_reachable THEN remaining_order_value * leave_probability_90d ELSE 0 END AS DECIMAL(14, 2)
    ) AS order_at_risk_usd,
    CAST(subscription_value * subscription_cancel_probability_90d AS DECIMAL(14, 2)) AS subscription_at_risk_usd
  FROM leaving
)
SELECT
  customer_id,
  churn_probability,
  p_alive,
  leave_probability_90d,
  active_subscriptions,
  CAST(mrr_usd AS DECIMAL(12, 2)) AS mrr_usd,
  subscription_cancel_probability_90d,
  is_reachable,
  expected_purchases_90d,
  expected_purchases_365d,
  CAST(expected_spend_per_purchase_usd AS DECIMAL(12, 2)) AS expected_spend_per_purchase_usd,
  p_purchase_90d,
  p_purchase_365d,
  CAST(clv_12m_p10_usd AS DECIMAL(14, 2)) AS order_value_12m_p10_usd,
  CAST(clv_12m_p50_usd AS DECIMAL(14, 2)) AS order_value_12m_p50_usd,
  CAST(clv_12m_p90_usd AS DECIMAL(14, 2)) AS order_value_12m_p90_usd,
  CAST(value_12m_p10_usd AS DECIMAL(14, 2)) AS value_12m_p10_usd,
  CAST(value_12m_p50_usd AS DECIMAL(14, 2)) AS value_12m_p50_usd,
  CAST(value_12m_p90_usd AS DECIMAL(14, 2)) AS value_12m_p90_usd,
  order_remaining_usd AS predicted_remaining_order_value_usd,
  CAST(order_remaining_usd + subscription_value_usd AS DECIMAL(14, 2)) AS predicted_remaining_clv_usd,
  order_value_usd AS predicted_order_value_12m_usd,
  subscription_value_usd AS predicted_subscription_value_12m_usd,
  CAST(order_value_usd + subscription_value_usd AS DECIMAL(14, 2)) AS predicted_clv_12m_usd,
  CAST(bgnbd_clv_12m_usd AS DECIMAL(14, 2)) AS bgnbd_clv_12m_usd,
  subscription_at_risk_usd AS subscription_revenue_at_risk_usd,
  CAST(order_at_risk_usd + subscription_at_risk_usd AS DECIMAL(14, 2)) AS revenue_at_risk_usd,
  CAST(
    GREATEST(order_remaining_usd + subscription_value_usd - order_at_risk_usd - subscription_at_risk_usd - lost_usd, 0) AS DECIMAL(14, 2)
  ) AS value_kept_usd,
  lost_usd AS value_lost_usd
FROM valued
