"""The worklist: what a doctor of the hospital sees first, and how they find a study."""

import datetime

import pytest
from django.urls import reverse

from reports.models import Report, ReportVersion, VersionStatus
from tests.factories import AnalysisFactory, PatientFactory, SeriesFactory, StudyFactory


def study_of(world, *, name, mrn, date, status="analysed", report_status=None, ai_class="adenocarcinoma"):
    patient = PatientFactory(hospital=world.hospital, full_name=name, mrn=mrn)
    study = StudyFactory(hospital=world.hospital, patient=patient, study_date=date)
    series = SeriesFactory(study=study, status=status)
    if status in ("analysed", "reported"):
        AnalysisFactory(series=series, predicted_class=ai_class)
    if report_status:
        report = Report.objects.create(hospital=world.hospital, study=study)
        ReportVersion.objects.create(hospital=world.hospital, report=report, number=1, status=report_status)
    return study


def names_on(client, **query):
    response = client.get(reverse("worklist"), query)
    assert response.status_code == 200
    return [study.patient.full_name for study in response.context["studies"]], response.content.decode()


@pytest.fixture
def worklist(north, south, client):
    study_of(north, name="Signed Sam", mrn="MRN-S1", date=datetime.date(2026, 1, 10),
             report_status=VersionStatus.FINAL)
    study_of(north, name="Draft Dora", mrn="MRN-D1", date=datetime.date(2025, 6, 1),
             report_status=VersionStatus.DRAFT, ai_class="large_cell_carcinoma")
    study_of(north, name="Busy Bob", mrn="MRN-B1", date=datetime.date(2026, 3, 1), status="analysing")
    study_of(north, name="Failed Fay", mrn="MRN-F1", date=datetime.date(2026, 2, 1), status="failed")
    study_of(south, name="Southern Sue", mrn="MRN-X1", date=datetime.date(2026, 3, 5),
             report_status=VersionStatus.DRAFT)
    client.force_login(north.doctor)
    return client


def test_studies_needing_review_come_first_then_newest(worklist):
    names, html = names_on(worklist)
    assert names == ["Draft Dora", "Busy Bob", "Failed Fay", "Signed Sam"]
    assert "Southern Sue" not in html
    assert "Needs review" in html and "Large cell carcinoma" in html
    # A series still analysing carries its progress URL for live updates.
    assert 'data-series-progress="/series/' in html


def test_search_by_name_or_mrn(worklist):
    assert names_on(worklist, q="dora")[0] == ["Draft Dora"]
    assert names_on(worklist, q="mrn-b")[0] == ["Busy Bob"]
    assert names_on(worklist, q="sue")[0] == []


@pytest.mark.parametrize("status, expected", [
    ("needs_review", ["Draft Dora"]),
    ("processing", ["Busy Bob"]),
    ("failed", ["Failed Fay"]),
    ("signed", ["Signed Sam"]),
])
def test_filter_by_status(worklist, status, expected):
    assert names_on(worklist, status=status)[0] == expected


def test_filter_by_date_and_sort_by_patient(worklist):
    assert names_on(worklist, date_from="2026-01-01", date_to="2026-02-28", sort="patient")[0] == [
        "Failed Fay", "Signed Sam",
    ]
    assert names_on(worklist, sort="oldest")[0] == ["Draft Dora", "Signed Sam", "Failed Fay", "Busy Bob"]


def test_pages_keep_the_filters(worklist, north, settings, monkeypatch):
    import clinic.views

    monkeypatch.setattr(clinic.views, "WORKLIST_PAGE_SIZE", 2)
    names, html = names_on(worklist, sort="patient")
    assert names == ["Draft Dora", "Busy Bob"]
    assert "?sort=patient&amp;page=2" in html
    assert names_on(worklist, sort="patient", page=2)[0] == ["Failed Fay", "Signed Sam"]


def test_a_doctor_takes_a_study_and_finds_it_under_assigned_to_me(client, north):
    from portal.models import AuditAction, AuditEvent

    mine = StudyFactory(hospital=north.hospital, patient=north.patient, description="Mine to read")
    StudyFactory(hospital=north.hospital, patient=north.patient, description="Someone else's")
    client.force_login(north.doctor)
    response = client.post(reverse("study-assign", kwargs={"pk": mine.pk}),
                           {"doctor": north.doctor.pk, "next": "/worklist/?status=assigned_to_me"})
    assert response.status_code == 302 and response["Location"] == "/worklist/?status=assigned_to_me"
    page = client.get(reverse("worklist"), {"status": "assigned_to_me"}).content.decode()
    assert "Mine to read" in page and "Someone else" not in page
    assert AuditEvent.objects.filter(action=AuditAction.ASSIGN, actor=north.doctor).count() == 1


def test_a_study_cannot_be_assigned_to_someone_outside_its_hospital_or_to_a_patient(client, north, south):
    study = StudyFactory(hospital=north.hospital, patient=north.patient)
    client.force_login(north.doctor)
    for outsider in (south.doctor, north.patient.user):
        client.post(reverse("study-assign", kwargs={"pk": study.pk}), {"doctor": outsider.pk})
        study.refresh_from_db()
        assert study.assigned_to is None
    client.force_login(south.doctor)
    assert client.post(reverse("study-assign", kwargs={"pk": study.pk}),
                       {"doctor": south.doctor.pk}).status_code == 404
