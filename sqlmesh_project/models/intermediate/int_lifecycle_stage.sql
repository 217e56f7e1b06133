/* Where each customer is in their lifecycle on the business date, from days since signup and
   since their last purchase or session (@lifecycle_stage in macros/features.py, the churn
   model's definition). Thresholds are project variables (config.yaml):
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

SELECT
  l.customer_id,
  l.last_activity_date,
  l.days_since_last_activity,
  l.lifecycle_stage
FROM @lifecycle_stage(core.dim_customers, core.fct_revenue, core.fct_activity_logs, @business_date()) AS l
