/* Credit-bureau profiles: annual income and credit score as of an effective date. Each
   (customer, effective date) is one observation; a redelivery replaces it. Grain: one row per
   customer_id and profile_effective_date. */
MODEL (
  name staging.stg_financial_profiles,
  kind INCREMENTAL_BY_UNIQUE_KEY (
    unique_key (customer_id, profile_effective_date)
  ),
  grain (customer_id, profile_effective_date),
  tags [staging],
  audits (
    unique_combination_of_columns(columns := (customer_id, profile_effective_date)),
    not_null(columns := (customer_id, profile_effective_date))
  ),
  description 'Financial profiles from the credit bureau, one per customer and effective date.',
  column_descriptions (
    customer_id = 'Customer the profile belongs to',
    profile_effective_date = 'Date the bureau fetched the score and income',
    income_usd = 'Annual income, self-reported, USD',
    credit_score = 'Credit score, 300-850',
    loaded_batch_date = 'Business date of the batch that delivered the row',
    loaded_at = 'When the loader stored the delivery'
  )
);

SELECT
  CAST(TRIM(customer_id) AS TEXT) AS customer_id,
  CAST(profile_effective_date AS DATE) AS profile_effective_date,
  CAST(income_usd AS DECIMAL(12, 2)) AS income_usd,
  CAST(credit_score AS INT) AS credit_score,
  CAST(_batch_date AS DATE) AS loaded_batch_date,
  CAST(_loaded_at AS TIMESTAMP) AS loaded_at
FROM @latest_deliveries(raw.financial_profiles, _batch_date BETWEEN @start_ds AND @end_ds, customer_id, profile_effective_date) AS r
