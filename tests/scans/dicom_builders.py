"""DICOM files built by the tests from pydicom's shipped samples: character sets, compressed syntaxes, odd UIDs."""

import io

import numpy as np
import pydicom
from pydicom.data import get_charset_files
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from tests.scans.conftest import pydicom_file

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


def charset_sample(name):
    [path] = get_charset_files(name)
    return path


def as_ct_image(dataset, *, patient_id="MRN-CHARSET", size=8):
    """The dataset (its names, character set and identifiers untouched) given a tiny CT image, as file bytes."""
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.file_meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
    dataset.SOPClassUID = CT_IMAGE_STORAGE
    for keyword in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"):
        if keyword not in dataset:
            setattr(dataset, keyword, generate_uid())
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    dataset.PatientID = patient_id
    dataset.Modality = "CT"
    dataset.Rows = dataset.Columns = size
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit, dataset.PixelRepresentation = 16, 12, 11, 0
    dataset.add_new(0x7FE00010, "OW", (np.arange(size * size, dtype="<u2") % 4096).tobytes())
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def charset_ct(name, **kwargs):
    """A character-set sample of pydicom's as a CT image with fresh UIDs, and its PatientName as pydicom decodes it."""
    dataset = pydicom.dcmread(charset_sample(name))
    for keyword in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"):
        setattr(dataset, keyword, generate_uid())
    return as_ct_image(dataset, **kwargs), dataset.PatientName


def shipped_as_ct(name, *, study_uid):
    """One of pydicom's image test files relabelled CT (ingest accepts CT here) in the given study, with fresh
    series and instance UIDs; pixels and transfer syntax untouched."""
    dataset = pydicom.dcmread(pydicom_file(name))
    dataset.Modality = "CT"
    dataset.PatientID = "MRN-SHIPPED"
    dataset.StudyInstanceUID = study_uid
    dataset.SeriesInstanceUID = generate_uid()
    dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue(), dataset
