"""Ingest: every file that arrives is either stored (filed under patient, study and series) or rejected with a reason.

The four doors (the upload form, the REST API, DICOMweb STOW-RS and the DICOM listener) all go through
the same calls::

    batch = open_batch(hospital=..., uploaded_by=user, source=UploadBatch.Source.WEB, patient=None)
    results = ingest_files(batch=batch, files=[("IM0001.dcm", fileobj), ...])   # one list of results per file
    close_batch(batch=batch)

The DICOM listener hands over one instance at a time (``IngestStream``): each C-STORE is answered with
its outcome before the sender sends the next, so there is no group to wait for.

``ingest_files`` never raises for anything a user can send: each ``IngestResult`` says STORED, DUPLICATE
or REJECTED with a reason and the DICOM FailureReason code. One de-duplication rule holds for every
door: an instance is known by its SOPInstanceUID within the hospital (PNG/JPG slices get a UID derived
from their batch and content), so a re-sent instance is a DUPLICATE, never a second row.

The package, in the order a file meets it:

- ``parsing``: what kind of file it is, its DICOM header read and checked (pixel data present and
  decodable, modality accepted), PNG/JPG decoded to grey;
- ``archives``: the zip policy (entry names, counts, sizes, zip bombs);
- ``patients``: which patient record a file may be filed under;
- ``writer``: files read one by one, their rows written a group at a time (``ingest_files``);
- ``images``: PNG/JPG slices as a series of their own, without physical scale;
- ``storage``: each file streamed to storage with its SHA-256;
- ``batches``: opening and closing a batch (closing completes its series);
- ``completion``: a series is complete (closed batch, released DICOM association, quiet period after
  STOW-RS or after C-STORE where the hospital chose it, abandoned batch), which
  sends ``scans.signals.series_completed``.
"""

from scans.ingest.batches import UploadNotAllowed, close_abandoned_batches, close_batch, open_batch
from scans.ingest.completion import complete_series, complete_series_if_quiet
from scans.ingest.parsing import FailureReason, RejectedFile
from scans.ingest.writer import IngestResult, IngestStream, ingest_file, ingest_files

__all__ = [
    "FailureReason",
    "IngestResult",
    "IngestStream",
    "RejectedFile",
    "UploadNotAllowed",
    "close_abandoned_batches",
    "close_batch",
    "complete_series",
    "complete_series_if_quiet",
    "ingest_file",
    "ingest_files",
    "open_batch",
]
