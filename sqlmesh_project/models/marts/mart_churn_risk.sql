/* Who is likely to leave and what it would cost, and who has most likely left already: churn
   probability (already left, the fitted churn model) next to BG/NBD's P(alive), a risk band on it
   (high >= 0.6, medium >= 0.3, low below), the probability of leaving within the next 90 days,
   and the remaining value split into revenue at risk (reachable customers only), value kept and
   value already lost (definitions in int_revenue_risk), orders and subscriptions together, with
   the subscription part of the value and of the revenue at risk beside them. For the retention
   team: who to contact (name and email, int_customer_base), why (churn_reasons, the churn model's
   largest contributions in words, int_churn_scoring), and what changed since the previous business
   date on record (risk_change, against int_at_risk_history; at risk = @is_at_risk, macros/risk.py).
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
    accepted_range(column := p_purchase_90d, min_v := 0, max_v := 1),
    accepted_range(column := leave_probability_90d, min_v := 0, max_v := 1),
    accepted_values(column := risk_band, is_in := ('high', 'medium', 'low')),
    risk_within_remaining_value
  ),
  description 'Churn probability, risk band, 90-day leave probability, revenue at risk and value already lost per customer.',
  column_descriptions (
    customer_id = 'Customer identifier',
    churn_probability = 'Probability that the customer has already left, 0-1 (churn model)',
    p_alive = 'BG/NBD probability that the customer is still active',
    p_purchase_90d = 'Probability of at least one purchase in the next 90 days (the purchase model): how likely the customer buys again soon',
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
    days_since_last_activity = 'Days since the last purchase or session',
    customer_name = 'First and last name (current profile)',
    email = 'Email address (current profile)',
    churn_reasons = 'Up to three signals raising the churn probability most above the average customer, in words, largest first (int_churn_scoring)',
    is_at_risk = 'At risk on the business date: still reachable and churn risk band medium or high',
    risk_change = 'Against previous_business_date: newly at risk, still at risk, recovered (at risk then, reachable and not at risk now), moved to win-back (at risk then, most likely gone now); null when at risk on neither date or without an earlier date',
    previous_business_date = 'The latest earlier business date in int_at_risk_history; null on the first'
  )
);

WITH previous AS (
  SELECT MAX(business_date) AS business_date
  FROM intermediate.int_at_risk_history
  WHERE business_date < @business_date()
), was_at_risk AS (
  SELECT h.customer_id, h.business_date
  FROM intermediate.int_at_risk_history AS h
  JOIN previous AS p
    ON p.business_date = h.business_date
)
SELECT
  r.customer_id,
  r.churn_probability,
  r.p_alive,
  r.p_purchase_90d,
  @risk_band(r.churn_probability) AS risk_band,
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
  l.days_since_last_activity,
  b.first_name || ' ' || b.last_name AS customer_name,
  b.email,
  s.churn_reasons,
  @is_at_risk(r.is_reachable, r.churn_probability) AS is_at_risk,
  CASE
    WHEN p.business_date IS NULL THEN NULL
    WHEN @is_at_risk(r.is_reachable, r.churn_probability) AND w.customer_id IS NULL THEN 'newly at risk'
    WHEN @is_at_risk(r.is_reachable, r.churn_probability) THEN 'still at risk'
    WHEN w.customer_id IS NOT NULL AND r.is_reachable THEN 'recovered'
    WHEN w.customer_id IS NOT NULL THEN 'moved to win-back'
  END AS risk_change,
  p.business_date AS previous_business_date
FROM intermediate.int_revenue_risk AS r
JOIN marts.mart_clv AS v
  ON v.customer_id = r.customer_id
JOIN intermediate.int_lifecycle_stage AS l
  ON l.customer_id = r.customer_id
JOIN intermediate.int_customer_base AS b
  ON b.customer_id = r.customer_id
JOIN intermediate.int_churn_scoring AS s
  ON s.customer_id = r.customer_id
CROSS JOIN previous AS p
LEFT JOIN was_at_risk AS w
  ON w.customer_id = r.customer_id
