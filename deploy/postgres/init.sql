-- Runs once, when the PostgreSQL volume is first created: the databases besides Airflow's own
-- (POSTGRES_DB): SQLMesh's state and Metabase's application database.
CREATE DATABASE sqlmesh;
CREATE DATABASE metabase;
