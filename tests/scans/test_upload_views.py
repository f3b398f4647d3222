"""The web upload: the plain form, the batch endpoints the browser script drives, and the pages around them."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from scans.models import FileOutcome, Instance, Series, SeriesStatus, Study, UploadBatch
from tests.factories import PatientFactory, StudyFactory
from tests.scans.conftest import pydicom_file

pytestmark = pytest.mark.django_db


def upload_of(path, name=None):
    return SimpleUploadedFile(name or path.name, path.read_bytes(), content_type="application/dicom")


def test_plain_form_stores_good_files_rejects_bad_ones_and_shows_every_outcome(
    client, north, write_ct_series, queued_analyses, django_capture_on_commit_callbacks
):
    client.force_login(north.doctor)
    assert client.get(reverse("upload")).status_code == 200
    files = [upload_of(path) for path in write_ct_series(slices=2)] + [upload_of(pydicom_file("test-SR.dcm"))]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("upload"), {"patient": "", "files": files})
    batch = UploadBatch.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("upload-batch-detail", args=[batch.pk])
    page = client.get(response["Location"]).content.decode()
    assert "test-SR.dcm" in page and "no pixel data" in page and page.count("badge-outcome-stored") == 2
    assert Series.objects.get().status == SeriesStatus.RECEIVED and len(queued_analyses) == 1


def test_script_sequence_create_post_in_chunks_close(
    client, north, write_ct_series, queued_analyses, django_capture_on_commit_callbacks
):
    client.force_login(north.doctor)
    created = client.post(reverse("upload-batch-create"), {"patient": ""})
    assert created.status_code == 201
    urls = created.json()
    paths = write_ct_series(slices=3)
    first = client.post(urls["files_url"], {"files": [upload_of(paths[0]), upload_of(paths[1])]}).json()
    second = client.post(urls["files_url"], {"files": [upload_of(paths[2]), upload_of(paths[2], "again.dcm")]}).json()
    assert [f["results"][0]["outcome"] for f in first["files"] + second["files"]] == [
        "stored", "stored", "stored", "duplicate"]
    assert Series.objects.get().status == SeriesStatus.RECEIVING
    with django_capture_on_commit_callbacks(execute=True):
        closed = client.post(urls["close_url"]).json()
    assert closed["counts"] == {"stored": 3, "duplicate": 1, "rejected": 0}
    assert Series.objects.get().status == SeriesStatus.RECEIVED and len(queued_analyses) == 1
    late = client.post(urls["files_url"], {"files": [upload_of(paths[0])]})
    assert late.status_code == 409
    assert client.get(closed["detail_url"]).status_code == 200


def test_zip_upload_reports_each_entry(client, north, write_ct_series):
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in write_ct_series(slices=2):
            archive.write(path, f"series/{path.name}")
        archive.writestr("../escape.dcm", b"x")
    client.force_login(north.doctor)
    urls = client.post(reverse("upload-batch-create"), {"patient": ""}).json()
    answer = client.post(urls["files_url"], {"files": [SimpleUploadedFile("cd.zip", buffer.getvalue())]}).json()
    outcomes = {result["name"]: result["outcome"] for result in answer["files"][0]["results"]}
    assert outcomes == {"cd.zip/series/0001.dcm": "stored", "cd.zip/series/0002.dcm": "stored",
                        "cd.zip/../escape.dcm": "rejected"}


def test_foreign_patient_id_is_refused_and_nothing_changes(client, north, south, write_ct_series):
    client.force_login(north.doctor)
    response = client.post(reverse("upload-batch-create"), {"patient": south.patient.pk})
    assert response.status_code == 400 and "patient" in response.json()["errors"]
    plain = client.post(reverse("upload"), {"patient": south.patient.pk,
                                            "files": [upload_of(write_ct_series(slices=1)[0])]})
    assert plain.status_code == 400
    assert not UploadBatch.objects.exists() and not Instance.objects.exists()


def test_patient_upload_lands_on_own_record_and_cannot_name_another(client, north, write_ct_series):
    other = PatientFactory(hospital=north.hospital)
    client.force_login(north.patient_user)
    refused = client.post(reverse("upload-batch-create"), {"patient": other.pk})
    assert refused.status_code == 400 and not UploadBatch.objects.exists()
    response = client.post(reverse("upload"), {
        "patient": north.patient.pk,
        "files": [upload_of(path) for path in write_ct_series(patient_id="CD-FROM-ELSEWHERE", slices=2)],
    })
    assert response.status_code == 302
    assert Study.objects.get().patient == north.patient
    assert other.studies.count() == 0


def test_only_the_uploader_may_add_files_to_a_batch(client, north, write_ct_series):
    from tests.factories import DoctorFactory

    client.force_login(north.doctor)
    urls = client.post(reverse("upload-batch-create"), {"patient": ""}).json()
    client.force_login(DoctorFactory(hospital=north.hospital))
    response = client.post(urls["files_url"], {"files": [upload_of(write_ct_series(slices=1)[0])]})
    assert response.status_code == 404 and not Instance.objects.exists()


def test_other_hospital_cannot_see_a_batch(client, north, south):
    client.force_login(north.doctor)
    urls = client.post(reverse("upload-batch-create"), {"patient": ""}).json()
    client.force_login(south.doctor)
    assert client.get(urls["detail_url"]).status_code == 404


def test_worklist_and_study_page_list_studies_with_series_status(client, north, write_ct_series):
    from scans.ingest import close_batch, ingest_file, open_batch

    batch = open_batch(hospital=north.hospital, uploaded_by=north.doctor, source=UploadBatch.Source.WEB)
    for path in write_ct_series(patient_id="MRN-WL-1", patient_name="Worklist^Wendy", slices=2,
                                series_description="Axial lung 1mm"):
        with open(path, "rb") as fileobj:
            ingest_file(batch=batch, name=path.name, fileobj=fileobj)
    close_batch(batch=batch)
    StudyFactory(hospital=north.hospital)
    client.force_login(north.doctor)
    worklist = client.get(reverse("worklist")).content.decode()
    assert "Wendy Worklist" in worklist and "MRN-WL-1" in worklist and "Received" in worklist
    study = Study.objects.get(patient__mrn="MRN-WL-1")
    page = client.get(reverse("study-detail", args=[study.pk])).content.decode()
    assert "Axial lung 1mm" in page and "Received" in page
    assert client.get(reverse("study-detail", args=[study.pk])).context["series_list"][0].instance_count == 2


def test_png_upload_page_flow_marks_no_physical_scale(client, north):
    import numpy as np
    from PIL import Image

    def png(value):
        buffer = io.BytesIO()
        Image.fromarray(np.full((8, 8), value, dtype=np.uint8)).save(buffer, format="PNG")
        return SimpleUploadedFile(f"slice{value}.png", buffer.getvalue(), content_type="image/png")

    patient = PatientFactory(hospital=north.hospital)
    client.force_login(north.doctor)
    client.post(reverse("upload"), {"patient": patient.pk, "files": [png(1), png(2), png(3)]})
    series = Series.objects.get()
    assert series.has_physical_scale is False and series.instances.count() == 3
    assert series.study.patient == patient
    page = client.get(reverse("study-detail", args=[series.study.pk])).content.decode()
    assert "no physical scale" in page


def test_outcome_rows_are_kept_for_reload(client, north):
    client.force_login(north.doctor)
    urls = client.post(reverse("upload-batch-create"), {"patient": ""}).json()
    client.post(urls["files_url"], {"files": [SimpleUploadedFile("notes.txt", b"hello")]})
    page = client.get(urls["detail_url"]).content.decode()
    assert "notes.txt" in page and "Not a DICOM file" in page
    assert UploadBatch.objects.get().files.get().outcome == FileOutcome.REJECTED


def test_folder_paths_sent_by_the_script_name_the_files(client, north, write_ct_series):
    client.force_login(north.doctor)
    urls = client.post(reverse("upload-batch-create"), {"patient": ""}).json()
    path = write_ct_series(slices=1)[0]
    answer = client.post(urls["files_url"], {"files": [upload_of(path, "IM0001")], "paths": ["CD1/DICOM/IM0001"]})
    assert answer.json()["files"][0]["results"][0]["name"] == "CD1/DICOM/IM0001"
    assert UploadBatch.objects.get().files.get().name == "CD1/DICOM/IM0001"
