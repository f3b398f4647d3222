"""Ingest: every uploaded file is either stored (grouped into patient, study and series) or rejected with a reason.

The web upload, the REST API and DICOMweb STOW-RS all go through the same four calls::

    batch = open_batch(hospital=..., uploaded_by=user, source=UploadBatch.Source.WEB, patient=None)
    results = ingest_file(batch=batch, name="IM0001.dcm", fileobj=uploaded_file)   # per file, many times
    close_batch(batch=batch)

``ingest_file`` never raises for anything a user can send: each result says STORED, DUPLICATE or
REJECTED with a reason and the DICOM FailureReason code. A file is stored in storage first (with
its SHA-256 computed while it is copied), then its rows are created in one transaction; if that
transaction fails the stored file is deleted again, so no half-written file or row remains.

Patients:
- a patient who uploads: everything lands on their own record, whatever PatientID the files carry
  (a CD from another hospital carries that hospital's ID);
- a doctor who chose a patient: a DICOM file whose PatientID is not that patient's MRN is rejected,
  so that a mixed folder is never filed under the wrong patient (files without a PatientID are
  accepted for the chosen patient);
- a doctor who chose "match from DICOM PatientID": the patient is found by MRN = PatientID within
  the hospital, or created with the file's PatientName, PatientBirthDate and PatientSex.
- A study already filed under another patient of the hospital rejects the file instead of mixing.

PNG/JPG uploads: all images of one batch form one series (and one study) with generated UIDs,
modality CT (they are CT slices exported as images; they pass the same CT analysis through its
8-bit grey path), ``has_physical_scale=False`` so that measurements are in pixels, stored as 8-bit
grey PNG, ordered by arrival (the browser sends a folder in name order). The same image twice in a
batch is a duplicate.

Completion: a web or REST batch completes every series it stored into when it closes; STOW-RS
leaves completion to the quiet period (``complete_series_if_quiet``, one pending check per series).
"""

import hashlib
import io
import logging
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.files import File
from django.db import IntegrityError, transaction
from django.db.models import Count, Max, Q
from django.utils import timezone

from accounts.models import Patient
from portal.audit import record_event
from portal.errors import UserFacingError
from portal.models import AuditAction
from scans.ingest_parsing import (
    FailureReason,
    FileKind,
    RejectedFile,
    read_dicom,
    read_image,
    sniff_kind,
)
from scans.models import (
    FileOutcome,
    Instance,
    Series,
    SeriesStatus,
    Study,
    UploadBatch,
    UploadedFile,
    instance_file_path,
)

__all__ = [
    "FailureReason",
    "IngestResult",
    "RejectedFile",
    "UploadNotAllowed",
    "close_batch",
    "complete_series",
    "complete_series_if_quiet",
    "ingest_file",
    "open_batch",
]

logger = logging.getLogger(__name__)

COPY_CHUNK_BYTES = 1024 * 1024
#: Zip entries are unpacked into memory up to this size, then to a temporary file.
SPOOL_MAX_MEMORY_BYTES = 2 * 1024 * 1024
#: Entries smaller than this are never called zip bombs, whatever their compression ratio.
ZIP_RATIO_EXEMPT_BYTES = 1024 * 1024
WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")
INTERNAL_ERROR_REASON = "The file could not be stored because of an error on our side; please send it again."


class UploadNotAllowed(UserFacingError):
    """An upload that may not even start: a patient record the uploader may not file scans under."""

    status_code = 400


@dataclass
class IngestResult:
    uploaded_file: UploadedFile
    outcome: FileOutcome
    reason: str
    failure_reason: int | None
    instance: Instance | None


