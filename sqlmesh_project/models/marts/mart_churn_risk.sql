/* Who is likely to leave and what it would cost, and who has most likely left already: churn
   probability (already left, the fitted churn model) next to BG/NBD's P(alive), a risk band on it
   (high >= 0.6, medium >= 0.3, low below), the probability of leaving within the next 90 days,
   and the remaining value split into revenue at risk (reachable customers only), value kept and
   value already lost (definitions in int_revenue_risk), orders and subscriptions together, with
   the subscription part of the value and of the revenue at risk beside them.
   Grain: one row per customer_id. */
MODEL (
  name marts.mart_churn_risk,
  kind FULL,
  grain customer_id,
  tags [marts],
  audits (
    unique_values(columns := (customer_id)),
    not_null(columns := (customer_id, churn_probability, risk_band, is_reachable, revenue_at_risk_usd, value_lost_usd)),
    accepted_range(column := churn_probability, min_v := 0, max_v := 1),
    accepted_range(column := p_alive, min_v := 0, max_v := 1),
    accepted_range(column := leave_probability_90d, min_v := 0, max_v := 1),
    accepted_values(column := risk_band, is_in := ('high', 'medium', 'low')),
    risk_within_remaining_value
  ),
  description 'Churn probability, risk band, 90-day leave probability, revenue at risk and value already lost per customer.',
  column_descriptions (
    customer_id = 'Customer identifier',
    churn_probability = 'Probability that the customer has already left, 0-1 (churn model)',
    p_alive = 'BG/NBD probability that the customer is still active',
    risk_band = 'high (>= 0.6), medium (>= 0.3) or low, by churn_probability',
    leave_probability_90d = 'Probability of being active today and leaving within the next 90 days (int_revenue_risk)',
    is_reachable = 'A running subscription, or lifecycle stage other than churned and churn_probability < 0.5; false = most likely gone (win-back pool)',
    predicted_remaining_clv_usd = 'Value over the next 12 months if the customer stays: remaining order value R + subscription value V',
    predicted_subscription_value_12m_usd = 'Subscription part V: charges expected over the next 12 months (renewal model)',
    subscription_cancel_probability_90d = 'Probability of cancelling a running subscription at a renewal within 90 days; 0 without one',
    revenue_at_risk_usd = 'Reachable customers: leave_probability_90d x R + subscription_cancel_probability_90d x V; order part 0 for customers most likely gone',
    subscription_revenue_at_risk_usd = 'Subscription part of revenue_at_risk_usd: subscription_cancel_probability_90d x V',
    value_kept_usd = 'Remaining value expected to stay: predicted_remaining_clv_usd - revenue_at_risk_usd - value_lost_usd',
    value_lost_usd = 'Value already lost: churn_probability x R (no subscription part: a charged subscription has not left)',
    value_tier = 'Value tier from mart_clv',
    lifecycle_stage = 'onboarding, active, dormant or churned',
    days_since_last_activity = 'Days since the last purchase or session'
  )
);

SELECT
  r.customer_id,
  r.churn_probability,
  r.p_alive,
  CASE WHEN r.churn_probability >= 0.6 THEN 'high' WHEN r.churn_probability >= 0.3 THEN 'medium' ELSE 'low' END AS risk_band,
  r.leave_probability_90d,
  r.is_reachable,
  r.predicted_remaining_clv_usd,
  r.predicted_subscription_value_12m_usd,
  r.subscription_cancel_probability_90d,
  r.revenue_at_risk_usd,
  r.subscription_revenue_at_risk_usd,
  r.value_kept_usd,
  r.value_lost_usd,
  v.value_tier,
  l.lifecycle_stage,
  l.days_since_last_activity
FROM intermediate.int_revenue_risk AS r
JOIN marts.mart_clv AS v
  ON v.customer_id = r.customer_id
JOIN intermediate.int_lifecycle_stage AS l
  ON l.customer_id = r.customer_id
