"""Reading one uploaded file: what kind it is, its DICOM header, and whether its pixels can be shown.

No database here: these functions look at bytes and either return what ingest needs or raise
:class:`RejectedFile` with a reason written for the uploader and the DICOM FailureReason that
STOW-RS reports for it.

The web process never loads a whole DICOM file: the header is read with
``stop_before_pixels``, then the Pixel Data element is checked in place (its length against the
image size for native transfer syntaxes; the fragment items for encapsulated ones, whose first
frame is also decoded through pydicom's pixel-data plugins, which is cheap and is the only way to
know that a compressed codestream is really decodable).
"""

import contextlib
import datetime
import io
import re
import struct
import threading
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from portal.errors import UserFacingError

PIXEL_DATA_TAG = 0x7FE00010
ITEM_TAG = 0xFFFEE000
SEQUENCE_DELIMITER_TAG = 0xFFFEE0DD
UNDEFINED_LENGTH = 0xFFFFFFFF
#: Explicit VRs whose length field is 4 bytes after 2 reserved bytes (PS3.5 7.1.2).
LONG_LENGTH_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"
ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")
#: Larger PNG/JPG images are refused before decoding (a decompression bomb needs no zip).
MAX_IMAGE_PIXELS = 4096 * 4096
#: A UID as PS3.5 9.1 writes it, and so as a DICOMweb URL can carry it: digits and dots, at most 64 characters.
CONFORMANT_UID = re.compile(r"[0-9]+(\.[0-9]+)*")
MAXIMUM_UID_LENGTH = 64
#: A person name as received may hold three component groups of 64 characters each (PS3.5 6.2).
MAXIMUM_PERSON_NAME_LENGTH = 400
#: Binary values larger than this are left out of the stored header and named by a BulkDataURI.
BULK_DATA_THRESHOLD_BYTES = 1024
#: The BulkDataURI prefix stored with a header; WADO-RS metadata replaces it with the instance's URL.
BULK_DATA_URI_PREFIX = "bulkdata/"
#: Largest DICOM frame (Rows x Columns) and largest instance (x NumberOfFrames), checked from the header
#: before any pixel is decoded: a small JPEG can declare an image that needs gigabytes once decoded.
MAX_DICOM_FRAME_PIXELS = 4096 * 4096
MAX_DICOM_INSTANCE_PIXELS = 512 * 512 * 1024


class FailureReason(IntEnum):
    """DICOM PS3.4 / PS3.18 STOW-RS FailureReason codes."""

    PROCESSING_FAILURE = 0x0110
    SOP_CLASS_NOT_SUPPORTED = 0x0122
    OUT_OF_RESOURCES = 0xA700
    DATA_SET_DOES_NOT_MATCH_SOP_CLASS = 0xA900
    CANNOT_UNDERSTAND = 0xC000
    TRANSFER_SYNTAX_NOT_SUPPORTED = 0xC122


class RejectedFile(UserFacingError):
    """A file the portal will not store; the message says why, for the person who sent it."""

    def __init__(self, message, *, failure_reason=FailureReason.CANNOT_UNDERSTAND):
        super().__init__(message)
        self.failure_reason = int(failure_reason)


class FileKind(IntEnum):
    UNKNOWN = 0
    DICOM = 1
    IMAGE = 2
    ZIP = 3


def sniff_kind(fileobj):
    """Tell a DICOM Part 10 file, a PNG/JPEG image and a zip archive apart by their first bytes."""
    fileobj.seek(0)
    head = fileobj.read(132)
    fileobj.seek(0)
    if head[128:132] == b"DICM":
        return FileKind.DICOM
    if head.startswith(ZIP_SIGNATURES):
        return FileKind.ZIP
    if head.startswith(PNG_SIGNATURE) or head.startswith(JPEG_SIGNATURE):
        return FileKind.IMAGE
    return FileKind.UNKNOWN


