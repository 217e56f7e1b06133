/* Customer profiles from the CRM, typed and normalised: names and city trimmed, email lower
   case, gender and country in their canonical form. A later delivery of a customer (a profile
   change) replaces the earlier one, so this is the current profile per customer; dim_customers
   keeps the history. Grain: one row per customer_id. */
MODEL (
  name staging.stg_customers,
  kind INCREMENTAL_BY_UNIQUE_KEY (
    unique_key customer_id
  ),
  grain customer_id,
  tags [staging],
  audits (unique_values(columns := (customer_id)), not_null(columns := (customer_id, signed_up_at))),
  description 'Current customer profile from the CRM export; latest delivery wins.',
  column_descriptions (
    customer_id = 'Customer identifier (primary key)',
    first_name = 'First name, trimmed',
    last_name = 'Last name, trimmed',
    email = 'Email address, trimmed and lower case',
    gender = 'M, F, Other or Unknown',
    birth_date = 'Date of birth',
    signed_up_at = 'Account creation time (UTC)',
    city = 'City of the latest profile address',
    country_code = 'ISO-3166 alpha-2 country code, upper case',
    is_marketing_opt_in = 'Consent to marketing (GDPR/CCPA)',
    loaded_batch_date = 'Business date of the batch that delivered this version',
    loaded_at = 'When the loader stored the delivery'
  )
);

SELECT
  CAST(TRIM(customer_id) AS TEXT) AS customer_id,
  CAST(TRIM(first_name) AS TEXT) AS first_name,
  CAST(TRIM(last_name) AS TEXT) AS last_name,
  CAST(LOWER(TRIM(email)) AS TEXT) AS email,
  CAST(
    CASE @clean_enum(gender)
      WHEN 'm' THEN 'M'
      WHEN 'f' THEN 'F'
      WHEN 'other' THEN 'Other'
      ELSE 'Unknown'
    END AS TEXT
  ) AS gender,
  CAST(date_of_birth AS DATE) AS birth_date,
  CAST(signup_datetime AS TIMESTAMP) AS signed_up_at,
  CAST(TRIM(city) AS TEXT) AS city,
  CAST(UPPER(TRIM(country)) AS TEXT) AS country_code,
  CAST(marketing_opt_in AS BOOLEAN) AS is_marketing_opt_in,
  CAST(_batch_date AS DATE) AS loaded_batch_date,
  CAST(_loaded_at AS TIMESTAMP) AS loaded_at
FROM @latest_deliveries(raw.customers, _batch_date BETWEEN @start_ds AND @end_ds, customer_id) AS r
