"""STOW-RS (PS3.18 10.5): store the instances of a multipart/related request through the ingest service.

The response dataset follows PS3.18 Table 10.5.3-1: RetrieveURL (0008,1190) of the study,
ReferencedSOPSequence (0008,1199) for stored instances, FailedSOPSequence (0008,1198) with
FailureReason (0008,1197) for the others; HTTP 200 when all were stored, 202 when some failed,
409 when all failed.

Duplicates: sending a SOP instance the hospital already has is a success that changes nothing.
PS3.4 B.2.3 leaves re-sent instances to the SCP, and a PACS re-sends after a timeout or a
restart; failing the instance (0x0111 is a DIMSE N-CREATE status, not a Storage FailureReason)
would make such a retry look like an error, and the standard Warning Reasons (0xB000 coercion,
0xB006 elements discarded, 0xB007 data set does not match SOP class) describe something else. So
the instance is listed in ReferencedSOPSequence with its RetrieveURL, and the item carries our
private (0011,1002) "duplicate" so that a client that cares can tell.
"""

from dataclasses import dataclass, field

from scans.dicomweb.dicom_json import STORE_NOTE_ELEMENT, dataset_from_attributes
from scans.dicomweb.multipart import read_parts
from scans.dicomweb.qido import instance_url, study_url
from scans.ingest import FailureReason, close_batch, ingest_files, open_batch
from scans.ingest.parsing import FileKind, identifying_uids, sniff_kind
from scans.models import FileOutcome, UploadBatch

DICOM_MEDIA_TYPE = "application/dicom"
DUPLICATE_NOTE = "duplicate"


@dataclass
class StoreOutcome:
    referenced: list = field(default_factory=list)
    failed: list = field(default_factory=list)
    study_uids: set = field(default_factory=set)

    @property
    def http_status(self):
        if not self.failed:
            return 200
        return 202 if self.referenced else 409


def failure_item(sop_class_uid, sop_instance_uid, failure_reason):
    return {
        "ReferencedSOPClassUID": sop_class_uid,
        "ReferencedSOPInstanceUID": sop_instance_uid,
        "FailureReason": int(failure_reason),
    }


def store_instances(*, user, stream, boundary, study_uid, root):
    """Ingest every part of the body; returns the StoreOutcome. Raises MalformedMultipart for a broken body.

    The parts go to the ingest service as the body is read, so its rows are written a group of
    instances at a time while the client is still sending.
    """
    outcome = StoreOutcome()
    batch = open_batch(hospital=user.hospital, uploaded_by=user, source=UploadBatch.Source.STOW)

    def dicom_parts():
        for number, part in enumerate(read_parts(stream, boundary), start=1):
            media_type, _ = part.content_type
            if media_type != DICOM_MEDIA_TYPE or sniff_kind(part.file) != FileKind.DICOM:
                # STOW-RS carries PS3.10 files only: the web upload's PNG and zip handling must not apply.
                with part.file:
                    uids = identifying_uids(part.file)
                outcome.failed.append(failure_item(*uids, FailureReason.CANNOT_UNDERSTAND))
                continue
            yield f"STOW-RS part {number}", part.file

    try:
        results = ingest_files(batch=batch, files=dicom_parts(), expected_study_uid=study_uid)
    finally:
        close_batch(batch=batch)
    for result in (result for part_results in results for result in part_results):
        if result.outcome == FileOutcome.REJECTED:
            outcome.failed.append(failure_item(
                result.sop_class_uid, result.sop_instance_uid, result.failure_reason or FailureReason.PROCESSING_FAILURE
            ))
            continue
        instance = result.instance
        series = instance.series
        study_instance_uid = series.study.study_instance_uid
        outcome.study_uids.add(study_instance_uid)
        item = {
            "ReferencedSOPClassUID": instance.sop_class_uid,
            "ReferencedSOPInstanceUID": instance.sop_instance_uid,
            "RetrieveURL": instance_url(
                root, study_instance_uid, series.series_instance_uid, instance.sop_instance_uid
            ),
        }
        note = DUPLICATE_NOTE if result.outcome == FileOutcome.DUPLICATE else None
        outcome.referenced.append((item, note))
    return outcome


def response_dataset(outcome, *, root, study_uid):
    """The Store Instances Response Module as a pydicom dataset."""
    dataset = dataset_from_attributes({})
    known_study = study_uid or (next(iter(outcome.study_uids)) if len(outcome.study_uids) == 1 else None)
    dataset.RetrieveURL = study_url(root, known_study) if known_study else None
    if outcome.referenced:
        dataset.ReferencedSOPSequence = [
            dataset_from_attributes(item, private={STORE_NOTE_ELEMENT: note} if note else None)
            for item, note in outcome.referenced
        ]
    if outcome.failed:
        dataset.FailedSOPSequence = [dataset_from_attributes(item) for item in outcome.failed]
    return dataset
