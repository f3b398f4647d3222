"""Patient reconciliation: a series is never filed silently under a record its DICOM identity contradicts."""

import datetime

import pydicom
import pytest
from django.urls import reverse

from accounts.models import Patient
from portal.models import AuditAction, AuditEvent
from scans.ingest import close_batch, ingest_file, open_batch
from scans.ingest.patients import UNMATCHED_MRN, identity_differences, name_tokens
from scans.models import FileOutcome, PatientCheck, Study, UploadBatch
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db


# The rules --------------------------------------------------------------------------------------


def record(**fields):
    return Patient(full_name=fields.get("name", "Jane Smith"), birth_date=fields.get("birth_date"),
                   sex=fields.get("sex", ""))


def test_names_are_compared_without_case_accents_punctuation_or_dicom_separators():
    assert name_tokens("SMITH^JANE^A") == name_tokens("jane a. smith")
    assert name_tokens("Müller-Lüdenscheidt^Hans") == name_tokens("Hans Muller Ludenscheidt")
    assert not identity_differences(patient=record(name="Jane Smith"), name="Smith Jane", birth_date=None, sex="")
    # A middle name missing on one side is not a contradiction.
    assert not identity_differences(patient=record(name="Jane Ann Smith"), name="Jane Smith", birth_date=None, sex="")


def test_the_wrong_person_differs_by_name_birth_date_and_sex():
    patient = record(name="John Brown", birth_date=datetime.date(1952, 3, 4), sex="M")
    differences = identity_differences(patient=patient, name="Jane Smith", birth_date=datetime.date(1960, 5, 6),
                                       sex="F")
    assert len(differences) == 3


def test_twins_with_the_same_surname_and_birth_date_differ_by_given_name():
    twin = record(name="Anna Kowalska", birth_date=datetime.date(1990, 1, 1), sex="F")
    assert identity_differences(patient=twin, name="Maria Kowalska", birth_date=datetime.date(1990, 1, 1), sex="F")


def test_missing_fields_contradict_nothing():
    patient = record(name="Jane Smith", birth_date=datetime.date(1960, 5, 6), sex="F")
    assert not identity_differences(patient=patient, name="", birth_date=None, sex="")
    assert not identity_differences(patient=record(name="Jane Smith"), name="Jane Smith",
                                    birth_date=datetime.date(1960, 5, 6), sex="F")


# Ingest and the queue -----------------------------------------------------------------------------


@pytest.fixture
def jane_smith_files(write_ct_series):
    """A series of Jane Smith, born 1960, under the PatientID that the hospital gave to John Brown."""
    paths = write_ct_series(patient_id="MRN-JB-1952", patient_name="Smith^Jane", slices=2)
    for path in paths:
        dataset = pydicom.dcmread(path)
        dataset.PatientBirthDate, dataset.PatientSex = "19600506", "F"
        dataset.save_as(path)
    return paths


@pytest.fixture
def john_brown(north):
    return PatientFactory(hospital=north.hospital, mrn="MRN-JB-1952", full_name="John Brown",
                          birth_date=datetime.date(1952, 3, 4), sex="M")


def upload(world, paths):
    batch = open_batch(hospital=world.hospital, uploaded_by=world.doctor, source=UploadBatch.Source.WEB)
    for path in paths:
        with open(path, "rb") as fileobj:
            ingest_file(batch=batch, name=path.name, fileobj=fileobj)
    close_batch(batch=batch)
    return batch


