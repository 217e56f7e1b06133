/* An interval's quantiles: 0 <= low <= middle <= high (columns given as arguments). */
AUDIT (
  name quantiles_in_order,
  blocking TRUE
);

SELECT
  *
FROM @this_model
WHERE
  @low < 0 OR @low > @middle + 0.000001 OR @middle > @high + 0.000001
