"""The analysis task on the ``gpu`` queue.

TensorFlow is never imported here at module level: Celery's prefork parent imports this module and
then forks its pool, and TensorFlow (and CUDA) do not survive a fork. The inference engine
(``ml.inference.engine_for``) is made on first use inside the pool process, which then keeps it and
the loaded models for every later series; it sizes TensorFlow's threads to the process's CPU
allotment (``RADASSIST_TF_THREADS`` overrides) when it first loads the models.
"""

import logging

import botocore.exceptions
from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError

from ml import services

logger = logging.getLogger(__name__)

#: Errors that go away by themselves: the database or the object storage is briefly unreachable.
TRANSIENT_ERRORS = (
    OperationalError,
    InterfaceError,
    botocore.exceptions.ConnectionError,
    botocore.exceptions.HTTPClientError,
    ConnectionError,
    TimeoutError,
)

def inference_engine():
    """The pool process's engine for the configured registry (models load on its first series)."""
    from ml.inference import engine_for

    return engine_for(settings.MLFLOW_TRACKING_URI)


def retry_countdown(retries):
    """Exponential backoff: 5 s, 10 s, 20 s ... capped (settings)."""
    return min(settings.ANALYSIS_RETRY_BACKOFF_SECONDS * 2**retries, settings.ANALYSIS_RETRY_BACKOFF_MAX_SECONDS)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=settings.ANALYSIS_MAX_RETRIES)
def queue_series_analysis(self, *, series_id):
    """Queue the analysis of a completed series (routed to the CPU ``ingest`` queue in celery_app)."""
    try:
        services.queue_analysis(series_id=series_id)
    except TRANSIENT_ERRORS as error:
        raise self.retry(exc=error, countdown=retry_countdown(self.request.retries)) from error


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.ANALYSIS_SOFT_TIME_LIMIT,
    time_limit=settings.ANALYSIS_TIME_LIMIT,
    max_retries=settings.ANALYSIS_MAX_RETRIES,
)
def analyse_series(self, *, analysis_id):
    """Run both networks over one series and store the results; queues the report draft on success."""
    try:
        claim = services.claim_analysis(analysis_id=analysis_id, task_id=self.request.id)
    except TRANSIENT_ERRORS as error:
        raise self.retry(exc=error, countdown=retry_countdown(self.request.retries)) from error
    if claim == services.Claim.SKIP:
        return
    if claim == services.Claim.WAIT:
        # Another message for this analysis is running: look again once its heartbeat could be stale.
        raise self.retry(countdown=settings.ANALYSIS_HEARTBEAT_TIMEOUT_SECONDS, max_retries=None)
    try:
        services.run_analysis(analysis_id=analysis_id, engine=inference_engine())
    except TRANSIENT_ERRORS as error:
        logger.warning("analysis %s: transient error, retrying: %s", analysis_id, error)
        _give_back_attempt(analysis_id)
        if self.request.retries >= self.max_retries:
            _fail(analysis_id, services.UNAVAILABLE_REASON)
            return
        raise self.retry(exc=error, countdown=retry_countdown(self.request.retries)) from error
    except services.AnalysisFailed as error:
        _fail(analysis_id, error.reason)
    except SoftTimeLimitExceeded:
        _fail(analysis_id, services.TIMEOUT_REASON)
    except Exception:
        logger.exception("analysis %s failed unexpectedly", analysis_id)
        _fail(analysis_id, services.UNEXPECTED_REASON)


def _give_back_attempt(analysis_id):
    try:
        services.give_back_attempt(analysis_id=analysis_id)
    except TRANSIENT_ERRORS:
        logger.warning("analysis %s: could not give back the attempt; it stays counted", analysis_id)


def _fail(analysis_id, reason):
    logger.info("analysis %s failed: %s", analysis_id, reason)
    services.fail_analysis(analysis_id=analysis_id, reason=reason)