# Batches ------------------------------------------------------------------------------------------


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
    """Close the batch; web and REST batches complete every series they stored into right away."""
    with transaction.atomic():
        locked = UploadBatch.objects.select_for_update().get(pk=batch.pk)
        if locked.closed_at is None:
            locked.closed_at = timezone.now()
            locked.save(update_fields=["closed_at"])
            outcomes = locked.files.values("outcome").annotate(files=Count("pk"))
            counts = {row["outcome"]: row["files"] for row in outcomes}
            record_event(action=AuditAction.UPLOAD, target=locked, actor=locked.uploaded_by, detail=counts)
    batch.closed_at = locked.closed_at
    if batch.source == UploadBatch.Source.STOW:
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


# Series completion --------------------------------------------------------------------------------


def complete_series(*, series):
    """Mark a receiving series received and queue its analysis, exactly once. Returns True if it did."""
    with transaction.atomic():
        locked = Series.objects.select_for_update().get(pk=series.pk)
        if locked.status != SeriesStatus.RECEIVING:
            return False
        locked.status = SeriesStatus.RECEIVED
        locked.completed_at = timezone.now()
        locked.slices_total = locked.instances.count()
        locked.save(update_fields=["status", "completed_at", "slices_total", "updated_at"])
        series_id = locked.pk
        transaction.on_commit(lambda: _queue_analysis(series_id))
    series.status, series.completed_at = locked.status, locked.completed_at
    return True


def _queue_analysis(series_id):
    from ml.services import request_analysis

    request_analysis(series_id=series_id)


def complete_series_if_quiet(*, series_id, now=None):
    """Complete a STOW-RS series once no instance arrived for ``SERIES_QUIET_SECONDS``.

    One check is pending per series at a time: while instances keep arriving it reschedules
    itself for the end of the new quiet period, so a 1,000-instance series costs a handful of
    checks, not one per instance. The lock and the status test in :func:`complete_series` make
    completion happen once.
    """
    now = now or timezone.now()
    series = Series.objects.filter(pk=series_id, status=SeriesStatus.RECEIVING).first()
    if series is None:
        return False
    quiet_until = (series.last_instance_at or now) + timedelta(seconds=settings.SERIES_QUIET_SECONDS)
    if quiet_until > now:
        _schedule_quiet_check(series_id, countdown=(quiet_until - now).total_seconds())
        return False
    Series.objects.filter(pk=series_id).update(quiet_check_pending=False)
    return complete_series(series=series)


def _schedule_quiet_check(series_id, *, countdown):
    from scans.tasks import complete_series_if_quiet as quiet_check_task

    quiet_check_task.apply_async(kwargs={"series_id": series_id}, countdown=countdown)


# Files --------------------------------------------------------------------------------------------


def ingest_file(*, batch, name, fileobj, expected_study_uid=None):
    """Ingest one uploaded file (a zip archive gives one result per entry). Never raises for user errors."""
    name = str(name or "unnamed")[:500]
    size = _size_of(fileobj)
    if batch.closed_at is not None:
        return [_record(batch, name, size, RejectedFile(
            "This upload is already finished; start a new upload.", failure_reason=FailureReason.PROCESSING_FAILURE
        ))]
    if size > settings.INGEST_MAX_FILE_BYTES:
        return [_record(batch, name, size, _too_large(size))]
    kind = sniff_kind(fileobj)
    if kind == FileKind.ZIP:
        return _ingest_archive(batch=batch, name=name, fileobj=fileobj, size=size,
                               expected_study_uid=expected_study_uid)
    return [_ingest_single(batch=batch, name=name, fileobj=fileobj, size=size, kind=kind,
                           expected_study_uid=expected_study_uid)]


def _too_large(size):
    limit_mb = settings.INGEST_MAX_FILE_BYTES // (1024 * 1024)
    return RejectedFile(
        f"The file is {size / (1024 * 1024):,.0f} MB; files up to {limit_mb:,} MB are accepted.",
        failure_reason=FailureReason.OUT_OF_RESOURCES,
    )


def _size_of(fileobj):
    size = getattr(fileobj, "size", None)
    if isinstance(size, int):
        return size
    here = fileobj.tell()
    end = fileobj.seek(0, io.SEEK_END)
    fileobj.seek(here)
    return end


