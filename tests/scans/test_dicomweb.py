"""DICOMweb through Django's test client: STOW-RS outcomes, QIDO-RS matching, WADO-RS retrieve and rendering."""

import io
import json

import cv2
import numpy as np
import pydicom
import pytest
from django.test import Client

from portal.models import AuditAction, AuditEvent
from scans.dicomweb.multipart import read_parts
from scans.models import Instance, Series, SeriesStatus
from tests.scans.conftest import pydicom_file

pytestmark = pytest.mark.django_db

BOUNDARY = "radassist-test-boundary"
STOW_CONTENT_TYPE = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
REFERENCED_SOP_SEQUENCE, FAILED_SOP_SEQUENCE, FAILURE_REASON = "00081199", "00081198", "00081197"
RETRIEVE_URL, REFERENCED_SOP_INSTANCE_UID = "00081190", "00081155"


def multipart_body(parts, content_type="application/dicom"):
    body = b"".join(
        f"--{BOUNDARY}\r\nContent-Type: {content_type}\r\n\r\n".encode() + data + b"\r\n" for data in parts
    )
    return body + f"--{BOUNDARY}--\r\n".encode()


def key_client(world):
    return Client(HTTP_AUTHORIZATION=f"Bearer {world.api_secret}")


def stow(client, parts, url="/dicomweb/studies"):
    return client.post(url, data=multipart_body(parts), content_type=STOW_CONTENT_TYPE)


def value(result, tag):
    return result[tag].get("Value", [None])[0]


@pytest.fixture
def stored_series(north, write_ct_series):
    """A 4-slice CT series stored through STOW-RS by north's API key; returns its paths."""
    paths = write_ct_series(
        slices=4, size=32, patient_id="MRN-WEB-7", patient_name="Doe^Jane", accession_number="ACC-7001"
    )
    response = stow(key_client(north), [path.read_bytes() for path in paths])
    assert response.status_code == 200, response.content
    return paths


def uids_of(path):
    header = pydicom.dcmread(path, stop_before_pixels=True)
    return header.StudyInstanceUID, header.SeriesInstanceUID, header.SOPInstanceUID


def test_stow_stores_every_part_and_answers_with_retrieve_urls(north, write_ct_series):
    paths = write_ct_series(slices=3, size=16)
    response = stow(key_client(north), [path.read_bytes() for path in paths])

    assert response.status_code == 200
    assert response["Content-Type"] == "application/dicom+json"
    answer = response.json()
    study_uid, series_uid, _ = uids_of(paths[0])
    assert value(answer, RETRIEVE_URL) == f"http://testserver/dicomweb/studies/{study_uid}"
    referenced = answer[REFERENCED_SOP_SEQUENCE]["Value"]
    assert [value(item, REFERENCED_SOP_INSTANCE_UID) for item in referenced] == [uids_of(p)[2] for p in paths]
    assert value(referenced[0], RETRIEVE_URL).startswith(
        f"http://testserver/dicomweb/studies/{study_uid}/series/{series_uid}/instances/"
    )
    assert FAILED_SOP_SEQUENCE not in answer
    assert Instance.objects.for_hospital(north.hospital).count() == 3


def test_stow_partial_failure_is_202_and_names_the_reason(north):
    good = pydicom_file("CT_small.dcm").read_bytes()
    response = stow(key_client(north), [good, b"this is not a DICOM file at all"])

    assert response.status_code == 202
    answer = response.json()
    assert len(answer[REFERENCED_SOP_SEQUENCE]["Value"]) == 1
    failed = answer[FAILED_SOP_SEQUENCE]["Value"]
    assert [value(item, FAILURE_REASON) for item in failed] == [0xC000]


def test_stow_all_failed_is_409(north):
    response = stow(key_client(north), [b"garbage one", b"garbage two"])

    assert response.status_code == 409
    assert len(response.json()[FAILED_SOP_SEQUENCE]["Value"]) == 2


def test_stow_of_a_duplicate_is_a_success_marked_duplicate_without_a_second_row(north):
    good = pydicom_file("CT_small.dcm").read_bytes()
    client = key_client(north)
    assert stow(client, [good]).status_code == 200

    again = stow(client, [good])

    assert again.status_code == 200
    item = again.json()[REFERENCED_SOP_SEQUENCE]["Value"][0]
    assert item["00110010"]["Value"] == ["RADASSIST"]
    assert item["00111002"]["Value"] == ["duplicate"]
    assert Instance.objects.for_hospital(north.hospital).count() == 1


