/* Churn against support experience: customers grouped by how many tickets they raised in the
   last 90 days, how satisfied they were, and how long resolutions took, kept apart by whether they
   are still reachable: customers without tickets are mostly customers already gone (no contact
   because no relationship), so comparing bands over everyone compares the living with the gone;
   within the reachable customers the bands compare like with like.
   Grain: one row per tickets_band, csat_band, resolution_band and is_reachable. */
MODEL (
  name marts.mart_churn_support_analysis,
  kind FULL,
  grain (tickets_band, csat_band, resolution_band, is_reachable),
  tags [marts],
  audits (
    unique_combination_of_columns(columns := (tickets_band, csat_band, resolution_band, is_reachable)),
    not_null(columns := (tickets_band, csat_band, resolution_band, is_reachable, customers))
  ),
  description 'Churn probability, churned share, revenue at risk and value lost by support experience.',
  column_descriptions (
    tickets_band = 'Tickets in the last 90 days: 0, 1, 2-3, 4+',
    csat_band = 'Average CSAT of the last 90 days: low (< 3), mid (3-4), high (> 4), no answer',
    resolution_band = 'Average resolution of the last 90 days: < 4h, 4-24h, > 24h, no tickets',
    is_reachable = 'Still reachable (mart_churn_risk); false = most likely gone, the win-back pool',
    customers = 'Customers in the group',
    avg_leave_probability_90d = 'Average probability of being active today and leaving within the next 90 days',
    avg_churn_probability = 'Average churn probability',
    churned_share = 'Share in the churned lifecycle stage',
    revenue_at_risk_usd = 'Sum of revenue at risk (reachable customers leaving within 90 days)',
    value_lost_usd = 'Sum of value already lost'
  )
);

WITH banded AS (
  SELECT
    s.customer_id,
    CASE WHEN s.tickets_90d = 0 THEN '0' WHEN s.tickets_90d = 1 THEN '1' WHEN s.tickets_90d <= 3 THEN '2-3' ELSE '4+' END AS tickets_band,
    CASE
      WHEN s.avg_csat_90d IS NULL THEN 'no answer'
      WHEN s.avg_csat_90d < 3 THEN 'low'
      WHEN s.avg_csat_90d <= 4 THEN 'mid'
      ELSE 'high'
    END AS csat_band,
    CASE
      WHEN s.avg_resolution_hours_90d IS NULL THEN 'no tickets'
      WHEN s.avg_resolution_hours_90d < 4 THEN '< 4h'
      WHEN s.avg_resolution_hours_90d <= 24 THEN '4-24h'
      ELSE '> 24h'
    END AS resolution_band
  FROM intermediate.int_support_summary AS s
)
SELECT
  b.tickets_band,
  b.csat_band,
  b.resolution_band,
  r.is_reachable,
  COUNT(*) AS customers,
  AVG(r.churn_probability) AS avg_churn_probability,
  AVG(r.leave_probability_90d) AS avg_leave_probability_90d,
  AVG(CAST(r.lifecycle_stage = 'churned' AS INT)) AS churned_share,
  CAST(SUM(r.revenue_at_risk_usd) AS DECIMAL(16, 2)) AS revenue_at_risk_usd,
  CAST(SUM(r.value_lost_usd) AS DECIMAL(16, 2)) AS value_lost_usd
FROM banded AS b
JOIN marts.mart_churn_risk AS r
  ON r.customer_id = b.customer_id
GROUP BY b.tickets_band, b.csat_band, b.resolution_band, r.is_reachable