@dataclass(frozen=True)
class DicomHeader:
    """What ingest keeps of a DICOM file, read without its pixel data."""

    sop_instance_uid: str
    sop_class_uid: str
    study_instance_uid: str
    series_instance_uid: str
    transfer_syntax_uid: str
    modality: str
    patient_id: str
    patient_name: str
    patient_birth_date: datetime.date | None
    patient_sex: str
    accession_number: str
    study_date: datetime.date | None
    study_time: datetime.time | None
    study_description: str
    referring_physician: str
    series_number: int | None
    series_description: str
    body_part: str
    scanning_sequence: str
    sequence_variant: str
    inversion_time: float | None
    instance_number: int | None
    rows: int
    columns: int
    number_of_frames: int
    pixel_spacing: list[float] | None
    slice_thickness: float | None
    image_position_patient: list[float] | None
    image_orientation_patient: list[float] | None
    slice_location: float | None
    rescale_slope: float
    rescale_intercept: float
    window_center: float | None
    window_width: float | None
    #: PatientName and ReferringPhysicianName as received (all components and groups), decoded to Unicode.
    patient_name_dicom: str = ""
    referring_physician_dicom: str = ""
    #: StudyID (SH) as received.
    dicom_study_id: str = ""
    #: The header as DICOM JSON (PS3.18 F), without pixel data; see :func:`header_json`.
    dicom_json: dict | None = None


def read_dicom(fileobj, *, allowed_modalities):
    """Parse and check a DICOM file; return its :class:`DicomHeader` or raise :class:`RejectedFile`."""
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError
    from pydicom.uid import UID

    fileobj.seek(0)
    try:
        dataset = dcmread(fileobj, stop_before_pixels=True)
        pixel_data_offset = fileobj.tell()
    except InvalidDicomError as error:
        raise RejectedFile(f"Not a readable DICOM file: {error}") from error
    except Exception as error:  # noqa: BLE001 - pydicom raises many kinds on damaged headers
        raise RejectedFile("The DICOM header is damaged or the file is truncated.") from error
    check_element_lengths(dataset)
    values = HeaderValues(dataset)
    try:
        header = _header_from(values)
    except RejectedFile:
        raise
    except Exception as error:  # noqa: BLE001 - a value pydicom cannot convert is a damaged header
        raise RejectedFile(f"The DICOM header holds an unreadable value ({error}).") from error
    if UID(header.transfer_syntax_uid).is_deflated:
        raise RejectedFile(
            "Deflated DICOM files are not supported; send the file uncompressed or with an image compression.",
            failure_reason=FailureReason.TRANSFER_SYNTAX_NOT_SUPPORTED,
        )
    if not _has_pixel_data_at(fileobj, pixel_data_offset):
        raise RejectedFile(
            "This DICOM file holds no image (no pixel data): structured reports, RT plans and other "
            "non-image objects cannot be viewed or analysed.",
            failure_reason=FailureReason.SOP_CLASS_NOT_SUPPORTED,
        )
    if header.modality not in allowed_modalities:
        accepted = ", ".join(sorted(allowed_modalities))
        raise RejectedFile(
            f"Modality {header.modality or '(none)'} is not accepted here (accepted: {accepted}).",
            failure_reason=FailureReason.SOP_CLASS_NOT_SUPPORTED,
        )
    check_declared_image_size(values)
    check_pixel_data(fileobj, values=values, pixel_data_offset=pixel_data_offset)
    return header


def identifying_uids(fileobj):
    """(SOPClassUID, SOPInstanceUID) of a rejected file, as far as its header can be read, else empty."""
    from pydicom import dcmread

    try:
        fileobj.seek(0)
        header = dcmread(fileobj, stop_before_pixels=True, force=True, specific_tags=["SOPClassUID", "SOPInstanceUID"])
        return str(header.get("SOPClassUID", "")), str(header.get("SOPInstanceUID", ""))
    except Exception:  # noqa: BLE001 - a file that is not DICOM at all simply has no UIDs to report
        return "", ""


