/* Order lines and refunds from the e-commerce API. A refund is a line with a negative quantity
   whose id is the refunded line's id plus "-R". Duplicated or replayed lines collapse to one.
   Soft filters: none; a line whose customer is unknown is kept (checks downstream count them).
   Grain: one row per order_id. */
MODEL (
  name staging.stg_orders,
  kind INCREMENTAL_BY_UNIQUE_KEY (
    unique_key order_id
  ),
  grain order_id,
  tags [staging],
  audits (unique_values(columns := (order_id)), not_null(columns := (order_id, customer_id, ordered_at))),
  description 'Order lines and refunds, typed and de-duplicated.',
  column_descriptions (
    order_id = 'Order line identifier (primary key); refunds end in -R',
    customer_id = 'Customer who placed the order',
    ordered_at = 'Event time of the order or refund (UTC)',
    order_date = 'Calendar date of ordered_at',
    product_id = 'Product identifier',
    product_category = 'Normalised product category, lower case',
    quantity = 'Units; negative on refunds',
    unit_price_usd = 'Price per unit at transaction time, USD',
    line_amount_usd = 'quantity x unit_price_usd: negative on refunds',
    is_refund = 'True for refund lines (negative quantity)',
    device_type = 'web, ios or android',
    order_channel = 'site, app or phone',
    ship_city = 'Shipping city',
    ship_country_code = 'Shipping country, ISO-3166 alpha-2',
    loyalty_points_earned = 'Points granted (negative when a refund takes them back)',
    loaded_batch_date = 'Business date of the batch that delivered the row',
    loaded_at = 'When the loader stored the delivery'
  )
);

SELECT
  CAST(TRIM(order_id) AS TEXT) AS order_id,
  CAST(TRIM(customer_id) AS TEXT) AS customer_id,
  CAST(order_datetime AS TIMESTAMP) AS ordered_at,
  CAST(order_datetime AS DATE) AS order_date,
  CAST(TRIM(product_id) AS TEXT) AS product_id,
  CAST(@clean_enum(product_category) AS TEXT) AS product_category,
  CAST(quantity AS INT) AS quantity,
  CAST(unit_price_usd AS DECIMAL(10, 2)) AS unit_price_usd,
  CAST(quantity * unit_price_usd AS DECIMAL(12, 2)) AS line_amount_usd,
  CAST(quantity < 0 AS BOOLEAN) AS is_refund,
  CAST(@clean_enum(device_type) AS TEXT) AS device_type,
  CAST(@clean_enum(order_channel) AS TEXT) AS order_channel,
  CAST(TRIM(city) AS TEXT) AS ship_city,
  CAST(UPPER(TRIM(country)) AS TEXT) AS ship_country_code,
  CAST(loyalty_points_earned AS INT) AS loyalty_points_earned,
  CAST(_batch_date AS DATE) AS loaded_batch_date,
  CAST(_loaded_at AS TIMESTAMP) AS loaded_at
FROM @latest_deliveries(raw.orders, _batch_date BETWEEN @start_ds AND @end_ds, order_id) AS r
