/* The customer master with its history: a new version whenever a tracked profile attribute
   changes (address, email, marketing consent), built by SQLMesh's SCD type 2 kind from the
   current profiles in staging. Validity follows the business date, not the wall clock: a run for
   business date D has execution time D + 1 day, so a change delivered on D opens a version valid
   from D + 1 00:00 and closes the previous one at the same instant. The versions the warehouse
   starts with are valid from 1970-01-01. valid_to is null for the current version.
   Grain: one row per customer_id and valid_from. */
MODEL (
  name core.dim_customers,
  kind SCD_TYPE_2_BY_COLUMN (
    unique_key customer_id,
    columns [first_name, last_name, email, city, country_code, is_marketing_opt_in],
    valid_from_name valid_from,
    valid_to_name valid_to,
    execution_time_as_valid_from TRUE,
    invalidate_hard_deletes FALSE,
    time_data_type TIMESTAMP,
    forward_only TRUE,
    disable_restatement TRUE
  ),
  grain (customer_id, valid_from),
  tags [core, dimension],
  audits (
    unique_combination_of_columns(columns := (customer_id, valid_from)),
    not_null(columns := (customer_id, valid_from, signed_up_at)),
    unique_values(columns := (customer_id), condition := valid_to IS NULL),
    scd2_every_key_current(key := customer_id),
    scd2_versions_do_not_overlap(key := customer_id)
  ),
  description 'Customer master, SCD type 2 on address, email and marketing consent.',
  column_descriptions (
    customer_id = 'Customer identifier',
    first_name = 'First name',
    last_name = 'Last name',
    email = 'Email address',
    gender = 'M, F, Other or Unknown',
    birth_date = 'Date of birth',
    signed_up_at = 'Account creation time (UTC)',
    signup_date = 'Date of account creation',
    city = 'City of the profile address',
    country_code = 'ISO-3166 alpha-2 country of the profile address',
    is_marketing_opt_in = 'Consent to marketing',
    valid_from = 'Start of this version (inclusive)',
    valid_to = 'End of this version (exclusive); null for the current version'
  )
);

SELECT
  customer_id,
  first_name,
  last_name,
  email,
  gender,
  birth_date,
  signed_up_at,
  CAST(signed_up_at AS DATE) AS signup_date,
  city,
  country_code,
  is_marketing_opt_in
FROM staging.stg_customers