#: Header elements that differ in every file of a series; the others are mostly the same in all.
PER_INSTANCE_KEYWORDS = frozenset(
    {"SOPInstanceUID", "InstanceNumber", "ImagePositionPatient", "SliceLocation", "AcquisitionNumber"}
)
_CONVERTED_VALUES = {}
_CONVERTED_VALUES_LIMIT = 20_000


class HeaderValues:
    """``dataset.get(keyword)`` that converts each distinct raw value once per process.

    Every file of a series repeats most of its header (patient, study, series, geometry, pixel
    description): pydicom would convert each of those raw values again in every file, which was
    most of the time ingest spent in pydicom. A value is keyed by its tag, VR, raw bytes, byte
    order and the file's character set, which is everything its conversion depends on; values
    that change in every file skip the cache so that it holds the repeated ones.
    """

    def __init__(self, dataset):
        from pydicom.datadict import tag_for_keyword
        from pydicom.dataelem import RawDataElement

        self.dataset = dataset
        self._raw_type = RawDataElement
        self._tag_for_keyword = tag_for_keyword
        self._character_set = _hashable(getattr(dataset.get_item(0x00080005), "value", None))

    def get(self, keyword, default=None):
        tag = self._tag_for_keyword(keyword)
        raw = self.dataset.get_item(tag) if tag is not None else None
        if raw is None:
            return default
        if keyword in PER_INSTANCE_KEYWORDS or not isinstance(raw, self._raw_type) or raw.value is None:
            return self.dataset.get(keyword, default)
        key = (tag, raw.VR, raw.value, raw.is_little_endian, self._character_set)
        try:
            return _CONVERTED_VALUES[key]
        except KeyError:
            pass
        value = self.dataset.get(keyword, default)
        if len(_CONVERTED_VALUES) >= _CONVERTED_VALUES_LIMIT:
            _CONVERTED_VALUES.clear()
        _CONVERTED_VALUES[key] = value
        return value


def _hashable(value):
    """A multi-valued SpecificCharacterSet (ISO 2022 code extensions) is a list once pydicom has read it."""
    from pydicom.multival import MultiValue

    return tuple(value) if isinstance(value, MultiValue | list) else value


def _text(dataset, keyword):
    return str(dataset.get(keyword, "") or "").strip()


def _values(value):
    """A DICOM value as a list, whether it holds one value or several."""
    from pydicom.multival import MultiValue

    return list(value) if isinstance(value, MultiValue | list | tuple) else [value]


def _codes(dataset, keyword):
    """A multi-valued code string (ScanningSequence ``SE\\IR``) as backslash-joined text."""
    value = dataset.get(keyword)
    if value is None or value == "":
        return ""
    return "\\".join(str(code).strip() for code in _values(value))[:64]


def _number_list(dataset, keyword, count):
    value = dataset.get(keyword)
    if value is None or value == "":
        return None
    values = [float(v) for v in _values(value)]
    return values if len(values) == count else None


def _optional_float(dataset, keyword):
    """The first value (a multi-valued window's first is its default), as a float."""
    value = dataset.get(keyword)
    if value is None or value == "":
        return None
    values = _values(value)
    return float(values[0]) if values else None


def _optional_int(dataset, keyword):
    value = dataset.get(keyword)
    if value is None or value == "":
        return None
    return int(value)


def _dicom_date(value):
    try:
        return datetime.datetime.strptime(str(value).strip()[:8], "%Y%m%d").date()
    except ValueError:
        return None


def _dicom_time(value):
    digits = str(value).strip().split(".")[0]
    if len(digits) < 2 or not digits.isdigit():
        return None
    digits = digits.ljust(6, "0")[:6]
    try:
        return datetime.time(int(digits[:2]), int(digits[2:4]), int(digits[4:6]))
    except ValueError:
        return None


def _sex(dataset):
    sex = _text(dataset, "PatientSex").upper()[:1]
    return sex if sex in ("F", "M", "O") else ""


