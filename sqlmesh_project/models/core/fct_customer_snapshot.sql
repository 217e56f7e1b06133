/* Each customer's state at the end of each business day: subscription and plan, loyalty
   balance, lifetime revenue, and whether they are active or churned. Like the SCD-2 history, the
   snapshots start when the warehouse starts: the first day is the first loaded batch's date, and
   each daily run adds the day it processes (state as of that batch). A snapshot records what was
   known that day, so the model is forward-only and never restated.
   Grain: one row per customer_id and snapshot_date. */
MODEL (
  name core.fct_customer_snapshot,
  kind INCREMENTAL_BY_TIME_RANGE (
    time_column snapshot_date,
    forward_only TRUE,
    disable_restatement TRUE
  ),
  grain (customer_id, snapshot_date),
  tags [core, fact],
  audits (
    unique_combination_of_columns(columns := (customer_id, snapshot_date)),
    not_null(columns := (customer_id, snapshot_date, subscription_status))
  ),
  description 'Daily customer state: status, plan, balance and active/churned flags.',
  column_descriptions (
    snapshot_date = 'Business day of the snapshot (end of day)',
    customer_id = 'Customer identifier',
    subscription_status = 'active, paused, cancelled or none (latest subscription)',
    plan_id = 'Plan of the latest subscription',
    points_balance = 'Loyalty balance at the end of the day',
    lifetime_revenue_usd = 'Net revenue up to and including the day',
    last_activity_date = 'Last purchase or session up to the day',
    is_active = 'Purchased or visited within the active window (90 days)',
    is_churned = 'No purchase or visit within the dormant window (180 days)'
  )
);

WITH days AS (
  SELECT date_day AS snapshot_date
  FROM core.dim_time
  WHERE
    date_day BETWEEN @start_ds AND @end_ds
    AND date_day >= (SELECT MIN(loaded_batch_date) FROM staging.stg_customers)
), customers AS (
  SELECT customer_id, signup_date FROM core.dim_customers WHERE valid_to IS NULL
), subscriptions AS (
  SELECT customer_id, status, plan_id
  FROM staging.stg_subscriptions
  QUALIFY ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY start_date DESC, subscription_id DESC) = 1
), grid AS (
  SELECT d.snapshot_date, c.customer_id, c.signup_date
  FROM days AS d
  JOIN customers AS c
    ON c.signup_date <= d.snapshot_date
), balances AS (
  SELECT g.snapshot_date, g.customer_id, MAX_BY(l.points_balance, l.snapshot_date) AS points_balance
  FROM grid AS g
  JOIN staging.stg_loyalty_balances AS l
    ON l.customer_id = g.customer_id AND l.snapshot_date <= g.snapshot_date
  GROUP BY g.snapshot_date, g.customer_id
), revenue AS (
  SELECT g.snapshot_date, g.customer_id, SUM(r.revenue_usd) AS lifetime_revenue_usd, MAX(r.revenue_date) AS last_purchase_date
  FROM grid AS g
  JOIN core.fct_revenue AS r
    ON r.customer_id = g.customer_id AND r.revenue_date <= g.snapshot_date
  GROUP BY g.snapshot_date, g.customer_id
), sessions AS (
  SELECT g.snapshot_date, g.customer_id, MAX(a.session_date) AS last_session_date
  FROM grid AS g
  JOIN core.fct_activity_logs AS a
    ON a.customer_id = g.customer_id AND a.session_date <= g.snapshot_date
  GROUP BY g.snapshot_date, g.customer_id
), state AS (
  SELECT
    g.snapshot_date,
    g.customer_id,
    COALESCE(s.status, 'none') AS subscription_status,
    s.plan_id,
    COALESCE(b.points_balance, 0) AS points_balance,
    CAST(COALESCE(r.lifetime_revenue_usd, 0) AS DECIMAL(14, 2)) AS lifetime_revenue_usd,
    GREATEST(COALESCE(r.last_purchase_date, g.signup_date), COALESCE(a.last_session_date, g.signup_date)) AS last_activity_date
  FROM grid AS g
  LEFT JOIN subscriptions AS s
    ON s.customer_id = g.customer_id
  LEFT JOIN balances AS b
    ON b.customer_id = g.customer_id AND b.snapshot_date = g.snapshot_date
  LEFT JOIN revenue AS r
    ON r.customer_id = g.customer_id AND r.snapshot_date = g.snapshot_date
  LEFT JOIN sessions AS a
    ON a.customer_id = g.customer_id AND a.snapshot_date = g.snapshot_date
)
SELECT
  snapshot_date,
  customer_id,
  subscription_status,
  plan_id,
  points_balance,
  lifetime_revenue_usd,
  last_activity_date,
  DATE_DIFF('DAY', last_activity_date, snapshot_date) <= @VAR('active_within_days') AS is_active,
  DATE_DIFF('DAY', last_activity_date, snapshot_date) > @VAR('dormant_within_days') AS is_churned
FROM state
