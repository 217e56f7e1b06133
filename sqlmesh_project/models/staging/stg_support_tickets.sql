/* Support tickets: the latest state of each ticket (opened, pending, closed arrive as
   deliveries of the same ticket_id). Grain: one row per ticket_id. */
MODEL (
  name staging.stg_support_tickets,
  kind INCREMENTAL_BY_UNIQUE_KEY (
    unique_key ticket_id
  ),
  grain ticket_id,
  tags [staging],
  audits (unique_values(columns := (ticket_id)), not_null(columns := (ticket_id, customer_id, opened_at))),
  description 'Current state of each support ticket; latest delivery wins.',
  column_descriptions (
    ticket_id = 'Ticket identifier (primary key)',
    customer_id = 'Customer who raised it',
    opened_at = 'When the ticket was opened (UTC)',
    closed_at = 'When it was closed; null while open',
    status = 'open, pending or closed',
    channel = 'email, chat, phone or social',
    issue_type = 'billing, technical, account or other',
    resolution_minutes = 'Minutes from opening to closing, set on close',
    csat_score = 'Satisfaction survey answer, 1-5; null when not answered',
    loaded_batch_date = 'Business date of the batch that delivered this state',
    loaded_at = 'When the loader stored the delivery'
  )
);

SELECT
  CAST(TRIM(ticket_id) AS TEXT) AS ticket_id,
  CAST(TRIM(customer_id) AS TEXT) AS customer_id,
  CAST(opened_datetime AS TIMESTAMP) AS opened_at,
  CAST(closed_datetime AS TIMESTAMP) AS closed_at,
  CAST(@clean_enum(status) AS TEXT) AS status,
  CAST(@clean_enum(channel) AS TEXT) AS channel,
  CAST(@clean_enum(issue_type) AS TEXT) AS issue_type,
  CAST(resolution_time_minutes AS INT) AS resolution_minutes,
  CAST(csat_score AS SMALLINT) AS csat_score,
  CAST(_batch_date AS DATE) AS loaded_batch_date,
  CAST(_loaded_at AS TIMESTAMP) AS loaded_at
FROM @latest_deliveries(raw.support_tickets, _batch_date BETWEEN @start_ds AND @end_ds, ticket_id) AS r
