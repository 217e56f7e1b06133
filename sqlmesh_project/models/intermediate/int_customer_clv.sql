/* Lifetime value so far per customer, and the purchase summary the CLV literature uses
   (@purchase_summary in macros/features.py, the one the CLV models are fitted on): purchases on
   the same day count as one; frequency = repeat purchase days; recency = days from first to last
   purchase; age = days from first purchase to the business date. Grain: one row per customer_id. */
MODEL (
  name intermediate.int_customer_clv,
  kind FULL,
  grain customer_id,
  tags [intermediate],
  audits (unique_values(columns := (customer_id)), not_null(columns := (customer_id, historical_clv_usd))),
  description 'Historical revenue, tenure, order value, frequency and recency per customer.',
  column_descriptions (
    customer_id = 'Customer identifier',
    order_revenue_usd = 'Order lines, before refunds',
    refund_usd = 'Refunds (negative)',
    subscription_revenue_usd = 'Subscription charges',
    historical_clv_usd = 'Net revenue to date: orders + subscriptions + refunds',
    order_lines = 'Order lines (refunds excluded)',
    purchase_days = 'Distinct days with an order',
    frequency = 'Repeat purchase days (purchase days - 1)',
    first_purchase_date = 'First day with an order',
    last_purchase_date = 'Last day with an order',
    recency_days = 'Days from the first to the last purchase day',
    age_days = 'Days from the first purchase day to the business date',
    days_since_last_purchase = 'Days from the last purchase day to the business date',
    tenure_months = 'Months from signup to the business date (at least 1)',
    avg_order_value_usd = 'Order revenue per purchase day',
    avg_repeat_order_value_usd = 'Mean order revenue of the repeat purchase days',
    monthly_revenue_usd = 'Net revenue per month of tenure'
  )
);

WITH totals AS (
  SELECT
    customer_id,
    SUM(revenue_usd) FILTER (WHERE revenue_type = 'order') AS order_revenue_usd,
    SUM(revenue_usd) FILTER (WHERE revenue_type = 'refund') AS refund_usd,
    SUM(revenue_usd) FILTER (WHERE revenue_type = 'subscription') AS subscription_revenue_usd,
    COUNT(*) FILTER (WHERE revenue_type = 'order') AS order_lines
  FROM core.fct_revenue
  WHERE revenue_date <= @business_date()
  GROUP BY customer_id
)
SELECT
  b.customer_id,
  CAST(COALESCE(t.order_revenue_usd, 0) AS DECIMAL(14, 2)) AS order_revenue_usd,
  CAST(COALESCE(t.refund_usd, 0) AS DECIMAL(14, 2)) AS refund_usd,
  CAST(COALESCE(t.subscription_revenue_usd, 0) AS DECIMAL(14, 2)) AS subscription_revenue_usd,
  CAST(COALESCE(t.order_revenue_usd, 0) + COALESCE(t.refund_usd, 0) + COALESCE(t.subscription_revenue_usd, 0) AS DECIMAL(14, 2)) AS historical_clv_usd,
  COALESCE(t.order_lines, 0) AS order_lines,
  p.purchase_days,
  p.frequency,
  p.first_purchase_date,
  p.last_purchase_date,
  p.recency_days,
  p.age_days,
  p.days_since_last_purchase,
  GREATEST(b.tenure_days / 30.4375, 1.0) AS tenure_months,
  CAST(t.order_revenue_usd / NULLIF(p.purchase_days, 0) AS DECIMAL(12, 2)) AS avg_order_value_usd,
  CAST(p.monetary_value AS DECIMAL(12, 2)) AS avg_repeat_order_value_usd,
  CAST((COALESCE(t.order_revenue_usd, 0) + COALESCE(t.refund_usd, 0) + COALESCE(t.subscription_revenue_usd, 0))
    / GREATEST(b.tenure_days / 30.4375, 1.0) AS DECIMAL(12, 2)) AS monthly_revenue_usd
FROM intermediate.int_customer_base AS b
LEFT JOIN @purchase_summary(core.fct_revenue, core.dim_customers, @business_date()) AS p
  ON p.customer_id = b.customer_id
LEFT JOIN totals AS t
  ON t.customer_id = b.customer_id
