/* Who is likely to leave and what it would cost: churn probability (the fitted churn model) next
   to BG/NBD's P(alive), a risk band (high >= 0.6, medium >= 0.3, low below), the value still to
   come and the revenue at risk.
   Grain: one row per customer_id. */
MODEL (
  name marts.mart_churn_risk,
  kind FULL,
  grain customer_id,
  tags [marts],
  audits (
    unique_values(columns := (customer_id)),
    not_null(columns := (customer_id, churn_probability, risk_band, revenue_at_risk_usd)),
    accepted_range(column := churn_probability, min_v := 0, max_v := 1),
    accepted_range(column := p_alive, min_v := 0, max_v := 1),
    accepted_values(column := risk_band, is_in := ('high', 'medium', 'low')),
    risk_within_remaining_value
  ),
  description 'Churn probability, risk band and revenue at risk per customer.',
  column_descriptions (
    customer_id = 'Customer identifier',
    churn_probability = 'Probability that the customer has already left, 0-1 (churn model)',
    p_alive = 'BG/NBD probability that the customer is still active',
    risk_band = 'high (>= 0.6), medium (>= 0.3) or low',
    predicted_remaining_clv_usd = 'Net revenue expected over the next 12 months if the customer is still active',
    revenue_at_risk_usd = 'churn_probability x predicted_remaining_clv_usd',
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
  r.predicted_remaining_clv_usd,
  r.revenue_at_risk_usd,
  v.value_tier,
  l.lifecycle_stage,
  l.days_since_last_activity
FROM intermediate.int_revenue_risk AS r
JOIN marts.mart_clv AS v
  ON v.customer_id = r.customer_id
JOIN intermediate.int_lifecycle_stage AS l
  ON l.customer_id = r.customer_id
