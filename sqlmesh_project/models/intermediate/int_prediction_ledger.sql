/* The prediction ledger: what each daily run predicted for every customer on its business date,
   kept so that int_model_performance can score it once the horizon has passed (90 days; 365 for
   the 12-month values) against what the customers then did, from the warehouse alone.
   The ledger is history, not a view of today: it is INCREMENTAL_BY_TIME_RANGE on business_date,
   forward_only (a model change never rebuilds it), disable_restatement, and tagged as_known: a
   restatement of late loads (clv.transform.restate_late_loads) never clears an earlier date
   than the run's own, so no past business date is re-evaluated. Each interval writes only the
   run's own business date: the FULL models it reads hold the predictions of that date alone, so
   a catch-up run over several days records the day it predicts and no invented past.
   Compact by design: the probabilities and values as REAL (4 bytes, 7 significant digits), the
   model versions as repeated text DuckDB stores once per row group; the 90-day values of both
   models are kept (derivable, but the scores must not depend on re-deriving them).
   Grain: one row per business_date and customer_id. */
MODEL (
  name intermediate.int_prediction_ledger,
  kind INCREMENTAL_BY_TIME_RANGE (
    time_column business_date,
    forward_only TRUE,
    disable_restatement TRUE
  ),
  grain (business_date, customer_id),
  tags [intermediate, ledger, as_known],
  audits (
    unique_combination_of_columns(columns := (business_date, customer_id)),
    not_null(
      columns := (business_date, customer_id, has_purchased, churn_probability, p_alive, p_purchase_90d, predicted_order_value_90d_usd, predicted_order_value_12m_usd, purchase_model, churn_model)
    ),
    accepted_range(column := churn_probability, min_v := 0, max_v := 1),
    accepted_range(column := p_purchase_90d, min_v := 0, max_v := 1)
  ),
  description 'Per customer and business date: the churn probability, P(alive), purchases and values the run predicted, with the model versions.',
  column_descriptions (
    business_date = 'Business date the prediction was made on (features and fits as of that date)',
    customer_id = 'Customer identifier',
    has_purchased = 'At least one purchase by business_date (the purchase models describe customers from their first purchase)',
    churn_probability = 'Churn model: probability the customer has already left (int_churn_scoring)',
    p_alive = 'Purchase model: P(alive) (int_clv_predictions)',
    p_purchase_90d = 'Purchase model: P(at least one purchase in the next 90 days)',
    expected_purchases_90d = 'Purchase model: expected purchase days in the next 90 days',
    expected_purchases_365d = 'Purchase model: expected purchase days in the next 365 days',
    predicted_order_value_90d_usd = 'Churn model x purchase model: (1 - churn_probability) x expected orders in 90 days if active x spend',
    bgnbd_order_value_90d_usd = 'Purchase model alone: expected_purchases_90d x expected net spend per purchase (the baseline)',
    predicted_order_value_12m_usd = 'Orders: (1 - churn_probability) x R, as int_revenue_risk',
    predicted_subscription_value_90d_usd = 'Subscriptions: expected charges in the next 90 days (sBG renewal model)',
    predicted_subscription_value_12m_usd = 'Subscriptions: expected charges over the next 12 months (discounted like the order part)',
    purchase_model = 'Purchase model of the predictions (bgnbd or pareto_nbd)',
    clv_fit_date = 'Business date of the purchase model fit (int_clv_model_fit): the fit id with purchase_model',
    churn_model = 'Churn model name and version',
    churn_trained_as_of = 'Training cutoff of the churn model (int_churn_model): the fit id with churn_model'
  )
);

WITH fit AS (
  SELECT
    MAX(business_date) AS clv_fit_date,
    MAX(purchase_model) AS purchase_model
  FROM intermediate.int_clv_model_fit
), churn_fit AS (
  SELECT
    MAX(churn_model) AS churn_model,
    MAX(trained_as_of) AS churn_trained_as_of
  FROM intermediate.int_churn_model
), predictions AS (
  SELECT
    customer_id,
    p_alive,
    p_purchase_90d,
    expected_purchases_90d,
    expected_purchases_365d,
    expected_spend_per_purchase_usd
  FROM intermediate.int_clv_predictions
), risk AS (
  SELECT
    customer_id,
    churn_probability,
    predicted_order_value_12m_usd,
    predicted_subscription_value_12m_usd
  FROM intermediate.int_revenue_risk
), purchased AS (
  SELECT
    customer_id,
    has_purchased
  FROM intermediate.int_purchase_summary
  WHERE
    as_of_date = @business_date()
), subscriptions AS (
  SELECT
    customer_id,
    expected_subscription_revenue_90d_usd
  FROM intermediate.int_subscription_value
)
SELECT
  @business_date() AS business_date,
  p.customer_id,
  COALESCE(b.has_purchased, FALSE) AS has_purchased,
  CAST(r.churn_probability AS REAL) AS churn_probability,
  CAST(p.p_alive AS REAL) AS p_alive,
  CAST(p.p_purchase_90d AS REAL) AS p_purchase_90d,
  CAST(p.expected_purchases_90d AS REAL) AS expected_purchases_90d,
  CAST(p.expected_purchases_365d AS REAL) AS expected_purchases_365d,
  CAST(
    COALESCE(
      (1 - r.churn_probability) * p.expected_purchases_90d / NULLIF(p.p_alive, 0) * p.expected_spend_per_purchase_usd,
      0
    ) AS REAL
  ) AS predicted_order_value_90d_usd,
  CAST(p.expected_purchases_90d * p.expected_spend_per_purchase_usd AS REAL) AS bgnbd_order_value_90d_usd,
  CAST(r.predicted_order_value_12m_usd AS REAL) AS predicted_order_value_12m_usd,
  CAST(COALESCE(s.expected_subscription_revenue_90d_usd, 0) AS REAL) AS predicted_subscription_value_90d_usd,
  CAST(r.predicted_subscription_value_12m_usd AS REAL) AS predicted_subscription_value_12m_usd,
  f.purchase_model,
  CAST(f.clv_fit_date AS DATE) AS clv_fit_date,
  c.churn_model,
  CAST(c.churn_trained_as_of AS DATE) AS churn_trained_as_of
FROM predictions AS p
JOIN risk AS r
  ON r.customer_id = p.customer_id
LEFT JOIN purchased AS b
  ON b.customer_id = p.customer_id
LEFT JOIN subscriptions AS s
  ON s.customer_id = p.customer_id
CROSS JOIN fit AS f
CROSS JOIN churn_fit AS c
WHERE
  @business_date() BETWEEN @start_ds AND @end_ds
