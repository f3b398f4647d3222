"""DICOMweb (DICOM PS3.18) under ``/dicomweb/``: STOW-RS, QIDO-RS and WADO-RS, so that PACS and viewers talk to us.

Every call is authenticated (``Authorization: Bearer <api key>``, or the browser session with its
CSRF token) and sees only what ``visible_to`` lets the caller see: another hospital's UIDs answer
404 (WADO) or match nothing (QIDO), exactly like UIDs that do not exist.

Resources: QIDO-RS searches (``qido``); STOW-RS (``stow``); WADO-RS instances, metadata (from the
headers stored at ingest), frames and bulk data (``frames``), rendered instances, frames, series
and studies, and thumbnails (``rendering``); WADO-URI at ``/dicomweb/wado``. Any other path under
``/dicomweb/`` answers 404 with a JSON body, as do the errors of every resource.

Portal-specific information travels in one private block, group 0x0011, creator "RADASSIST"
(``dicom_json.PRIVATE_CREATOR``):

- (0011,1001) LO, series-level QIDO results: the series' processing status
  (``scans.models.SeriesStatus`` value: receiving, received, queued, analysing, analysed,
  reported, failed);
- (0011,1002) LO, STOW-RS ReferencedSOPSequence items: "duplicate" when the SOP instance was
  already stored and the stored copy was kept (see ``stow`` for why this is a success).
"""
