/* SCD type 2: every key keeps a current version (valid_to NULL), so a change never closes a
   customer's history without opening the next version. */
AUDIT (
  name scd2_every_key_current,
  defaults (valid_to = valid_to),
  blocking TRUE
);

SELECT DISTINCT
  @key AS key_value
FROM @this_model
WHERE
  NOT @key IN (
    SELECT
      @key
    FROM @this_model
    WHERE
      @valid_to IS NULL
  )
