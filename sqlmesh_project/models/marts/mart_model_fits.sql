/* Which fit scored the marts, and how old it is. The churn model (int_churn_model) and the
   subscription renewal model (int_subscription_model_fit) are refitted every model_refit_days days
   and score every day with their latest fit in between (macros/refit.py; CLV_FORCE_REFIT=1 forces a
   refit); the purchase models (BG/NBD or Pareto/NBD with Gamma-Gamma, int_clv_model_fit) are fitted
   on every run. For the dashboard's model panel and anyone asking "since when do these scores use
   the same coefficients?". Grain: one row per model_name. */
MODEL (
  name marts.mart_model_fits,
  kind FULL,
  grain model_name,
  tags [marts],
  audits (
    unique_values(columns := (model_name)),
    not_null(columns := (model_name, source_model, fit_date, fit_age_days)),
    accepted_range(column := fit_age_days, min_v := 0)
  ),
  description 'Each fitted model: the business date of its fit, its age on the business date, and when it is refitted.',
  column_descriptions (
    model_name = 'churn, subscription renewal or purchase',
    source_model = 'The intermediate model holding the fit',
    model_version = 'Model name and version as the fit records it (the churn model), or the purchase model (bgnbd or pareto_nbd)',
    fit_date = 'Business date on which the fit was made',
    trained_as_of = 'Date of the data the fit learned from: the churn model''s feature cutoff; the fit date for the others',
    fit_age_days = 'Days from fit_date to the business date: 0 on a refit day',
    refit_every_days = 'Refit cadence in days (variable model_refit_days); null when refitted on every run',
    next_refit_date = 'First business date on which the fit is redone; null when refitted on every run',
    business_date = 'Business date of the marts'
  )
);

WITH fits AS (
  SELECT
    'churn' AS model_name,
    'intermediate.int_churn_model' AS source_model,
    MAX(churn_model) AS model_version,
    MAX(fit_date) AS fit_date,
    MAX(trained_as_of) AS trained_as_of,
    TRUE AS on_cadence
  FROM intermediate.int_churn_model
  UNION ALL
  SELECT
    'subscription renewal' AS model_name,
    'intermediate.int_subscription_model_fit' AS source_model,
    'sbg' AS model_version,
    MAX(business_date) AS fit_date,
    MAX(business_date) AS trained_as_of,
    TRUE AS on_cadence
  FROM intermediate.int_subscription_model_fit
  UNION ALL
  SELECT
    'purchase' AS model_name,
    'intermediate.int_clv_model_fit' AS source_model,
    MAX(purchase_model) AS model_version,
    MAX(business_date) AS fit_date,
    MAX(business_date) AS trained_as_of,
    FALSE AS on_cadence
  FROM intermediate.int_clv_model_fit
)
SELECT
  model_name,
  source_model,
  model_version,
  fit_date,
  trained_as_of,
  DATE_DIFF('DAY', fit_date, @business_date()) AS fit_age_days,
  CASE WHEN on_cadence THEN @VAR('model_refit_days') END AS refit_every_days,
  CASE
    WHEN on_cadence THEN CAST(fit_date + @VAR('model_refit_days') * INTERVAL '1' DAY AS DATE)
  END AS next_refit_date,
  @business_date() AS business_date
FROM fits
