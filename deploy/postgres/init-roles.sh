#!/usr/bin/env bash
# Runs once, when the PostgreSQL volume is first created (the image runs the executable scripts of
# /docker-entrypoint-initdb.d as the superuser): one role per database, each owning only its own,
# with its password from .env —
#   airflow   Airflow's metadata and the Celery result backend (database airflow)
#   sqlmesh   SQLMesh's state (database sqlmesh)
#   metabase  Metabase's application database (database metabase)
# No role is a superuser or may create databases or roles, and only a database's owner (and the
# superuser) may connect to it. The passwords reach psql as variables, quoted by psql itself.
set -euo pipefail

for var in AIRFLOW_DB_PASSWORD SQLMESH_DB_PASSWORD METABASE_DB_PASSWORD; do
  if [ -z "${!var:-}" ]; then
    echo "init-roles.sh: $var is empty; set it in .env" >&2
    exit 1
  fi
done

psql --no-psqlrc -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
  -v airflow_password="$AIRFLOW_DB_PASSWORD" \
  -v sqlmesh_password="$SQLMESH_DB_PASSWORD" \
  -v metabase_password="$METABASE_DB_PASSWORD" <<'SQL'
CREATE ROLE airflow LOGIN PASSWORD :'airflow_password';
CREATE DATABASE airflow OWNER airflow;
REVOKE ALL ON DATABASE airflow FROM PUBLIC;

CREATE ROLE sqlmesh LOGIN PASSWORD :'sqlmesh_password';
CREATE DATABASE sqlmesh OWNER sqlmesh;
REVOKE ALL ON DATABASE sqlmesh FROM PUBLIC;

CREATE ROLE metabase LOGIN PASSWORD :'metabase_password';
CREATE DATABASE metabase OWNER metabase;
REVOKE ALL ON DATABASE metabase FROM PUBLIC;
SQL
