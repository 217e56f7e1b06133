/* Orders and subscription charges are never negative and refunds never positive. (The allowed
   revenue types themselves are the model's accepted_values audit.) */
AUDIT (
  name revenue_sign_matches_type,
  blocking TRUE
);

SELECT
  *
FROM @this_model
WHERE
  (
    revenue_type IN ('order', 'subscription') AND revenue_usd < 0
  )
  OR (
    revenue_type = 'refund' AND revenue_usd > 0
  )
