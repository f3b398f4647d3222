"""Storing RadAssist's own DICOM result objects (SEG, SR, Encapsulated PDF) beside the images they describe.

Ingest accepts only image modalities with pixel data from outside and queues every completed series
for analysis; our own result objects take this separate, explicit path instead. They are written to
storage and indexed as Series and Instance rows like any received instance, so DICOMweb (QIDO-RS,
WADO-RS) finds them in their study, but their series have the status ``RESULT``: complete from the
start, never queued for analysis, hidden from patients.
"""

import hashlib
import io

from django.db import transaction
from django.utils import timezone

from scans.ingest.parsing import stored_header_json
from scans.models import Instance, Series, SeriesStatus, instance_file_path

#: The modalities of the objects RadAssist makes: segmentation, structured report, encapsulated document.
RESULT_MODALITIES = ("SEG", "SR", "DOC")


class NotAResultObject(ValueError):
    """A programming error: only RadAssist's own SEG, SR and DOC objects of the given study take this path."""


def store_result_object(*, study, dataset):
    """Store one pydicom dataset made by RadAssist in ``study``; returns its Instance.

    Idempotent on the SOP Instance UID: storing the same object again returns the existing row.
    The file is written first, then the rows in one transaction; if that fails the file is removed.
    """
    if dataset.Modality not in RESULT_MODALITIES:
        raise NotAResultObject(f"Modality {dataset.Modality} is not one of RadAssist's result objects.")
    if dataset.StudyInstanceUID != study.study_instance_uid:
        raise NotAResultObject("The result object names another study than the one it is stored in.")
    existing = Instance.objects.for_hospital(study.hospital_id).filter(sop_instance_uid=dataset.SOPInstanceUID).first()
    if existing is not None:
        return existing
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    content = buffer.getvalue()
    field = Instance._meta.get_field("file")
    stored_name = field.storage.save(
        instance_file_path(
            hospital_id=study.hospital_id,
            study_instance_uid=study.study_instance_uid,
            series_instance_uid=dataset.SeriesInstanceUID,
            sop_instance_uid=dataset.SOPInstanceUID,
            suffix=".dcm",
        ),
        io.BytesIO(content),
        max_length=field.max_length,
    )
    try:
        with transaction.atomic():
            now = timezone.now()
            series, _ = Series.objects.get_or_create(
                hospital_id=study.hospital_id,
                series_instance_uid=dataset.SeriesInstanceUID,
                defaults={
                    "study": study,
                    "series_number": dataset.SeriesNumber,
                    "modality": dataset.Modality,
                    "description": str(dataset.get("SeriesDescription", ""))[:255],
                    "has_physical_scale": False,
                    "status": SeriesStatus.RESULT,
                    "completed_at": now,
                    "last_instance_at": now,
                },
            )
            if series.study_id != study.pk or series.status != SeriesStatus.RESULT:
                raise NotAResultObject("The result object's series UID belongs to another series.")
            return Instance.objects.create(
                hospital_id=study.hospital_id,
                series=series,
                sop_instance_uid=dataset.SOPInstanceUID,
                sop_class_uid=dataset.SOPClassUID,
                transfer_syntax_uid=dataset.file_meta.TransferSyntaxUID,
                instance_number=dataset.InstanceNumber,
                file_format=Instance.Format.DICOM,
                file=stored_name,
                file_size=len(content),
                sha256=hashlib.sha256(content).hexdigest(),
                rows=int(dataset.get("Rows", 0)),
                columns=int(dataset.get("Columns", 0)),
                number_of_frames=int(dataset.get("NumberOfFrames", 1) or 1),
                dicom_header=stored_header_json(io.BytesIO(content)),
            )
    except BaseException:
        field.storage.delete(stored_name)
        raise