def _record(batch, name, size, what, *, outcome=None, instance=None):
    """Write the UploadedFile row and return the IngestResult; ``what`` is a RejectedFile or None."""
    if isinstance(what, RejectedFile):
        outcome, reason, failure_reason = FileOutcome.REJECTED, str(what), what.failure_reason
    else:
        reason, failure_reason = "", None
    uploaded_file = UploadedFile.objects.create(
        batch=batch, name=name, size=size, outcome=outcome, reason=reason,
        failure_reason=failure_reason, instance=instance,
    )
    return IngestResult(
        uploaded_file=uploaded_file, outcome=FileOutcome(outcome), reason=reason,
        failure_reason=failure_reason, instance=instance,
    )


def _ingest_single(*, batch, name, fileobj, size, kind, expected_study_uid):
    try:
        if kind == FileKind.DICOM:
            instance, outcome = _ingest_dicom(batch=batch, fileobj=fileobj, expected_study_uid=expected_study_uid)
        elif kind == FileKind.IMAGE:
            if expected_study_uid:
                raise RejectedFile("Only DICOM files can be stored into a study.",
                                   failure_reason=FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS)
            instance, outcome = _ingest_image(batch=batch, fileobj=fileobj)
        else:
            raise RejectedFile("Not a DICOM file (no DICM marker) and not a PNG or JPEG image.")
    except RejectedFile as rejection:
        return _record(batch, name, size, rejection)
    except Exception:
        logger.exception("ingest failed", extra={"batch_id": batch.pk})
        return _record(batch, name, size, RejectedFile(
            INTERNAL_ERROR_REASON, failure_reason=FailureReason.PROCESSING_FAILURE
        ))
    return _record(batch, name, size, None, outcome=outcome, instance=instance)


def _ingest_dicom(*, batch, fileobj, expected_study_uid):
    header = read_dicom(fileobj, allowed_modalities=settings.INGEST_ALLOWED_MODALITIES)
    if expected_study_uid and header.study_instance_uid != expected_study_uid:
        raise RejectedFile(
            f"This instance belongs to study {header.study_instance_uid}, not to {expected_study_uid}.",
            failure_reason=FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
        )
    existing = Instance.objects.for_hospital(batch.hospital_id).filter(
        sop_instance_uid=header.sop_instance_uid
    ).first()
    if existing is not None:
        return existing, FileOutcome.DUPLICATE
    _check_patient_id(batch, header)
    path = instance_file_path(
        hospital_id=batch.hospital_id,
        study_instance_uid=header.study_instance_uid,
        series_instance_uid=header.series_instance_uid,
        sop_instance_uid=header.sop_instance_uid,
        suffix=".dcm",
    )

    def create_rows(stored_name, sha256, file_size):
        patient = _patient_for(batch, header)
        study = _study_for(batch, patient, header)
        series = _series_for(batch, study, header)
        instance = Instance.objects.create(
            hospital_id=batch.hospital_id,
            series=series,
            sop_instance_uid=header.sop_instance_uid,
            sop_class_uid=header.sop_class_uid,
            transfer_syntax_uid=header.transfer_syntax_uid,
            instance_number=header.instance_number,
            file_format=Instance.Format.DICOM,
            file=stored_name,
            file_size=file_size,
            sha256=sha256,
            rows=header.rows,
            columns=header.columns,
            number_of_frames=header.number_of_frames,
            pixel_spacing=header.pixel_spacing,
            slice_thickness=header.slice_thickness,
            image_position_patient=header.image_position_patient,
            image_orientation_patient=header.image_orientation_patient,
            slice_location=header.slice_location,
            rescale_slope=header.rescale_slope,
            rescale_intercept=header.rescale_intercept,
            window_center=header.window_center,
            window_width=header.window_width,
        )
        _mark_instance_arrived(batch, series)
        return instance

    return _store_then_create(
        batch=batch, fileobj=fileobj, path=path, create_rows=create_rows,
        duplicate_lookup={"sop_instance_uid": header.sop_instance_uid},
    )


