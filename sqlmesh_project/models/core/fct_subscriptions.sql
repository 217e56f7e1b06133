/* Every billing subscription with its plan's monthly recurring revenue, and the spell it belongs
   to. Billing records a plan change as the end of one subscription and the start of another on
   the same day for the same customer; to the business that customer never left, so the two
   subscriptions form one spell (a run of subscriptions joined by same-day plan changes), named
   after its first subscription and attributed to its first plan. A subscription that starts on a
   day none of the customer's other subscriptions ends starts a new spell (a first subscription
   or a return after a gap). A paused subscription is running: billing keeps charging it
   (core.fct_revenue's convention). Customers the CRM does not know are left out, as in
   core.fct_revenue. A customer's subscriptions are taken to follow one another (the billing
   export's shape); two spells of one customer that overlap are still told apart by their start.
   Grain: one row per subscription_id. */
MODEL (
  name core.fct_subscriptions,
  kind FULL,
  grain subscription_id,
  tags [core, fact],
  audits (
    unique_values(columns := (subscription_id)),
    not_null(
      columns := (subscription_id, customer_id, plan_id, start_date, monthly_recurring_usd, spell_id, spell_start_date, spell_plan_id)
    ),
    accepted_range(column := monthly_recurring_usd, min_v := 0)
  ),
  description 'Subscriptions with monthly recurring revenue, plan changes and the spell each belongs to.',
  column_descriptions (
    subscription_id = 'Billing subscription (primary key)',
    customer_id = 'Subscriber',
    plan_id = 'Plan of this subscription',
    billing_months = 'Months per billing cycle of the plan',
    monthly_recurring_usd = 'Monthly recurring revenue: the plan''s list price spread over its cycle (core.dim_plans.monthly_price_usd; an annual plan counts price / 12)',
    status = 'Latest billing status: active, paused or cancelled (a paused subscription is still charged)',
    start_date = 'Service start (the first charge)',
    end_date = 'Service end: a cancellation or a plan change; null while running',
    is_plan_change_start = 'Started by a plan change: another subscription of the customer ended the same day',
    is_plan_change_end = 'Ended by a plan change: another subscription of the customer started the same day',
    spell_id = 'First subscription of the spell: subscriptions joined by same-day plan changes',
    spell_start_date = 'Start of the spell',
    spell_plan_id = 'Plan the spell started on'
  )
);

WITH customers AS (
  SELECT customer_id FROM core.dim_customers WHERE valid_to IS NULL
), subscriptions AS (
  SELECT
    s.subscription_id,
    s.customer_id,
    s.plan_id,
    p.billing_months,
    p.monthly_price_usd,
    s.status,
    s.start_date,
    s.end_date
  FROM staging.stg_subscriptions AS s
  JOIN core.dim_plans AS p
    ON p.plan_id = s.plan_id
  JOIN customers AS c
    ON c.customer_id = s.customer_id
  WHERE s.start_date IS NOT NULL
), changes_out AS (
  /* days on which a subscription of the customer ended after running at least a day */
  SELECT DISTINCT customer_id, end_date AS change_date
  FROM subscriptions
  WHERE end_date > start_date
), changes_in AS (
  SELECT DISTINCT customer_id, start_date AS change_date
  FROM subscriptions
  WHERE end_date IS NULL OR end_date > start_date
), flagged AS (
  SELECT
    s.*,
    o.customer_id IS NOT NULL AND (s.end_date IS NULL OR s.end_date > s.start_date) AS is_plan_change_start,
    i.customer_id IS NOT NULL AND s.end_date > s.start_date AS is_plan_change_end
  FROM subscriptions AS s
  LEFT JOIN changes_out AS o
    ON o.customer_id = s.customer_id AND o.change_date = s.start_date
  LEFT JOIN changes_in AS i
    ON i.customer_id = s.customer_id AND i.change_date = s.end_date
), numbered AS (
  /* a plan change continues the latest spell that started before it; on a tie of start dates
     the continuation comes first, so a new spell starting that same day is counted after it */
  SELECT
    *,
    SUM(CASE WHEN is_plan_change_start THEN 0 ELSE 1 END) OVER (
      PARTITION BY customer_id
      ORDER BY start_date, CASE WHEN is_plan_change_start THEN 0 ELSE 1 END, subscription_id
      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) AS spell_number
  FROM flagged
), spells AS (
  SELECT
    *,
    FIRST_VALUE(subscription_id) OVER spell AS spell_id,
    FIRST_VALUE(start_date) OVER spell AS spell_start_date,
    FIRST_VALUE(plan_id) OVER spell AS spell_plan_id
  FROM numbered
  WINDOW spell AS (
    PARTITION BY customer_id, spell_number
    ORDER BY start_date, CASE WHEN is_plan_change_start THEN 1 ELSE 0 END, subscription_id
    ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
  )
)
SELECT
  subscription_id,
  customer_id,
  plan_id,
  billing_months,
  CAST(monthly_price_usd AS DECIMAL(10, 2)) AS monthly_recurring_usd,
  status,
  start_date,
  end_date,
  COALESCE(is_plan_change_start, FALSE) AS is_plan_change_start,
  COALESCE(is_plan_change_end, FALSE) AS is_plan_change_end,
  spell_id,
  spell_start_date,
  spell_plan_id
FROM spells
