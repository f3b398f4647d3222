"""DICOM JSON (PS3.18 Annex F): attributes named by keyword in, ``{"ggggeeee": {"vr": ..., "Value": [...]}}`` out.

pydicom knows every attribute's VR and how each VR is written in JSON (PN as ``{"Alphabetic": ...}``,
IS and DS as numbers, empty values as a bare ``{"vr": ...}``), so results are built as pydicom
datasets and serialised by it.
"""

import datetime

from pydicom import Dataset
from pydicom.datadict import keyword_for_tag, tag_for_keyword

MEDIA_TYPE = "application/dicom+json"
#: UTF-8, which is what the database holds.
SPECIFIC_CHARACTER_SET = "ISO_IR 192"

PRIVATE_GROUP = 0x0011
PRIVATE_CREATOR = "RADASSIST"
SERIES_STATUS_ELEMENT = 0x01
STORE_NOTE_ELEMENT = 0x02


def dicom_value(value):
    """A Python value as pydicom wants it: dates and times in DICOM format, None for empty."""
    if isinstance(value, datetime.datetime):
        return value.strftime("%Y%m%d%H%M%S")
    if isinstance(value, datetime.date):
        return value.strftime("%Y%m%d")
    if isinstance(value, datetime.time):
        return value.strftime("%H%M%S")
    if value == "":
        return None
    return value


def dataset_from_attributes(attributes, *, private=None):
    """A pydicom dataset from ``{keyword: value}`` and optional ``{private element: LO value}`` in our block."""
    dataset = Dataset()
    for keyword, value in attributes.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            setattr(dataset, keyword, [dataset_from_attributes(item) for item in value])
        else:
            setattr(dataset, keyword, dicom_value(value))
    if private:
        block = dataset.private_block(PRIVATE_GROUP, PRIVATE_CREATOR, create=True)
        for element, value in private.items():
            block.add_new(element, "LO", value)
    return dataset


def to_dicom_json(attributes, *, private=None):
    return dataset_from_attributes(attributes, private=private).to_json_dict()


def tag_of(keyword):
    """The DICOM JSON key ("00280100") of an attribute keyword."""
    return f"{tag_for_keyword(keyword):08X}"


def keyword_of(name):
    """The attribute keyword for a QIDO key given as keyword ("PatientID") or tag ("00100020"); None if unknown."""
    if tag_for_keyword(name) is not None:
        return name
    if len(name) == 8:
        try:
            return keyword_for_tag(int(name, 16)) or None
        except ValueError:
            return None
    return None
