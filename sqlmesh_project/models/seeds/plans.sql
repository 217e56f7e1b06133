/* Pricing plans the billing system sells. Reference data the sources lack: billing cycle, list
   price and discount tier per plan_id. Grain: one row per plan. */
MODEL (
  name seeds.plans,
  kind SEED (
    path '$root/seeds/plans.csv'
  ),
  grain plan_id,
  tags [seed],
  audits (not_null(columns := (plan_id, list_price_usd)), unique_values(columns := (plan_id))),
  description 'Pricing plans: billing cycle, list price and discount tier.',
  columns (
    plan_id TEXT,
    plan_name TEXT,
    plan_tier TEXT,
    billing_cycle TEXT,
    billing_months INT,
    list_price_usd DECIMAL(10, 2),
    discount_tier TEXT,
    discount_pct INT
  ),
  column_descriptions (
    plan_id = 'Plan identifier used by subscriptions.plan_id',
    plan_name = 'Human-readable plan name',
    plan_tier = 'basic, plus or premium',
    billing_cycle = 'monthly or annual',
    billing_months = 'Months between two charges',
    list_price_usd = 'Price charged per billing cycle',
    discount_tier = 'Discount programme the price reflects',
    discount_pct = 'Discount against twelve monthly payments, percent'
  )
);