def person_name(value):
    """DICOM ``Family^Given^Middle^Prefix^Suffix`` as a person would write it: "Prefix Given Middle Family Suffix".

    The alphabetic group is used, or the first non-empty group (ideographic, phonetic) when a name
    has no alphabetic form, as Japanese and Korean names may be sent.
    """
    groups = [group for group in str(value or "").split("=") if group.strip("^ ")]
    parts = [part.strip() for part in (groups[0] if groups else "").split("^")]
    family, given, middle, prefix, suffix = (parts + [""] * 5)[:5]
    return " ".join(part for part in (prefix, given, middle, family, suffix) if part)


def person_name_as_received(dataset, keyword):
    """The PN value with its components and groups, decoded with the file's character set, as the file holds it."""
    value = str(dataset.get(keyword, "") or "")
    if len(value) > MAXIMUM_PERSON_NAME_LENGTH:
        raise RejectedFile(
            f"{keyword} is {len(value)} characters long; DICOM allows three groups of 64 characters.",
            failure_reason=FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
        )
    return value


def nonconformant_uid_reason(keyword, value):
    """Why a UID cannot be stored (a retrieve URL could not carry it), or None when it is conformant."""
    if len(value) > MAXIMUM_UID_LENGTH:
        return f"{keyword} is longer than the {MAXIMUM_UID_LENGTH} characters DICOM allows."
    if not CONFORMANT_UID.fullmatch(value):
        return f"{keyword} {value[:80]!r} is not a DICOM UID (digits separated by single dots)."
    return None


_ELEMENT_JSON = {}
_ELEMENT_JSON_LIMIT = 20_000


def header_json(dataset, *, pixel_data_follows):
    """The header as DICOM JSON, for WADO-RS metadata and QIDO-RS to serve without the file.

    ``pixel_data_follows``: the dataset was read with ``stop_before_pixels`` from a file that has
    Pixel Data, which the header then names by its BulkDataURI. Binary values above
    ``BULK_DATA_THRESHOLD_BYTES`` are left out and named by
    a BulkDataURI relative to the instance (``bulkdata/<tag>[/<item>/<tag>...]``); the strings are
    Unicode, so the SpecificCharacterSet says UTF-8 ("ISO_IR 192"). A value pydicom cannot
    convert is left out rather than refusing the file. Like :class:`HeaderValues`, each distinct
    raw top-level value is converted once per process (the files of a series repeat most of their
    header), which keeps the stored header from doubling the time ingest spends in pydicom.
    """
    from pydicom.dataelem import RawDataElement

    character_set = _hashable(getattr(dataset.get_item(0x00080005), "value", None))
    converted = {}
    for tag in dataset.keys():
        raw = dataset.get_item(tag)
        key = None
        if isinstance(raw, RawDataElement) and raw.value is not None and raw.VR != "SQ":
            key = (tag, raw.VR, raw.value, raw.is_little_endian, character_set)
            if key in _ELEMENT_JSON:
                converted[f"{tag:08X}"] = _ELEMENT_JSON[key]
                continue
        try:
            element_json = _element_json(dataset[tag], f"{tag:08X}")
        except Exception:  # noqa: BLE001 - a damaged value is left out of the stored header, as pydicom would
            continue
        converted[f"{tag:08X}"] = element_json
        if key is not None:
            if len(_ELEMENT_JSON) >= _ELEMENT_JSON_LIMIT:
                _ELEMENT_JSON.clear()
            _ELEMENT_JSON[key] = element_json
    if "00080005" in converted:
        converted["00080005"] = {"vr": "CS", "Value": ["ISO_IR 192"]}
    if pixel_data_follows:
        converted["7FE00010"] = {"vr": _pixel_data_vr(dataset), "BulkDataURI": BULK_DATA_URI_PREFIX + "7FE00010"}
    return converted


