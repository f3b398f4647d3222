"""Celery tasks of the ingest queue."""

from celery import shared_task

from scans import ingest


@shared_task(acks_late=True, reject_on_worker_lost=True)
def complete_series_if_quiet(*, series_id):
    """Completes a STOW-RS series once nothing arrived for the quiet period (reschedules itself until then)."""
    ingest.complete_series_if_quiet(series_id=series_id)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def close_abandoned_batches():
    """Periodic (Celery beat, celery_app.beat_schedule): close upload batches left open and idle."""
    ingest.close_abandoned_batches()
