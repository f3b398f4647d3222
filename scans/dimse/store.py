"""C-STORE: every received instance goes through the ingest service, and its outcome becomes the DIMSE status.

One upload batch per association, opened at the first C-STORE and closed when the association
ends (released, aborted or dropped); closing it completes the series it stored into, or leaves
them to the quiet period, as the hospital chose (``Hospital.dimse_complete_on_release``).

Why each instance is written on its own: a C-STORE response must carry the outcome of its
request, and storage SCUs (dcmtk's storescu, modalities, PACS) send the next request only after
the response to the previous one, so there is never a second instance of the association to
group with. Grouping several would mean answering "success" before the rows exist, which could
leave a sender believing an instance is stored when its transaction failed. So each instance is
written before its response (``IngestStream``: checked, copied to storage, its rows written in one
transaction), with the patient, study and series looked up once per association.

Statuses (PS3.4 B.2.3, PS3.7 C):
- stored: 0x0000 Success;
- already stored (same SOP Instance UID in this hospital): Warning 0xB006 "Elements Discarded",
  with an ErrorComment saying so. The received copy is discarded and the stored one kept, which
  is what B006 says; a warning still tells the sender the instance is held, so a PACS that resends
  after a timeout sees no error and does not retry (0x0111 "Duplicate SOP Instance" is an N-CREATE
  failure; B000 would claim coercion and B007 a mismatch with the SOP class, neither true);
- rejected: the ingest's FailureReason, all of which are C-STORE statuses (0xA700 out of resources,
  0xA900 data set does not match SOP class, 0xC000/0xC122 cannot understand, 0x0122 SOP class not
  supported, 0x0110 processing failure), with the ingest's reason as ErrorComment (cut to the 64
  characters of an LO; the whole reason is kept on the batch's file row).
"""

import logging
import tempfile
from collections import Counter

from pydicom import Dataset, dcmwrite
from pydicom.uid import UID, ExplicitVRLittleEndian

from scans.ingest import FailureReason, IngestStream, close_batch, open_batch
from scans.models import FileOutcome, UploadBatch

logger = logging.getLogger(__name__)

SUCCESS = 0x0000
DUPLICATE_WARNING = 0xB006
ERROR_COMMENT_MAX_LENGTH = 64
DUPLICATE_COMMENT = "Already stored: the stored copy of this SOP instance was kept"
INTERNAL_ERROR_COMMENT = "Not stored because of an error on our side; send it again"
#: Received data sets are held in memory up to this size, then in a temporary file.
SPOOL_MAX_MEMORY_BYTES = 4 * 1024 * 1024


def status_dataset(status, comment=""):
    dataset = Dataset()
    dataset.Status = int(status)
    if comment:
        dataset.ErrorComment = error_comment(comment)
    return dataset


def error_comment(text):
    """An ErrorComment value: printable ASCII (the command set's character repertoire), at most 64 characters."""
    ascii_text = "".join(character if " " <= character <= "~" else "?" for character in text)
    if len(ascii_text) <= ERROR_COMMENT_MAX_LENGTH:
        return ascii_text
    return ascii_text[: ERROR_COMMENT_MAX_LENGTH - 3].rstrip() + "..."


def spool_received(event):
    """The received instance as a DICOM file (as sent; a deflated one inflated), in a spooled temporary file."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MAX_MEMORY_BYTES)
    if UID(event.context.transfer_syntax).is_deflated:
        dataset = event.dataset
        dataset.file_meta = event.file_meta
        dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        dcmwrite(spool, dataset, enforce_file_format=True)
    else:
        spool.write(event.encoded_dataset())
    spool.seek(0)
    return spool


class StoreSession:
    """The C-STOREs of one association: its batch, and what happened to each instance (for the log line)."""

    def __init__(self, *, admission):
        self.admission = admission
        self.batch = None
        self.ingest = None
        self.outcomes = Counter()

    def store(self, event):
        """Ingest one received instance; returns the C-STORE response status dataset."""
        sop_instance_uid = str(event.request.AffectedSOPInstanceUID or "")
        try:
            if self.batch is None:
                self.batch = open_batch(
                    hospital=self.admission.hospital, uploaded_by=self.admission.peer.user,
                    source=UploadBatch.Source.DIMSE,
                )
                self.ingest = IngestStream(batch=self.batch)
            spool = spool_received(event)
            (result,) = self.ingest.ingest_file(name=f"{sop_instance_uid}.dcm", fileobj=spool)
        except Exception:
            logger.exception("storing a C-STORE instance failed", extra={"batch_id": getattr(self.batch, "pk", None)})
            self.outcomes["failed"] += 1
            return status_dataset(FailureReason.PROCESSING_FAILURE, INTERNAL_ERROR_COMMENT)
        self.outcomes[result.outcome] += 1
        if result.outcome == FileOutcome.STORED:
            return status_dataset(SUCCESS)
        if result.outcome == FileOutcome.DUPLICATE:
            return status_dataset(DUPLICATE_WARNING, DUPLICATE_COMMENT)
        return status_dataset(result.failure_reason or FailureReason.CANNOT_UNDERSTAND, result.reason)

    def close(self):
        """Close the association's batch, if it stored anything (completing its series as the hospital chose)."""
        if self.batch is not None:
            close_batch(batch=self.batch)
