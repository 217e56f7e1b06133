/* Countries customers live in and ship to, with their region. Grain: one row per ISO-3166
   alpha-2 code. */
MODEL (
  name seeds.countries,
  kind SEED (
    path '$root/seeds/countries.csv'
  ),
  grain country_code,
  tags [seed],
  audits (unique_values(columns := (country_code)), not_null(columns := (country_code))),
  description 'ISO-3166 countries with name, region and subregion.',
  columns (
    country_code TEXT,
    country_name TEXT,
    region TEXT,
    subregion TEXT
  ),
  column_descriptions (
    country_code = 'ISO-3166 alpha-2 code',
    country_name = 'English short name',
    region = 'Continent-level region',
    subregion = 'UN geoscheme subregion'
  )
);
