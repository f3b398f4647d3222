"""Whole instances transcoded to Explicit VR Little Endian for WADO-RS retrieve, when a client asks for it.

The one syntax every DICOM application reads: compressed pixel data is decoded through pydicom's
plugins (colour JPEG comes out as RGB, and the header says so) and implicit VR is written with the
VRs of the data dictionary. Explicit VR Big Endian (retired) is not converted: every binary value
would need its byte order changed, which pydicom does not do, so such files are only sent as
stored (``can_transcode``). A file that
cannot be decoded stops the answer; since retrieve streams, the instances are transcoded as they
are sent, one in memory at a time.
"""

import io

import pydicom
from pydicom.uid import ExplicitVRLittleEndian

EXPLICIT_VR_LITTLE_ENDIAN = str(ExplicitVRLittleEndian)


def can_transcode(stored_syntax):
    return pydicom.uid.UID(stored_syntax).is_little_endian


def explicit_little_endian(storage, name):
    """An open binary file holding the stored instance ``name`` in Explicit VR Little Endian."""
    with storage.open(name, "rb") as stored:
        dataset = pydicom.dcmread(stored)
    syntax = dataset.file_meta.TransferSyntaxUID
    if syntax.is_compressed:
        dataset.decompress()
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True, little_endian=True, implicit_vr=False)
    buffer.seek(0)
    return buffer
