/* The remaining value is shared out exactly: revenue at risk (90 days, reachable customers),
   value kept and value already lost are each >= 0 and add up to predicted_remaining_clv_usd
   within a cent. A row that breaks this fails. */
AUDIT (
  name risk_within_remaining_value,
  blocking TRUE
);

SELECT *
FROM @this_model
WHERE
  revenue_at_risk_usd < 0
  OR value_kept_usd < 0
  OR value_lost_usd < 0
  OR ABS(revenue_at_risk_usd + value_kept_usd + value_lost_usd - predicted_remaining_clv_usd) > 0.01
