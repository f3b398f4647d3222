#!/bin/sh
# The web container: optionally apply migrations first (single-replica setups; the compose file runs
# them once in the `migrate` service instead), then hand over to the command (gunicorn).
set -eu
if [ "${RADASSIST_MIGRATE_ON_START:-false}" = "true" ]; then
    python manage.py migrate --noinput
fi
exec "$@"
