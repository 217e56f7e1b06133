/* Each customer's favourite product category: where they spent most, that category's share of
   their spend, and how often they bought it. Customers without orders have no favourite.
   Grain: one row per customer_id. */
MODEL (
  name intermediate.int_customer_category_pref,
  kind FULL,
  grain customer_id,
  tags [intermediate],
  audits (
    unique_values(columns := (customer_id)),
    not_null(columns := (customer_id)),
    accepted_range(column := favourite_category_share, min_v := 0, max_v := 1)
  ),
  description 'Favourite category, spend share and purchase frequency per customer.',
  column_descriptions (
    customer_id = 'Customer identifier',
    favourite_category = 'Category with the highest net spend (ties: alphabetical)',
    favourite_category_spend_usd = 'Net spend in the favourite category',
    favourite_category_share = 'Favourite category spend / all product spend',
    favourite_category_purchase_days = 'Days with an order in the favourite category',
    categories_bought = 'Distinct categories bought'
  )
);

WITH by_category AS (
  SELECT
    customer_id,
    product_category,
    SUM(revenue_usd) AS spend_usd,
    COUNT(DISTINCT revenue_date) FILTER (WHERE revenue_type = 'order') AS purchase_days
  FROM core.fct_revenue
  WHERE revenue_type IN ('order', 'refund') AND revenue_date <= @business_date()
  GROUP BY customer_id, product_category
), ranked AS (
  SELECT
    *,
    ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY spend_usd DESC, product_category) AS spend_rank,
    SUM(GREATEST(spend_usd, 0)) OVER (PARTITION BY customer_id) AS total_spend_usd,
    COUNT(*) OVER (PARTITION BY customer_id) AS categories_bought
  FROM by_category
)
SELECT
  customer_id,
  product_category AS favourite_category,
  CAST(spend_usd AS DECIMAL(14, 2)) AS favourite_category_spend_usd,
  CAST(CASE WHEN total_spend_usd > 0 THEN LEAST(GREATEST(spend_usd, 0) / total_spend_usd, 1) ELSE 0 END AS DECIMAL(18, 3)) AS favourite_category_share,
  purchase_days AS favourite_category_purchase_days,
  categories_bought
FROM ranked
WHERE
  spend_rank = 1
