/* Value per customer split three ways: at risk, already lost, expected to be kept.
   predicted_remaining_clv_usd is what the customer would bring over the next 12 months if still
   active (BG/NBD + Gamma-Gamma, int_clv_predictions). Three events that cannot happen together
   share it out:
   - already left, with the churn model's probability churn_probability (int_churn_scoring):
     value_lost_usd = churn_probability x remaining value;
   - still active today but leaving within the next 90 days: leave_probability_90d =
     (1 - churn_probability) x P(drop out within 90 days | active). BG/NBD's own mechanism gives
     the second factor: a customer drops out right after a purchase with probability p, so given
     they are active, P(no dropout in 90 days) = exp(-p x purchases in 90 days). We take p at its
     posterior mean for an active customer with `frequency` repeat purchases, a / (a + b +
     frequency) (int_clv_model_fit), and the purchases at BG/NBD's expectation given active,
     expected_purchases_90d / p_alive. Only customers still reachable (lifecycle stage other than
     churned and churn_probability < 0.5) carry it as revenue_at_risk_usd = leave_probability_90d
     x remaining value; for customers most likely gone it is 0 and they are the win-back pool;
   - the rest is kept: value_kept_usd.
   predicted_clv_12m_usd = remaining value x (1 - churn_probability) = value_kept_usd +
   revenue_at_risk_usd; BG/NBD alone would weigh it by P(alive) (bgnbd_clv_12m_usd, kept for
   comparison). Invariant (audit risk_within_remaining_value): revenue_at_risk_usd + value_kept_usd
   + value_lost_usd = predicted_remaining_clv_usd, each part >= 0. Grain: one row per customer_id. */
MODEL (
  name intermediate.int_revenue_risk,
  kind FULL,
  grain customer_id,
  tags [intermediate],
  audits (
    unique_values(columns := (customer_id)),
    not_null(
      columns := (customer_id, churn_probability, p_alive, leave_probability_90d, is_reachable, revenue_at_risk_usd, value_kept_usd, value_lost_usd, predicted_remaining_clv_usd)
    ),
    accepted_range(column := predicted_remaining_clv_usd, min_v := 0),
    accepted_range(column := predicted_clv_12m_usd, min_v := 0),
    accepted_range(column := p_alive, min_v := 0, max_v := 1),
    accepted_range(column := churn_probability, min_v := 0, max_v := 1),
    accepted_range(column := leave_probability_90d, min_v := 0, max_v := 1),
    risk_within_remaining_value
  ),
  description 'Remaining 12-month value per customer split into revenue at risk (90 days), value kept and value already lost.',
  column_descriptions (
    customer_id = 'Customer identifier',
    churn_probability = 'From int_churn_scoring: probability that the customer has already left',
    p_alive = 'From int_clv_predictions: BG/NBD probability that the customer is still active',
    leave_probability_90d = 'Probability that the customer is active today and leaves within the next 90 days: (1 - churn_probability) x (1 - exp(-a / (a + b + frequency) x expected_purchases_90d / p_alive))',
    is_reachable = 'Still reachable for retention: lifecycle stage onboarding, active or dormant and churn_probability < 0.5; the others are most likely gone (win-back pool)',
    expected_purchases_90d = 'Expected purchase days in the next 90 days',
    expected_purchases_365d = 'Expected purchase days in the next 365 days',
    expected_spend_per_purchase_usd = 'Expected net value of one purchase',
    predicted_remaining_clv_usd = 'Net revenue expected over the next 12 months if the customer is still active and stays',
    predicted_clv_12m_usd = 'Expected net revenue over the next 12 months: remaining CLV x (1 - churn_probability)',
    bgnbd_clv_12m_usd = 'The same expectation by BG/NBD alone: remaining CLV x p_alive',
    revenue_at_risk_usd = 'Reachable customers: leave_probability_90d x predicted_remaining_clv_usd; 0 for customers most likely gone',
    value_kept_usd = 'predicted_remaining_clv_usd - revenue_at_risk_usd - value_lost_usd: value expected to stay',
    value_lost_usd = 'Value already lost: churn_probability x predicted_remaining_clv_usd'
  )
);

WITH fit AS (
  SELECT bgnbd_a, bgnbd_b FROM intermediate.int_clv_model_fit
), leaving AS (
  SELECT
    p.customer_id,
    s.churn_probability,
    p.p_alive,
    p.expected_purchases_90d,
    p.expected_purchases_365d,
    p.expected_spend_per_purchase_usd,
    p.predicted_remaining_clv_usd,
    p.bgnbd_clv_12m_usd,
    (1 - s.churn_probability) * CASE
      WHEN p.p_alive > 0 AND p.expected_purchases_90d > 0
      THEN 1 - EXP(-f.bgnbd_a / (f.bgnbd_a + f.bgnbd_b + COALESCE(p.frequency, 0)) * p.expected_purchases_90d / p.p_alive)
      ELSE 0
    END AS leave_probability_90d,
    l.lifecycle_stage <> 'churned' AND s.churn_probability < 0.5 AS is_reachable
  FROM intermediate.int_clv_predictions AS p
  JOIN intermediate.int_churn_scoring AS s
    ON s.customer_id = p.customer_id
  JOIN intermediate.int_lifecycle_stage AS l
    ON l.customer_id = p.customer_id
  CROSS JOIN fit AS f
), valued AS (
  SELECT
    *,
    CAST(predicted_remaining_clv_usd AS DECIMAL(14, 2)) AS remaining_usd,
    CAST(predicted_remaining_clv_usd * churn_probability AS DECIMAL(14, 2)) AS lost_usd,
    CAST(
      CASE WHEN is_reachable THEN predicted_remaining_clv_usd * leave_probability_90d ELSE 0 END AS DECIMAL(14, 2)
    ) AS at_risk_usd
  FROM leaving
)
SELECT
  customer_id,
  churn_probability,
  p_alive,
  leave_probability_90d,
  is_reachable,
  expected_purchases_90d,
  expected_purchases_365d,
  CAST(expected_spend_per_purchase_usd AS DECIMAL(12, 2)) AS expected_spend_per_purchase_usd,
  remaining_usd AS predicted_remaining_clv_usd,
  CAST(predicted_remaining_clv_usd * (1 - churn_probability) AS DECIMAL(14, 2)) AS predicted_clv_12m_usd,
  CAST(bgnbd_clv_12m_usd AS DECIMAL(14, 2)) AS bgnbd_clv_12m_usd,
  at_risk_usd AS revenue_at_risk_usd,
  CAST(GREATEST(remaining_usd - at_risk_usd - lost_usd, 0) AS DECIMAL(14, 2)) AS value_kept_usd,
  lost_usd AS value_lost_usd
FROM valued
