/* One wide row per customer for analysts: profile, lifecycle, value, churn risk, engagement,
   support and segments. Grain: one row per customer_id. */
MODEL (
  name marts.mart_customer_360,
  kind FULL,
  grain customer_id,
  tags [marts],
  audits (
    unique_values(columns := (customer_id)),
    not_null(columns := (customer_id, lifecycle_stage, churn_probability, p_alive, historical_clv_usd, predicted_clv_12m_usd)),
    accepted_range(column := churn_probability, min_v := 0, max_v := 1),
    accepted_range(column := p_alive, min_v := 0, max_v := 1),
    risk_within_remaining_value
  ),
  description 'Customer 360: profile, CLV, churn risk, lifecycle, engagement, support and segments.',
  column_descriptions (
    customer_id = 'Customer identifier',
    signup_date = 'Date of account creation',
    tenure_days = 'Days since signup',
    country_code = 'Country',
    region = 'Region',
    city = 'City',
    age_years = 'Age in years',
    gender = 'M, F, Other or Unknown',
    lifecycle_stage = 'onboarding, active, dormant or churned',
    days_since_last_activity = 'Days since the last purchase or session',
    churn_probability = 'Probability that the customer has already left, 0-1 (churn model)',
    p_alive = 'BG/NBD probability that the customer is still active',
    risk_band = 'high, medium or low, by churn_probability',
    leave_probability_90d = 'Probability of being active today and leaving within the next 90 days',
    is_reachable = 'Lifecycle stage other than churned and churn_probability < 0.5; false = most likely gone (win-back pool)',
    historical_clv_usd = 'Net revenue to date',
    predicted_clv_12m_usd = 'Expected net revenue over the next 12 months: remaining CLV x (1 - churn_probability)',
    predicted_remaining_clv_usd = 'Net revenue expected over the next 12 months if the customer is still active and stays',
    revenue_at_risk_usd = 'Reachable customers: leave_probability_90d x predicted_remaining_clv_usd; 0 otherwise',
    value_kept_usd = 'Remaining value expected to stay: predicted_remaining_clv_usd - revenue_at_risk_usd - value_lost_usd',
    value_lost_usd = 'Value already lost: churn_probability x predicted_remaining_clv_usd',
    value_at_stake_usd = 'Net revenue to date plus predicted_remaining_clv_usd: what the value tier ranks',
    value_tier = 'Top 10%, High, Medium or Low by value at stake',
    expected_purchases_365d = 'Expected purchase days in the next 365 days',
    expected_spend_per_purchase_usd = 'Expected net value of one purchase',
    purchase_days = 'Days with an order',
    avg_order_value_usd = 'Order revenue per purchase day',
    days_since_last_purchase = 'Days since the last order',
    sessions_30d = 'Sessions in the last 30 days',
    sessions_90d = 'Sessions in the last 90 days',
    engagement_trend = 'Change in sessions against the previous 90 days',
    days_since_last_session = 'Days since the last session',
    tickets_90d = 'Tickets in the last 90 days',
    avg_csat_90d = 'Average CSAT of the last 90 days',
    avg_resolution_hours_90d = 'Average resolution hours of the last 90 days',
    contract_segment = 'Subscription segment',
    subscription_status = 'Status of the latest subscription, or none',
    loyalty_tier = 'Loyalty tier',
    points_balance = 'Loyalty points balance',
    favourite_category = 'Favourite category',
    is_marketing_opt_in = 'Consent to marketing'
  )
);

SELECT
  b.customer_id,
  b.signup_date,
  b.tenure_days,
  b.country_code,
  b.region,
  b.city,
  b.age_years,
  b.gender,
  r.lifecycle_stage,
  r.days_since_last_activity,
  r.churn_probability,
  r.p_alive,
  r.risk_band,
  r.leave_probability_90d,
  r.is_reachable,
  v.historical_clv_usd,
  v.predicted_clv_12m_usd,
  r.predicted_remaining_clv_usd,
  r.revenue_at_risk_usd,
  r.value_kept_usd,
  r.value_lost_usd,
  v.value_at_stake_usd,
  v.value_tier,
  v.expected_purchases_365d,
  v.expected_spend_per_purchase_usd,
  c.purchase_days,
  c.avg_order_value_usd,
  c.days_since_last_purchase,
  e.sessions_30d,
  e.sessions_90d,
  e.engagement_trend,
  e.days_since_last_session,
  s.tickets_90d,
  s.avg_csat_90d,
  s.avg_resolution_hours_90d,
  g.contract_segment,
  b.subscription_status,
  b.loyalty_tier,
  b.points_balance,
  g.favourite_category,
  b.is_marketing_opt_in
FROM intermediate.int_customer_base AS b
JOIN marts.mart_churn_risk AS r
  ON r.customer_id = b.customer_id
JOIN marts.mart_clv AS v
  ON v.customer_id = b.customer_id
JOIN intermediate.int_customer_clv AS c
  ON c.customer_id = b.customer_id
JOIN intermediate.int_engagement_summary AS e
  ON e.customer_id = b.customer_id
JOIN intermediate.int_support_summary AS s
  ON s.customer_id = b.customer_id
JOIN marts.mart_customer_segments AS g
  ON g.customer_id = b.customer_id
