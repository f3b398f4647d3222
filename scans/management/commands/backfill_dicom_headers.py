"""Store the DICOM JSON header of instances ingested before headers were kept, and their studies' DICOM values.

WADO-RS metadata and QIDO-RS answer from ``Instance.dicom_header``; rows without one are read from
their file on every request until this command has run once. Safe to run again: it only touches
rows that still lack what it fills in.
"""

from django.core.management.base import BaseCommand

from scans.ingest.parsing import stored_header_json
from scans.models import Instance, Study

PATIENT_NAME, REFERRING_PHYSICIAN_NAME, STUDY_ID = "00100010", "00080090", "00200010"


def person_name_from_json(header, tag):
    """A PN value of a stored header back in its ``Alphabetic=Ideographic=Phonetic`` form."""
    values = header.get(tag, {}).get("Value") or [{}]
    groups = [values[0].get(group, "") for group in ("Alphabetic", "Ideographic", "Phonetic")]
    return "=".join(groups).rstrip("=")


def backfill_instance_headers(*, batch_size=200):
    """Read the file of every DICOM instance without a stored header; returns (filled, unreadable)."""
    filled, unreadable = 0, []
    pending = Instance.objects.filter(file_format=Instance.Format.DICOM, dicom_header__isnull=True)
    storage = Instance._meta.get_field("file").storage
    for instance in pending.only("pk", "file").iterator(chunk_size=batch_size):
        try:
            with storage.open(instance.file.name, "rb") as stored:
                header = stored_header_json(stored)
        except Exception:  # noqa: BLE001 - a missing or damaged file is reported, the others go on
            unreadable.append(instance.pk)
            continue
        Instance.objects.filter(pk=instance.pk).update(dicom_header=header)
        filled += 1
    return filled, unreadable


def backfill_study_values():
    """Fill each study's DICOM PatientName, ReferringPhysicianName and StudyID from one of its stored headers."""
    filled = 0
    studies = Study.objects.filter(patient_name_dicom="", series__instances__dicom_header__isnull=False).distinct()
    for study in studies.only("pk"):
        header = (
            Instance.objects.filter(series__study=study, dicom_header__isnull=False)
            .values_list("dicom_header", flat=True)
            .first()
        )
        Study.objects.filter(pk=study.pk).update(
            patient_name_dicom=person_name_from_json(header, PATIENT_NAME),
            referring_physician_dicom=person_name_from_json(header, REFERRING_PHYSICIAN_NAME),
            dicom_study_id=str((header.get(STUDY_ID, {}).get("Value") or [""])[0])[:64],
        )
        filled += 1
    return filled


class Command(BaseCommand):
    help = "Store the DICOM header of instances ingested before headers were kept (reads each such file once)."

    def handle(self, *args, **options):
        filled, unreadable = backfill_instance_headers()
        studies = backfill_study_values()
        self.stdout.write(
            f"Stored the header of {filled} instance(s); filled the DICOM values of {studies} study(ies)."
        )
        if unreadable:
            self.stderr.write(f"{len(unreadable)} instance file(s) could not be read: ids {unreadable[:50]}")