def test_stow_into_a_study_rejects_instances_of_another_study(north, write_ct_series):
    paths = write_ct_series(slices=1, size=16)
    response = stow(key_client(north), [paths[0].read_bytes()], url="/dicomweb/studies/1.2.3.4.5")

    assert response.status_code == 409
    assert value(response.json()[FAILED_SOP_SEQUENCE]["Value"][0], FAILURE_REASON) == 0xA900


def test_stow_refuses_other_media_types_broken_bodies_and_anonymous_callers(north):
    client = key_client(north)
    form = client.post("/dicomweb/studies", {"file": io.BytesIO(b"x")})
    assert form.status_code == 415
    json_parts = client.post(
        "/dicomweb/studies", data=b"{}", content_type='multipart/related; type="application/dicom+json"; boundary=x'
    )
    assert json_parts.status_code == 415
    cut_short = pydicom_file("CT_small.dcm").read_bytes()
    truncated = client.post(
        "/dicomweb/studies",
        data=f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode() + cut_short,
        content_type=STOW_CONTENT_TYPE,
    )
    assert truncated.status_code == 400
    assert Instance.objects.count() == 0
    anonymous = Client().post("/dicomweb/studies", data=multipart_body([cut_short]), content_type=STOW_CONTENT_TYPE)
    assert anonymous.status_code == 401
    assert Client().get("/dicomweb/studies").status_code == 401


def test_multipart_reader_finds_parts_across_chunk_edges():
    payloads = [bytes(range(256)) * 2000, b"", b"\r\n--not-the-boundary\r\n" * 10]
    body = io.BytesIO(b"preamble\r\n" + multipart_body(payloads))

    found = [part.file.read() for part in read_parts(body, BOUNDARY)]

    assert found == payloads


def test_qido_finds_studies_by_patient_date_modality_and_uid(north, stored_series):
    client = key_client(north)
    study_uid, series_uid, _ = uids_of(stored_series[0])

    def search(**params):
        response = client.get("/dicomweb/studies", params)
        assert response.status_code == 200
        assert response["Content-Type"] == "application/dicom+json"
        return response.json()

    [study] = search(PatientName="doe*")
    assert value(study, "0020000D") == study_uid
    assert value(study, "00100010") == {"Alphabetic": "Doe^Jane"}
    assert value(study, "00100020") == "MRN-WEB-7"
    assert study["00080061"]["Value"] == ["CT"]
    assert value(study, "00201206") == 1 and value(study, "00201208") == 4
    assert value(study, RETRIEVE_URL) == f"http://testserver/dicomweb/studies/{study_uid}"
    study_date = value(study, "00080020")
    assert search(StudyDate=f"{study_date}-{study_date}") and search(StudyDate=f"-{study_date}")
    assert search(StudyDate="19000101-19001231") == []
    assert search(ModalitiesInStudy="MR") == [] and search(ModalitiesInStudy="MR,CT")
    assert search(PatientID="MRN-WEB-7") and search(PatientID="MRN-WEB-8") == []
    assert search(**{"0020000D": study_uid}) and search(AccessionNumber="ACC-7*")
    assert search(PatientName="Smith*") == []
    assert search(limit=1, offset=1) == []
    bad = client.get("/dicomweb/studies", {"StudyDate": "yesterday"})
    assert bad.status_code == 400


def test_qido_series_show_processing_status_and_instances_page_in_slice_order(north, stored_series):
    client = key_client(north)
    study_uid, series_uid, _ = uids_of(stored_series[0])
    Series.objects.filter(series_instance_uid=series_uid).update(status=SeriesStatus.ANALYSED)

    [series] = client.get(f"/dicomweb/studies/{study_uid}/series").json()
    assert value(series, "0020000E") == series_uid
    assert value(series, "00201209") == 4
    assert series["00110010"]["Value"] == ["RADASSIST"] and series["00111001"]["Value"] == ["analysed"]
    assert client.get(f"/dicomweb/studies/{study_uid}/series", {"Modality": "MR"}).json() == []
    assert client.get("/dicomweb/series", {"PatientID": "MRN-WEB-7"}).json()

    instances = client.get(f"/dicomweb/studies/{study_uid}/series/{series_uid}/instances", {"limit": 3})
    assert [value(item, "00080018") for item in instances.json()] == [uids_of(p)[2] for p in stored_series[:3]]
    assert "more results" in instances["Warning"]
    [one] = client.get("/dicomweb/instances", {"SOPInstanceUID": uids_of(stored_series[1])[2]}).json()
    assert "00280030" not in one
    [with_spacing] = client.get(
        "/dicomweb/instances", {"SOPInstanceUID": uids_of(stored_series[1])[2], "includefield": "PixelSpacing"}
    ).json()
    assert len(with_spacing["00280030"]["Value"]) == 2


