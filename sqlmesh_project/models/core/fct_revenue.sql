/* Every revenue event: order lines, refunds (negative) and subscription charges. Charges are
   derived from the subscription periods and plan prices: one charge at the start and at every
   billing cycle after it, until the subscription ends (billing exports carry no pause history,
   so a paused subscription keeps being charged). Rows of customers the CRM does not know are
   left out (soft filter; the staging checks count them). Processed by event date with a
   lookback that covers the sources' maximum lateness (7 days).
   Grain: one row per revenue_event_id. */
MODEL (
  name core.fct_revenue,
  kind INCREMENTAL_BY_TIME_RANGE (
    time_column revenue_date,
    lookback 7
  ),
  grain revenue_event_id,
  tags [core, fact],
  audits (
    unique_across_intervals(column := revenue_event_id, model := core.fct_revenue),
    not_null(columns := (revenue_event_id, customer_id, revenue_date, revenue_usd, revenue_type)),
    accepted_values(column := revenue_type, is_in := ('order', 'subscription', 'refund')),
    revenue_sign_matches_type
  ),
  description 'Revenue events: orders, subscription charges and refunds.',
  column_descriptions (
    revenue_event_id = 'order_id for orders and refunds; subscription_id and charge date for charges',
    customer_id = 'Customer charged or refunded',
    revenue_at = 'Event time (UTC); charges at midnight of the charge date',
    revenue_date = 'Event date',
    revenue_type = 'order, subscription or refund',
    revenue_usd = 'Amount; negative for refunds',
    product_id = 'Product, for orders and refunds',
    product_category = 'Category, for orders and refunds',
    quantity = 'Units, for orders and refunds',
    subscription_id = 'Subscription, for charges',
    plan_id = 'Plan, for charges',
    device_type = 'Ordering device, for orders and refunds',
    order_channel = 'Ordering channel, for orders and refunds'
  )
);

WITH customers AS (
  SELECT customer_id FROM core.dim_customers WHERE valid_to IS NULL
), order_lines AS (
  SELECT
    o.order_id AS revenue_event_id,
    o.customer_id,
    o.ordered_at AS revenue_at,
    o.order_date AS revenue_date,
    CASE WHEN o.is_refund THEN 'refund' ELSE 'order' END AS revenue_type,
    CAST(o.line_amount_usd AS DECIMAL(12, 2)) AS revenue_usd,
    o.product_id,
    o.product_category,
    o.quantity,
    CAST(NULL AS TEXT) AS subscription_id,
    CAST(NULL AS TEXT) AS plan_id,
    o.device_type,
    o.order_channel
  FROM staging.stg_orders AS o
  WHERE o.order_date BETWEEN @start_ds AND @end_ds
), cycles AS (
  SELECT
    s.subscription_id,
    s.customer_id,
    s.plan_id,
    s.start_date,
    s.end_date,
    p.billing_months,
    p.list_price_usd,
    UNNEST(GENERATE_SERIES(0, @calendar_diff(MONTH, s.start_date, CAST(@end_ds AS DATE)) // p.billing_months)) AS cycle
  FROM staging.stg_subscriptions AS s
  JOIN core.dim_plans AS p
    ON p.plan_id = s.plan_id
  WHERE s.start_date <= CAST(@end_ds AS DATE)
), charges AS (
  SELECT
    subscription_id || ':' || STRFTIME(charge_date, '%Y-%m-%d') AS revenue_event_id,
    customer_id,
    CAST(charge_date AS TIMESTAMP) AS revenue_at,
    charge_date AS revenue_date,
    'subscription' AS revenue_type,
    CAST(list_price_usd AS DECIMAL(12, 2)) AS revenue_usd,
    CAST(NULL AS TEXT) AS product_id,
    CAST(NULL AS TEXT) AS product_category,
    CAST(NULL AS INT) AS quantity,
    subscription_id,
    plan_id,
    CAST(NULL AS TEXT) AS device_type,
    CAST(NULL AS TEXT) AS order_channel
  FROM (
    SELECT *, @add_months(start_date, cycle * billing_months) AS charge_date FROM cycles
  ) AS c
  WHERE
    charge_date BETWEEN @start_ds AND @end_ds AND (end_date IS NULL OR charge_date < end_date)
), events AS (
  SELECT * FROM order_lines
  UNION ALL
  SELECT * FROM charges
)
SELECT
  e.revenue_event_id,
  e.customer_id,
  e.revenue_at,
  e.revenue_date,
  e.revenue_type,
  e.revenue_usd,
  e.product_id,
  e.product_category,
  e.quantity,
  e.subscription_id,
  e.plan_id,
  e.device_type,
  e.order_channel
FROM events AS e
JOIN customers AS c
  ON c.customer_id = e.customer_id
