/* Product categories with their cost of goods and gross margin, which the order feed does not
   carry. Grain: one row per category. */
MODEL (
  name seeds.categories,
  kind SEED (
    path '$root/seeds/categories.csv'
  ),
  grain product_category,
  tags [seed],
  audits (unique_values(columns := (product_category)), not_null(columns := (product_category))),
  description 'Product categories: department, cost of goods and gross margin.',
  columns (
    product_category TEXT,
    department TEXT,
    cogs_pct INT,
    gross_margin_pct INT,
    price_band_low_usd DECIMAL(10, 2),
    price_band_high_usd DECIMAL(10, 2),
    product_count INT
  ),
  column_descriptions (
    product_category = 'Category name as in orders.product_category',
    department = 'Merchandising department',
    cogs_pct = 'Cost of goods sold as a percentage of price',
    gross_margin_pct = 'Gross margin as a percentage of price',
    price_band_low_usd = 'Lowest list price in the category',
    price_band_high_usd = 'Highest list price in the category',
    product_count = 'Products in the catalogue'
  )
);
