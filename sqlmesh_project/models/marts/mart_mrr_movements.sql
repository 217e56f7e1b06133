/* Monthly recurring revenue per calendar month and what moved it. A customer's MRR on a day is
   the sum of the monthly recurring revenue of their subscriptions running that day (started on
   or before it, not ended on or before it; core.fct_subscriptions: an annual plan counts its
   price / 12). Closing MRR is taken at the end of the month's last day, or of the business date
   for the current month, which is marked incomplete; opening MRR is the previous month's
   closing. Each customer's change over the month is one movement: new (first subscription ever,
   started this month), reactivated (back from zero after an earlier subscription), expansion (up,
   an upgrade), contraction (down, a downgrade) or churned (down to zero). A plan change is an
   expansion or a contraction, never churn. Paused subscriptions keep counting: billing keeps
   charging them (core.fct_revenue's convention). Per month, opening + new + expansion -
   contraction - churned + reactivated = closing, and each closing is the next opening (a Soda
   check holds both).
   Grain: one row per mrr_month, from the first subscription's month to the business date's. */
MODEL (
  name marts.mart_mrr_movements,
  kind FULL,
  grain mrr_month,
  tags [marts],
  audits (
    unique_values(columns := (mrr_month)),
    not_null(
      columns := (mrr_month, is_complete_month, closing_as_of_date, opening_mrr_usd, new_mrr_usd, expansion_mrr_usd, contraction_mrr_usd, churned_mrr_usd, reactivated_mrr_usd, closing_mrr_usd)
    ),
    accepted_range(column := new_mrr_usd, min_v := 0),
    accepted_range(column := expansion_mrr_usd, min_v := 0),
    accepted_range(column := contraction_mrr_usd, min_v := 0),
    accepted_range(column := churned_mrr_usd, min_v := 0),
    accepted_range(column := reactivated_mrr_usd, min_v := 0)
  ),
  description 'Monthly recurring revenue per calendar month: opening, new, expansion, contraction, churned, reactivated, closing.',
  column_descriptions (
    mrr_month = 'Calendar month (first day)',
    is_complete_month = 'The month ended on or before the business date; false for the current, partial month',
    closing_as_of_date = 'Day at whose end closing MRR is taken: the last day of the month, or the business date for the current month',
    opening_mrr_usd = 'MRR at the end of the previous month (0 before the first subscription)',
    new_mrr_usd = 'MRR of customers whose first subscription ever started this month',
    expansion_mrr_usd = 'MRR gained from customers who pay more than at the previous month''s end (upgrades)',
    contraction_mrr_usd = 'MRR lost from customers who still pay, but less (downgrades, a switch to a cheaper cycle)',
    churned_mrr_usd = 'MRR of customers who paid at the previous month''s end and no longer do (cancellations)',
    reactivated_mrr_usd = 'MRR of customers back from zero who had subscribed before',
    closing_mrr_usd = 'MRR at closing_as_of_date; paused subscriptions included (billing keeps charging them)',
    opening_subscriber_count = 'Customers paying at the end of the previous month',
    new_subscriber_count = 'Customers counted in new_mrr_usd',
    expansion_subscriber_count = 'Customers counted in expansion_mrr_usd',
    contraction_subscriber_count = 'Customers counted in contraction_mrr_usd',
    churned_subscriber_count = 'Customers counted in churned_mrr_usd',
    reactivated_subscriber_count = 'Customers counted in reactivated_mrr_usd',
    closing_subscriber_count = 'Customers paying at closing_as_of_date'
  )
);