def _ingest_image(*, batch, fileobj):
    from pydicom.uid import generate_uid

    if batch.patient_id is None:
        raise RejectedFile(
            "PNG and JPEG images carry no patient identity: choose the patient before uploading them.",
            failure_reason=FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
        )
    image = read_image(fileobj)
    sha256 = hashlib.sha256(image.png_bytes).hexdigest()
    study_uid = generate_uid(entropy_srcs=["radassist-image-upload", str(batch.pk), "study"])
    series_uid = generate_uid(entropy_srcs=["radassist-image-upload", str(batch.pk), "series"])
    existing = Instance.objects.for_hospital(batch.hospital_id).filter(
        series__series_instance_uid=series_uid, sha256=sha256
    ).first()
    if existing is not None:
        return existing, FileOutcome.DUPLICATE
    sop_instance_uid = generate_uid()
    path = instance_file_path(
        hospital_id=batch.hospital_id, study_instance_uid=study_uid, series_instance_uid=series_uid,
        sop_instance_uid=sop_instance_uid, suffix=".png",
    )

    def create_rows(stored_name, stored_sha256, file_size):
        study, _ = Study.objects.get_or_create(
            hospital_id=batch.hospital_id, study_instance_uid=study_uid,
            defaults={"patient_id": batch.patient_id, "study_date": timezone.localdate(),
                      "study_time": timezone.localtime().time().replace(microsecond=0),
                      "description": "Uploaded images (PNG/JPEG)"},
        )
        series, _ = Series.objects.get_or_create(
            hospital_id=batch.hospital_id, series_instance_uid=series_uid,
            defaults={"study": study, "modality": "CT", "series_number": 1, "has_physical_scale": False,
                      "description": "Uploaded images, no physical scale"},
        )
        instance = Instance.objects.create(
            hospital_id=batch.hospital_id,
            series=series,
            sop_instance_uid=sop_instance_uid,
            instance_number=series.instances.count() + 1,
            file_format=Instance.Format.IMAGE,
            file=stored_name,
            file_size=file_size,
            sha256=stored_sha256,
            rows=image.rows,
            columns=image.columns,
        )
        _mark_instance_arrived(batch, series)
        return instance

    return _store_then_create(
        batch=batch, fileobj=io.BytesIO(image.png_bytes), path=path, create_rows=create_rows,
        duplicate_lookup={"series__series_instance_uid": series_uid, "sha256": sha256},
    )


def _mark_instance_arrived(batch, series):
    Series.objects.filter(pk=series.pk).update(last_instance_at=timezone.now())
    if batch.source == UploadBatch.Source.STOW:
        claimed = Series.objects.filter(pk=series.pk, quiet_check_pending=False).update(quiet_check_pending=True)
        if claimed:
            series_id = series.pk
            transaction.on_commit(
                lambda: _schedule_quiet_check(series_id, countdown=settings.SERIES_QUIET_SECONDS)
            )


def _store_then_create(*, batch, fileobj, path, create_rows, duplicate_lookup):
    """Copy the file to storage, then create its rows in one transaction; undo the copy if that fails.

    A concurrent upload of the same instance loses on the unique constraint: its copy is deleted and
    it reports DUPLICATE, never a second row.
    """
    storage = Instance._meta.get_field("file").storage
    content = _HashingFile(fileobj)
    stored_name = storage.save(path, content, max_length=Instance._meta.get_field("file").max_length)
    try:
        sha256 = content.hexdigest()
        with transaction.atomic():
            instance = create_rows(stored_name, sha256, content.bytes_read)
    except IntegrityError:
        storage.delete(stored_name)
        existing = Instance.objects.for_hospital(batch.hospital_id).filter(**duplicate_lookup).first()
        if existing is None:
            raise
        return existing, FileOutcome.DUPLICATE
    except BaseException:
        storage.delete(stored_name)
        raise
    return instance, FileOutcome.STORED


