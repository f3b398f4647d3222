"""PNG/JPG slices (the public chest CT-scan image set): all images of one batch form one series.

They get one study and one series with UIDs derived from the batch, modality CT (they are CT slices
exported as images; they pass the same CT analysis through its 8-bit grey path),
``has_physical_scale=False`` so that measurements are in pixels, are stored as 8-bit grey PNG and
numbered by arrival (the browser sends a folder in name order). The same image twice in a batch gets
the same SOPInstanceUID (derived from the batch and its pixels) and is a duplicate, by the same rule as
a re-sent DICOM instance.
"""

import hashlib
import io

from django.db import IntegrityError, transaction
from django.utils import timezone

from scans.ingest.completion import mark_instances_arrived
from scans.ingest.parsing import FailureReason, RejectedFile, read_image
from scans.ingest.storage import HashingFile
from scans.models import FileOutcome, Instance, Series, Study, instance_file_path


def ingest_image(*, batch, fileobj):
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
    # The ingest's one de-duplication rule, as for DICOM: an instance is known by its SOPInstanceUID within
    # the hospital. An image's UID is derived from its batch and its pixels, so the same image twice in a
    # batch is the same instance.
    sop_instance_uid = generate_uid(entropy_srcs=["radassist-image-upload", str(batch.pk), sha256])
    existing = Instance.objects.for_hospital(batch.hospital_id).filter(sop_instance_uid=sop_instance_uid).first()
    if existing is not None:
        return existing, FileOutcome.DUPLICATE
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
        mark_instances_arrived(batch, {series.pk})
        return instance

    return _store_then_create(
        batch=batch, fileobj=io.BytesIO(image.png_bytes), path=path, create_rows=create_rows,
        duplicate_lookup={"sop_instance_uid": sop_instance_uid},
    )


def _store_then_create(*, batch, fileobj, path, create_rows, duplicate_lookup):
    """Copy the file to storage, then create its rows in one transaction; undo the copy if that fails.

    A concurrent upload of the same instance loses on the unique constraint: its copy is deleted and
    it reports DUPLICATE, never a second row.
    """
    storage = Instance._meta.get_field("file").storage
    content = HashingFile(fileobj)
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
