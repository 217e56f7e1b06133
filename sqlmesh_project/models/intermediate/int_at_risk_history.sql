/* Who was at risk on each business date, so the dashboard can say what changed since the
   previous one (newly at risk, recovered, moved to the win-back pool). At risk = still reachable
   with a churn risk band above low (@is_at_risk, macros/risk.py). Only the ids are kept: a few
   percent of the customers a day. Each daily run adds the day it processes, as it was known that
   day, and nothing else: the intervals of a first build or a backfill before the business date
   stay empty (the past's state was never recorded), so the model is forward-only and never
   restated, and tagged as_known: a restatement of late loads leaves it alone (clv/transform.py).
   Grain: one row per business_date and customer_id. */
MODEL (
  name intermediate.int_at_risk_history,
  kind INCREMENTAL_BY_TIME_RANGE (
    time_column business_date,
    forward_only TRUE,
    disable_restatement TRUE
  ),
  grain (business_date, customer_id),
  tags [intermediate, as_known],
  audits (
    unique_combination_of_columns(columns := (business_date, customer_id)),
    not_null(columns := (business_date, customer_id))
  ),
  description 'Customers at risk (reachable, churn risk band above low) on each business date, as known that day.',
  column_descriptions (
    business_date = 'Business date of the run that recorded the row',
    customer_id = 'A customer at risk on that date'
  )
);

SELECT
  @business_date() AS business_date,
  r.customer_id
FROM intermediate.int_revenue_risk AS r
WHERE
  @is_at_risk(r.is_reachable, r.churn_probability)
  AND @business_date() BETWEEN @start_ds AND @end_ds
