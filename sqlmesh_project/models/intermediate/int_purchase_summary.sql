/* The BTYD purchase summary of every customer (@purchase_summary, macros/features.py) at two
   as-of dates: the business date, on which BG/NBD and Gamma-Gamma are fitted and score
   (int_clv_model_fit, int_clv_predictions), and the churn model's training cutoff, the business
   date minus churn_label_window_days, where int_churn_model refits them for P(alive). The Python
   models only read these rows; the summary is written once, in the macro int_customer_clv calls
   too. Grain: one row per as_of_date and customer_id. */
MODEL (
  name intermediate.int_purchase_summary,
  kind FULL,
  grain (as_of_date, customer_id),
  tags [intermediate],
  audits (
    unique_combination_of_columns(columns := (as_of_date, customer_id)),
    not_null(columns := (as_of_date, customer_id, frequency, recency, age, has_purchased, refund_share))
  ),
  description 'BTYD purchase summary per customer on the business date and on the churn training cutoff.',
  column_descriptions (
    as_of_date = 'The business date, or the churn training cutoff (business date - churn_label_window_days)',
    customer_id = 'Customer identifier (signed up by as_of_date)',
    frequency = 'Repeat purchase days up to as_of_date',
    recency = 'Time from the first to the last purchase day (unit: clv_time_unit)',
    age = 'T: time from the first purchase day, or from signup without one, to as_of_date (unit: clv_time_unit)',
    monetary_value = 'Mean order value of the repeat purchase days; null without repeats',
    has_purchased = 'At least one purchase by as_of_date',
    last_purchase_date = 'Last day with an order up to as_of_date',
    refund_share = 'Refunds / order revenue of all customers up to as_of_date (the same on every row of a date)'
  )
);

WITH on_business_date AS (
  SELECT
    @business_date() AS as_of_date,
    s.*,
    @refund_share(core.fct_revenue, @business_date()) AS refund_share
  FROM @purchase_summary(core.fct_revenue, core.dim_customers, @business_date(), @VAR('clv_time_unit')) AS s
), on_training_cutoff AS (
  SELECT
    @churn_training_cutoff(@business_date()) AS as_of_date,
    s.*,
    @refund_share(core.fct_revenue, @churn_training_cutoff(@business_date())) AS refund_share
  FROM @purchase_summary(
    core.fct_revenue,
    core.dim_customers,
    @churn_training_cutoff(@business_date()),
    @VAR('clv_time_unit')
  ) AS s
), both_dates AS (
  SELECT * FROM on_business_date
  UNION ALL
  SELECT * FROM on_training_cutoff
)
SELECT
  CAST(as_of_date AS DATE) AS as_of_date,
  customer_id,
  CAST(frequency AS BIGINT) AS frequency,
  CAST(recency AS DOUBLE) AS recency,
  CAST(age AS DOUBLE) AS age,
  CAST(monetary_value AS DOUBLE) AS monetary_value,
  has_purchased,
  last_purchase_date,
  CAST(refund_share AS DOUBLE) AS refund_share
FROM both_dates
