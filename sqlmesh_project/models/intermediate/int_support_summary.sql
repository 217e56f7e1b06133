/* Support experience per customer on the business date: tickets, resolution times and CSAT over
   the last 30 and 90 days and in total. The 90-day ticket, billing and low-CSAT counts are the
   churn model's (@support_signals in macros/features.py). Grain: one row per customer_id. */
MODEL (
  name intermediate.int_support_summary,
  kind FULL,
  grain customer_id,
  tags [intermediate],
  audits (unique_values(columns := (customer_id)), not_null(columns := (customer_id, tickets_90d))),
  description 'Ticket counts, resolution time and CSAT per customer.',
  column_descriptions (
    customer_id = 'Customer identifier',
    tickets_30d = 'Tickets opened in the last 30 days',
    tickets_90d = 'Tickets opened in the last 90 days',
    billing_tickets_90d = 'Billing tickets opened in the last 90 days',
    open_tickets = 'Tickets not closed on the business date',
    lifetime_tickets = 'Tickets ever opened',
    avg_resolution_hours = 'Average resolution time of closed tickets',
    avg_resolution_hours_90d = 'Average resolution time of tickets opened in the last 90 days',
    avg_csat = 'Average CSAT answer, all time',
    avg_csat_90d = 'Average CSAT answer of tickets opened in the last 90 days',
    low_csat_tickets_90d = 'Tickets answered 1 or 2 in the last 90 days',
    last_ticket_date = 'Date of the last ticket'
  )
);

WITH experience AS (
  SELECT
    customer_id,
    COUNT(*) FILTER (WHERE opened_date > @business_date() - INTERVAL '30' DAY) AS tickets_30d,
    COUNT(*) FILTER (WHERE NOT is_closed) AS open_tickets,
    COUNT(*) AS lifetime_tickets,
    AVG(resolution_hours) AS avg_resolution_hours,
    AVG(resolution_hours) FILTER (WHERE opened_date > @business_date() - INTERVAL '90' DAY) AS avg_resolution_hours_90d,
    AVG(csat_score) AS avg_csat,
    AVG(csat_score) FILTER (WHERE opened_date > @business_date() - INTERVAL '90' DAY) AS avg_csat_90d,
    MAX(opened_date) AS last_ticket_date
  FROM core.fct_support_logs
  WHERE opened_date <= @business_date()
  GROUP BY customer_id
)
SELECT
  k.customer_id,
  COALESCE(e.tickets_30d, 0) AS tickets_30d,
  k.tickets_90d,
  k.billing_tickets_90d,
  COALESCE(e.open_tickets, 0) AS open_tickets,
  COALESCE(e.lifetime_tickets, 0) AS lifetime_tickets,
  e.avg_resolution_hours,
  e.avg_resolution_hours_90d,
  e.avg_csat,
  e.avg_csat_90d,
  k.low_csat_tickets_90d,
  e.last_ticket_date
FROM @support_signals(core.fct_support_logs, core.dim_customers, @business_date()) AS k
LEFT JOIN experience AS e
  ON e.customer_id = k.customer_id
