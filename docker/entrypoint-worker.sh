#!/bin/sh
# A Celery worker for the queues in RADASSIST_WORKER_QUEUES. Jobs are acknowledged late and each
# process takes one job at a time (celery_app.py): a killed worker's job goes back to the queue.
# GPU images set RADASSIST_WORKER_QUEUES=gpu and RADASSIST_WORKER_CONCURRENCY=1 (one process per GPU).
# With arguments, runs them instead (for example the MLflow server, or a management command).
set -eu
if [ "$#" -gt 0 ]; then
    exec "$@"
fi
# Workers get the longer database statement timeout (DATABASE_WORKER_STATEMENT_TIMEOUT_MS).
export RADASSIST_PROCESS_KIND=worker
exec celery -A celery_app worker \
    --queues "${RADASSIST_WORKER_QUEUES:?set RADASSIST_WORKER_QUEUES, for example ingest,reports}" \
    --concurrency "${RADASSIST_WORKER_CONCURRENCY:-2}" \
    --prefetch-multiplier 1 \
    --hostname "${RADASSIST_WORKER_NAME:-worker}@%h" \
    --loglevel "${RADASSIST_LOG_LEVEL:-INFO}"
