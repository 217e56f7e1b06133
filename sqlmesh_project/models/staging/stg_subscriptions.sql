/* Subscriptions from billing: the latest state of each subscription (a start, pause, resume or
   cancellation arrives as a new delivery of the same subscription_id). A plan change ends one
   subscription and starts another on the same day. Grain: one row per subscription_id. */
MODEL (
  name staging.stg_subscriptions,
  kind INCREMENTAL_BY_UNIQUE_KEY (
    unique_key subscription_id
  ),
  grain subscription_id,
  tags [staging],
  audits (unique_values(columns := (subscription_id)), not_null(columns := (subscription_id, customer_id))),
  description 'Current state of each subscription; latest delivery wins.',
  column_descriptions (
    subscription_id = 'Subscription identifier (primary key)',
    customer_id = 'Subscriber',
    plan_id = 'Pricing plan (seeds.plans)',
    plan_name = 'Plan name as billing shows it',
    status = 'active, cancelled or paused',
    start_date = 'Service start',
    end_date = 'Service end, when cancelled',
    renewal_date = 'Next scheduled renewal, while active',
    is_auto_renew = 'Renews automatically',
    loaded_batch_date = 'Business date of the batch that delivered this state',
    loaded_at = 'When the loader stored the delivery'
  )
);

SELECT
  CAST(TRIM(subscription_id) AS TEXT) AS subscription_id,
  CAST(TRIM(customer_id) AS TEXT) AS customer_id,
  CAST(UPPER(TRIM(plan_id)) AS TEXT) AS plan_id,
  CAST(TRIM(plan_name) AS TEXT) AS plan_name,
  CAST(@clean_enum(status) AS TEXT) AS status,
  CAST(start_date AS DATE) AS start_date,
  CAST(end_date AS DATE) AS end_date,
  CAST(renewal_date AS DATE) AS renewal_date,
  CAST(is_auto_renew AS BOOLEAN) AS is_auto_renew,
  CAST(_batch_date AS DATE) AS loaded_batch_date,
  CAST(_loaded_at AS TIMESTAMP) AS loaded_at
FROM @latest_deliveries(raw.subscriptions, _batch_date BETWEEN @start_ds AND @end_ds, subscription_id) AS r
