/* BG/NBD predictions: the expected 12-month value (weighted by P(alive)) never exceeds the value
   if the customer is still active, and 90 days never expect more purchases than 365. */
AUDIT (
  name expected_value_within_value_if_active,
  blocking TRUE
);

SELECT
  *
FROM @this_model
WHERE
  bgnbd_clv_12m_usd > predicted_remaining_clv_usd + 0.000001
  OR expected_purchases_90d > expected_purchases_365d + 0.000001
