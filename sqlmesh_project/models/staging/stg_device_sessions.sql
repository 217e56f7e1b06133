/* Web and app sessions from the product logs. Soft filter: a session whose end is before its
   start keeps its start and gets no end (duration unknown). Grain: one row per session_id. */
MODEL (
  name staging.stg_device_sessions,
  kind INCREMENTAL_BY_UNIQUE_KEY (
    unique_key session_id
  ),
  grain session_id,
  tags [staging],
  audits (
    unique_values(columns := (session_id)),
    not_null(columns := (session_id, customer_id, session_started_at))
  ),
  description 'Device sessions, typed and de-duplicated.',
  column_descriptions (
    session_id = 'Session identifier (primary key)',
    customer_id = 'Signed-in customer',
    session_started_at = 'Session start (UTC)',
    session_ended_at = 'Session end (UTC); null when before the start',
    session_date = 'Calendar date of session_started_at',
    device_type = 'desktop, mobile or tablet',
    os_version = 'Operating system and major version',
    app_version = 'App release, for app sessions; null on the web',
    pages_viewed = 'Pages or screens viewed',
    events_fired = 'Tracked events',
    loaded_batch_date = 'Business date of the batch that delivered the row',
    loaded_at = 'When the loader stored the delivery'
  )
);

SELECT
  CAST(TRIM(session_id) AS TEXT) AS session_id,
  CAST(TRIM(customer_id) AS TEXT) AS customer_id,
  CAST(session_start_ts AS TIMESTAMP) AS session_started_at,
  CAST(CASE WHEN session_end_ts >= session_start_ts THEN session_end_ts END AS TIMESTAMP) AS session_ended_at,
  CAST(session_start_ts AS DATE) AS session_date,
  CAST(@clean_enum(device_type) AS TEXT) AS device_type,
  CAST(TRIM(os_version) AS TEXT) AS os_version,
  CAST(NULLIF(TRIM(app_version), '') AS TEXT) AS app_version,
  CAST(pages_viewed AS INT) AS pages_viewed,
  CAST(events_fired AS INT) AS events_fired,
  CAST(_batch_date AS DATE) AS loaded_batch_date,
  CAST(_loaded_at AS TIMESTAMP) AS loaded_at
FROM @latest_deliveries(raw.device_sessions, _batch_date BETWEEN @start_ds AND @end_ds, session_id) AS r
