"""The hospital admin's landing page: this month's activity of their own hospital only."""

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from reports.models import Report, ReportVersion, VersionStatus
from tests.factories import StudyFactory


def signed_report(world, *, signed_at):
    study = StudyFactory(hospital=world.hospital, patient=world.patient)
    report = Report.objects.create(hospital=world.hospital, study=study)
    ReportVersion.objects.create(
        hospital=world.hospital, report=report, number=1, status=VersionStatus.FINAL, impression="No nodule.",
        signed_by=world.doctor, signed_at=signed_at,
    )
    return study


def counts_on_page(client):
    response = client.get(reverse("hospital-dashboard"))
    assert response.status_code == 200
    return dict(response.context["counts"]), response.content.decode()


def test_dashboard_counts_this_months_studies_and_signed_reports_of_the_hospital(client, north, south):
    signed_report(north, signed_at=timezone.now())
    old = signed_report(north, signed_at=timezone.now() - timedelta(days=45))
    type(old).objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=45))
    StudyFactory(hospital=north.hospital, patient=north.patient)
    signed_report(south, signed_at=timezone.now())

    client.force_login(north.admin)
    counts, html = counts_on_page(client)
    assert counts["Studies this month"] == 2
    assert counts["Reports signed this month"] == 1
    assert counts["Patients"] == 1
    assert counts["Active users"] == 3  # admin, doctor and the patient's login
    assert reverse("invite-user") in html and reverse("admin:index") in html
