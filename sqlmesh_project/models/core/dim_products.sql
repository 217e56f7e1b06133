/* Products as sold: category, the prices they actually sold at, and unit cost and margin from
   the category reference. Grain: one row per product_id. */
MODEL (
  name core.dim_products,
  kind FULL,
  grain product_id,
  tags [core, dimension],
  audits (unique_values(columns := (product_id)), not_null(columns := (product_id, product_category))),
  description 'Products with category, price statistics, cost and margin.',
  column_descriptions (
    product_id = 'Product identifier',
    product_category = 'Category (seeds.categories)',
    department = 'Merchandising department',
    lines_sold = 'Order lines sold (refunds excluded)',
    units_sold = 'Units sold (refunds excluded)',
    min_unit_price_usd = 'Lowest unit price sold at',
    avg_unit_price_usd = 'Average unit price, weighted by units',
    max_unit_price_usd = 'Highest unit price sold at',
    unit_cost_usd = 'Average unit price x the category cost of goods share',
    unit_margin_usd = 'Average unit price minus unit cost',
    gross_margin_pct = 'Category gross margin, percent'
  )
);

WITH sold AS (
  SELECT
    product_id,
    ANY_VALUE(product_category) AS product_category,
    COUNT(*) AS lines_sold,
    SUM(quantity) AS units_sold,
    MIN(unit_price_usd) AS min_unit_price_usd,
    SUM(quantity * unit_price_usd) / NULLIF(SUM(quantity), 0) AS avg_unit_price_usd,
    MAX(unit_price_usd) AS max_unit_price_usd
  FROM staging.stg_orders
  WHERE NOT is_refund AND NOT product_id IS NULL
  GROUP BY product_id
)
SELECT
  s.product_id,
  s.product_category,
  COALESCE(c.department, 'Unknown') AS department,
  s.lines_sold,
  s.units_sold,
  s.min_unit_price_usd,
  CAST(s.avg_unit_price_usd AS DECIMAL(12, 2)) AS avg_unit_price_usd,
  s.max_unit_price_usd,
  CAST(s.avg_unit_price_usd * c.cogs_pct / 100.0 AS DECIMAL(12, 2)) AS unit_cost_usd,
  CAST(s.avg_unit_price_usd * (100 - c.cogs_pct) / 100.0 AS DECIMAL(12, 2)) AS unit_margin_usd,
  c.gross_margin_pct
FROM sold AS s
LEFT JOIN seeds.categories AS c
  ON c.product_category = s.product_category
