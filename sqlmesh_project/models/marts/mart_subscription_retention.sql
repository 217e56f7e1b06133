/* Subscription retention curves: Kaplan–Meier survival of subscriptions by the plan they started
   on and their start month (and one all-cohorts curve per plan), month by month since the start.
   A subscription here is a spell of core.fct_subscriptions: a plan change continues it (billing
   ends one subscription and starts another the same day; the customer did not leave), so only a
   cancellation ends it. Month k of a subscription runs from its (k-1)th to its kth monthly
   anniversary (the renewal date of a monthly plan); a cancellation that takes effect on the kth
   anniversary, or before it, is a cancellation in month k. Only complete months count: a month
   whose anniversary is after the business date has not been observed yet, so a subscription is
   censored after its last complete month, even one cancelled within the month still running
   (counting early cancellations but not the survivors of an unfinished month would draw a
   collapse). The censoring depends on the start date alone, so the estimate stays unbiased. A
   paused subscription is running (billing keeps charging it). model_survival is the fitted
   renewal model's curve for the plan (intermediate.int_subscription_model_curve), the same on
   every cohort's rows; null for a plan whose group is not fitted.
   Grain: one row per plan_id, cohort and months_since_start. */
MODEL (
  name marts.mart_subscription_retention,
  kind FULL,
  grain (plan_id, cohort, months_since_start),
  tags [marts],
  audits (
    unique_combination_of_columns(columns := (plan_id, cohort, months_since_start)),
    not_null(
      columns := (plan_id, cohort, months_since_start, subscriptions_started, subscriptions_at_risk, subscriptions_cancelled, subscriptions_censored, survival)
    ),
    accepted_range(column := survival, min_v := 0, max_v := 1),
    life_table_balances
  ),
  description 'Kaplan–Meier survival of subscriptions by starting plan and start-month cohort, per month since start; complete months only.',
  column_descriptions (
    plan_id = 'Plan the subscription started on (a later plan change keeps it in this curve)',
    plan_name = 'Name of that plan',
    billing_cycle = 'monthly or annual',
    cohort = 'Start month as YYYY-MM, or all for every start month of the plan together',
    cohort_month = 'First day of the start month; null on the all row',
    months_since_start = 'Month of the subscription: 0 = the start, k = the kth month (up to the kth monthly anniversary)',
    subscriptions_started = 'Subscriptions of the plan and cohort that started by the business date',
    subscriptions_at_risk = 'Subscriptions still running at the start of month k whose month k is observed (complete by the business date, or cancelled in it); at month 0 every one started',
    subscriptions_cancelled = 'Subscriptions cancelled in month k (a plan change is not a cancellation)',
    subscriptions_censored = 'Subscriptions still running after month k whose next month is not complete yet: they leave the table without cancelling',
    survival = 'Kaplan–Meier share still subscribed after month k: the product over months 1..k of (1 - cancelled / at risk)',
    survival_std_error = 'Greenwood standard error of survival',
    model_survival = 'Share still subscribed after month k by the fitted renewal model (intermediate.int_subscription_model_curve); null when the plan has no fit'
  )
);

