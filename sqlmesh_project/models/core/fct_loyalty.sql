/* Loyalty points events per customer and day: points earned by orders, taken back by refunds,
   redeemed, and any other adjustment, reconstructed from the balance snapshots and the orders'
   points. Processed by day with a 7-day lookback. Grain: one row per customer_id and event_date. */
MODEL (
  name core.fct_loyalty,
  kind INCREMENTAL_BY_TIME_RANGE (
    time_column event_date,
    lookback 7
  ),
  grain (customer_id, event_date),
  tags [core, fact],
  audits (
    unique_combination_of_columns(columns := (customer_id, event_date)),
    not_null(columns := (customer_id, event_date, points_balance)),
    accepted_range(column := points_balance, min_v := 0)
  ),
  description 'Points earned, refunded, redeemed and adjusted per customer and day.',
  column_descriptions (
    customer_id = 'Loyalty member',
    event_date = 'Day the balance changed',
    points_balance = 'Balance at the end of the day',
    loyalty_tier = 'Tier at the end of the day',
    points_change = 'Balance change against the previous snapshot',
    points_earned = 'Points granted by that day''s orders',
    points_refunded = 'Points taken back by that day''s refunds (negative)',
    points_redeemed = 'Points spent on rewards (positive)',
    points_adjusted = 'Any change the orders and redemptions do not explain',
    source = 'What changed the balance: order, refund, redemption, or adjustment'
  )
);

WITH snapshots AS (
  SELECT
    customer_id,
    snapshot_date,
    points_balance,
    loyalty_tier,
    points_balance - COALESCE(LAG(points_balance) OVER (PARTITION BY customer_id ORDER BY snapshot_date), 0) AS points_change
  FROM staging.stg_loyalty_balances
  WHERE customer_id IN (
    SELECT customer_id FROM staging.stg_loyalty_balances WHERE snapshot_date BETWEEN @start_ds AND @end_ds
  )
), order_points AS (
  SELECT
    customer_id,
    order_date,
    SUM(CASE WHEN loyalty_points_earned > 0 THEN loyalty_points_earned ELSE 0 END) AS points_earned,
    SUM(CASE WHEN loyalty_points_earned < 0 THEN loyalty_points_earned ELSE 0 END) AS points_refunded
  FROM staging.stg_orders
  WHERE order_date BETWEEN @start_ds AND @end_ds
  GROUP BY customer_id, order_date
), combined AS (
  SELECT
    s.customer_id,
    s.snapshot_date AS event_date,
    s.points_balance,
    s.loyalty_tier,
    s.points_change,
    COALESCE(o.points_earned, 0) AS points_earned,
    COALESCE(o.points_refunded, 0) AS points_refunded
  FROM snapshots AS s
  LEFT JOIN order_points AS o
    ON o.customer_id = s.customer_id AND o.order_date = s.snapshot_date
  WHERE s.snapshot_date BETWEEN @start_ds AND @end_ds
)
SELECT
  c.customer_id,
  c.event_date,
  c.points_balance,
  c.loyalty_tier,
  c.points_change,
  c.points_earned,
  c.points_refunded,
  GREATEST(c.points_earned + c.points_refunded - c.points_change, 0) AS points_redeemed,
  c.points_change - c.points_earned - c.points_refunded + GREATEST(c.points_earned + c.points_refunded - c.points_change, 0) AS points_adjusted,
  CASE
    WHEN c.points_earned + c.points_refunded - c.points_change > 0 THEN 'redemption'
    WHEN c.points_refunded < 0 AND c.points_earned = 0 THEN 'refund'
    WHEN c.points_earned > 0 THEN 'order'
    ELSE 'adjustment'
  END AS source
FROM combined AS c
JOIN core.dim_customers AS d
  ON d.customer_id = c.customer_id AND d.valid_to IS NULL
