/* The current profile of every customer signed up by the business date (the open SCD-2 version,
   @customers_as_of in macros/features.py) with where they live, their latest financial profile,
   loyalty standing and subscription. Grain: one row per customer_id. */
MODEL (
  name intermediate.int_customer_base,
  kind FULL,
  grain customer_id,
  tags [intermediate],
  audits (unique_values(columns := (customer_id)), not_null(columns := (customer_id, signup_date))),
  description 'Current customer profile joined with geography, finances, loyalty and subscription.',
  column_descriptions (
    customer_id = 'Customer identifier',
    first_name = 'Current first name',
    last_name = 'Current last name',
    email = 'Current email address (lower case)',
    gender = 'M, F, Other or Unknown',
    age_years = 'Age in whole years on the business date',
    signup_date = 'Date of account creation',
    tenure_days = 'Days from signup to the business date',
    city = 'Current city',
    country_code = 'Current country',
    region = 'Region of the current country',
    is_marketing_opt_in = 'Current marketing consent',
    income_usd = 'Latest reported annual income',
    credit_score = 'Latest credit score',
    points_balance = 'Latest loyalty balance (0 when never a member)',
    loyalty_tier = 'Latest loyalty tier',
    subscription_status = 'Status of the most recent subscription, or none',
    plan_id = 'Plan of the most recent subscription',
    plan_tier = 'Tier of that plan',
    billing_cycle = 'monthly, annual, or null without a subscription',
    has_active_subscription = 'An active or paused subscription on the business date',
    subscriptions_cancelled = 'Subscriptions ever cancelled'
  )
);

WITH customers AS (
  SELECT *
  FROM @customers_as_of(
    core.dim_customers,
    @business_date(),
    first_name,
    last_name,
    email,
    gender,
    birth_date,
    city,
    country_code,
    is_marketing_opt_in
  ) AS c
), finance AS (
  SELECT customer_id, income_usd, credit_score
  FROM staging.stg_financial_profiles
  WHERE profile_effective_date <= @business_date()
  QUALIFY ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY profile_effective_date DESC) = 1
), loyalty AS (
  SELECT customer_id, points_balance, loyalty_tier
  FROM staging.stg_loyalty_balances
  WHERE snapshot_date <= @business_date()
  QUALIFY ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY snapshot_date DESC) = 1
), subscriptions AS (
  SELECT
    customer_id,
    status AS subscription_status,
    plan_id,
    COUNT(*) FILTER (WHERE status = 'cancelled') OVER (PARTITION BY customer_id) AS subscriptions_cancelled,
    COUNT(*) FILTER (WHERE status IN ('active', 'paused')) OVER (PARTITION BY customer_id) > 0 AS has_active_subscription
  FROM staging.stg_subscriptions
  QUALIFY ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY start_date DESC, subscription_id DESC) = 1
)
SELECT
  c.customer_id,
  c.first_name,
  c.last_name,
  c.email,
  c.gender,
  CAST(@calendar_diff(YEAR, c.birth_date, @business_date()) AS INT) AS age_years,
  c.signup_date,
  c.tenure_days,
  c.city,
  c.country_code,
  COALESCE(g.region, 'Unknown') AS region,
  c.is_marketing_opt_in,
  f.income_usd,
  f.credit_score,
  COALESCE(l.points_balance, 0) AS points_balance,
  COALESCE(l.loyalty_tier, 'None') AS loyalty_tier,
  COALESCE(s.subscription_status, 'none') AS subscription_status,
  s.plan_id,
  p.plan_tier,
  p.billing_cycle,
  COALESCE(s.has_active_subscription, FALSE) AS has_active_subscription,
  COALESCE(s.subscriptions_cancelled, 0) AS subscriptions_cancelled
FROM customers AS c
LEFT JOIN core.dim_geography AS g
  ON g.country_code = c.country_code AND g.city = c.city
LEFT JOIN finance AS f
  ON f.customer_id = c.customer_id
LEFT JOIN loyalty AS l
  ON l.customer_id = c.customer_id
LEFT JOIN subscriptions AS s
  ON s.customer_id = c.customer_id
LEFT JOIN core.dim_plans AS p
  ON p.plan_id = s.plan_id
