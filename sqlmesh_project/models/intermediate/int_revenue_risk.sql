/* Revenue at risk per customer: what a customer would spend over the next 12 months if they
   stay (their net revenue run rate), weighted by the chance that they leave. In this first
   version the 12-month prediction is the run rate times the probability of staying; the CLV
   issue replaces it with BG/NBD + Gamma-Gamma and keeps the columns.
   Invariant: revenue_at_risk_usd <= predicted_remaining_clv_usd. Grain: one row per customer_id. */
MODEL (
  name intermediate.int_revenue_risk,
  kind FULL,
  grain customer_id,
  tags [intermediate],
  audits (
    unique_values(columns := (customer_id)),
    not_null(columns := (customer_id, revenue_at_risk_usd, predicted_remaining_clv_usd)),
    accepted_range(column := predicted_remaining_clv_usd, min_v := 0),
    accepted_range(column := predicted_clv_12m_usd, min_v := 0),
    risk_within_remaining_value
  ),
  description 'Predicted 12-month CLV, remaining CLV and revenue at risk per customer.',
  column_descriptions (
    customer_id = 'Customer identifier',
    churn_probability = 'From int_churn_scoring',
    predicted_remaining_clv_usd = 'Net revenue expected over the next 12 months if the customer stays',
    predicted_clv_12m_usd = 'Expected net revenue over the next 12 months: remaining CLV x (1 - churn probability)',
    revenue_at_risk_usd = 'churn_probability x predicted_remaining_clv_usd'
  )
);

SELECT
  c.customer_id,
  s.churn_probability,
  CAST(GREATEST(c.monthly_revenue_usd, 0) * 12 AS DECIMAL(14, 2)) AS predicted_remaining_clv_usd,
  CAST(GREATEST(c.monthly_revenue_usd, 0) * 12 * (1 - s.churn_probability) AS DECIMAL(14, 2)) AS predicted_clv_12m_usd,
  CAST(GREATEST(c.monthly_revenue_usd, 0) * 12 * s.churn_probability AS DECIMAL(14, 2)) AS revenue_at_risk_usd
FROM intermediate.int_customer_clv AS c
JOIN intermediate.int_churn_scoring AS s
  ON s.customer_id = c.customer_id