def stored_header_json(fileobj):
    """:func:`header_json` of a stored file, read without its pixel data (for instances stored before headers were)."""
    from pydicom import dcmread

    fileobj.seek(0)
    dataset = dcmread(fileobj, stop_before_pixels=True)
    return header_json(dataset, pixel_data_follows=_has_pixel_data_at(fileobj, fileobj.tell()))


def _element_json(element, path):
    """One element as DICOM JSON; large binary values, also inside sequences, become BulkDataURIs by their path."""
    if element.VR != "SQ":
        return element.to_json_dict(
            bulk_data_element_handler=lambda _: BULK_DATA_URI_PREFIX + path,
            bulk_data_threshold=BULK_DATA_THRESHOLD_BYTES,
        )
    items = []
    for index, item in enumerate(element.value):
        item_json = {}
        for tag in item.keys():
            try:
                item_json[f"{tag:08X}"] = _element_json(item[tag], f"{path}/{index}/{tag:08X}")
            except Exception:  # noqa: BLE001 - as above, a damaged nested value is left out
                continue
        items.append(item_json)
    return {"vr": "SQ", "Value": items} if items else {"vr": "SQ"}


def _pixel_data_vr(dataset):
    """OB for compressed pixel data and 8-bit pixels, OW otherwise (PS3.5 8.2)."""
    from pydicom.uid import UID

    transfer_syntax = UID(str(dataset.file_meta.get("TransferSyntaxUID", "")))
    if transfer_syntax.is_encapsulated or int(dataset.get("BitsAllocated") or 16) <= 8:
        return "OB"
    return "OW"


def slice_position(position, orientation):
    """ImagePositionPatient projected on the slice normal (row direction x column direction), in mm."""
    if position is None or orientation is None:
        return None
    (rx, ry, rz), (cx, cy, cz) = orientation[:3], orientation[3:]
    normal = (ry * cz - rz * cy, rz * cx - rx * cz, rx * cy - ry * cx)
    if not any(normal):
        return None
    return float(sum(p * n for p, n in zip(position, normal, strict=True)))


def _header_from(values):
    """The DicomHeader of a :class:`HeaderValues`."""
    file_meta = getattr(values.dataset, "file_meta", None)
    transfer_syntax_uid = str(file_meta.get("TransferSyntaxUID", "") if file_meta is not None else "").strip()
    required = {
        "SOPInstanceUID": _text(values, "SOPInstanceUID"),
        "StudyInstanceUID": _text(values, "StudyInstanceUID"),
        "SeriesInstanceUID": _text(values, "SeriesInstanceUID"),
    }
    missing = [keyword for keyword, value in required.items() if not value]
    if missing:
        raise RejectedFile(
            f"The DICOM file lacks {', '.join(missing)}.",
            failure_reason=FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
        )
    if not transfer_syntax_uid:
        raise RejectedFile("The DICOM file does not say how its data is encoded (no TransferSyntaxUID).")
    nonconformant = [
        reason for keyword, value in required.items() if (reason := nonconformant_uid_reason(keyword, value))
    ]
    if nonconformant:
        raise RejectedFile(
            " ".join(nonconformant) + " Such an instance could not be retrieved by its UIDs, so it is not stored.",
            failure_reason=FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
        )
    position = _number_list(values, "ImagePositionPatient", 3)
    orientation = _number_list(values, "ImageOrientationPatient", 6)
    location = slice_position(position, orientation)
    if location is None:
        location = _optional_float(values, "SliceLocation")
    return DicomHeader(
        sop_instance_uid=required["SOPInstanceUID"],
        sop_class_uid=_text(values, "SOPClassUID"),
        study_instance_uid=required["StudyInstanceUID"],
        series_instance_uid=required["SeriesInstanceUID"],
        transfer_syntax_uid=transfer_syntax_uid,
        modality=_text(values, "Modality").upper(),
        patient_id=_text(values, "PatientID")[:64],
        patient_name=person_name(values.get("PatientName", ""))[:200],
        patient_birth_date=_dicom_date(values.get("PatientBirthDate", "")),
        patient_sex=_sex(values),
        accession_number=_text(values, "AccessionNumber")[:64],
        study_date=_dicom_date(values.get("StudyDate", "")),
        study_time=_dicom_time(values.get("StudyTime", "")),
        study_description=_text(values, "StudyDescription")[:255],
        referring_physician=person_name(values.get("ReferringPhysicianName", ""))[:255],
        series_number=_optional_int(values, "SeriesNumber"),
        series_description=_text(values, "SeriesDescription")[:255],
        body_part=_text(values, "BodyPartExamined")[:64],
        scanning_sequence=_codes(values, "ScanningSequence"),
        sequence_variant=_codes(values, "SequenceVariant"),
        inversion_time=_optional_float(values, "InversionTime"),
        instance_number=_optional_int(values, "InstanceNumber"),
        rows=_optional_int(values, "Rows") or 0,
        columns=_optional_int(values, "Columns") or 0,
        number_of_frames=_optional_int(values, "NumberOfFrames") or 1,
        pixel_spacing=_number_list(values, "PixelSpacing", 2),
        slice_thickness=_optional_float(values, "SliceThickness"),
        image_position_patient=position,
        image_orientation_patient=orientation,
        slice_location=location,
        rescale_slope=_optional_float(values, "RescaleSlope") or 1.0,
        rescale_intercept=_optional_float(values, "RescaleIntercept") or 0.0,
        window_center=_optional_float(values, "WindowCenter"),
        window_width=_optional_float(values, "WindowWidth"),
        patient_name_dicom=person_name_as_received(values, "PatientName"),
        referring_physician_dicom=person_name_as_received(values, "ReferringPhysicianName"),
        dicom_study_id=_text(values, "StudyID")[:64],
        dicom_json=header_json(values.dataset, pixel_data_follows=True),
    )


