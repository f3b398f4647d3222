"""The grouped writer: files read and checked one by one, their rows written a group at a time.

``ingest_file`` and ``ingest_files`` never raise for user errors. A file is stored in storage first
(with its SHA-256 computed while it is copied), then its group's rows are created in one transaction;
if that transaction fails the stored files are deleted again, so no half-written file or row remains.
"""

import logging
import shutil
import tempfile
import zipfile
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction

from scans.ingest.archives import SPOOL_MAX_MEMORY_BYTES, archive_rejection, entry_rejection, too_large
from scans.ingest.completion import mark_instances_arrived
from scans.ingest.images import ingest_image
from scans.ingest.parsing import FailureReason, FileKind, RejectedFile, identifying_uids, read_dicom, sniff_kind
from scans.ingest.patients import check_patient_id, identity_of, patient_check_for, patient_for
from scans.ingest.storage import COPY_CHUNK_BYTES, HashingFile, size_of
from scans.models import FileOutcome, Instance, Series, Study, UploadedFile, instance_file_path

logger = logging.getLogger(__name__)

INTERNAL_ERROR_REASON = "The file could not be stored because of an error on our side; please send it again."

#: Rows are written for a group of files at a time: this many files, or files holding this many bytes
#: in all (they stay open until their group is written, so the bytes bound the memory a group holds).
GROUP_MAX_FILES = 64
GROUP_MAX_BYTES = 32 * 1024 * 1024
#: A group whose insert loses a race on the unique constraints is written again this many times at most.
GROUP_WRITE_ATTEMPTS = 3


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


class IngestStream:
    """Files ingested one at a time, each written (a group of one) before the next is read.

    For a door that must answer every file before its sender sends the next: a DICOM C-STORE
    response carries the outcome of its instance, and storage SCUs wait for it. The patient,
    study and series lookups are kept from file to file, as within one ``ingest_files`` call
    (measured: about a third less time per instance than one ``ingest_files`` call per file).
    """

    def __init__(self, *, batch):
        self._ingest = _GroupedIngest(batch=batch, expected_study_uid=None)

    def ingest_file(self, *, name, fileobj):
        """Ingest and write one file now; returns its results (one, or one per zip entry).

        Never raises for user errors."""
        source = len(self._ingest.results)
        self._ingest.add(name, fileobj)
        self._ingest.finish()
        results, self._ingest.results[source] = self._ingest.results[source], []
        return results


def internal_error():
    return RejectedFile(INTERNAL_ERROR_REASON, failure_reason=FailureReason.PROCESSING_FAILURE)


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
        size = size_of(fileobj)
        if self.batch.closed_at is not None:
            self._reject(source, name, size, fileobj, RejectedFile(
                "This upload is already finished; start a new upload.", failure_reason=FailureReason.PROCESSING_FAILURE
            ))
        elif size > settings.INGEST_MAX_FILE_BYTES:
            self._reject(source, name, size, fileobj, too_large(size))
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
            self._reject(source, name, size, fileobj, internal_error())
        else:
            self._queue(_PendingFile(source=source, name=name, size=size, fileobj=fileobj, header=header))

    def _read_dicom(self, fileobj):
        header = read_dicom(fileobj, allowed_modalities=settings.INGEST_ALLOWED_MODALITIES)
        if self.expected_study_uid and header.study_instance_uid != self.expected_study_uid:
            raise RejectedFile(
                f"This instance belongs to study {header.study_instance_uid}, not to {self.expected_study_uid}.",
                failure_reason=FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
            )
        check_patient_id(self.batch, header)
        return header

    def _add_image(self, source, name, fileobj, size):
        """Images are few and numbered by arrival within their series: each is written at once, in order."""
        self._write_pending()
        try:
            if self.expected_study_uid:
                raise RejectedFile("Only DICOM files can be stored into a study.",
                                   failure_reason=FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS)
            instance, outcome = ingest_image(batch=self.batch, fileobj=fileobj)
        except RejectedFile as rejection:
            result = _record(self.batch, name, size, rejection)
        except Exception:
            logger.exception("ingest failed", extra={"batch_id": self.batch.pk})
            result = _record(self.batch, name, size, internal_error())
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
                    item.rejection, item.outcome = internal_error(), FileOutcome.REJECTED
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
            mark_instances_arrived(self.batch, {instance.series_id for instance in stored})
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
        content = HashingFile(item.fileobj)
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
                item.rejection = internal_error()
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
            dicom_header=header.dicom_json,
        )

    # Patients, studies, series: looked up once per request -----------------------------------------

    def _series_for(self, header):
        patient, patient_created = self._patient_for(header)
        study = self.studies.get(header.study_instance_uid)
        if study is None:
            check, reason = patient_check_for(patient=patient, patient_created=patient_created, header=header)
            study = self.studies[header.study_instance_uid] = _study_for(
                self.batch, patient, header, patient_check=check, patient_check_reason=reason
            )
        decided_elsewhere = study.identity_in_files.get("patient_id") == header.patient_id
        if study.patient_id != patient.pk and not decided_elsewhere:
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
        """``(patient, created_from_the_file)``, looked up once per PatientID and request."""
        if self.batch.patient_id is not None:
            return self.batch.patient, False
        found = self.patients.get(header.patient_id)
        if found is None:
            found = self.patients[header.patient_id] = patient_for(self.batch, header)
        return found

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
        rejection = archive_rejection(entries)
        if rejection is not None:
            archive.close()
            self._reject(source, name, size, fileobj, rejection)
            return
        with archive:
            for entry in entries:
                entry_name = f"{name}/{entry.filename}"[:500]
                rejection = entry_rejection(entry)
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


def _study_for(batch, patient, header, *, patient_check, patient_check_reason):
    study, _ = Study.objects.get_or_create(
        hospital_id=batch.hospital_id,
        study_instance_uid=header.study_instance_uid,
        defaults={
            "patient": patient,
            "patient_check": patient_check,
            "patient_check_reason": patient_check_reason,
            "identity_in_files": identity_of(header),
            "accession_number": header.accession_number,
            "study_date": header.study_date,
            "study_time": header.study_time,
            "description": header.study_description,
            "referring_physician": header.referring_physician,
            "patient_name_dicom": header.patient_name_dicom,
            "referring_physician_dicom": header.referring_physician_dicom,
            "dicom_study_id": header.dicom_study_id,
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
            "scanning_sequence": header.scanning_sequence,
            "sequence_variant": header.sequence_variant,
            "inversion_time": header.inversion_time,
            "has_physical_scale": header.pixel_spacing is not None,
        },
    )
    return series
