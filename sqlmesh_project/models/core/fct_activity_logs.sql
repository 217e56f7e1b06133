/* Web and app sessions with their device, channel, duration and whether the visitor dropped off
   after one page. Sessions of unknown customers are left out. Processed by session date with a
   7-day lookback for late events. Grain: one row per session_id. */
MODEL (
  name core.fct_activity_logs,
  kind INCREMENTAL_BY_TIME_RANGE (
    time_column session_date,
    lookback 7
  ),
  grain session_id,
  tags [core, fact],
  audits (
    unique_across_intervals(column := session_id, model := core.fct_activity_logs),
    not_null(columns := (session_id, customer_id, session_date)),
    accepted_values(column := device_type, is_in := ('desktop', 'mobile', 'tablet'))
  ),
  description 'Sessions with device, channel, duration and drop-off flag.',
  column_descriptions (
    session_id = 'Session identifier',
    customer_id = 'Signed-in customer',
    session_started_at = 'Start (UTC)',
    session_date = 'Start date',
    device_type = 'desktop, mobile or tablet',
    channel = 'app when the session came from the app, else web',
    os_version = 'Operating system and major version',
    app_version = 'App release, for app sessions',
    duration_minutes = 'Minutes from start to end; null when the end is unknown',
    pages_viewed = 'Pages or screens viewed',
    events_fired = 'Tracked events',
    dropoff_flag = 'The visitor left after a single page (a bounce)'
  )
);

SELECT
  s.session_id,
  s.customer_id,
  s.session_started_at,
  s.session_date,
  s.device_type,
  CASE WHEN s.app_version IS NULL THEN 'web' ELSE 'app' END AS channel,
  s.os_version,
  s.app_version,
  CAST(DATE_DIFF('SECOND', s.session_started_at, s.session_ended_at) / 60.0 AS DOUBLE) AS duration_minutes,
  s.pages_viewed,
  s.events_fired,
  COALESCE(s.pages_viewed, 0) <= 1 AS dropoff_flag
FROM staging.stg_device_sessions AS s
JOIN core.dim_customers AS c
  ON c.customer_id = s.customer_id AND c.valid_to IS NULL
WHERE
  s.session_date BETWEEN @start_ds AND @end_ds