def test_a_contradicting_identity_is_queued_not_filed_silently(north, john_brown, jane_smith_files, private_storage,
                                                               queued_analyses, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        batch = upload(north, jane_smith_files)
    assert set(batch.files.values_list("outcome", flat=True)) == {FileOutcome.STORED}
    study = Study.objects.get()
    assert study.patient_check == PatientCheck.NEEDED
    assert "Smith" in study.patient_check_reason and "1960-05-06" in study.patient_check_reason
    assert study.identity_in_files["name"] and study.identity_in_files["birth_date"] == "1960-05-06"
    assert queued_analyses  # it is analysed all the same


def test_patients_never_see_a_study_waiting_for_its_check(north, jane_smith_files, private_storage):
    upload(north, jane_smith_files)  # filed under the patient of the world, whose login we have
    Study.objects.update(patient=north.patient, patient_check=PatientCheck.NEEDED)
    assert not Study.objects.visible_to(north.patient.user).exists()
    Study.objects.update(patient_check=PatientCheck.CONFIRMED)
    assert Study.objects.visible_to(north.patient.user).exists()


def test_a_matching_identity_is_filed_without_a_check(north, write_ct_series, private_storage):
    PatientFactory(hospital=north.hospital, mrn="MRN-OK-1", full_name="Jane Doe", birth_date=None, sex="")
    upload(north, write_ct_series(patient_id="MRN-OK-1", patient_name="Doe^Jane"))
    assert Study.objects.get().patient_check == PatientCheck.CONFIRMED


def test_unknown_patient_ids_queue_when_the_hospital_does_not_create_records(north, write_ct_series,
                                                                              private_storage):
    north.hospital.creates_patients_from_dicom = False
    north.hospital.save()
    upload(north, write_ct_series(patient_id="MRN-NEW-9", patient_name="New^Person"))
    study = Study.objects.get()
    assert study.patient.mrn == UNMATCHED_MRN and study.patient_check == PatientCheck.NEEDED
    assert not Patient.objects.filter(mrn="MRN-NEW-9").exists()


def test_the_doctor_decides_in_the_queue_and_the_decision_is_audited(client, north, john_brown, jane_smith_files,
                                                                     private_storage):
    upload(north, jane_smith_files)
    study = Study.objects.get()
    client.force_login(north.doctor)
    queue = client.get(reverse("patient-checks")).content.decode()
    assert "John Brown" in queue and "Smith" in queue
    response = client.post(reverse("patient-check-detail", kwargs={"pk": study.pk}), {"decision": "reject"})
    assert response.status_code == 302
    study.refresh_from_db()
    assert study.patient_check == PatientCheck.REJECTED
    assert client.get(reverse("patient-check-detail", kwargs={"pk": study.pk})).status_code == 404
    Study.objects.update(patient_check=PatientCheck.NEEDED)  # decide again, this time with a new record
    john = Patient.objects.get(mrn="MRN-JB-1952")
    john.mrn = "MRN-JB-OLD"
    john.save()
    response = client.post(reverse("patient-check-detail", kwargs={"pk": study.pk}), {"decision": "create"})
    assert response.status_code == 302
    study.refresh_from_db()
    assert study.patient.full_name == "Jane Smith" and study.patient.birth_date == datetime.date(1960, 5, 6)
    assert study.patient_check == PatientCheck.CONFIRMED
    decisions = AuditEvent.objects.filter(action=AuditAction.PATIENT_CHECK).order_by("pk")
    assert [event.detail["decision"] for event in decisions] == ["reject", "create"]
    assert all(event.actor == north.doctor for event in decisions)


def test_creating_a_record_under_an_existing_mrn_is_refused_with_a_reason(client, north, john_brown,
                                                                           jane_smith_files, private_storage):
    upload(north, jane_smith_files)
    study = Study.objects.get()
    client.force_login(north.doctor)
    page = client.post(reverse("patient-check-detail", kwargs={"pk": study.pk}), {"decision": "create"})
    assert page.status_code == 200 and "exists already" in page.content.decode()
    other = PatientFactory(hospital=north.hospital, full_name="Jane Smith", birth_date=datetime.date(1960, 5, 6))
    response = client.post(reverse("patient-check-detail", kwargs={"pk": study.pk}),
                           {"decision": "assign", "patient": other.pk})
    assert response.status_code == 302
    study.refresh_from_db()
    assert study.patient == other and study.patient_check == PatientCheck.CONFIRMED


def test_another_hospital_cannot_see_or_decide_the_check(client, south, north, john_brown, jane_smith_files,
                                                         private_storage):
    upload(north, jane_smith_files)
    study = Study.objects.get()
    client.force_login(south.doctor)
    assert "Smith" not in client.get(reverse("patient-checks")).content.decode()
    assert client.post(reverse("patient-check-detail", kwargs={"pk": study.pk}),
                       {"decision": "reject"}).status_code == 404
    study.refresh_from_db()
    assert study.patient_check == PatientCheck.NEEDED
