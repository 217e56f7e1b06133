/* Model health over business dates: every metric of int_model_performance (the rolling-origin
   backtest and the scored prediction ledger), with its recent history and, for the metrics that
   gate publication, its thresholds and a verdict a person can read. The gates (thresholds are
   SQLMesh variables, README "Model health"):
   - auc: the churn model's ROC AUC of P(no purchase) below health_auc_warn / _fail, or more than
     health_auc_drop_warn / _fail below the mean of its previous health_history_runs evaluations
     (once health_history_min_runs of them exist);
   - calibration: the churn model's calibration gap (the customer-weighted mean |predicted -
     observed| over the deciles) above health_calibration_gap_warn / _fail;
   - value_error: the aggregate error of a predicted value, sum(predicted) / sum(actual) - 1, of
     the churn-weighted order value, BG/NBD's alone and the subscription part, outside
     +-health_value_error_warn / _fail.
   A metric measured on fewer than health_min_customers customers is not judged (status too_few:
   its sampling error would fire the gate by chance). The Soda checks of
   soda_checks/marts/mart_model_performance.yml fail the marts layer on a fail verdict (publication
   stops, the serving file keeps the last good data) and warn on a warn verdict; their failing
   rows, health_explanation included, name the metric and its history in the alert.
   Grain: one row per business_date, evaluation, model, target, horizon_days, metric and decile. */
MODEL (
  name marts.mart_model_performance,
  kind FULL,
  grain (business_date, evaluation, model, target, horizon_days, metric, decile),
  tags [marts, ledger],
  audits (
    unique_combination_of_columns(columns := (business_date, evaluation, model, target, horizon_days, metric, decile)),
    not_null(columns := (business_date, evaluation, model, target, origin_date, horizon_days, metric, decile, customers)),
    accepted_values(column := health_status, is_in := ('ok', 'warn', 'fail', 'too_few'))
  ),
  description 'Model health per business date: backtest and ledger metrics, their history, thresholds and verdicts.',
  column_descriptions (
    business_date = 'Business date of the run that measured it',
    evaluation = 'backtest (the churn model time split, every run) or ledger (recorded predictions whose horizon has passed)',
    model = 'churn_model, bgnbd (the purchase model alone, the baseline) or sbg (subscriptions)',
    target = 'no_purchase, order_revenue or subscription_revenue',
    origin_date = 'Date the predictions were made as of',
    horizon_days = 'Days after the origin the outcome covers',
    metric = 'The metric (int_model_performance)',
    decile = '0 for a metric of all customers; 1-10 for a row of the decile table (1 = highest predictions)',
    value = 'The metric value',
    customers = 'Customers it was measured on',
    gate = 'auc, calibration or value_error for a metric that gates publication; null otherwise',
    warn_threshold = 'auc: the lowest AUC without a warning; calibration: the highest gap; value_error: the largest absolute error',
    fail_threshold = 'As warn_threshold, for failing',
    history_runs = 'Earlier evaluations of the same metric in the history window (health_history_runs)',
    history_mean = 'Their mean',
    history = 'Their values, oldest first (business date: value)',
    health_status = 'ok, warn, fail or too_few (not judged: fewer than health_min_customers customers); null for metrics without a gate',
    health_explanation = 'The verdict in words: the metric, its value, the rule it broke and its recent history'
  )
);

