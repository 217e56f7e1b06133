/* Support tickets in their latest state: status, channel, issue type, resolution time and CSAT.
   A ticket changes state after it is opened, so this fact is keyed by ticket and refreshed with
   each batch that delivers a change. Grain: one row per ticket_id. */
MODEL (
  name core.fct_support_logs,
  kind INCREMENTAL_BY_UNIQUE_KEY (
    unique_key ticket_id
  ),
  grain ticket_id,
  tags [core, fact],
  audits (
    unique_values(columns := (ticket_id)),
    not_null(columns := (ticket_id, customer_id, opened_at)),
    accepted_range(column := csat_score, min_v := 1, max_v := 5)
  ),
  description 'Support tickets with status, resolution time and CSAT.',
  column_descriptions (
    ticket_id = 'Ticket identifier',
    customer_id = 'Customer who raised it',
    opened_at = 'Opened (UTC)',
    opened_date = 'Date opened',
    closed_at = 'Closed (UTC); null while open',
    status = 'open, pending or closed',
    is_closed = 'The ticket is closed',
    channel = 'email, chat, phone or social',
    issue_type = 'billing, technical, account or other',
    resolution_hours = 'Hours from opening to closing',
    csat_score = 'Satisfaction answer 1-5; null when not answered',
    is_low_csat = 'Answered with 1 or 2',
    loaded_batch_date = 'Batch that delivered this state'
  )
);

SELECT
  t.ticket_id,
  t.customer_id,
  t.opened_at,
  CAST(t.opened_at AS DATE) AS opened_date,
  t.closed_at,
  t.status,
  t.status = 'closed' AS is_closed,
  t.channel,
  t.issue_type,
  CAST(t.resolution_minutes / 60.0 AS DOUBLE) AS resolution_hours,
  t.csat_score,
  COALESCE(t.csat_score <= 2, FALSE) AS is_low_csat,
  t.loaded_batch_date
FROM staging.stg_support_tickets AS t
JOIN core.dim_customers AS c
  ON c.customer_id = t.customer_id AND c.valid_to IS NULL
WHERE
  t.loaded_batch_date BETWEEN @start_ds AND @end_ds
