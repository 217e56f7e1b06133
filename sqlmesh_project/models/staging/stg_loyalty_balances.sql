/* End-of-day loyalty balances, delivered whenever a balance changes. Grain: one row per
   customer_id and snapshot_date. */
MODEL (
  name staging.stg_loyalty_balances,
  kind INCREMENTAL_BY_UNIQUE_KEY (
    unique_key (customer_id, snapshot_date)
  ),
  grain (customer_id, snapshot_date),
  tags [staging],
  audits (
    unique_combination_of_columns(columns := (customer_id, snapshot_date)),
    not_null(columns := (customer_id, snapshot_date))
  ),
  description 'Loyalty balance snapshots, one per customer and day the balance changed.',
  column_descriptions (
    customer_id = 'Customer the balance belongs to',
    snapshot_date = 'Day of the end-of-day snapshot',
    points_balance = 'Points balance at the end of the day',
    loyalty_tier = 'Bronze, Silver, Gold or Platinum',
    loaded_batch_date = 'Business date of the batch that delivered the row',
    loaded_at = 'When the loader stored the delivery'
  )
);

SELECT
  CAST(TRIM(customer_id) AS TEXT) AS customer_id,
  CAST(snapshot_date AS DATE) AS snapshot_date,
  CAST(points_balance AS INT) AS points_balance,
  CAST(
    CASE @clean_enum(loyalty_tier)
      WHEN 'bronze' THEN 'Bronze'
      WHEN 'silver' THEN 'Silver'
      WHEN 'gold' THEN 'Gold'
      WHEN 'platinum' THEN 'Platinum'
    END AS TEXT
  ) AS loyalty_tier,
  CAST(_batch_date AS DATE) AS loaded_batch_date,
  CAST(_loaded_at AS TIMESTAMP) AS loaded_at
FROM @latest_deliveries(raw.loyalty_balances, _batch_date BETWEEN @start_ds AND @end_ds, customer_id, snapshot_date) AS r
