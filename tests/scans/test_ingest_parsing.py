"""Reading DICOM headers: the repeated-value cache must give exactly what pydicom gives."""

import io

import pydicom
import pytest
from pydicom.data import get_testdata_file

from scans.ingest.parsing import HeaderValues, read_dicom

KEYWORDS = [
    "PatientName", "PatientID", "StudyDescription", "SeriesDescription", "PixelSpacing",
    "ImageOrientationPatient", "ImagePositionPatient", "Rows", "Columns", "RescaleSlope", "StudyDate",
]


def file_bytes(dataset):
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def ct_with_name(raw_name, character_set):
    dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    dataset.SpecificCharacterSet = character_set
    dataset.add_new(0x00100010, "PN", raw_name)  # the same bytes in both files
    dataset.SOPInstanceUID = pydicom.uid.generate_uid()
    return file_bytes(dataset)


def test_the_same_name_bytes_in_two_character_sets_read_as_two_names():
    """A value is reused only for the same bytes in the same character set: a Cyrillic file after a
    Latin-1 one must not inherit the Latin-1 reading of its name."""
    raw_name = b"M\xfcller^Anna"
    latin = read_dicom(io.BytesIO(ct_with_name(raw_name, "ISO_IR 100")), allowed_modalities={"CT"})
    cyrillic = read_dicom(io.BytesIO(ct_with_name(raw_name, "ISO_IR 144")), allowed_modalities={"CT"})
    again = read_dicom(io.BytesIO(ct_with_name(raw_name, "ISO_IR 100")), allowed_modalities={"CT"})
    assert latin.patient_name == again.patient_name == "Anna Müller"
    assert cyrillic.patient_name == "Anna M\u045cller"  # 0xFC is "ќ" in ISO 8859-5


@pytest.mark.parametrize(
    "name", ["CT_small.dcm", "MR_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm", "JPEG2000.dcm"]
)
def test_cached_values_equal_pydicom_values(name):
    data = get_testdata_file(name, read=False)
    for _ in range(2):  # the second read comes from the cache
        dataset = pydicom.dcmread(data, stop_before_pixels=True)
        values = HeaderValues(dataset)
        expected = pydicom.dcmread(data, stop_before_pixels=True)
        for keyword in KEYWORDS:
            assert values.get(keyword) == expected.get(keyword), keyword
