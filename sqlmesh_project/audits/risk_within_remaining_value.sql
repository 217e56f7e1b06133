/* Revenue at risk can never exceed the value still to come: a row that breaks this fails. */
AUDIT (
  name risk_within_remaining_value,
  blocking TRUE
);

SELECT *
FROM @this_model
WHERE
  revenue_at_risk_usd > predicted_remaining_clv_usd + 0.01
