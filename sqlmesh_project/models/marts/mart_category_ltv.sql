/* Lifetime value and purchase frequency by favourite category: which categories bring the
   customers worth most. Grain: one row per favourite_category. */
MODEL (
  name marts.mart_category_ltv,
  kind FULL,
  grain favourite_category,
  tags [marts],
  audits (unique_values(columns := (favourite_category)), not_null(columns := (favourite_category, customers))),
  description 'Customers, historical and predicted CLV, and frequency by favourite category.',
  column_descriptions (
    favourite_category = 'Favourite category of the customers in the row',
    customers = 'Customers whose favourite it is',
    avg_historical_clv_usd = 'Average net revenue to date',
    avg_predicted_clv_12m_usd = 'Average predicted 12-month CLV',
    total_historical_clv_usd = 'Sum of net revenue to date',
    avg_purchase_days = 'Average days with an order',
    avg_category_share = 'Average share of spend in the favourite category',
    avg_churn_probability = 'Average churn probability'
  )
);

SELECT
  p.favourite_category,
  COUNT(*) AS customers,
  CAST(AVG(c.historical_clv_usd) AS DECIMAL(12, 2)) AS avg_historical_clv_usd,
  CAST(AVG(v.predicted_clv_12m_usd) AS DECIMAL(12, 2)) AS avg_predicted_clv_12m_usd,
  CAST(SUM(c.historical_clv_usd) AS DECIMAL(16, 2)) AS total_historical_clv_usd,
  AVG(c.purchase_days) AS avg_purchase_days,
  AVG(p.favourite_category_share) AS avg_category_share,
  AVG(r.churn_probability) AS avg_churn_probability
FROM intermediate.int_customer_category_pref AS p
JOIN intermediate.int_customer_clv AS c
  ON c.customer_id = p.customer_id
JOIN marts.mart_clv AS v
  ON v.customer_id = p.customer_id
JOIN marts.mart_churn_risk AS r
  ON r.customer_id = p.customer_id
GROUP BY p.favourite_category