# Hostile headers: checked before any pixel is read ---------------------------------------------------


def check_element_lengths(dataset):
    """Refuse a header element whose declared length runs past the end of the file.

    pydicom reads whatever bytes are left and keeps the shorter value, so such a file would be
    stored as if it were whole; the claim is a sign of a truncated or forged file.
    """
    from pydicom.dataelem import RawDataElement

    for tag in list(dataset.keys()):
        element = dataset.get_item(tag)
        if isinstance(element, RawDataElement):
            value = element.value or b""
            if element.length != UNDEFINED_LENGTH and element.length > len(value):
                raise RejectedFile(
                    f"The DICOM element {tag} claims {element.length:,} bytes but the file ends after "
                    f"{len(value):,}: the file is truncated or damaged.",
                )
        elif getattr(element, "VR", None) == "SQ":
            for item in element.value:
                check_element_lengths(item)


def check_declared_image_size(values):
    """Refuse an image whose declared size (Rows x Columns x NumberOfFrames) is beyond the limits, before decoding."""
    rows, columns = int(values.get("Rows") or 0), int(values.get("Columns") or 0)
    frames = int(values.get("NumberOfFrames") or 1)
    if rows * columns > MAX_DICOM_FRAME_PIXELS:
        raise RejectedFile(
            f"The image is too large: {columns:,} x {rows:,} pixels per frame; "
            f"frames of up to {MAX_DICOM_FRAME_PIXELS:,} pixels are accepted.",
            failure_reason=FailureReason.OUT_OF_RESOURCES,
        )
    if rows * columns * frames > MAX_DICOM_INSTANCE_PIXELS:
        raise RejectedFile(
            f"The image is too large: {frames:,} frames of {columns:,} x {rows:,} pixels; "
            f"instances of up to {MAX_DICOM_INSTANCE_PIXELS:,} pixels in all are accepted.",
            failure_reason=FailureReason.OUT_OF_RESOURCES,
        )


