"""QIDO-RS matching by the standard's rules (PS3.4 C.2.2.2), the attributes viewers read, and wildcard storms."""

import datetime
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from accounts.models import Patient
from scans.dicomweb.matching import MAXIMUM_WILDCARDS
from scans.models import Study
from tests.scans.test_dicomweb import key_client, stow, uids_of, value

GENEROUS_DEADLINE_SECONDS = 5


@pytest.fixture
def ct_study(north, write_ct_series):
    paths = write_ct_series(
        slices=2, size=16, patient_id="MRN-QIDO-1", patient_name="Doe^Jane", accession_number="ACC-7001",
        study_description="Phantom chest CT",
    )
    assert stow(key_client(north), [path.read_bytes() for path in paths]).status_code == 200
    Patient.objects.filter(mrn="MRN-QIDO-1").update(birth_date=datetime.date(1961, 5, 17), sex="F")
    return paths


@pytest.mark.django_db
def test_birth_date_sex_and_study_id_match_and_are_answered(north, ct_study):
    client = key_client(north)

    def found(**params):
        response = client.get("/dicomweb/studies", params)
        assert response.status_code == 200, response.content
        return response.json()

    [study] = found(PatientBirthDate="19610517", PatientSex="F")
    assert value(study, "00100030") == "19610517" and value(study, "00100040") == "F"
    assert value(study, "00200010") == "1"
    assert found(PatientBirthDate="19600101-19621231") and found(PatientBirthDate="-19610517")
    assert found(PatientBirthDate="19610518-") == []
    assert found(PatientSex="M") == []
    assert found(StudyID="1") and found(StudyID="2") == []


@pytest.mark.django_db
def test_values_match_exactly_or_by_wildcard_never_by_implicit_substring(north, ct_study):
    client = key_client(north)

    def count(**params):
        response = client.get("/dicomweb/studies", params)
        assert response.status_code == 200, response.content
        return len(response.json())

    assert count(AccessionNumber="ACC-7001") == 1
    assert count(AccessionNumber="ACC") == 0
    assert count(StudyDescription="Phantom") == 0
    assert count(StudyDescription="Phantom*") == 1
    assert count(StudyDescription="phantom*") == 0  # case-sensitive outside person names
    assert count(StudyDescription="Phantom?chest*") == 1
    assert count(StudyDescription="Phantom_chest CT") == 0  # SQL wildcards in a value are literal
    assert count(StudyDescription="Phantom%") == 0
    assert count(PatientName="Doe") == 0
    assert count(PatientName="DOE^JANE") == 1 and count(PatientName="d?e^*") == 1


@pytest.mark.django_db
def test_instances_answer_the_image_pixel_module_from_the_stored_header(north, ct_study):
    study_uid, series_uid, sop_uid = uids_of(ct_study[0])
    [instance] = key_client(north).get(
        f"/dicomweb/studies/{study_uid}/series/{series_uid}/instances", {"SOPInstanceUID": sop_uid}
    ).json()

    assert value(instance, "00280010") == 16 and value(instance, "00280011") == 16  # Rows, Columns
    assert value(instance, "00280100") == 16 and value(instance, "00280101") == 16  # BitsAllocated, BitsStored
    assert value(instance, "00280102") == 15 and value(instance, "00280103") == 1  # HighBit, PixelRepresentation
    assert value(instance, "00280002") == 1 and value(instance, "00280004") == "MONOCHROME2"
    assert value(instance, "00200013") == 1  # InstanceNumber
    [with_slope] = key_client(north).get(
        "/dicomweb/instances", {"SOPInstanceUID": sop_uid, "includefield": "RescaleSlope,Manufacturer"}
    ).json()
    assert value(with_slope, "00281053") == 1 and value(with_slope, "00080070") == "RadAssist phantom"


@pytest.mark.django_db
def test_too_many_wildcards_or_too_long_a_value_is_a_400_in_json(north):
    client = key_client(north)
    storm = "*a" * (MAXIMUM_WILDCARDS + 1)
    for params in ({"PatientName": storm}, {"StudyDescription": storm}, {"AccessionNumber": "A" * 401}):
        response = client.get("/dicomweb/studies", params)
        assert response.status_code == 400
        assert "detail" in response.json()
    assert client.get("/dicomweb/studies", {"PatientName": "**********Doe"}).status_code == 200  # runs fold to one


@pytest.mark.django_db(transaction=True)
def test_a_wildcard_storm_finishes_fast_while_another_search_is_answered(north, write_ct_series):
    paths = write_ct_series(slices=1, size=16, patient_id="MRN-STORM", patient_name="A" * 30 + "^" + "a" * 30)
    assert stow(key_client(north), [paths[0].read_bytes()]).status_code == 200
    Study.objects.update(description="a" * 64, accession_number="a" * 16)
    storm = "*a" * (MAXIMUM_WILDCARDS - 1) + "*b"
    storms = [{"PatientName": storm}, {"StudyDescription": storm}, {"AccessionNumber": storm}] * 2
    answered = threading.Event()

    def search(params):
        try:
            response = key_client(north).get("/dicomweb/studies", params)
        finally:
            connections.close_all()  # each thread's own connection, so that the test database can be dropped
        assert response.status_code == 200, response.content
        return response.json()

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:
        storm_results = [pool.submit(search, params) for params in storms]
        assert search({"PatientID": "MRN-STORM"})
        answered.set()
        assert all(result.result() == [] for result in storm_results)
    assert answered.is_set()
    assert time.monotonic() - started < GENEROUS_DEADLINE_SECONDS
