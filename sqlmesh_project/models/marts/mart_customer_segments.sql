/* Segments per customer: lifecycle, contract (plan and billing cycle), geography, favourite
   category and value, ready to group by. Grain: one row per customer_id. */
MODEL (
  name marts.mart_customer_segments,
  kind FULL,
  grain customer_id,
  tags [marts],
  audits (unique_values(columns := (customer_id)), not_null(columns := (customer_id, lifecycle_stage, contract_segment))),
  description 'Lifecycle, contract, geography, category and value segments per customer.',
  column_descriptions (
    customer_id = 'Customer identifier',
    lifecycle_stage = 'onboarding, active, dormant or churned',
    contract_segment = 'no subscription, or plan tier and billing cycle (e.g. plus annual), or cancelled',
    plan_id = 'Current or last plan',
    country_code = 'Country',
    region = 'Region',
    favourite_category = 'Category with the highest spend; none without orders',
    value_tier = 'Top 10%, High, Medium or Low',
    risk_band = 'high, medium or low churn risk',
    loyalty_tier = 'Loyalty tier, or None'
  )
);

SELECT
  b.customer_id,
  l.lifecycle_stage,
  CASE
    WHEN b.subscription_status = 'none' THEN 'no subscription'
    WHEN NOT b.has_active_subscription THEN 'cancelled'
    ELSE b.plan_tier || ' ' || b.billing_cycle
  END AS contract_segment,
  b.plan_id,
  b.country_code,
  b.region,
  COALESCE(p.favourite_category, 'none') AS favourite_category,
  v.value_tier,
  r.risk_band,
  b.loyalty_tier
FROM intermediate.int_customer_base AS b
JOIN intermediate.int_lifecycle_stage AS l
  ON l.customer_id = b.customer_id
LEFT JOIN intermediate.int_customer_category_pref AS p
  ON p.customer_id = b.customer_id
JOIN marts.mart_clv AS v
  ON v.customer_id = b.customer_id
JOIN marts.mart_churn_risk AS r
  ON r.customer_id = b.customer_id