def check_pixel_data_length(fileobj, length):
    """Refuse a Pixel Data element whose declared length is more than the bytes left in the file."""
    remaining = _remaining_bytes(fileobj)
    if length != UNDEFINED_LENGTH and length > remaining:
        raise RejectedFile(
            f"The Pixel Data element claims {length:,} bytes but the file holds only {remaining:,} more: "
            "the file is truncated or damaged.",
        )


def _has_pixel_data_at(fileobj, offset):
    """``stop_before_pixels`` leaves the file at the Pixel Data tag, or at its end when there is none."""
    fileobj.seek(offset)
    tag_bytes = fileobj.read(4)
    fileobj.seek(offset)
    if len(tag_bytes) < 4:
        return False
    little = struct.unpack("<HH", tag_bytes)
    big = struct.unpack(">HH", tag_bytes)
    return PIXEL_DATA_TAG in (little[0] << 16 | little[1], big[0] << 16 | big[1])


def _remaining_bytes(fileobj):
    here = fileobj.tell()
    end = fileobj.seek(0, io.SEEK_END)
    fileobj.seek(here)
    return end - here


def check_pixel_data(fileobj, *, values, pixel_data_offset):
    """Raise :class:`RejectedFile` unless the pixel data is complete and decodable here (``values``: HeaderValues)."""
    from pydicom.pixels.decoders.base import get_decoder
    from pydicom.uid import UID

    transfer_syntax = UID(str(values.dataset.file_meta.TransferSyntaxUID))
    try:
        decoder = get_decoder(transfer_syntax)
    except NotImplementedError:
        decoder = None
    if decoder is None or not decoder.is_available:
        raise RejectedFile(
            f"The image compression of this file ({transfer_syntax.name}) cannot be decoded here.",
            failure_reason=FailureReason.TRANSFER_SYNTAX_NOT_SUPPORTED,
        )
    rows, columns = int(values.get("Rows") or 0), int(values.get("Columns") or 0)
    bits_allocated = int(values.get("BitsAllocated") or 0)
    if rows <= 0 or columns <= 0 or bits_allocated <= 0:
        raise RejectedFile("The DICOM image has no size (Rows, Columns or BitsAllocated is missing).")
    fileobj.seek(pixel_data_offset)
    endian = "<" if transfer_syntax.is_little_endian else ">"
    length = _read_pixel_data_length(fileobj, endian=endian, implicit=transfer_syntax.is_implicit_VR)
    check_pixel_data_length(fileobj, length)
    if transfer_syntax.is_encapsulated:
        _check_fragments(fileobj, endian=endian)
        _decode_first_frame(fileobj, transfer_syntax)
    else:
        frames = int(values.get("NumberOfFrames") or 1)
        samples = int(values.get("SamplesPerPixel") or 1)
        expected_bits = rows * columns * samples * frames * bits_allocated
        expected = (expected_bits + 7) // 8
        if length == UNDEFINED_LENGTH or length < expected or _remaining_bytes(fileobj) < min(length, expected):
            raise RejectedFile(
                "The file is truncated: its pixel data is shorter than the image size it declares.",
                failure_reason=FailureReason.CANNOT_UNDERSTAND,
            )


def _read_pixel_data_length(fileobj, *, endian, implicit):
    header = fileobj.read(8)
    if len(header) < 8:
        raise RejectedFile("The file is truncated inside its pixel data header.")
    if implicit:
        return struct.unpack(f"{endian}L", header[4:8])[0]
    vr = header[4:6]
    if vr in LONG_LENGTH_VRS:
        extra = fileobj.read(4)
        if len(extra) < 4:
            raise RejectedFile("The file is truncated inside its pixel data header.")
        return struct.unpack(f"{endian}L", extra)[0]
    return struct.unpack(f"{endian}H", header[6:8])[0]


