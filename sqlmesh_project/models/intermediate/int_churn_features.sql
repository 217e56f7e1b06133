/* The behavioural signals the churn model reads (@churn_signals, macros/features.py: sessions,
   support tickets, subscriptions read from their dates, lifecycle stage) for every customer at
   two as-of dates: the churn model's training cutoff, the business date minus
   churn_label_window_days (int_churn_model learns from them), and the business date
   (int_churn_scoring scores them). One definition for training and scoring, and the same macros
   give int_engagement_summary, int_support_summary and int_lifecycle_stage their columns.
   Grain: one row per as_of_date and customer_id. */
MODEL (
  name intermediate.int_churn_features,
  kind FULL,
  grain (as_of_date, customer_id),
  tags [intermediate],
  audits (
    unique_combination_of_columns(columns := (as_of_date, customer_id)),
    not_null(columns := (as_of_date, customer_id, sessions_90d, tickets_90d, has_active_subscription, lifecycle_stage))
  ),
  description 'Churn model features per customer on the business date and on the churn training cutoff.',
  column_descriptions (
    as_of_date = 'The business date, or the churn training cutoff (business date - churn_label_window_days)',
    customer_id = 'Customer identifier (signed up by as_of_date)',
    tenure_days = 'Days from signup to as_of_date',
    sessions_30d = 'Sessions in the 30 days up to as_of_date',
    sessions_90d = 'Sessions in the 90 days up to as_of_date',
    sessions_prior_90d = 'Sessions in the 90 days before those',
    days_since_last_session = 'Days from the last session to as_of_date; null without sessions',
    lifetime_sessions = 'Sessions up to as_of_date',
    tickets_90d = 'Tickets opened in the 90 days up to as_of_date',
    billing_tickets_90d = 'Billing tickets opened in those 90 days',
    low_csat_tickets_90d = 'Tickets answered 1 or 2 in those 90 days',
    has_active_subscription = 'A subscription started by as_of_date and not ended then (read from its dates)',
    subscription_ended_90d = 'A subscription ended in the 90 days up to as_of_date and none is active',
    last_activity_date = 'Last purchase or session up to as_of_date (signup without either)',
    days_since_last_activity = 'Days from the last activity to as_of_date',
    lifecycle_stage = 'onboarding, active, dormant or churned on as_of_date'
  )
);

WITH on_business_date AS (
  SELECT
    @business_date() AS as_of_date,
    f.*
  FROM @churn_signals(
    core.dim_customers,
    core.fct_revenue,
    core.fct_activity_logs,
    core.fct_support_logs,
    staging.stg_subscriptions,
    @business_date()
  ) AS f
), on_training_cutoff AS (
  SELECT
    @churn_training_cutoff(@business_date()) AS as_of_date,
    f.*
  FROM @churn_signals(
    core.dim_customers,
    core.fct_revenue,
    core.fct_activity_logs,
    core.fct_support_logs,
    staging.stg_subscriptions,
    @churn_training_cutoff(@business_date())
  ) AS f
), both_dates AS (
  SELECT * FROM on_business_date
  UNION ALL
  SELECT * FROM on_training_cutoff
)
SELECT
  CAST(as_of_date AS DATE) AS as_of_date,
  customer_id,
  tenure_days,
  sessions_30d,
  sessions_90d,
  sessions_prior_90d,
  days_since_last_session,
  lifetime_sessions,
  tickets_90d,
  billing_tickets_90d,
  low_csat_tickets_90d,
  has_active_subscription,
  subscription_ended_90d,
  last_activity_date,
  days_since_last_activity,
  lifecycle_stage
FROM both_dates
