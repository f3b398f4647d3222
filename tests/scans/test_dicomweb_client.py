"""DICOMweb against a live server with the dicomweb-client package, as imaging software would use it."""

import cv2
import numpy as np
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from requests import HTTPError, Session

from tests.scans.conftest import pydicom_file


@pytest.fixture
def client_for(live_server):
    """dicomweb-client for a hospital's API key; its keep-alive connections close before the live server stops."""
    sessions = []

    def client(world):
        sessions.append(Session())
        return DICOMwebClient(
            url=f"{live_server.url}/dicomweb",
            headers={"Authorization": f"Bearer {world.api_secret}"},
            session=sessions[-1],
        )

    yield client
    for session in sessions:
        session.close()


@pytest.mark.django_db(transaction=True)
def test_dicomweb_client_stores_searches_and_retrieves_within_its_hospital(client_for, north, south, write_ct_series):
    pacs = client_for(north)
    paths = write_ct_series(slices=8, size=64, patient_id="MRN-DWC-1", patient_name="Client^Test")
    datasets = [pydicom.dcmread(path) for path in paths] + [pydicom.dcmread(pydicom_file("CT_small.dcm"))]

    stored = pacs.store_instances(datasets)

    assert len(stored.ReferencedSOPSequence) == 9
    assert "FailedSOPSequence" not in stored
    first = datasets[0]
    study_uid, series_uid, sop_uid = first.StudyInstanceUID, first.SeriesInstanceUID, first.SOPInstanceUID

    studies = pacs.search_for_studies(search_filters={"PatientID": "MRN-DWC-1"})
    assert [pydicom.Dataset.from_json(study).StudyInstanceUID for study in studies] == [study_uid]
    assert len(pacs.search_for_studies()) == 2
    [series] = pacs.search_for_series(study_uid)
    assert pydicom.Dataset.from_json(series).NumberOfSeriesRelatedInstances == 8

    instance = pacs.retrieve_instance(study_uid, series_uid, sop_uid)
    assert instance.SOPInstanceUID == sop_uid
    assert np.array_equal(instance.pixel_array, first.pixel_array)
    retrieved_series = pacs.retrieve_series(study_uid, series_uid)
    assert [dataset.SOPInstanceUID for dataset in retrieved_series] == [d.SOPInstanceUID for d in datasets[:8]]
    metadata = pydicom.Dataset.from_json(pacs.retrieve_instance_metadata(study_uid, series_uid, sop_uid))
    assert metadata.PatientID == "MRN-DWC-1"
    png = pacs.retrieve_instance_rendered(study_uid, series_uid, sop_uid, media_types=("image/png",))
    assert cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED).shape == (64, 64)

    thief = client_for(south)
    assert thief.search_for_studies() == []
    assert thief.search_for_series(study_uid) == []
    with pytest.raises(HTTPError) as refused:
        thief.retrieve_instance(study_uid, series_uid, sop_uid)
    assert refused.value.response.status_code == 404


@pytest.mark.django_db(transaction=True)
def test_dicomweb_client_sees_a_partial_failure(client_for, north):
    pacs = client_for(north)
    good = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    structured_report = pydicom.dcmread(pydicom_file("test-SR.dcm"))

    stored = pacs.store_instances([good, structured_report])

    assert len(stored.ReferencedSOPSequence) == 1
    [failed] = stored.FailedSOPSequence
    assert failed.ReferencedSOPInstanceUID == structured_report.SOPInstanceUID
    assert failed.FailureReason == 0x0122  # no pixel data: an SOP class the portal does not store
