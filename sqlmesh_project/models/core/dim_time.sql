/* The calendar: one row per day from calendar_start to calendar_end (project variables, 2015 to
   2035 by default) with calendar and fiscal attributes (the fiscal year starts on 1 April).
   Grain: one row per date_day. */
MODEL (
  name core.dim_time,
  kind FULL,
  grain date_day,
  tags [core, dimension],
  audits (unique_values(columns := (date_day)), not_null(columns := (date_day))),
  description 'Calendar with fiscal flags.',
  column_descriptions (
    date_day = 'The day',
    year = 'Calendar year',
    quarter = 'Calendar quarter, 1-4',
    month = 'Calendar month, 1-12',
    month_start = 'First day of the month',
    day_of_month = 'Day of the month',
    iso_day_of_week = 'ISO day of week, 1 = Monday',
    iso_week = 'ISO week number',
    is_weekend = 'Saturday or Sunday',
    is_month_end = 'Last day of its month',
    fiscal_year = 'Fiscal year (starts 1 April), named by the calendar year it ends in',
    fiscal_quarter = 'Fiscal quarter, 1-4'
  )
);

WITH days AS (
  SELECT
    CAST(d AS DATE) AS date_day
  FROM UNNEST(
    GENERATE_SERIES(CAST(@VAR('calendar_start', '2015-01-01') AS DATE), CAST(@VAR('calendar_end', '2035-12-31') AS DATE), INTERVAL '1' DAY)
  ) AS t(d)
)
SELECT
  date_day,
  EXTRACT(YEAR FROM date_day) AS year,
  EXTRACT(QUARTER FROM date_day) AS quarter,
  EXTRACT(MONTH FROM date_day) AS month,
  CAST(DATE_TRUNC('MONTH', date_day) AS DATE) AS month_start,
  EXTRACT(DAY FROM date_day) AS day_of_month,
  @iso_day_of_week(date_day) AS iso_day_of_week,
  EXTRACT(WEEK FROM date_day) AS iso_week,
  @iso_day_of_week(date_day) IN (6, 7) AS is_weekend,
  date_day = LAST_DAY(date_day) AS is_month_end,
  EXTRACT(YEAR FROM date_day) + CASE WHEN EXTRACT(MONTH FROM date_day) >= 4 THEN 1 ELSE 0 END AS fiscal_year,
  CAST(FLOOR(((EXTRACT(MONTH FROM date_day) + 8) % 12) / 3) + 1 AS INT) AS fiscal_quarter
FROM days