WITH performance AS (
  SELECT
    business_date,
    evaluation,
    model,
    target,
    origin_date,
    horizon_days,
    metric,
    decile,
    value,
    customers
  FROM intermediate.int_model_performance
), series AS (
  SELECT
    business_date,
    evaluation,
    model,
    target,
    horizon_days,
    metric,
    decile,
    value,
    ROW_NUMBER() OVER (
      PARTITION BY evaluation, model, target, horizon_days, metric, decile
      ORDER BY business_date
    ) AS run_number
  FROM performance
  WHERE
    decile = 0
), history AS (
  SELECT
    cur.business_date,
    cur.evaluation,
    cur.model,
    cur.target,
    cur.horizon_days,
    cur.metric,
    cur.decile,
    COUNT(prev.value) AS history_runs,
    AVG(prev.value) AS history_mean,
    STRING_AGG(
      CAST(prev.business_date AS TEXT) || ': ' || CAST(ROUND(prev.value, 4) AS TEXT),
      ', '
      ORDER BY prev.business_date
    ) AS history
  FROM series AS cur
  JOIN series AS prev
    ON prev.evaluation = cur.evaluation
    AND prev.model = cur.model
    AND prev.target = cur.target
    AND prev.horizon_days = cur.horizon_days
    AND prev.metric = cur.metric
    AND prev.decile = cur.decile
    AND prev.run_number BETWEEN cur.run_number - @VAR('health_history_runs') AND cur.run_number - 1
  GROUP BY
    cur.business_date,
    cur.evaluation,
    cur.model,
    cur.target,
    cur.horizon_days,
    cur.metric,
    cur.decile
), gated AS (
  SELECT
    p.business_date,
    p.evaluation,
    p.model,
    p.target,
    p.origin_date,
    p.horizon_days,
    p.metric,
    p.decile,
    p.value,
    p.customers,
    CASE
      WHEN p.decile <> 0
      THEN NULL
      WHEN p.metric = 'roc_auc' AND p.model = 'churn_model'
      THEN 'auc'
      WHEN p.metric = 'calibration_gap' AND p.model = 'churn_model'
      THEN 'calibration'
      WHEN p.metric = 'aggregate_error'
      THEN 'value_error'
    END AS gate,
    COALESCE(h.history_runs, 0) AS history_runs,
    h.history_mean,
    h.history
  FROM performance AS p
  LEFT JOIN history AS h
    ON h.business_date = p.business_date
    AND h.evaluation = p.evaluation
    AND h.model = p.model
    AND h.target = p.target
    AND h.horizon_days = p.horizon_days
    AND h.metric = p.metric
    AND h.decile = p.decile
), thresholds AS (
  SELECT
    g.*,
    CAST(CASE g.gate
      WHEN 'auc' THEN @VAR('health_auc_warn')
      WHEN 'calibration' THEN @VAR('health_calibration_gap_warn')
      WHEN 'value_error' THEN @VAR('health_value_error_warn')
    END AS DOUBLE) AS warn_threshold,
    CAST(CASE g.gate
      WHEN 'auc' THEN @VAR('health_auc_fail')
      WHEN 'calibration' THEN @VAR('health_calibration_gap_fail')
      WHEN 'value_error' THEN @VAR('health_value_error_fail')
    END AS DOUBLE) AS fail_threshold,
    g.history_runs >= @VAR('health_history_min_runs') AS has_history,
    g.history_mean - g.value AS auc_drop
  FROM gated AS g
), judged AS (
  SELECT
    t.*,
    CASE
      WHEN t.gate IS NULL
      THEN NULL
      WHEN t.customers < @VAR('health_min_customers')
      THEN 'too_few'
      WHEN t.value IS NULL OR ISNAN(t.value)
      THEN 'fail'
      WHEN t.gate = 'auc'
      AND (
        t.value < t.fail_threshold OR (t.has_history AND t.auc_drop > @VAR('health_auc_drop_fail'))
      )
      THEN 'fail'
      WHEN t.gate = 'auc'
      AND (
        t.value < t.warn_threshold OR (t.has_history AND t.auc_drop > @VAR('health_auc_drop_warn'))
      )
      THEN 'warn'
      WHEN t.gate = 'calibration' AND t.value > t.fail_threshold
      THEN 'fail'
      WHEN t.gate = 'calibration' AND t.value > t.warn_threshold
      THEN 'warn'
      WHEN t.gate = 'value_error' AND ABS(t.value) > t.fail_threshold
      THEN 'fail'
      WHEN t.gate = 'value_error' AND ABS(t.value) > t.warn_threshold
      THEN 'warn'
      ELSE 'ok'
    END AS health_status
  FROM thresholds AS t
)
SELECT
  business_date,
  evaluation,
  model,
  target,
  origin_date,
  horizon_days,
  metric,
  decile,
  value,
  customers,
  gate,
  warn_threshold,
  fail_threshold,
  history_runs,
  history_mean,
  history,
  health_status,
  CASE
    WHEN gate IS NOT NULL
    THEN evaluation || ' ' || model || ' ' || target || ' ' || CAST(horizon_days AS TEXT) || 'd ' || metric || ' = ' || COALESCE(CAST(ROUND(value, 4) AS TEXT), 'null') || ' on ' || CAST(customers AS TEXT) || ' customers: ' || health_status || ' (' || CASE gate
      WHEN 'auc'
      THEN 'warn below ' || CAST(warn_threshold AS TEXT) || ', fail below ' || CAST(fail_threshold AS TEXT) || ' or a drop of more than ' || CAST(@VAR('health_auc_drop_warn') AS TEXT) || ' / ' || CAST(@VAR('health_auc_drop_fail') AS TEXT) || ' from the recent mean'
      WHEN 'calibration'
      THEN 'warn above ' || CAST(warn_threshold AS TEXT) || ', fail above ' || CAST(fail_threshold AS TEXT)
      ELSE 'warn outside +-' || CAST(warn_threshold AS TEXT) || ', fail outside +-' || CAST(fail_threshold AS TEXT)
    END || '); recent history: ' || CASE
      WHEN history_runs = 0
      THEN 'none'
      ELSE CAST(history_runs AS TEXT) || ' runs, mean ' || CAST(ROUND(history_mean, 4) AS TEXT) || ' (' || history || ')'
    END
  END AS health_explanation
FROM judged
