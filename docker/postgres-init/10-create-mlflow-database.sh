#!/bin/sh
# Runs once, when the PostgreSQL volume is first initialised: MLflow gets its own database and role,
# separate from the portal's, so either can be backed up, restored or upgraded on its own.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
CREATE ROLE mlflow LOGIN PASSWORD '${MLFLOW_DB_PASSWORD}';
CREATE DATABASE mlflow OWNER mlflow;
SQL
