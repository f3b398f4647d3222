"""Queueing analyses: the web process's side of the pipeline.

Nothing here imports TensorFlow: the champion model versions are read from the MLflow registry
through an alias lookup (``ml.registry.champion_version``), which touches only the tracking store.
The heavy work happens in ``ml.tasks.analyse_series`` on the ``gpu`` queue.
"""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ml.models import Analysis, AnalysisStatus
from portal.audit import record_event
from portal.errors import UserFacingError
from portal.models import AuditAction
from scans.models import Series, SeriesStatus

logger = logging.getLogger(__name__)

NO_MODELS_REASON = (
    "No analysis model is installed yet. Ask your administrator to install one "
    "(python manage.py bootstrap_models), then choose Reanalyse."
)


class ModelsNotInstalled(UserFacingError):
    status_code = 503

    def __init__(self):
        super().__init__(NO_MODELS_REASON)


class SeriesNotAnalysable(UserFacingError):
    status_code = 409


@dataclass(frozen=True)
class ModelVersions:
    """The registered versions an analysis runs with; part of the analysis's natural key."""

    classifier_name: str
    classifier_version: str
    segmenter_name: str
    segmenter_version: str
    is_demo: bool

    def as_fields(self):
        return {
            "classifier_name": self.classifier_name,
            "classifier_version": self.classifier_version,
            "segmenter_name": self.segmenter_name,
            "segmenter_version": self.segmenter_version,
        }


def champion_model_versions():
    """The current champions of both models, or raise ModelsNotInstalled."""
    from ml.registry import CLASSIFIER_MODEL_NAME, SEGMENTER_MODEL_NAME, champion_version

    classifier = champion_version(CLASSIFIER_MODEL_NAME, tracking_uri=settings.MLFLOW_TRACKING_URI)
    segmenter = champion_version(SEGMENTER_MODEL_NAME, tracking_uri=settings.MLFLOW_TRACKING_URI)
    if classifier is None or segmenter is None:
        raise ModelsNotInstalled()
    return ModelVersions(
        classifier_name=classifier.name,
        classifier_version=str(classifier.version),
        segmenter_name=segmenter.name,
        segmenter_version=str(segmenter.version),
        is_demo=classifier.is_demo or segmenter.is_demo,
    )


def _send_analysis_task(analysis_id):
    from ml.tasks import analyse_series

    analysis_id = int(analysis_id)
    transaction.on_commit(lambda: analyse_series.delay(analysis_id=analysis_id))


def _mark_series_queued(series, *, slices_total):
    series.status = SeriesStatus.QUEUED
    series.status_reason = ""
    series.slices_done = 0
    series.slices_total = slices_total
    series.save(update_fields=["status", "status_reason", "slices_done", "slices_total", "updated_at"])


def _new_generation(*, series, versions, requested_by):
    """Make the next generation's analysis and mark every earlier one superseded."""
    now = timezone.now()
    latest = series.analyses.order_by("-generation").first()
    series.analyses.filter(superseded_at__isnull=True).update(superseded_at=now)
    return Analysis.objects.create(
        hospital_id=series.hospital_id,
        series=series,
        generation=latest.generation + 1 if latest else 1,
        requested_by=requested_by,
        is_demo_model=versions.is_demo,
        slices_total=series.instances.count(),
        **versions.as_fields(),
    )


def queue_analysis(*, series_id):
    """Queue the analysis of a series that has just completed (called by ingest, on commit).

    Idempotent: called again for the same series and champion versions, it returns the current
    analysis instead of making a second one, and sends the task again only while that analysis
    is still waiting (a duplicate delivery is harmless: the task skips finished work). When a new
    champion was promoted since, a new generation supersedes the earlier analysis. Without any
    registered model the series is marked failed with a reason the doctor can act on.
    """
    try:
        versions = champion_model_versions()
    except ModelsNotInstalled:
        logger.warning("analysis not queued: no champion models registered", extra={"series_id": series_id})
        Series.objects.filter(pk=series_id).update(
            status=SeriesStatus.FAILED, status_reason=NO_MODELS_REASON, updated_at=timezone.now()
        )
        return None
    with transaction.atomic():
        series = Series.objects.select_for_update().get(pk=series_id)
        current = series.analyses.current().order_by("-generation").first()
        if current is not None and all(
            getattr(current, field) == value for field, value in versions.as_fields().items()
        ):
            analysis = current
            if analysis.status != AnalysisStatus.QUEUED:
                return analysis
        else:
            analysis = _new_generation(series=series, versions=versions, requested_by=None)
        _mark_series_queued(series, slices_total=analysis.slices_total)
        _send_analysis_task(analysis.pk)
    return analysis


def reanalyse_series(*, series, user, request=None):
    """Run a series again with the current champion models (a doctor's action, audited).

    The earlier analyses are kept and marked superseded; their results stay readable.
    ``series`` must already have been found through ``visible_to(user)``.
    """
    if series.status == SeriesStatus.RECEIVING:
        raise SeriesNotAnalysable("This series is still being received; it is analysed once it is complete.")
    if not series.instances.exists():
        raise SeriesNotAnalysable("This series has no images to analyse.")
    versions = champion_model_versions()
    with transaction.atomic():
        series = Series.objects.select_for_update().get(pk=series.pk)
        analysis = _new_generation(series=series, versions=versions, requested_by=user)
        _mark_series_queued(series, slices_total=analysis.slices_total)
        record_event(
            action=AuditAction.REANALYSE,
            target=series,
            actor=user,
            request=request,
            detail={"analysis_id": analysis.pk, "generation": analysis.generation, **versions.as_fields()},
        )
        _send_analysis_task(analysis.pk)
    return analysis
