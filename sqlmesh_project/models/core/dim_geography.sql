/* Places customers live in and ship to: country -> region -> city, from customer profiles and
   shipping addresses, with names and regions from the country reference. Grain: one row per
   geo_id (a city within a country). */
MODEL (
  name core.dim_geography,
  kind FULL,
  grain geo_id,
  tags [core, dimension],
  audits (unique_values(columns := (geo_id)), not_null(columns := (geo_id, country_code))),
  description 'Country, region and city hierarchy.',
  column_descriptions (
    geo_id = 'Surrogate key of country and city',
    country_code = 'ISO-3166 alpha-2 code',
    country_name = 'Country name; Unknown when not in the reference',
    region = 'Region; Unknown when not in the reference',
    subregion = 'Subregion; Unknown when not in the reference',
    city = 'City name'
  )
);

WITH places AS (
  SELECT DISTINCT country_code, city FROM staging.stg_customers WHERE NOT country_code IS NULL AND NOT city IS NULL
  UNION
  SELECT DISTINCT ship_country_code, ship_city FROM staging.stg_orders
  WHERE NOT ship_country_code IS NULL AND NOT ship_city IS NULL
)
SELECT
  @GENERATE_SURROGATE_KEY(p.country_code, p.city) AS geo_id,
  p.country_code,
  COALESCE(c.country_name, 'Unknown') AS country_name,
  COALESCE(c.region, 'Unknown') AS region,
  COALESCE(c.subregion, 'Unknown') AS subregion,
  p.city
FROM places AS p
LEFT JOIN seeds.countries AS c
  ON c.country_code = p.country_code
