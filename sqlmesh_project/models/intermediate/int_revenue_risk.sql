/* Value and revenue at risk per customer. predicted_remaining_clv_usd is what the customer is
   expected to bring over the next 12 months if still active (BG/NBD + Gamma-Gamma,
   int_clv_predictions); the churn model's probability that they have already left
   (int_churn_scoring) splits it into the expected value, predicted_clv_12m_usd, and the revenue
   at risk. BG/NBD alone would weigh it by P(alive) (bgnbd_clv_12m_usd, kept for comparison); the
   churn model ranks next year's revenue better against the ground truth (bench/RESULTS.md).
   Invariants: predicted_clv_12m_usd + revenue_at_risk_usd = predicted_remaining_clv_usd (within a
   cent), revenue_at_risk_usd <= predicted_remaining_clv_usd. Grain: one row per customer_id. */
MODEL (
  name intermediate.int_revenue_risk,
  kind FULL,
  grain customer_id,
  tags [intermediate],
  audits (
    unique_values(columns := (customer_id)),
    not_null(columns := (customer_id, churn_probability, p_alive, revenue_at_risk_usd, predicted_remaining_clv_usd)),
    accepted_range(column := predicted_remaining_clv_usd, min_v := 0),
    accepted_range(column := predicted_clv_12m_usd, min_v := 0),
    accepted_range(column := p_alive, min_v := 0, max_v := 1),
    accepted_range(column := churn_probability, min_v := 0, max_v := 1),
    risk_within_remaining_value
  ),
  description 'Predicted 12-month CLV, remaining CLV and revenue at risk per customer.',
  column_descriptions (
    customer_id = 'Customer identifier',
    churn_probability = 'From int_churn_scoring: probability that the customer has already left',
    p_alive = 'From int_clv_predictions: BG/NBD probability that the customer is still active',
    expected_purchases_90d = 'Expected purchase days in the next 90 days',
    expected_purchases_365d = 'Expected purchase days in the next 365 days',
    expected_spend_per_purchase_usd = 'Expected net value of one purchase',
    predicted_remaining_clv_usd = 'Net revenue expected over the next 12 months if the customer is still active',
    predicted_clv_12m_usd = 'Expected net revenue over the next 12 months: remaining CLV x (1 - churn_probability)',
    bgnbd_clv_12m_usd = 'The same expectation by BG/NBD alone: remaining CLV x p_alive',
    revenue_at_risk_usd = 'churn_probability x predicted_remaining_clv_usd'
  )
);

SELECT
  p.customer_id,
  s.churn_probability,
  p.p_alive,
  p.expected_purchases_90d,
  p.expected_purchases_365d,
  CAST(p.expected_spend_per_purchase_usd AS DECIMAL(12, 2)) AS expected_spend_per_purchase_usd,
  CAST(p.predicted_remaining_clv_usd AS DECIMAL(14, 2)) AS predicted_remaining_clv_usd,
  CAST(p.predicted_remaining_clv_usd * (1 - s.churn_probability) AS DECIMAL(14, 2)) AS predicted_clv_12m_usd,
  CAST(p.bgnbd_clv_12m_usd AS DECIMAL(14, 2)) AS bgnbd_clv_12m_usd,
  CAST(p.predicted_remaining_clv_usd * s.churn_probability AS DECIMAL(14, 2)) AS revenue_at_risk_usd
FROM intermediate.int_clv_predictions AS p
JOIN intermediate.int_churn_scoring AS s
  ON s.customer_id = p.customer_id