class _HashingFile(File):
    """A Django File that computes the SHA-256 of what storage reads from it, in the same pass.

    Storage backends read from the start (after ``seek(0)``, which restarts the digest); should one
    seek elsewhere, the digest is computed again from the source after the copy.
    """

    def __init__(self, fileobj):
        super().__init__(fileobj, name="upload")
        self._digest = hashlib.sha256()
        self._position = 0
        self._hashed_in_order = True
        self.bytes_read = 0
        fileobj.seek(0)

    def read(self, size=-1):
        data = self.file.read(size)
        self._digest.update(data)
        self._position += len(data)
        self.bytes_read = max(self.bytes_read, self._position)
        return data

    def seek(self, offset, whence=io.SEEK_SET):
        position = self.file.seek(offset, whence)
        if position == 0:
            self._digest = hashlib.sha256()
            self._hashed_in_order = True
            self.bytes_read = 0
        elif position != self._position:
            self._hashed_in_order = False
        self._position = position
        return position

    def hexdigest(self):
        if self._hashed_in_order and self.bytes_read == _size_of(self.file):
            return self._digest.hexdigest()
        digest = hashlib.sha256()
        self.file.seek(0)
        self.bytes_read = 0
        while chunk := self.file.read(COPY_CHUNK_BYTES):
            digest.update(chunk)
            self.bytes_read += len(chunk)
        return digest.hexdigest()


# Patients, studies, series -----------------------------------------------------------------------


def _check_patient_id(batch, header):
    """A doctor's chosen patient must match the file's PatientID (a patient's own upload need not)."""
    if batch.patient_id is None:
        if not header.patient_id:
            raise RejectedFile(
                "The file has no PatientID to match a patient by; choose the patient before uploading.",
                failure_reason=FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
            )
        return
    if batch.uploaded_by.is_patient or not header.patient_id:
        return
    if header.patient_id != batch.patient.mrn:
        raise RejectedFile(
            f"This file belongs to PatientID {header.patient_id}, not to the chosen patient "
            f"(MRN {batch.patient.mrn}); choose the right patient or match from the DICOM PatientID.",
            failure_reason=FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
        )


def _patient_for(batch, header):
    if batch.patient_id is not None:
        return batch.patient
    patient, _ = Patient.objects.get_or_create(
        hospital_id=batch.hospital_id,
        mrn=header.patient_id,
        defaults={
            "full_name": header.patient_name or f"Unknown patient {header.patient_id}",
            "birth_date": header.patient_birth_date,
            "sex": header.patient_sex,
        },
    )
    return patient


def _study_for(batch, patient, header):
    study, _ = Study.objects.get_or_create(
        hospital_id=batch.hospital_id,
        study_instance_uid=header.study_instance_uid,
        defaults={
            "patient": patient,
            "accession_number": header.accession_number,
            "study_date": header.study_date,
            "study_time": header.study_time,
            "description": header.study_description,
            "referring_physician": header.referring_physician,
        },
    )
    if study.patient_id != patient.pk:
        raise RejectedFile(
            "This study is already filed under another patient in this hospital; check the patient of the file.",
            failure_reason=FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
        )
    return study


def _series_for(batch, study, header):
    series, _ = Series.objects.get_or_create(
        hospital_id=batch.hospital_id,
        series_instance_uid=header.series_instance_uid,
        defaults={
            "study": study,
            "series_number": header.series_number,
            "modality": header.modality,
            "description": header.series_description,
            "body_part": header.body_part,
            "has_physical_scale": header.pixel_spacing is not None,
        },
    )
    if series.study_id != study.pk:
        raise RejectedFile(
            "This series is already stored under another study; the file's StudyInstanceUID is inconsistent.",
            failure_reason=FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
        )
    return series


# Zip archives -------------------------------------------------------------------------------------


