/* SCD type 2: a key's versions do not overlap; a version is closed no later than the next one of
   the same key opens (an open version overlaps every later one). */
AUDIT (
  name scd2_versions_do_not_overlap,
  defaults (valid_from = valid_from, valid_to = valid_to),
  blocking TRUE
);

WITH versions AS (
  SELECT
    @key AS key_value,
    @valid_from AS valid_from,
    @valid_to AS valid_to
  FROM @this_model
)
SELECT
  a.key_value,
  a.valid_from,
  a.valid_to,
  b.valid_from AS other_valid_from
FROM versions AS a
JOIN versions AS b
  ON a.key_value = b.key_value
  AND a.valid_from < b.valid_from
  AND (
    a.valid_to IS NULL OR a.valid_to > b.valid_from
  )
