/* A retention life table balances: month 0 starts with every subscription at full survival, no
   month loses more subscriptions than it had at risk, and the next month's risk set is this
   month's less those cancelled and censored in it. A row that breaks this fails. */
AUDIT (
  name life_table_balances,
  blocking TRUE
);

SELECT *
FROM (
  SELECT
    *,
    LEAD(subscriptions_at_risk) OVER (PARTITION BY plan_id, cohort ORDER BY months_since_start) AS next_at_risk
  FROM @this_model
) AS t
WHERE
  subscriptions_cancelled + subscriptions_censored > subscriptions_at_risk
  OR next_at_risk <> subscriptions_at_risk - subscriptions_cancelled - subscriptions_censored
  OR (months_since_start = 0 AND (subscriptions_at_risk <> subscriptions_started OR survival <> 1))