def _unsafe_entry_name(entry_name):
    parts = re.split(r"[\\/]", entry_name)
    return (
        entry_name.startswith(("/", "\\"))
        or bool(WINDOWS_DRIVE.match(entry_name))
        or ".." in parts
        or "\x00" in entry_name
    )


def _ingest_archive(*, batch, name, fileobj, size, expected_study_uid):
    """Each entry of a zip archive is ingested as its own file, within the zip bomb limits."""
    fileobj.seek(0)
    try:
        archive = zipfile.ZipFile(fileobj)
        entries = [entry for entry in archive.infolist() if not entry.is_dir()]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        return [_record(batch, name, size, RejectedFile("The zip archive is damaged and cannot be opened."))]
    if len(entries) > settings.INGEST_MAX_ZIP_ENTRIES:
        return [_record(batch, name, size, RejectedFile(
            f"The zip archive has {len(entries):,} files; archives of up to "
            f"{settings.INGEST_MAX_ZIP_ENTRIES:,} files are accepted.",
            failure_reason=FailureReason.OUT_OF_RESOURCES,
        ))]
    total = sum(entry.file_size for entry in entries)
    if total > settings.INGEST_MAX_ZIP_TOTAL_BYTES:
        return [_record(batch, name, size, RejectedFile(
            f"The zip archive unpacks to {total / (1024 * 1024):,.0f} MB; archives of up to "
            f"{settings.INGEST_MAX_ZIP_TOTAL_BYTES // (1024 * 1024):,} MB unpacked are accepted.",
            failure_reason=FailureReason.OUT_OF_RESOURCES,
        ))]
    if not entries:
        return [_record(batch, name, size, RejectedFile("The zip archive is empty."))]
    results = []
    with archive:
        for entry in entries:
            entry_name = f"{name}/{entry.filename}"[:500]
            rejection = _entry_rejection(entry)
            if rejection is not None:
                results.append(_record(batch, entry_name, entry.file_size, rejection))
                continue
            results.append(_ingest_entry(batch=batch, archive=archive, entry=entry, entry_name=entry_name,
                                         expected_study_uid=expected_study_uid))
    return results


def _entry_rejection(entry):
    if _unsafe_entry_name(entry.filename):
        return RejectedFile("The zip entry has an absolute path or one that climbs out of the archive (..).")
    if entry.flag_bits & 0x1:
        return RejectedFile("The zip entry is encrypted; send it without a password.")
    if entry.file_size > settings.INGEST_MAX_FILE_BYTES:
        return _too_large(entry.file_size)
    ratio = entry.file_size / max(entry.compress_size, 1)
    if entry.file_size > ZIP_RATIO_EXEMPT_BYTES and ratio > settings.INGEST_MAX_ZIP_RATIO:
        return RejectedFile(
            f"The zip entry expands {ratio:,.0f} times (limit {settings.INGEST_MAX_ZIP_RATIO}); "
            "it looks like a zip bomb and was not unpacked.",
            failure_reason=FailureReason.OUT_OF_RESOURCES,
        )
    return None


def _ingest_entry(*, batch, archive, entry, entry_name, expected_study_uid):
    """Unpack one entry to a spooled temporary file (zipfile stops at the declared size and checks the CRC)."""
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_MAX_MEMORY_BYTES) as spool:
        try:
            with archive.open(entry) as source:
                shutil.copyfileobj(source, spool, COPY_CHUNK_BYTES)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as error:
            return _record(batch, entry_name, entry.file_size,
                           RejectedFile(f"The zip entry is damaged and cannot be unpacked ({error})."))
        spool.seek(0)
        kind = sniff_kind(spool)
        if kind == FileKind.ZIP:
            return _record(batch, entry_name, entry.file_size,
                           RejectedFile("Zip archives inside zip archives are not unpacked; send them separately."))
        return _ingest_single(batch=batch, name=entry_name, fileobj=spool, size=entry.file_size, kind=kind,
                              expected_study_uid=expected_study_uid)
