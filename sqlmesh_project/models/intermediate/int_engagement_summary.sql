/* Web and app engagement per customer on the business date: rolling 30- and 90-day activity,
   the 90 days before that (to see a decline) and the last session (@session_signals in
   macros/features.py, the churn model's definitions), pages, bounces and the device mix.
   Grain: one row per customer_id. */
MODEL (
  name intermediate.int_engagement_summary,
  kind FULL,
  grain customer_id,
  tags [intermediate],
  audits (unique_values(columns := (customer_id)), not_null(columns := (customer_id, sessions_90d))),
  description 'Rolling session activity, last session and device mix per customer.',
  column_descriptions (
    customer_id = 'Customer identifier',
    sessions_30d = 'Sessions in the 30 days up to the business date',
    sessions_90d = 'Sessions in the 90 days up to the business date',
    sessions_prior_90d = 'Sessions in the 90 days before those',
    engagement_trend = 'sessions_90d / sessions_prior_90d - 1; null without prior sessions',
    pages_viewed_90d = 'Pages viewed in the last 90 days',
    bounce_rate_90d = 'Share of the last 90 days'' sessions that dropped off after one page',
    avg_session_minutes_90d = 'Average session length in the last 90 days',
    last_session_date = 'Date of the last session',
    days_since_last_session = 'Days from the last session to the business date',
    lifetime_sessions = 'Sessions ever',
    desktop_share = 'Share of lifetime sessions on desktop',
    mobile_share = 'Share of lifetime sessions on mobile',
    tablet_share = 'Share of lifetime sessions on tablet',
    app_share = 'Share of lifetime sessions in the app'
  )
);

WITH usage AS (
  SELECT
    customer_id,
    SUM(pages_viewed) FILTER (WHERE session_date > @business_date() - INTERVAL '90' DAY) AS pages_viewed_90d,
    AVG(CAST(dropoff_flag AS INT)) FILTER (WHERE session_date > @business_date() - INTERVAL '90' DAY) AS bounce_rate_90d,
    AVG(duration_minutes) FILTER (WHERE session_date > @business_date() - INTERVAL '90' DAY) AS avg_session_minutes_90d,
    AVG(CAST(device_type = 'desktop' AS INT)) AS desktop_share,
    AVG(CAST(device_type = 'mobile' AS INT)) AS mobile_share,
    AVG(CAST(device_type = 'tablet' AS INT)) AS tablet_share,
    AVG(CAST(channel = 'app' AS INT)) AS app_share
  FROM core.fct_activity_logs
  WHERE session_date <= @business_date()
  GROUP BY customer_id
)
SELECT
  s.customer_id,
  s.sessions_30d,
  s.sessions_90d,
  s.sessions_prior_90d,
  CASE WHEN s.sessions_prior_90d > 0 THEN s.sessions_90d / s.sessions_prior_90d - 1 END AS engagement_trend,
  COALESCE(u.pages_viewed_90d, 0) AS pages_viewed_90d,
  u.bounce_rate_90d,
  u.avg_session_minutes_90d,
  s.last_session_date,
  s.days_since_last_session,
  s.lifetime_sessions,
  u.desktop_share,
  u.mobile_share,
  u.tablet_share,
  u.app_share
FROM @session_signals(core.fct_activity_logs, core.dim_customers, @business_date()) AS s
LEFT JOIN usage AS u
  ON u.customer_id = s.customer_id
