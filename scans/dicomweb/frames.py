"""WADO-RS frames and bulk data (PS3.18 8.3.5.1, 8.7.3): pixel data of stored instances, frame by frame.

What a client may ask for (``Accept: multipart/related; type=...; transfer-syntax=...``):
- ``application/octet-stream`` (the default): native pixels in Explicit VR Little Endian; a
  compressed instance is decoded through pydicom's pixel-data plugins (pylibjpeg, pyjpegls);
- ``application/octet-stream; transfer-syntax=*``: each frame as stored, its part's Content-Type
  naming the stored transfer syntax (what OHIF asks for);
- ``image/jpeg``, ``image/jls``, ``image/jp2``, ``image/jpx``, ``image/x-dicom-rle``,
  ``image/jphc``: the stored codestream, when the instance is stored in a syntax of that media
  type (and in the asked ``transfer-syntax``, when one is named).
Nothing is compressed here, so a compressed media type the instance is not stored in is answered
406 (``NotAcceptable``) rather than with a different syntax.

Frames are read from the file without loading the rest of the pixel data: the header is parsed
without pixels, then native frames are read at their offset and encapsulated ones are found
through the fragments (``pydicom.encaps.get_frame``).
"""

from dataclasses import dataclass

import numpy as np
import pydicom
from pydicom.encaps import get_frame
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from portal.errors import UserFacingError
from scans.dicomweb.multipart import parse_content_type
from scans.ingest.parsing import PIXEL_DATA_TAG

OCTET_STREAM = "application/octet-stream"
#: The media type of each compressed transfer syntax (PS3.18 Table 8.7.3-4), by UID.
MEDIA_TYPE_OF_SYNTAX = {
    "1.2.840.10008.1.2.4.50": "image/jpeg",
    "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg",
    "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.4.80": "image/jls",
    "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2",
    "1.2.840.10008.1.2.4.91": "image/jp2",
    "1.2.840.10008.1.2.4.92": "image/jpx",
    "1.2.840.10008.1.2.4.93": "image/jpx",
    "1.2.840.10008.1.2.4.201": "image/jphc",
    "1.2.840.10008.1.2.4.202": "image/jphc",
    "1.2.840.10008.1.2.4.203": "image/jphc",
    "1.2.840.10008.1.2.5": "image/x-dicom-rle",
}
#: Transfer syntaxes whose pixel data bytes are Explicit VR Little Endian's.
LITTLE_ENDIAN_NATIVE = {ExplicitVRLittleEndian, ImplicitVRLittleEndian}


class NotAcceptable(UserFacingError):
    status_code = 406


class FrameNotFound(UserFacingError):
    status_code = 404


class CannotDecode(UserFacingError):
    status_code = 400


@dataclass(frozen=True)
class Choice:
    """How the frames go out: decoded to native little endian, or as stored; and the multipart type."""

    decode: bool
    multipart_type: str


def negotiate(accept_header, stored_syntax):
    """The first Accept entry (best quality first) that can be produced from ``stored_syntax``; else NotAcceptable."""
    stored = UID(stored_syntax)
    stored_media_type = MEDIA_TYPE_OF_SYNTAX.get(stored_syntax)
    entries = []
    for raw in (accept_header or "*/*").split(","):
        if raw.strip():
            media_type, parameters = parse_content_type(raw.strip())
            try:
                quality = float(parameters.get("q", "1"))
            except ValueError:
                quality = 0.0
            if quality > 0:
                entries.append((quality, media_type, parameters))
    for _, media_type, parameters in sorted(entries, key=lambda entry: -entry[0]):
        if media_type in ("*/*", "multipart/*"):
            return Choice(decode=stored not in LITTLE_ENDIAN_NATIVE, multipart_type=OCTET_STREAM)
        part_type = media_type
        if media_type == "multipart/related":
            part_type = parameters.get("type", OCTET_STREAM).lower()
        asked_syntax = parameters.get("transfer-syntax")
        if part_type in (OCTET_STREAM, "application/*", "*/*"):
            if asked_syntax == "*" or asked_syntax == stored_syntax:
                return Choice(decode=not stored.is_little_endian, multipart_type=OCTET_STREAM)
            if asked_syntax in (None, ExplicitVRLittleEndian, ImplicitVRLittleEndian):
                return Choice(decode=stored not in LITTLE_ENDIAN_NATIVE, multipart_type=OCTET_STREAM)
        elif part_type == stored_media_type and asked_syntax in (None, "*", stored_syntax):
            return Choice(decode=False, multipart_type=stored_media_type)
    stored_form = f"{stored_media_type} ({stored.name})" if stored_media_type else f"native pixels ({stored.name})"
    raise NotAcceptable(
        "The frames can be sent as application/octet-stream (Explicit VR Little Endian, or transfer-syntax=* "
        f"for the stored syntax) or as {stored_form}; they are not compressed to another syntax."
    )


