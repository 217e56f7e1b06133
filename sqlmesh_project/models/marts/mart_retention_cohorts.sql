/* Retention curves: customers grouped by signup month, followed month by month. A customer is
   active in a month with an order or a session; revenue is the cohort's net revenue that month.
   Months after the business date's month are not shown. Grain: one row per cohort_month and
   months_since_acquisition. */
MODEL (
  name marts.mart_retention_cohorts,
  kind FULL,
  grain (cohort_month, months_since_acquisition),
  tags [marts],
  audits (
    unique_combination_of_columns(columns := (cohort_month, months_since_acquisition)),
    not_null(columns := (cohort_month, months_since_acquisition, cohort_size, retention_rate)),
    accepted_range(column := retention_rate, min_v := 0, max_v := 1),
    active_within_cohort
  ),
  description 'Signup-month cohorts by months since acquisition: size, active customers, retention, revenue.',
  column_descriptions (
    cohort_month = 'Month of signup (first day)',
    months_since_acquisition = 'Months from the cohort month, 0 = the signup month',
    cohort_size = 'Customers who signed up in the cohort month',
    customers_active = 'Cohort customers with an order or session in the month',
    retention_rate = 'customers_active / cohort_size',
    revenue_usd = 'Net revenue from the cohort in the month'
  )
);

WITH customers AS (
  SELECT customer_id, CAST(DATE_TRUNC('MONTH', signup_date) AS DATE) AS cohort_month
  FROM intermediate.int_customer_base
), activity AS (
  SELECT customer_id, CAST(DATE_TRUNC('MONTH', revenue_date) AS DATE) AS activity_month, revenue_usd
  FROM core.fct_revenue
  WHERE revenue_date <= @business_date()
  UNION ALL
  SELECT customer_id, CAST(DATE_TRUNC('MONTH', session_date) AS DATE), 0
  FROM core.fct_activity_logs
  WHERE session_date <= @business_date()
), sizes AS (
  SELECT cohort_month, COUNT(*) AS cohort_size FROM customers GROUP BY cohort_month
), grid AS (
  SELECT
    s.cohort_month,
    s.cohort_size,
    t.month_start AS activity_month,
    @calendar_diff(MONTH, s.cohort_month, t.month_start) AS months_since_acquisition
  FROM sizes AS s
  JOIN core.dim_time AS t
    ON t.date_day = t.month_start
    AND t.month_start >= s.cohort_month
    AND t.month_start <= CAST(DATE_TRUNC('MONTH', @business_date()) AS DATE)
), monthly AS (
  SELECT
    c.cohort_month,
    a.activity_month,
    COUNT(DISTINCT a.customer_id) AS customers_active,
    SUM(a.revenue_usd) AS revenue_usd
  FROM activity AS a
  JOIN customers AS c
    ON c.customer_id = a.customer_id
  GROUP BY c.cohort_month, a.activity_month
)
SELECT
  g.cohort_month,
  g.months_since_acquisition,
  g.cohort_size,
  COALESCE(m.customers_active, 0) AS customers_active,
  COALESCE(m.customers_active, 0) / g.cohort_size AS retention_rate,
  CAST(COALESCE(m.revenue_usd, 0) AS DECIMAL(14, 2)) AS revenue_usd
FROM grid AS g
LEFT JOIN monthly AS m
  ON m.cohort_month = g.cohort_month AND m.activity_month = g.activity_month