WITH subscriptions AS (
  SELECT spell_id, spell_plan_id, spell_start_date, end_date, is_plan_change_end
  FROM core.fct_subscriptions
  WHERE start_date <= @business_date()
), spells AS (
  SELECT
    spell_id,
    MIN(spell_plan_id) AS plan_id,
    MIN(spell_start_date) AS start_date,
    /* a spell is cancelled when one of its subscriptions ends without a plan change */
    MIN(CASE WHEN end_date <= @business_date() AND NOT is_plan_change_end THEN end_date END) AS cancelled_date
  FROM subscriptions
  GROUP BY spell_id
), months AS (
  SELECT
    plan_id,
    start_date,
    cancelled_date,
    @calendar_diff(MONTH, start_date, @business_date()) AS months_to_date,
    @calendar_diff(MONTH, start_date, cancelled_date) AS months_to_cancel
  FROM spells
), periods AS (
  SELECT
    plan_id,
    start_date,
    cancelled_date,
    /* complete months: the kth anniversary is on or before the business date */
    CASE
      WHEN @add_months(start_date, months_to_date) <= @business_date()
      THEN months_to_date
      ELSE months_to_date - 1
    END AS complete_months,
    /* the month a cancellation falls in: the first anniversary on or after it (at least month 1) */
    GREATEST(
      CASE
        WHEN @add_months(start_date, months_to_cancel) < cancelled_date
        THEN months_to_cancel + 1
        ELSE months_to_cancel
      END,
      1
    ) AS cancel_month
  FROM months
), outcomes AS (
  SELECT
    plan_id,
    CAST(DATE_TRUNC('MONTH', start_date) AS DATE) AS cohort_month,
    cancelled_date IS NOT NULL AND cancel_month <= complete_months AS is_cancelled,
    CASE
      WHEN cancelled_date IS NOT NULL AND cancel_month <= complete_months
      THEN cancel_month
      ELSE complete_months
    END AS observed_months
  FROM periods
), groups AS (
  SELECT plan_id, STRFTIME(cohort_month, '%Y-%m') AS cohort, cohort_month, is_cancelled, observed_months
  FROM outcomes
  UNION ALL
  SELECT plan_id, 'all' AS cohort, CAST(NULL AS DATE) AS cohort_month, is_cancelled, observed_months
  FROM outcomes
), leaving AS (
  /* subscriptions whose observation ends in month k: cancelled in it, or censored after it */
  SELECT
    plan_id,
    cohort,
    observed_months AS months_since_start,
    COUNT(*) AS leaving_count,
    SUM(CASE WHEN is_cancelled THEN 1 ELSE 0 END) AS cancelled_count
  FROM groups
  GROUP BY plan_id, cohort, observed_months
), spans AS (
  SELECT plan_id, cohort, MIN(cohort_month) AS cohort_month, COUNT(*) AS started_count, MAX(observed_months) AS last_month
  FROM groups
  GROUP BY plan_id, cohort
), grid AS (
  SELECT
    plan_id,
    cohort,
    cohort_month,
    started_count,
    UNNEST(GENERATE_SERIES(0, last_month)) AS months_since_start
  FROM spans
), counts AS (
  SELECT
    g.plan_id,
    g.cohort,
    g.cohort_month,
    g.months_since_start,
    g.started_count,
    COALESCE(l.leaving_count, 0) AS leaving_count,
    COALESCE(l.cancelled_count, 0) AS cancelled_count
  FROM grid AS g
  LEFT JOIN leaving AS l
    ON l.plan_id = g.plan_id AND l.cohort = g.cohort AND l.months_since_start = g.months_since_start
), life_table AS (
  SELECT
    *,
    SUM(leaving_count) OVER (
      PARTITION BY plan_id, cohort ORDER BY months_since_start ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING
    ) AS at_risk_count
  FROM counts
), km AS (
  SELECT
    *,
    SUM(CASE WHEN cancelled_count = at_risk_count THEN 1 ELSE 0 END) OVER to_date AS emptied_months,
    SUM(
      CASE WHEN cancelled_count < at_risk_count THEN LN(1 - CAST(cancelled_count AS DOUBLE) / at_risk_count) ELSE 0 END
    ) OVER to_date AS log_survival,
    SUM(
      CASE
        WHEN cancelled_count < at_risk_count
        THEN CAST(cancelled_count AS DOUBLE) / (CAST(at_risk_count AS DOUBLE) * (at_risk_count - cancelled_count))
        ELSE 0
      END
    ) OVER to_date AS greenwood_sum
  FROM life_table
  WINDOW to_date AS (
    PARTITION BY plan_id, cohort ORDER BY months_since_start ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
  )
), plans AS (
  SELECT plan_id, plan_name, billing_cycle FROM core.dim_plans
)
SELECT
  k.plan_id,
  p.plan_name,
  p.billing_cycle,
  k.cohort,
  k.cohort_month,
  k.months_since_start,
  k.started_count AS subscriptions_started,
  k.at_risk_count AS subscriptions_at_risk,
  k.cancelled_count AS subscriptions_cancelled,
  k.leaving_count - k.cancelled_count AS subscriptions_censored,
  CASE WHEN k.emptied_months > 0 THEN 0.0 ELSE ROUND(EXP(k.log_survival), 6) END AS survival,
  CASE WHEN k.emptied_months > 0 THEN NULL ELSE ROUND(EXP(k.log_survival) * SQRT(k.greenwood_sum), 6) END AS survival_std_error,
  ROUND(c.model_survival, 6) AS model_survival
FROM km AS k
LEFT JOIN plans AS p
  ON p.plan_id = k.plan_id
LEFT JOIN intermediate.int_subscription_model_curve AS c
  ON c.plan_id = k.plan_id AND c.months_since_start = k.months_since_start