@dataclass
class PixelSource:
    """Where an instance's pixel data starts in its file, and what its frames look like."""

    header: pydicom.Dataset
    transfer_syntax: UID
    value_offset: int
    value_length: int
    number_of_frames: int

    @property
    def frame_bytes(self):
        header = self.header
        bits = int(header.Rows) * int(header.Columns) * int(header.get("SamplesPerPixel", 1)) * int(
            header.BitsAllocated
        )
        return bits // 8 if bits % 8 == 0 else None


def pixel_source(fileobj):
    """Parse the header without pixels and locate the Pixel Data value; CannotDecode when the file has none."""
    fileobj.seek(0)
    try:
        header = pydicom.dcmread(fileobj, stop_before_pixels=True)
    except InvalidDicomError:
        raise CannotDecode("The stored instance is an uploaded image, not DICOM: it has no DICOM frames.") from None
    transfer_syntax = UID(str(header.file_meta.TransferSyntaxUID))
    endian = "<" if transfer_syntax.is_little_endian else ">"
    tag_bytes = fileobj.read(8)
    if len(tag_bytes) < 8:
        raise CannotDecode("The stored instance has no pixel data.")
    group, element = np.frombuffer(tag_bytes[:4], dtype=f"{endian}u2")
    if (int(group) << 16 | int(element)) != PIXEL_DATA_TAG:
        raise CannotDecode("The stored instance has no pixel data.")
    if transfer_syntax.is_implicit_VR:
        length = int(np.frombuffer(tag_bytes[4:8], dtype=f"{endian}u4")[0])
    else:
        length = int(np.frombuffer(fileobj.read(4), dtype=f"{endian}u4")[0])
    return PixelSource(
        header=header,
        transfer_syntax=transfer_syntax,
        value_offset=fileobj.tell(),
        value_length=length,
        number_of_frames=int(header.get("NumberOfFrames", 1) or 1),
    )


def check_frame_numbers(frame_numbers, source):
    for number in frame_numbers:
        if not 1 <= number <= source.number_of_frames:
            raise FrameNotFound(f"The instance has {source.number_of_frames} frame(s); there is no frame {number}.")


def stored_frame(fileobj, source, number):
    """Frame ``number`` (1-based) as stored: native bytes, or the frame's compressed codestream."""
    if source.transfer_syntax.is_encapsulated:
        fileobj.seek(source.value_offset)
        return get_frame(fileobj, number - 1, number_of_frames=source.number_of_frames)
    size = source.frame_bytes
    if size is None:
        return decoded_frame(fileobj, source, number)
    fileobj.seek(source.value_offset + (number - 1) * size)
    data = fileobj.read(size)
    if len(data) < size:
        raise CannotDecode("The stored pixel data is shorter than its frames.")
    return data


def decoded_frame(fileobj, source, number):
    """Frame ``number`` decoded to native pixels, little endian (colour as pydicom gives it: RGB for YBR JPEG)."""
    fileobj.seek(0)
    try:
        pixels = pydicom.pixels.pixel_array(fileobj, index=number - 1)
    except Exception as error:  # noqa: BLE001 - every decoder plugin has its own errors for a bad codestream
        raise CannotDecode(f"The stored pixel data cannot be decoded: {error}") from None
    if int(source.header.BitsAllocated) == 1:
        return np.packbits(pixels.astype(np.uint8).ravel(), bitorder="little").tobytes()
    return pixels.astype(pixels.dtype.newbyteorder("<"), copy=False).tobytes()


def frame_parts(fileobj, source, frame_numbers, choice):
    """(Content-Type, bytes) of each asked frame, in the order asked."""
    stored_syntax = str(source.transfer_syntax)
    for number in frame_numbers:
        if choice.decode:
            yield f"{OCTET_STREAM}; transfer-syntax={ExplicitVRLittleEndian}", decoded_frame(fileobj, source, number)
        else:
            yield f"{choice.multipart_type}; transfer-syntax={stored_syntax}", stored_frame(fileobj, source, number)


def bulk_value(fileobj, tag_path):
    """The bytes of a binary value named by a BulkDataURI path (``0028xxxx`` or ``SEQ/item/TAG/...``)."""
    fileobj.seek(0)
    dataset = pydicom.dcmread(fileobj, defer_size=1024)
    steps = tag_path.split("/")
    current = dataset
    try:
        for index in range(0, len(steps) - 1, 2):
            current = current[int(steps[index], 16)].value[int(steps[index + 1])]
        element = current[int(steps[-1], 16)]
    except (KeyError, IndexError, ValueError, TypeError):
        raise FrameNotFound("The instance has no bulk data at this path.") from None
    value = element.value
    if not isinstance(value, bytes | bytearray):
        raise FrameNotFound("The instance has no bulk data at this path.")
    return bytes(value)
