/* The remaining value (orders R + subscriptions V) is shared out exactly: revenue at risk (90
   days, reachable customers), value kept and value already lost are each >= 0 and add up to
   predicted_remaining_clv_usd within a cent; the subscription part of the revenue at risk is
   >= 0 and within the whole. A row that breaks this fails. */
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
  OR subscription_revenue_at_risk_usd < 0
  OR subscription_revenue_at_risk_usd > revenue_at_risk_usd + 0.01
  OR ABS(revenue_at_risk_usd + value_kept_usd + value_lost_usd - predicted_remaining_clv_usd) > 0.01
