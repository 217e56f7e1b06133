/* The most valuable customers: value to date and expected over the next 12 months, with a value
   tier by the value at stake (Top 10%, High = next 20%, Medium = next 30%, Low = the rest). The
   value at stake is what the customer has been worth (net revenue to date) plus what they would
   bring over the next 12 months if retained (predicted_remaining_clv_usd), not the
   churn-discounted prediction: a valuable customer who is slipping stays in a high tier, which is
   what retention targets. predicted_clv_12m_usd keeps the churn-discounted expectation. Value is
   orders + subscriptions (int_revenue_risk), both parts kept as columns. How sure: an 80%
   predictive interval of the whole next 12 months (value_12m_p10/p50/p90_usd: orders by the
   purchase model with parameter uncertainty, plus the charges running subscriptions may pay by the
   renewal model), the order part's own interval (order_value_12m_p10/p50/p90_usd) and
   P(at least one purchase).
   Grain: one row per customer_id. */
MODEL (
  name marts.mart_clv,
  kind FULL,
  grain customer_id,
  tags [marts],
  audits (
    unique_values(columns := (customer_id)),
    not_null(columns := (customer_id, historical_clv_usd, predicted_clv_12m_usd, value_tier)),
    accepted_values(column := value_tier, is_in := ('Top 10%', 'High', 'Medium', 'Low')),
    quantiles_in_order(low := order_value_12m_p10_usd, middle := order_value_12m_p50_usd, high := order_value_12m_p90_usd),
    quantiles_in_order(low := value_12m_p10_usd, middle := value_12m_p50_usd, high := value_12m_p90_usd)
  ),
  description 'Historical and predicted CLV per customer with value tier.',
  column_descriptions (
    customer_id = 'Customer identifier',
    historical_clv_usd = 'Net revenue to date',
    predicted_clv_12m_usd = 'Expected value over the next 12 months: predicted_order_value_12m_usd + predicted_subscription_value_12m_usd',
    predicted_order_value_12m_usd = 'Orders: remaining order value x (1 - churn_probability)',
    predicted_subscription_value_12m_usd = 'Subscriptions: charges expected over the next 12 months by the renewal model (contains cancelling; not multiplied by churn_probability)',
    mrr_usd = 'Monthly recurring revenue now from running subscriptions',
    predicted_remaining_clv_usd = 'Value over the next 12 months if the customer stays: remaining order value + predicted_subscription_value_12m_usd',
    value_at_stake_usd = 'historical_clv_usd + predicted_remaining_clv_usd: worth to date plus the next 12 months if retained',
    expected_purchases_365d = 'Expected purchase days in the next 365 days',
    expected_spend_per_purchase_usd = 'Expected net value of one purchase',
    p_purchase_90d = 'Probability of at least one purchase in the next 90 days (the purchase model)',
    p_purchase_365d = 'Probability of at least one purchase in the next 365 days (the purchase model)',
    order_value_12m_p10_usd = 'Orders: 10th percentile of what the customer may actually spend over the next 12 months (purchases, spend per purchase and parameter uncertainty)',
    order_value_12m_p50_usd = 'Orders: median net order revenue of the next 12 months (0 when no purchase is more likely than not)',
    order_value_12m_p90_usd = 'Orders: 90th percentile; with order_value_12m_p10_usd an 80% predictive interval (subscriptions are not in it)',
    value_12m_p10_usd = 'Orders + running subscriptions: 10th percentile of what the customer may bring over the next 12 months (net, discounted like predicted_clv_12m_usd)',
    value_12m_p50_usd = 'Orders + running subscriptions: median of the next 12 months'' value',
    value_12m_p90_usd = 'Orders + running subscriptions: 90th percentile; with value_12m_p10_usd an 80% predictive interval (by the purchase model''s P(alive); a return after cancelling a subscription is in the expectation only)',
    total_clv_usd = 'Historical plus predicted 12-month value',
    value_tier = 'Top 10%, High, Medium or Low by value at stake',
    value_rank = 'Rank by value at stake, 1 = highest',
    purchase_days = 'Days with an order',
    avg_order_value_usd = 'Order revenue per purchase day',
    tenure_months = 'Months since signup'
  )
);

WITH ranked AS (
  SELECT
    c.customer_id,
    c.historical_clv_usd,
    r.predicted_clv_12m_usd,
    r.predicted_order_value_12m_usd,
    r.predicted_subscription_value_12m_usd,
    r.mrr_usd,
    r.predicted_remaining_clv_usd,
    c.historical_clv_usd + r.predicted_remaining_clv_usd AS value_at_stake_usd,
    r.expected_purchases_365d,
    r.expected_spend_per_purchase_usd,
    r.p_purchase_90d,
    r.p_purchase_365d,
    r.order_value_12m_p10_usd,
    r.order_value_12m_p50_usd,
    r.order_value_12m_p90_usd,
    r.value_12m_p10_usd,
    r.value_12m_p50_usd,
    r.value_12m_p90_usd,
    c.purchase_days,
    c.avg_order_value_usd,
    c.tenure_months,
    ROW_NUMBER() OVER (ORDER BY c.historical_clv_usd + r.predicted_remaining_clv_usd DESC, c.customer_id) AS value_rank,
    PERCENT_RANK() OVER (ORDER BY c.historical_clv_usd + r.predicted_remaining_clv_usd DESC) AS value_percentile
  FROM intermediate.int_customer_clv AS c
  JOIN intermediate.int_revenue_risk AS r
    ON r.customer_id = c.customer_id
)
SELECT
  customer_id,
  historical_clv_usd,
  predicted_clv_12m_usd,
  predicted_order_value_12m_usd,
  predicted_subscription_value_12m_usd,
  mrr_usd,
  predicted_remaining_clv_usd,
  CAST(value_at_stake_usd AS DECIMAL(14, 2)) AS value_at_stake_usd,
  expected_purchases_365d,
  expected_spend_per_purchase_usd,
  p_purchase_90d,
  p_purchase_365d,
  order_value_12m_p10_usd,
  order_value_12m_p50_usd,
  order_value_12m_p90_usd,
  value_12m_p10_usd,
  value_12m_p50_usd,
  value_12m_p90_usd,
  CAST(historical_clv_usd + predicted_clv_12m_usd AS DECIMAL(14, 2)) AS total_clv_usd,
  CASE
    WHEN value_percentile < 0.1 THEN 'Top 10%'
    WHEN value_percentile < 0.3 THEN 'High'
    WHEN value_percentile < 0.6 THEN 'Medium'
    ELSE 'Low'
  END AS value_tier,
  value_rank,
  purchase_days,
  avg_order_value_usd,
  CAST(tenure_months AS DECIMAL(8, 1)) AS tenure_months
FROM ranked
