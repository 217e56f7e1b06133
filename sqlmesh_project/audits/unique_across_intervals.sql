/* A key unique in the whole table, not only in the interval being audited. For an
   INCREMENTAL_BY_TIME_RANGE model @this_model holds just that interval, so a key the model wrote
   before under another date (a corrected event date outside the lookback) would pass the built-in
   unique_values. The model passes its own name as `model`: the interval's keys are counted in the
   whole table, which costs a semi-join instead of a full GROUP BY. */
AUDIT (
  name unique_across_intervals,
  blocking TRUE
);

SELECT
  @column AS key_value,
  COUNT(*) AS rows_with_key
FROM @model
WHERE
  @column IN (
    SELECT
      @column
    FROM @this_model
  )
GROUP BY
  @column
HAVING
  COUNT(*) > 1
