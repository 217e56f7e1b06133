/* Pricing plans with billing cycle, list price, discount tier and the monthly equivalent price.
   Grain: one row per plan_id. */
MODEL (
  name core.dim_plans,
  kind FULL,
  grain plan_id,
  tags [core, dimension],
  audits (unique_values(columns := (plan_id)), not_null(columns := (plan_id, list_price_usd))),
  description 'Pricing plans.',
  column_descriptions (
    plan_id = 'Plan identifier',
    plan_name = 'Plan name',
    plan_tier = 'basic, plus or premium',
    billing_cycle = 'monthly or annual',
    billing_months = 'Months per billing cycle',
    list_price_usd = 'Price per billing cycle',
    monthly_price_usd = 'List price spread over the months of the cycle',
    discount_tier = 'Discount programme',
    discount_pct = 'Discount against monthly billing, percent'
  )
);

SELECT
  plan_id,
  plan_name,
  plan_tier,
  billing_cycle,
  billing_months,
  list_price_usd,
  CAST(list_price_usd / billing_months AS DECIMAL(10, 2)) AS monthly_price_usd,
  discount_tier,
  discount_pct
FROM seeds.plans
