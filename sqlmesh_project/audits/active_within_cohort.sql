/* Retention cohorts: a cohort never has more active customers than it acquired, in any month. */
AUDIT (
  name active_within_cohort,
  blocking TRUE
);

SELECT
  *
FROM @this_model
WHERE
  customers_active > cohort_size