def _check_fragments(fileobj, *, endian):
    """Walk the items of encapsulated pixel data (offset table, then fragments) up to the delimiter."""
    remaining = _remaining_bytes(fileobj)
    position = 0
    fragments = 0
    while True:
        item = fileobj.read(8)
        if len(item) < 8:
            raise RejectedFile("The file is truncated: its compressed pixel data ends early.")
        group, element, length = struct.unpack(f"{endian}HHL", item)
        tag = group << 16 | element
        position += 8
        if tag == SEQUENCE_DELIMITER_TAG:
            break
        if tag != ITEM_TAG or length == UNDEFINED_LENGTH:
            raise RejectedFile("The compressed pixel data is corrupted (an unexpected item in its fragments).")
        position += length
        if position > remaining:
            raise RejectedFile("The file is truncated: its compressed pixel data ends early.")
        fileobj.seek(length, io.SEEK_CUR)
        fragments += 1
    if fragments < 2:
        raise RejectedFile("The compressed pixel data holds no image fragment.")


def _decode_first_frame(fileobj, transfer_syntax):
    from pydicom.pixels import pixel_array

    fileobj.seek(0)
    try:
        pixel_array(fileobj, index=0)
    except Exception as error:  # noqa: BLE001 - every plugin has its own errors for a bad codestream
        raise RejectedFile(
            f"The {transfer_syntax.name} pixel data cannot be decoded: {error}",
            failure_reason=FailureReason.CANNOT_UNDERSTAND,
        ) from error


@dataclass(frozen=True)
class GreyImage:
    """A PNG/JPG upload converted to the stored form: an 8-bit grey PNG."""

    png_bytes: bytes
    rows: int
    columns: int


_PILLOW_STRICTNESS_LOCK = threading.Lock()


@contextlib.contextmanager
def strict_pillow_decoding():
    """Make Pillow refuse truncated images while we decode an upload.

    WeasyPrint switches Pillow's process-wide ``LOAD_TRUNCATED_IMAGES`` on when it is imported; in a
    process that has rendered a PDF, a cut-off PNG would otherwise load as a half-grey slice.
    """
    from PIL import ImageFile

    with _PILLOW_STRICTNESS_LOCK:
        previous = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            yield
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = previous


def read_image(fileobj):
    """Decode a PNG or JPEG upload to 8-bit grey PNG bytes, or raise :class:`RejectedFile`."""
    from PIL import Image, UnidentifiedImageError

    fileobj.seek(0)
    try:
        with strict_pillow_decoding(), _bomb_as_rejection(), Image.open(fileobj) as image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS or width == 0 or height == 0:
                raise RejectedFile(
                    f"The image is {width}x{height} pixels; images up to {MAX_IMAGE_PIXELS:,} pixels are accepted.",
                    failure_reason=FailureReason.OUT_OF_RESOURCES,
                )
            image.load()
            grey = _to_grey8(image)
    except RejectedFile:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise RejectedFile(f"The image is damaged or truncated and cannot be read ({error}).") from error
    buffer = io.BytesIO()
    grey.save(buffer, format="PNG")
    return GreyImage(png_bytes=buffer.getvalue(), rows=grey.height, columns=grey.width)


@contextlib.contextmanager
def _bomb_as_rejection():
    """Pillow refuses images of more than twice its own pixel limit while opening them: say so to the uploader."""
    from PIL import Image

    try:
        yield
    except Image.DecompressionBombError as error:
        raise RejectedFile(
            f"The image is too large: images up to {MAX_IMAGE_PIXELS:,} pixels are accepted.",
            failure_reason=FailureReason.OUT_OF_RESOURCES,
        ) from error


def _to_grey8(image):
    from PIL import Image

    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        pixels = np.asarray(image, dtype=np.float32)
        low, high = float(pixels.min()), float(pixels.max())
        scaled = np.zeros_like(pixels) if high <= low else (pixels - low) * (255.0 / (high - low))
        return Image.fromarray(np.round(scaled).astype(np.uint8), mode="L")
    if image.mode in ("RGBA", "LA", "P", "PA"):
        image = image.convert("RGBA").convert("RGB")
    return image.convert("L")
