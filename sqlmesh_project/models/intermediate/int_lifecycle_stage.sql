/* Where each customer is in their lifecycle on the business date, from days since signup and
   since their last purchase or session. Thresholds are project variables (config.yaml):
   onboarding within onboarding_days of signup; active when last seen within active_within_days;
   dormant within dormant_within_days; churned after that. Grain: one row per customer_id. */
MODEL (
  name intermediate.int_lifecycle_stage,
  kind FULL,
  grain customer_id,
  tags [intermediate],
  audits (
    unique_values(columns := (customer_id)),
    not_null(columns := (customer_id)),
    accepted_values(column := lifecycle_stage, is_in := ('onboarding', 'active', 'dormant', 'churned'))
  ),
  description 'Lifecycle stage per customer: onboarding, active, dormant or churned.',
  column_descriptions (
    customer_id = 'Customer identifier',
    last_activity_date = 'Last purchase or session',
    days_since_last_activity = 'Days from the last activity to the business date',
    lifecycle_stage = 'onboarding, active, dormant or churned'
  )
);

WITH activity AS (
  SELECT
    b.customer_id,
    b.tenure_days,
    GREATEST(COALESCE(c.last_purchase_date, b.signup_date), COALESCE(e.last_session_date, b.signup_date)) AS last_activity_date
  FROM intermediate.int_customer_base AS b
  LEFT JOIN intermediate.int_customer_clv AS c
    ON c.customer_id = b.customer_id
  LEFT JOIN intermediate.int_engagement_summary AS e
    ON e.customer_id = b.customer_id
)
SELECT
  customer_id,
  last_activity_date,
  DATE_DIFF('DAY', last_activity_date, @business_date()) AS days_since_last_activity,
  CASE
    WHEN tenure_days < @VAR('onboarding_days') THEN 'onboarding'
    WHEN DATE_DIFF('DAY', last_activity_date, @business_date()) <= @VAR('active_within_days') THEN 'active'
    WHEN DATE_DIFF('DAY', last_activity_date, @business_date()) <= @VAR('dormant_within_days') THEN 'dormant'
    ELSE 'churned'
  END AS lifecycle_stage
FROM activity
