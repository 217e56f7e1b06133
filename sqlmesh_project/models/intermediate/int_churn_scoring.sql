/* Churn probability per customer on the business date. This first version is a transparent
   rule: a logistic score of documented signals (inactivity, fading engagement, support friction,
   subscription status, purchase history) with hand-set weights. The CLV issue replaces it with a
   fitted, calibrated model and keeps these columns. Grain: one row per customer_id. */
MODEL (
  name intermediate.int_churn_scoring,
  kind FULL,
  grain customer_id,
  tags [intermediate],
  audits (
    unique_values(columns := (customer_id)),
    not_null(columns := (customer_id, churn_probability)),
    accepted_range(column := churn_probability, min_v := 0, max_v := 1)
  ),
  description 'Churn probability from inactivity, engagement, support and subscription signals.',
  column_descriptions (
    customer_id = 'Customer identifier',
    churn_score = 'Logistic score (log-odds of churn)',
    churn_probability = 'Probability of having churned or churning, 0-1',
    churn_model = 'Which model produced the probability'
  )
);

WITH signals AS (
  SELECT
    b.customer_id,
    LEAST(l.days_since_last_activity, 365) AS days_inactive,
    CAST(e.sessions_90d = 0 AS INT) AS no_recent_sessions,
    GREATEST(-COALESCE(e.engagement_trend, 0), 0) AS engagement_decline,
    s.tickets_90d,
    s.low_csat_tickets_90d,
    CAST(b.subscription_status = 'cancelled' AS INT) AS cancelled_subscription,
    CAST(b.has_active_subscription AS INT) AS active_subscription,
    c.frequency
  FROM intermediate.int_customer_base AS b
  JOIN intermediate.int_lifecycle_stage AS l
    ON l.customer_id = b.customer_id
  JOIN intermediate.int_engagement_summary AS e
    ON e.customer_id = b.customer_id
  JOIN intermediate.int_support_summary AS s
    ON s.customer_id = b.customer_id
  JOIN intermediate.int_customer_clv AS c
    ON c.customer_id = b.customer_id
), scored AS (
  SELECT
    customer_id,
    -2.0 + 0.012 * days_inactive + 0.8 * no_recent_sessions + 0.6 * engagement_decline
    + 0.35 * LEAST(tickets_90d, 5) + 0.5 * LEAST(low_csat_tickets_90d, 3) + 0.7 * cancelled_subscription
    - 0.5 * active_subscription - 0.3 * LN(1 + frequency) AS churn_score
  FROM signals
)
SELECT
  customer_id,
  churn_score,
  1.0 / (1.0 + EXP(-churn_score)) AS churn_probability,
  'rules-v1' AS churn_model
FROM scored
