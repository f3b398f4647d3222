#!/bin/sh
# Runs once, when the PostgreSQL volume is first initialised: settings for every connection to the portal's
# database, including those that come through PgBouncer (which cannot pass per-connection options).
# JIT compilation costs more than the short list queries it would speed up; web requests are cut off after
# 30 s (the portal's own connections set their own limit when they connect directly, see docs/production.md).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
ALTER DATABASE "${POSTGRES_DB}" SET jit = off;
SQL
