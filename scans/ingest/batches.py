"""Upload batches: one per request or upload session; closing a web or REST batch completes its series."""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Max, Q
from django.utils import timezone

from accounts.models import Patient
from portal.audit import record_event
from portal.errors import UserFacingError
from portal.models import AuditAction
from scans.ingest.completion import complete_series
from scans.models import FileOutcome, Series, UploadBatch, UploadedFile


class UploadNotAllowed(UserFacingError):
    """An upload that may not even start: a patient record the uploader may not file scans under."""

    status_code = 400


def open_batch(*, hospital, uploaded_by, source, patient=None):
    """Start a batch. A patient uploader's batch is always tied to their own record."""
    if uploaded_by.is_patient:
        own_record = Patient.objects.filter(user=uploaded_by, hospital=hospital).first()
        if own_record is None:
            raise UploadNotAllowed("Your login is not linked to a patient record; ask the hospital to link it.")
        if patient is not None and patient.pk != own_record.pk:
            raise UploadNotAllowed("You can only upload scans to your own record.")
        patient = own_record
    elif patient is not None and patient.hospital_id != hospital.pk:
        raise UploadNotAllowed("That patient is not a patient of this hospital.")
    return UploadBatch.objects.create(hospital=hospital, uploaded_by=uploaded_by, source=source, patient=patient)


def close_batch(*, batch):
    """Close the batch; web and REST batches (and DICOM associations, unless their hospital chose the quiet
    period) complete every series they stored into right away."""
    with transaction.atomic():
        locked = UploadBatch.objects.select_for_update().get(pk=batch.pk)
        if locked.closed_at is None:
            locked.closed_at = timezone.now()
            locked.save(update_fields=["closed_at"])
            outcomes = locked.files.values("outcome").annotate(files=Count("pk"))
            counts = {row["outcome"]: row["files"] for row in outcomes}
            record_event(action=AuditAction.UPLOAD, target=locked, actor=locked.uploaded_by, detail=counts)
    batch.closed_at = locked.closed_at
    if not batch.completes_series_on_close:
        return batch
    touched = Series.objects.filter(
        pk__in=UploadedFile.objects.filter(batch=batch, outcome=FileOutcome.STORED).values("instance__series")
    )
    for series in touched:
        complete_series(series=series)
    return batch


def close_abandoned_batches(*, now=None):
    """Close upload batches nobody finished (a browser closed mid-upload, a script that died).

    What they stored is kept and its series complete as if the uploader had closed the batch;
    otherwise those series would stay "receiving" for ever. Runs every few minutes from Celery beat.
    Returns the number of batches closed.
    """
    now = now or timezone.now()
    idle_since = now - timedelta(seconds=settings.UPLOAD_BATCH_IDLE_SECONDS)
    abandoned = (
        UploadBatch.objects.filter(closed_at__isnull=True, created_at__lt=idle_since)
        .annotate(last_file_at=Max("files__created_at"))
        .filter(Q(last_file_at__isnull=True) | Q(last_file_at__lt=idle_since))
    )
    closed = 0
    for batch in abandoned:
        close_batch(batch=batch)
        closed += 1
    return closed
