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
Instances that arrive after their series completed complete it again (see ``complete_series``).
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
from portal.queueing import queue_task
from scans.ingest_parsing import (
    FailureReason,
    FileKind,
    RejectedFile,
    identifying_uids,
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
from scans.signals import series_completed

__all__ = [
    "FailureReason",
    "IngestResult",
    "RejectedFile",
    "UploadNotAllowed",
    "close_batch",
    "complete_series",
    "complete_series_if_quiet",
    "ingest_file",
    "ingest_files",
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
    #: The file's SOP Class and SOP Instance UIDs, as far as they could be read (STOW-RS reports them).
    sop_class_uid: str = ""
    sop_instance_uid: str = ""


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
    """Mark a receiving series received and announce it (``series_completed``), once per set of instances.

    A series that completed before and has since received instances it did not have (a PACS
    sending late slices, a second upload of missing files) completes again: its analysis is
    queued again and the new one covers every slice. Completing a series with nothing new changes
    nothing. Returns True if it completed the series.
    """
    with transaction.atomic():
        locked = Series.objects.select_for_update().get(pk=series.pk)
        instance_count = locked.instances.count()
        if locked.status == SeriesStatus.RECEIVING:
            locked.status = SeriesStatus.RECEIVED
        elif instance_count <= (locked.slices_total or 0):
            return False
        locked.completed_at = timezone.now()
        locked.slices_total = instance_count
        locked.save(update_fields=["status", "completed_at", "slices_total", "updated_at"])
        series_id = locked.pk
        transaction.on_commit(lambda: series_completed.send(sender=Series, series_id=series_id))
    series.status, series.completed_at, series.slices_total = locked.status, locked.completed_at, instance_count
    return True


def complete_series_if_quiet(*, series_id, now=None):
    """Complete a STOW-RS series once no instance arrived for ``SERIES_QUIET_SECONDS`` (late instances too).

    One check is pending per series at a time: while instances keep arriving it reschedules
    itself for the end of the new quiet period, so a 1,000-instance series costs a handful of
    checks, not one per instance. The lock and the status test in :func:`complete_series` make
    completion happen once.
    """
    now = now or timezone.now()
    series = Series.objects.filter(pk=series_id).first()
    if series is None:
        return False
    quiet_until = (series.last_instance_at or now) + timedelta(seconds=settings.SERIES_QUIET_SECONDS)
    if quiet_until > now:
        _schedule_quiet_check(series_id, countdown=(quiet_until - now).total_seconds())
        return False
    Series.objects.filter(pk=series_id).update(quiet_check_pending=False)
    return complete_series(series=series)


def _schedule_quiet_check(series_id, *, countdown):
    queue_task("scans.tasks.complete_series_if_quiet", countdown=countdown, series_id=series_id)


# Files --------------------------------------------------------------------------------------------

#: Rows are written for a group of files at a time: this many files, or files holding this many bytes
#: in all (they stay open until their group is written, so the bytes bound the memory a group holds).
GROUP_MAX_FILES = 64
GROUP_MAX_BYTES = 32 * 1024 * 1024
#: A group whose insert loses a race on the unique constraints is written again this many times at most.
GROUP_WRITE_ATTEMPTS = 3


def ingest_file(*, batch, name, fileobj, expected_study_uid=None):
    """Ingest one uploaded file (a zip archive gives one result per entry). Never raises for user errors."""
    (results,) = ingest_files(batch=batch, files=[(name, fileobj)], expected_study_uid=expected_study_uid)
    return results


def ingest_files(*, batch, files, expected_study_uid=None):
    """Ingest ``(name, file)`` pairs; returns, in order, one list of results per pair (a zip: one per entry).

    Files are read and checked one by one as ``files`` yields them (a STOW-RS body is read part by
    part), and their rows are written a group at a time: one duplicate query, one transaction with
    bulk inserts, patient, study and series looked up once per request. A file is closed once its
    group is written. Never raises for user errors; should ``files`` itself raise (a STOW-RS body cut
    short), the files read before are still written, then the error goes on to the caller.
    """
    ingest = _GroupedIngest(batch=batch, expected_study_uid=expected_study_uid)
    try:
        for name, fileobj in files:
            ingest.add(name, fileobj)
    finally:
        results = ingest.finish()
    return results


def _too_large(size):
    limit_mb = settings.INGEST_MAX_FILE_BYTES // (1024 * 1024)
    return RejectedFile(
        f"The file is {size / (1024 * 1024):,.0f} MB; files up to {limit_mb:,} MB are accepted.",
        failure_reason=FailureReason.OUT_OF_RESOURCES,
    )


def _internal_error():
    return RejectedFile(INTERNAL_ERROR_REASON, failure_reason=FailureReason.PROCESSING_FAILURE)


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


@dataclass(eq=False)
class _PendingFile:
    """One file read and checked, waiting for its group's rows to be written.

    ``rejection`` is what reading found; the other fields are what writing the group decided, and
    are reset when the group is written again.
    """

    source: int  # which of the ``files`` it came from (a zip archive gives several)
    name: str
    size: int
    fileobj: object = None
    header: object = None  # the DicomHeader of a file that passed every check
    rejection: RejectedFile | None = None
    uids: tuple = ("", "")  # (SOPClassUID, SOPInstanceUID) of a rejected file, as far as they can be read
    stored_name: str = ""
    sha256: str = ""
    file_size: int = 0
    outcome: str = ""
    instance: Instance | None = None
    same_as: "_PendingFile | None" = None  # an earlier file of the group with the same SOPInstanceUID

    def reset_write(self):
        self.stored_name, self.sha256, self.file_size = "", "", 0
        self.outcome, self.instance, self.same_as = "", None, None
        if self.header is not None:
            self.rejection = None

    def result(self, uploaded_file):
        rejection = self.rejection if self.outcome == FileOutcome.REJECTED else None
        uids = (self.header.sop_class_uid, self.header.sop_instance_uid) if self.header else self.uids
        return IngestResult(
            uploaded_file=uploaded_file,
            outcome=FileOutcome(self.outcome),
            reason=str(rejection) if rejection else "",
            failure_reason=rejection.failure_reason if rejection else None,
            instance=self.instance if rejection is None else None,
            sop_class_uid=uids[0],
            sop_instance_uid=uids[1],
        )


class _GroupedIngest:
    """The files of one request, read one by one and written a group at a time (see :func:`ingest_files`)."""

    def __init__(self, *, batch, expected_study_uid):
        self.batch = batch
        self.expected_study_uid = expected_study_uid
        self.results = []
        self.pending = []
        self.pending_bytes = 0
        self.patients, self.studies, self.series = {}, {}, {}

    # Reading -------------------------------------------------------------------------------------

    def add(self, name, fileobj):
        source = len(self.results)
        self.results.append([])
        name = str(name or "unnamed")[:500]
        size = _size_of(fileobj)
        if self.batch.closed_at is not None:
            self._reject(source, name, size, fileobj, RejectedFile(
                "This upload is already finished; start a new upload.", failure_reason=FailureReason.PROCESSING_FAILURE
            ))
        elif size > settings.INGEST_MAX_FILE_BYTES:
            self._reject(source, name, size, fileobj, _too_large(size))
        elif (kind := sniff_kind(fileobj)) == FileKind.ZIP:
            self._add_archive(source, name, fileobj, size)
        else:
            self._add_single(source, name, fileobj, size, kind)

    def finish(self):
        self._write_pending()
        return self.results

    def _reject(self, source, name, size, fileobj, rejection):
        uids = identifying_uids(fileobj) if sniff_kind(fileobj) == FileKind.DICOM else ("", "")
        fileobj.close()
        self._queue(_PendingFile(source=source, name=name, size=size, rejection=rejection, uids=uids))

    def _queue(self, item):
        self.pending.append(item)
        if item.fileobj is not None:
            self.pending_bytes += item.size
        if len(self.pending) >= GROUP_MAX_FILES or self.pending_bytes >= GROUP_MAX_BYTES:
            self._write_pending()

    def _add_single(self, source, name, fileobj, size, kind):
        if kind == FileKind.IMAGE:
            self._add_image(source, name, fileobj, size)
            return
        if kind != FileKind.DICOM:
            self._reject(source, name, size, fileobj,
                         RejectedFile("Not a DICOM file (no DICM marker) and not a PNG or JPEG image."))
            return
        try:
            header = self._read_dicom(fileobj)
        except RejectedFile as rejection:
            self._reject(source, name, size, fileobj, rejection)
        except Exception:
            logger.exception("ingest failed", extra={"batch_id": self.batch.pk})
            self._reject(source, name, size, fileobj, _internal_error())
        else:
            self._queue(_PendingFile(source=source, name=name, size=size, fileobj=fileobj, header=header))

    def _read_dicom(self, fileobj):
        header = read_dicom(fileobj, allowed_modalities=settings.INGEST_ALLOWED_MODALITIES)
        if self.expected_study_uid and header.study_instance_uid != self.expected_study_uid:
            raise RejectedFile(
                f"This instance belongs to study {header.study_instance_uid}, not to {self.expected_study_uid}.",
                failure_reason=FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
            )
        _check_patient_id(self.batch, header)
        return header

    def _add_image(self, source, name, fileobj, size):
        """Images are few and numbered by arrival within their series: each is written at once, in order."""
        self._write_pending()
        try:
            if self.expected_study_uid:
                raise RejectedFile("Only DICOM files can be stored into a study.",
                                   failure_reason=FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS)
            instance, outcome = _ingest_image(batch=self.batch, fileobj=fileobj)
        except RejectedFile as rejection:
            result = _record(self.batch, name, size, rejection)
        except Exception:
            logger.exception("ingest failed", extra={"batch_id": self.batch.pk})
            result = _record(self.batch, name, size, _internal_error())
        else:
            result = _record(self.batch, name, size, None, outcome=outcome, instance=instance)
        fileobj.close()
        self.results[source].append(result)

    # Writing -------------------------------------------------------------------------------------

    def _write_pending(self):
        group, self.pending, self.pending_bytes = self.pending, [], 0
        if not group:
            return
        for attempt in range(1, GROUP_WRITE_ATTEMPTS + 1):
            try:
                uploaded_files = self._write_group(group)
                break
            except Exception as error:
                self._undo(group)
                if isinstance(error, IntegrityError) and attempt < GROUP_WRITE_ATTEMPTS:
                    continue  # a concurrent upload stored one of these first: its duplicate query now sees it
                logger.exception("ingest failed", extra={"batch_id": self.batch.pk})
                uploaded_files = self._record_failure(group)
                break
        for item, uploaded_file in zip(group, uploaded_files, strict=True):
            if item.fileobj is not None:
                item.fileobj.close()
            self.results[item.source].append(item.result(uploaded_file))

    def _write_group(self, group):
        """Store the files of the group, then write all its rows in one transaction; returns its UploadedFiles."""
        readable = [item for item in group if item.header is not None]
        existing = {
            instance.sop_instance_uid: instance
            for instance in Instance.objects.for_hospital(self.batch.hospital_id)
            .filter(sop_instance_uid__in={item.header.sop_instance_uid for item in readable})
            .select_related("series__study")
        }
        first_of = {}
        for item in readable:
            uid = item.header.sop_instance_uid
            if uid in existing:
                item.outcome, item.instance = FileOutcome.DUPLICATE, existing[uid]
            elif uid in first_of:
                item.same_as = first_of[uid]
            else:
                try:
                    self._store(item)
                except Exception:  # storage refused this file (disk full, S3 error): the others go on
                    logger.exception("storing an instance failed", extra={"batch_id": self.batch.pk})
                    item.rejection, item.outcome = _internal_error(), FileOutcome.REJECTED
                    continue
                first_of[uid] = item
        with transaction.atomic():
            for item in first_of.values():
                try:
                    series = self._series_for(item.header)
                except RejectedFile as rejection:
                    item.rejection, item.outcome = rejection, FileOutcome.REJECTED
                    continue
                item.outcome, item.instance = FileOutcome.STORED, self._instance_row(item, series)
            stored = [item.instance for item in first_of.values() if item.outcome == FileOutcome.STORED]
            Instance.objects.bulk_create(stored)
            for item in group:
                if item.same_as is not None:
                    original = item.same_as
                    item.rejection, item.instance = original.rejection, original.instance
                    item.outcome = FileOutcome.REJECTED if original.rejection else FileOutcome.DUPLICATE
                elif not item.outcome:
                    item.outcome = FileOutcome.REJECTED
            _mark_instances_arrived(self.batch, {instance.series_id for instance in stored})
            uploaded_files = UploadedFile.objects.bulk_create([self._uploaded_file_row(item) for item in group])
        for item in first_of.values():
            if item.outcome == FileOutcome.REJECTED:
                self._delete_stored(item)
        return uploaded_files

    def _store(self, item):
        header = item.header
        path = instance_file_path(
            hospital_id=self.batch.hospital_id,
            study_instance_uid=header.study_instance_uid,
            series_instance_uid=header.series_instance_uid,
            sop_instance_uid=header.sop_instance_uid,
            suffix=".dcm",
        )
        field = Instance._meta.get_field("file")
        content = _HashingFile(item.fileobj)
        item.stored_name = field.storage.save(path, content, max_length=field.max_length)
        item.sha256, item.file_size = content.hexdigest(), content.bytes_read

    def _delete_stored(self, item):
        if item.stored_name:
            Instance._meta.get_field("file").storage.delete(item.stored_name)
            item.stored_name = ""

    def _undo(self, group):
        """Forget a group's write after its transaction rolled back: its files go, and so do the looked-up
        rows, which may have been created in that transaction."""
        for item in group:
            self._delete_stored(item)
            item.reset_write()
        self.patients.clear()
        self.studies.clear()
        self.series.clear()

    def _record_failure(self, group):
        """A group that could not be written: every file of it is rejected, with the reason it had or ours."""
        for item in group:
            if item.rejection is None:
                item.rejection = _internal_error()
            item.outcome = FileOutcome.REJECTED
        return UploadedFile.objects.bulk_create([self._uploaded_file_row(item) for item in group])

    def _uploaded_file_row(self, item):
        rejection = item.rejection if item.outcome == FileOutcome.REJECTED else None
        return UploadedFile(
            batch=self.batch, name=item.name, size=item.size, outcome=item.outcome,
            reason=str(rejection) if rejection else "",
            failure_reason=rejection.failure_reason if rejection else None,
            instance=item.instance if item.outcome != FileOutcome.REJECTED else None,
        )

    def _instance_row(self, item, series):
        header = item.header
        return Instance(
            hospital_id=self.batch.hospital_id,
            series=series,
            sop_instance_uid=header.sop_instance_uid,
            sop_class_uid=header.sop_class_uid,
            transfer_syntax_uid=header.transfer_syntax_uid,
            instance_number=header.instance_number,
            file_format=Instance.Format.DICOM,
            file=item.stored_name,
            file_size=item.file_size,
            sha256=item.sha256,
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

    # Patients, studies, series: looked up once per request -----------------------------------------

    def _series_for(self, header):
        patient = self._patient_for(header)
        study = self.studies.get(header.study_instance_uid)
        if study is None:
            study = self.studies[header.study_instance_uid] = _study_for(self.batch, patient, header)
        if study.patient_id != patient.pk:
            raise RejectedFile(
                "This study is already filed under another patient in this hospital; check the patient of the file.",
                failure_reason=FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
            )
        series = self.series.get(header.series_instance_uid)
        if series is None:
            series = self.series[header.series_instance_uid] = _series_for(self.batch, study, header)
        if series.study_id != study.pk:
            raise RejectedFile(
                "This series is already stored under another study; the file's StudyInstanceUID is inconsistent.",
                failure_reason=FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
            )
        series.study = study
        return series

    def _patient_for(self, header):
        if self.batch.patient_id is not None:
            return self.batch.patient
        patient = self.patients.get(header.patient_id)
        if patient is None:
            patient = self.patients[header.patient_id] = _patient_for(self.batch, header)
        return patient

    # Zip archives --------------------------------------------------------------------------------

    def _add_archive(self, source, name, fileobj, size):
        """Each entry of a zip archive is ingested as its own file, within the zip bomb limits."""
        fileobj.seek(0)
        try:
            archive = zipfile.ZipFile(fileobj)
            entries = [entry for entry in archive.infolist() if not entry.is_dir()]
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
            self._reject(source, name, size, fileobj, RejectedFile("The zip archive is damaged and cannot be opened."))
            return
        rejection = _archive_rejection(entries)
        if rejection is not None:
            archive.close()
            self._reject(source, name, size, fileobj, rejection)
            return
        with archive:
            for entry in entries:
                entry_name = f"{name}/{entry.filename}"[:500]
                rejection = _entry_rejection(entry)
                if rejection is None:
                    self._add_entry(source, archive, entry, entry_name)
                else:
                    self._queue(_PendingFile(source=source, name=entry_name, size=entry.file_size, rejection=rejection))
        fileobj.close()

    def _add_entry(self, source, archive, entry, entry_name):
        """Unpack one entry to a spooled temporary file (zipfile stops at the declared size and checks the CRC)."""
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MAX_MEMORY_BYTES)
        try:
            with archive.open(entry) as unpacked:
                shutil.copyfileobj(unpacked, spool, COPY_CHUNK_BYTES)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as error:
            self._reject(source, entry_name, entry.file_size, spool,
                         RejectedFile(f"The zip entry is damaged and cannot be unpacked ({error})."))
            return
        kind = sniff_kind(spool)
        if kind == FileKind.ZIP:
            self._reject(source, entry_name, entry.file_size, spool,
                         RejectedFile("Zip archives inside zip archives are not unpacked; send them separately."))
            return
        self._add_single(source, entry_name, spool, entry.file_size, kind)


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
        _mark_instances_arrived(batch, {series.pk})
        return instance

    return _store_then_create(
        batch=batch, fileobj=io.BytesIO(image.png_bytes), path=path, create_rows=create_rows,
        duplicate_lookup={"series__series_instance_uid": series_uid, "sha256": sha256},
    )


def _mark_instances_arrived(batch, series_ids):
    """Note when instances last arrived; a STOW-RS series gets its quiet-period check (one at a time)."""
    Series.objects.filter(pk__in=series_ids).update(last_instance_at=timezone.now())
    if batch.source != UploadBatch.Source.STOW:
        return
    for series_id in series_ids:
        if Series.objects.filter(pk=series_id, quiet_check_pending=False).update(quiet_check_pending=True):
            transaction.on_commit(
                lambda series_id=series_id: _schedule_quiet_check(series_id, countdown=settings.SERIES_QUIET_SECONDS)
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
    """The hospital's patient with the file's PatientID as MRN, created from the file if there is none."""
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


def _archive_rejection(entries):
    if len(entries) > settings.INGEST_MAX_ZIP_ENTRIES:
        return RejectedFile(
            f"The zip archive has {len(entries):,} files; archives of up to "
            f"{settings.INGEST_MAX_ZIP_ENTRIES:,} files are accepted.",
            failure_reason=FailureReason.OUT_OF_RESOURCES,
        )
    total = sum(entry.file_size for entry in entries)
    if total > settings.INGEST_MAX_ZIP_TOTAL_BYTES:
        return RejectedFile(
            f"The zip archive unpacks to {total / (1024 * 1024):,.0f} MB; archives of up to "
            f"{settings.INGEST_MAX_ZIP_TOTAL_BYTES // (1024 * 1024):,} MB unpacked are accepted.",
            failure_reason=FailureReason.OUT_OF_RESOURCES,
        )
    if not entries:
        return RejectedFile("The zip archive is empty.")
    return None


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
