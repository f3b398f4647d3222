"""REST API: upload with an API key, studies/series/instances with filters, all scoped to the caller's hospital."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from scans.models import Instance, SeriesStatus, UploadBatch
from tests.factories import SeriesFactory, StudyFactory
from tests.scans.conftest import pydicom_file

pytestmark = pytest.mark.django_db


def bearer(world):
    return {"HTTP_AUTHORIZATION": f"Bearer {world.api_secret}"}


def dicom_upload(path, name=None):
    return SimpleUploadedFile(name or path.name, path.read_bytes(), content_type="application/dicom")


def test_upload_with_api_key_stores_and_reports_each_file(
    api_client, north, write_ct_series, queued_analyses, django_capture_on_commit_callbacks
):
    paths = write_ct_series(slices=2)
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post("/api/v1/uploads/", {"files": [dicom_upload(p) for p in paths]},
                                   format="multipart", **bearer(north))
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["stored"] == 2 and body["rejected"] == 0
    assert {r["outcome"] for r in body["results"]} == {"stored"}
    assert len(queued_analyses) == 1
    batch = UploadBatch.objects.get(pk=body["batch"])
    assert batch.source == UploadBatch.Source.API and batch.uploaded_by == north.api_key.user

    mixed = api_client.post("/api/v1/uploads/", {"files": [dicom_upload(paths[0]),
                                                           dicom_upload(pydicom_file("rtplan.dcm"))]},
                            format="multipart", **bearer(north))
    assert mixed.status_code == 200
    assert [r["outcome"] for r in mixed.json()["results"]] == ["duplicate", "rejected"]
    assert mixed.json()["results"][1]["failure_reason"] == 0x0122

    rejected = api_client.post("/api/v1/uploads/", {"files": [dicom_upload(pydicom_file("test-SR.dcm"))]},
                               format="multipart", **bearer(north))
    assert rejected.status_code == 400 and "no pixel data" in rejected.json()["results"][0]["reason"]
    assert Instance.objects.count() == 2


def test_upload_to_a_foreign_patient_is_refused(api_client, north, south, write_ct_series):
    response = api_client.post(
        "/api/v1/uploads/", {"patient": south.patient.pk, "files": [dicom_upload(write_ct_series(slices=1)[0])]},
        format="multipart", **bearer(north),
    )
    assert response.status_code == 400 and "patient" in response.json()
    assert not UploadBatch.objects.exists()


def test_upload_without_files_is_a_json_error(api_client, north):
    response = api_client.post("/api/v1/uploads/", {}, format="multipart", **bearer(north))
    assert response.status_code == 400 and "files" in response.json()


def test_studies_and_series_filters(api_client, north, south):
    old = StudyFactory(hospital=north.hospital, study_date="2023-01-05")
    new = StudyFactory(hospital=north.hospital, study_date="2025-06-01")
    SeriesFactory(study=old, modality="CT", status=SeriesStatus.ANALYSED)
    SeriesFactory(study=new, modality="MR", status=SeriesStatus.QUEUED)
    StudyFactory(hospital=south.hospital, study_date="2025-06-01")

    def ids(url):
        response = api_client.get(url, **bearer(north))
        assert response.status_code == 200, response.content
        return {row["id"] for row in response.json()["results"]}

    assert ids("/api/v1/studies/") == {old.pk, new.pk}
    assert ids("/api/v1/studies/?date_from=2024-01-01") == {new.pk}
    assert ids("/api/v1/studies/?date_to=2024-01-01") == {old.pk}
    assert ids("/api/v1/studies/?modality=ct") == {old.pk}
    assert ids("/api/v1/studies/?status=queued") == {new.pk}
    assert ids(f"/api/v1/studies/?patient={old.patient_id}") == {old.pk}
    assert ids("/api/v1/series/?status=analysed") == {old.series.get().pk}
    assert ids("/api/v1/series/?modality=MR&date_from=2025-01-01") == {new.series.get().pk}
    detail = api_client.get(f"/api/v1/studies/{new.pk}/", **bearer(north)).json()
    assert detail["series"][0]["status"] == "queued" and detail["modalities"] == ["MR"]


def test_foreign_study_is_not_found(api_client, north, south):
    foreign = StudyFactory(hospital=south.hospital)
    assert api_client.get(f"/api/v1/studies/{foreign.pk}/", **bearer(north)).status_code == 404


def test_instances_in_slice_order_with_download(api_client, north, write_ct_series):
    paths = write_ct_series(slices=3)
    api_client.post("/api/v1/uploads/", {"files": [dicom_upload(p) for p in reversed(paths)]},
                    format="multipart", **bearer(north))
    rows = api_client.get("/api/v1/instances/", **bearer(north)).json()["results"]
    assert [row["instance_number"] for row in rows] == [1, 2, 3]
    download = api_client.get(f"/api/v1/instances/{rows[0]['id']}/file/", **bearer(north))
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == paths[0].read_bytes()


def test_session_auth_works_for_staff_and_patients_cannot_list(api_client, north):
    StudyFactory(hospital=north.hospital)
    api_client.force_login(north.doctor)
    assert api_client.get("/api/v1/studies/").json()["count"] == 1
    api_client.force_login(north.patient_user)
    assert api_client.get("/api/v1/studies/").status_code == 403


def test_openapi_schema_of_the_scans_api_has_no_warnings():
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator

    GENERATOR_STATS.reset()
    with GENERATOR_STATS.silence():
        schema = SchemaGenerator().get_schema(request=None, public=True)
    complaints = [m for m in [*GENERATOR_STATS._warn_cache, *GENERATOR_STATS._error_cache]
                  if "scans/api" in m or "scans/serializers" in m or "Upload" in m or "StudyViewSet" in m
                  or "SeriesViewSet" in m or "InstanceViewSet" in m]
    assert complaints == []
    assert {"/api/v1/uploads/", "/api/v1/studies/", "/api/v1/series/", "/api/v1/instances/"} <= set(schema["paths"])
