/* The fitted models behind today's predictions, for the model-health page: the churn model's
   coefficients (int_churn_model: what drives the churn log-odds now, per standardised feature)
   and the purchase and spend models' parameters with their standard errors and 95% intervals
   (int_clv_model_fit, clv/stats/uncertainty.py; null where a capped fit has none). The serving
   file holds the marts only, so the page reads them here.
   Grain: one row per model and parameter. */
MODEL (
  name marts.mart_model_parameters,
  kind FULL,
  grain (model, parameter),
  tags [marts, ledger],
  audits (
    unique_combination_of_columns(columns := (model, parameter)),
    not_null(columns := (model, parameter, estimate, fitted_as_of))
  ),
  description 'Churn model coefficients and BG/NBD and Gamma-Gamma parameters with their 95% intervals.',
  column_descriptions (
    model = 'churn_model, bgnbd or gamma_gamma',
    parameter = 'A churn model feature (or intercept), or a parameter of the fit (r, alpha, a, b; p, q, v)',
    estimate = 'Coefficient of the standardised feature, or the fitted parameter',
    standard_error = 'Standard error of the parameter (null for the churn coefficients and capped fits)',
    lower_95 = 'Lower end of the 95% interval',
    upper_95 = 'Upper end of the 95% interval',
    description = 'What the parameter or feature means',
    fitted_as_of = 'Date of the data the model was fitted to (the churn model: its training cutoff)'
  )
);

WITH churn AS (
  SELECT
    'churn_model' AS model,
    feature AS parameter,
    coefficient AS estimate,
    CAST(NULL AS DOUBLE) AS standard_error,
    CAST(NULL AS DOUBLE) AS lower_95,
    CAST(NULL AS DOUBLE) AS upper_95,
    description,
    trained_as_of AS fitted_as_of
  FROM intermediate.int_churn_model
), parameters AS (
  SELECT 'bgnbd' AS model, 'r' AS parameter, bgnbd_r AS estimate, bgnbd_r_se AS standard_error, bgnbd_r_lower_95 AS lower_95, bgnbd_r_upper_95 AS upper_95, 'shape of the purchase rate across customers (Gamma)' AS description, business_date AS fitted_as_of FROM intermediate.int_clv_model_fit
  UNION ALL
  SELECT 'bgnbd', 'alpha', bgnbd_alpha, bgnbd_alpha_se, bgnbd_alpha_lower_95, bgnbd_alpha_upper_95, 'scale of the purchase rate (in clv_time_unit)', business_date FROM intermediate.int_clv_model_fit
  UNION ALL
  SELECT 'bgnbd', 'a', bgnbd_a, bgnbd_a_se, bgnbd_a_lower_95, bgnbd_a_upper_95, 'dropout after a purchase, Beta(a, b)', business_date FROM intermediate.int_clv_model_fit
  UNION ALL
  SELECT 'bgnbd', 'b', bgnbd_b, bgnbd_b_se, bgnbd_b_lower_95, bgnbd_b_upper_95, 'dropout after a purchase, Beta(a, b)', business_date FROM intermediate.int_clv_model_fit
  UNION ALL
  SELECT 'gamma_gamma', 'p', gg_p, gg_p_se, gg_p_lower_95, gg_p_upper_95, 'shape of the value of a purchase', business_date FROM intermediate.int_clv_model_fit
  UNION ALL
  SELECT 'gamma_gamma', 'q', gg_q, gg_q_se, gg_q_lower_95, gg_q_upper_95, 'shape of the customers'' mean value', business_date FROM intermediate.int_clv_model_fit
  UNION ALL
  SELECT 'gamma_gamma', 'v', gg_v, gg_v_se, gg_v_lower_95, gg_v_upper_95, 'scale of the customers'' mean value', business_date FROM intermediate.int_clv_model_fit
), unioned AS (
  SELECT * FROM churn
  UNION ALL
  SELECT * FROM parameters
)
SELECT
  model,
  parameter,
  CAST(estimate AS DOUBLE) AS estimate,
  CAST(standard_error AS DOUBLE) AS standard_error,
  CAST(lower_95 AS DOUBLE) AS lower_95,
  CAST(upper_95 AS DOUBLE) AS upper_95,
  description,
  CAST(fitted_as_of AS DATE) AS fitted_as_of
FROM unioned