def test_wado_retrieves_study_series_and_instance_as_multipart_dicom_with_one_audit_event(north, stored_series):
    client = key_client(north)
    study_uid, series_uid, sop_uid = uids_of(stored_series[0])

    def retrieve(url):
        response = client.get(url, HTTP_ACCEPT='multipart/related; type="application/dicom"')
        assert response.status_code == 200
        assert response["Content-Type"].startswith('multipart/related; type="application/dicom"; boundary=')
        boundary = response["Content-Type"].rsplit("=", 1)[1]
        body = io.BytesIO(b"".join(response.streaming_content))
        return [pydicom.dcmread(part.file) for part in read_parts(body, boundary)]

    before = AuditEvent.objects.filter(action=AuditAction.DOWNLOAD).count()
    series_datasets = retrieve(f"/dicomweb/studies/{study_uid}/series/{series_uid}")
    assert [dataset.SOPInstanceUID for dataset in series_datasets] == [uids_of(p)[2] for p in stored_series]
    assert AuditEvent.objects.filter(action=AuditAction.DOWNLOAD).count() == before + 1
    assert len(retrieve(f"/dicomweb/studies/{study_uid}")) == 4
    [instance] = retrieve(f"/dicomweb/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}")
    assert instance.pixel_array.shape == (32, 32)
    not_acceptable = client.get(f"/dicomweb/studies/{study_uid}", HTTP_ACCEPT="application/pdf")
    assert not_acceptable.status_code == 406


def test_wado_metadata_and_rendered_frames(north, stored_series):
    client = key_client(north)
    study_uid, series_uid, sop_uid = uids_of(stored_series[0])
    instance_url = f"/dicomweb/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}"

    metadata = json.loads(b"".join(client.get(f"{instance_url}/metadata").streaming_content))
    assert value(metadata[0], "00100020") == "MRN-WEB-7"
    assert metadata[0]["7FE00010"] == {"vr": "OW", "BulkDataURI": f"http://testserver{instance_url}/bulkdata/7FE00010"}
    series_metadata = json.loads(b"".join(client.get(f"/dicomweb/studies/{study_uid}/metadata").streaming_content))
    assert len(series_metadata) == 4

    png = client.get(f"{instance_url}/rendered", HTTP_ACCEPT="image/png")
    assert png["Content-Type"] == "image/png"
    image = cv2.imdecode(np.frombuffer(png.content, np.uint8), cv2.IMREAD_UNCHANGED)
    assert image.shape == (32, 32) and image.max() > image.min()
    jpeg = client.get(f"{instance_url}/frames/1/rendered", {"window": "40,400"})
    assert jpeg["Content-Type"] == "image/jpeg"
    assert cv2.imdecode(np.frombuffer(jpeg.content, np.uint8), cv2.IMREAD_GRAYSCALE).shape == (32, 32)
    assert client.get(f"{instance_url}/frames/2/rendered").status_code == 404


def test_another_hospitals_key_finds_nothing_and_retrieves_nothing(north, south, stored_series):
    thief = key_client(south)
    study_uid, series_uid, sop_uid = uids_of(stored_series[0])
    instance_url = f"/dicomweb/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}"

    assert thief.get("/dicomweb/studies").json() == []
    assert thief.get("/dicomweb/studies", {"StudyInstanceUID": study_uid}).json() == []
    assert thief.get("/dicomweb/instances").json() == []
    assert thief.get(f"/dicomweb/studies/{study_uid}/series").json() == []
    for url in (
        f"/dicomweb/studies/{study_uid}",
        f"/dicomweb/studies/{study_uid}/series/{series_uid}",
        instance_url,
        f"{instance_url}/metadata",
        f"{instance_url}/rendered",
        f"/dicomweb/studies/{study_uid}/metadata",
    ):
        response = thief.get(url)
        assert response.status_code == 404, url
        assert study_uid.encode() not in response.content
    unknown = thief.get("/dicomweb/studies/1.2.3.999")
    assert unknown.status_code == 404 and unknown.content == thief.get(f"/dicomweb/studies/{study_uid}").content
    patient_login = Client()
    patient_login.force_login(north.patient_user)
    assert patient_login.get("/dicomweb/studies").status_code == 403
