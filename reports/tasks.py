"""Report work on the ``reports`` queue (routed by module in celery_app)."""

from celery import shared_task
from django.db import DatabaseError

from ml.models import Analysis
from portal.email import EMAIL_TASK_OPTIONS
from reports import dicom_results, outbox, services
from reports.models import ReportVersion

#: Passing trouble (a locked database, storage that does not answer) is retried with backoff.
RETRY_OPTIONS = {"autoretry_for": (DatabaseError, OSError), "retry_backoff": 5, "max_retries": 5}


@shared_task(acks_late=True, reject_on_worker_lost=True, **RETRY_OPTIONS)
def create_draft_report(*, analysis_id):
    """Called by the pipeline after an analysis succeeds; safe to deliver twice (see services.create_draft_report)."""
    analysis = Analysis.objects.filter(pk=analysis_id).first()
    if analysis is not None:
        services.create_draft_report(analysis=analysis)


@shared_task(acks_late=True, reject_on_worker_lost=True, **RETRY_OPTIONS)
def render_report_pdf(*, version_id):
    """Render and store one version's PDF; a signed version that already has its PDF is left alone."""
    version = ReportVersion.objects.filter(pk=version_id).first()
    if version is not None:
        services.store_report_pdf(version=version)


@shared_task(acks_late=True, reject_on_worker_lost=True, **RETRY_OPTIONS)
def make_result_objects(*, analysis_id):
    """After an analysis succeeds: its SEG and SR, stored in the study and queued for the destinations."""
    analysis = Analysis.objects.filter(pk=analysis_id).first()
    if analysis is not None:
        dicom_results.make_analysis_result_objects(analysis=analysis)


@shared_task(acks_late=True, reject_on_worker_lost=True, **RETRY_OPTIONS)
def make_signed_report_object(*, version_id):
    """After a version is signed: its Encapsulated PDF, stored in the study and queued for the destinations."""
    version = ReportVersion.objects.filter(pk=version_id).first()
    if version is not None:
        dicom_results.make_signed_report_object(version=version)


@shared_task(acks_late=True, reject_on_worker_lost=True, **RETRY_OPTIONS)
def send_outbox_item(*, item_id):
    """Send one outbox item if it is due; a destination that is down schedules the next attempt itself."""
    outbox.send_item(item_id=item_id)


@shared_task(acks_late=True)
def send_due_outbox_items():
    """Celery beat, every minute: sends what is due, including items whose scheduled task was lost."""
    outbox.send_due_items()


@shared_task(**EMAIL_TASK_OPTIONS)
def send_report_ready_email(*, version_id, site_url=None):
    """Tell the patient that a signed version is waiting (see services.notify_patient); retried if mail fails."""
    version = ReportVersion.objects.filter(pk=version_id).select_related("report__study__patient__user").first()
    if version is not None:
        services.notify_patient(version=version, site_url=site_url)