WITH subscriptions AS (
  SELECT customer_id, monthly_recurring_usd, start_date, end_date
  FROM core.fct_subscriptions
  WHERE start_date <= @business_date()
), first_months AS (
  SELECT customer_id, CAST(DATE_TRUNC('MONTH', MIN(start_date)) AS DATE) AS first_month
  FROM subscriptions
  GROUP BY customer_id
), calendar AS (
  SELECT month_start, MAX(date_day) AS month_end
  FROM core.dim_time
  GROUP BY month_start
), months AS (
  SELECT
    month_start AS mrr_month,
    month_end <= @business_date() AS is_complete_month,
    LEAST(month_end, @business_date()) AS closing_as_of_date
  FROM calendar
  WHERE
    month_start >= (SELECT MIN(first_month) FROM first_months)
    AND month_start <= @business_date()
), customer_mrr AS (
  /* each customer's MRR at each month's close, where it is not zero */
  SELECT
    s.customer_id,
    m.mrr_month,
    SUM(s.monthly_recurring_usd) AS mrr_usd
  FROM subscriptions AS s
  JOIN months AS m
    ON s.start_date <= m.closing_as_of_date
    AND (s.end_date IS NULL OR s.end_date > m.closing_as_of_date)
  GROUP BY s.customer_id, m.mrr_month
), changes AS (
  SELECT
    COALESCE(cur.customer_id, prev.customer_id) AS customer_id,
    COALESCE(cur.mrr_month, @add_months(prev.mrr_month, 1)) AS mrr_month,
    COALESCE(prev.mrr_usd, 0) AS opening_usd,
    COALESCE(cur.mrr_usd, 0) AS closing_usd
  FROM customer_mrr AS cur
  FULL OUTER JOIN customer_mrr AS prev
    ON prev.customer_id = cur.customer_id AND @add_months(prev.mrr_month, 1) = cur.mrr_month
), movements AS (
  SELECT
    c.mrr_month,
    c.opening_usd,
    c.closing_usd,
    CASE WHEN c.opening_usd = 0 AND c.closing_usd > 0 AND f.first_month = c.mrr_month THEN c.closing_usd ELSE 0 END AS new_usd,
    CASE WHEN c.opening_usd = 0 AND c.closing_usd > 0 AND f.first_month < c.mrr_month THEN c.closing_usd ELSE 0 END AS reactivated_usd,
    CASE WHEN c.opening_usd > 0 AND c.closing_usd > c.opening_usd THEN c.closing_usd - c.opening_usd ELSE 0 END AS expansion_usd,
    CASE
      WHEN c.opening_usd > 0 AND c.closing_usd > 0 AND c.closing_usd < c.opening_usd
      THEN c.opening_usd - c.closing_usd
      ELSE 0
    END AS contraction_usd,
    CASE WHEN c.opening_usd > 0 AND c.closing_usd = 0 THEN c.opening_usd ELSE 0 END AS churned_usd
  FROM changes AS c
  JOIN first_months AS f
    ON f.customer_id = c.customer_id
), monthly AS (
  SELECT
    mrr_month,
    SUM(opening_usd) AS opening_usd,
    SUM(new_usd) AS new_usd,
    SUM(expansion_usd) AS expansion_usd,
    SUM(contraction_usd) AS contraction_usd,
    SUM(churned_usd) AS churned_usd,
    SUM(reactivated_usd) AS reactivated_usd,
    SUM(closing_usd) AS closing_usd,
    SUM(CASE WHEN opening_usd > 0 THEN 1 ELSE 0 END) AS opening_count,
    SUM(CASE WHEN new_usd > 0 THEN 1 ELSE 0 END) AS new_count,
    SUM(CASE WHEN expansion_usd > 0 THEN 1 ELSE 0 END) AS expansion_count,
    SUM(CASE WHEN contraction_usd > 0 THEN 1 ELSE 0 END) AS contraction_count,
    SUM(CASE WHEN churned_usd > 0 THEN 1 ELSE 0 END) AS churned_count,
    SUM(CASE WHEN reactivated_usd > 0 THEN 1 ELSE 0 END) AS reactivated_count,
    SUM(CASE WHEN closing_usd > 0 THEN 1 ELSE 0 END) AS closing_count
  FROM movements
  GROUP BY mrr_month
)
SELECT
  m.mrr_month,
  m.is_complete_month,
  m.closing_as_of_date,
  CAST(COALESCE(x.opening_usd, 0) AS DECIMAL(14, 2)) AS opening_mrr_usd,
  CAST(COALESCE(x.new_usd, 0) AS DECIMAL(14, 2)) AS new_mrr_usd,
  CAST(COALESCE(x.expansion_usd, 0) AS DECIMAL(14, 2)) AS expansion_mrr_usd,
  CAST(COALESCE(x.contraction_usd, 0) AS DECIMAL(14, 2)) AS contraction_mrr_usd,
  CAST(COALESCE(x.churned_usd, 0) AS DECIMAL(14, 2)) AS churned_mrr_usd,
  CAST(COALESCE(x.reactivated_usd, 0) AS DECIMAL(14, 2)) AS reactivated_mrr_usd,
  CAST(COALESCE(x.closing_usd, 0) AS DECIMAL(14, 2)) AS closing_mrr_usd,
  COALESCE(x.opening_count, 0) AS opening_subscriber_count,
  COALESCE(x.new_count, 0) AS new_subscriber_count,
  COALESCE(x.expansion_count, 0) AS expansion_subscriber_count,
  COALESCE(x.contraction_count, 0) AS contraction_subscriber_count,
  COALESCE(x.churned_count, 0) AS churned_subscriber_count,
  COALESCE(x.reactivated_count, 0) AS reactivated_subscriber_count,
  COALESCE(x.closing_count, 0) AS closing_subscriber_count
FROM months AS m
LEFT JOIN monthly AS x
  ON x.mrr_month = m.mrr_month
