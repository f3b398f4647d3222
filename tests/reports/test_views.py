import pytest
from django.urls import reverse

from portal.models import AuditAction, AuditEvent
from reports.models import ReportVersion, VersionStatus
from tests.factories import DEFAULT_PASSWORD, PatientWithLoginFactory

pytestmark = pytest.mark.django_db


def bearer(world):
    return {"HTTP_AUTHORIZATION": f"Bearer {world.api_secret}"}


def read_body(response):
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_a_patient_sees_no_draft_anywhere(client, north, draft):
    report = draft.report
    client.force_login(north.patient_user)

    assert b"no signed reports" in client.get(reverse("patient-reports")).content
    for name in ["report-detail", "report-pdf"]:
        assert client.get(reverse(name, args=[report.pk])).status_code == 404
    assert client.get(reverse("report-version-pdf", args=[draft.pk])).status_code == 404
    key_image = draft.key_images().first()
    assert client.get(reverse("key-image", args=[key_image.pk])).status_code == 404


def test_a_patient_reads_and_downloads_their_signed_report_and_each_access_is_audited(client, north, signed):
    report = signed.report
    client.force_login(north.patient_user)

    listing = client.get(reverse("patient-reports"))
    assert reverse("report-detail", args=[report.pk]).encode() in listing.content
    page = client.get(reverse("report-detail", args=[report.pk]), REMOTE_ADDR="198.51.100.7")
    assert page.status_code == 200
    assert b"Spiculated right upper lobe mass" in page.content
    assert b"what each part means" in page.content
    pdf = client.get(reverse("report-pdf", args=[report.pk]))
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert read_body(pdf).startswith(b"%PDF")
    for image in signed.key_images():
        shown = client.get(reverse("key-image", args=[image.pk]))
        assert shown.status_code == 200 and read_body(shown).startswith(b"\x89PNG")

    events = AuditEvent.objects.filter(actor=north.patient_user).exclude(action=AuditAction.LOGIN)
    assert set(events.values_list("action", "target_type")) == {
        (AuditAction.VIEW, "reports.ReportVersion"),
        (AuditAction.DOWNLOAD, "reports.ReportVersion"),
        (AuditAction.VIEW, "ml.KeyImage"),
    }
    assert events.filter(ip_address="198.51.100.7").count() == 1
    assert all(event.hospital == north.hospital for event in events)


def test_another_patient_gets_404_for_every_report_url(client, north, signed):
    neighbour = PatientWithLoginFactory(hospital=north.hospital)
    client.force_login(neighbour.user)

    for url in [
        reverse("report-detail", args=[signed.report_id]),
        reverse("report-pdf", args=[signed.report_id]),
        reverse("report-version-pdf", args=[signed.pk]),
        reverse("key-image", args=[signed.key_images().first().pk]),
    ]:
        assert client.get(url).status_code == 404, url
    assert client.get(reverse("patient-reports")).context["rows"] == []


def test_the_patient_sees_the_signed_version_while_an_amendment_is_drafted(client, north, signed):
    from reports.services import amend_report

    amend_report(report=signed.report, doctor=north.doctor, amendment_note="Add comparison with prior.")
    client.force_login(north.patient_user)

    page = client.get(reverse("report-detail", args=[signed.report_id]))
    assert page.context["version"] == signed
    assert b"Add comparison with prior" not in page.content


def test_the_doctor_edits_overrides_and_signs_through_the_editor(client, north, draft):
    url = reverse("report-detail", args=[draft.report_id])
    client.force_login(north.doctor)
    assert b"Sign report" in client.get(url).content

    refused = client.post(
        reverse("report-edit", args=[draft.report_id]),
        {"impression": "No mass.", "recommendation": "", "conclusion": "normal", "override_reason": ""},
    )
    assert refused.status_code == 400
    assert b"Give a reason" in refused.content and b"No mass." in refused.content, "the typed text is kept"
    draft.refresh_from_db()
    assert draft.impression == "" and draft.conclusion_class == "", "a refused save changes nothing"

    client.post(
        reverse("report-edit", args=[draft.report_id]),
        {"impression": "No mass.", "conclusion": "normal", "override_reason": "Atelectasis."},
    )
    refused = client.post(reverse("report-sign", args=[draft.report_id]), {"password": "wrong"}, follow=True)
    assert b"password is not correct" in refused.content
    client.post(reverse("report-sign", args=[draft.report_id]), {"password": DEFAULT_PASSWORD})

    draft.refresh_from_db()
    assert (draft.status, draft.conclusion_class, draft.override_reason) == ("final", "normal", "Atelectasis.")
    actions = set(AuditEvent.objects.filter(actor=north.doctor).values_list("action", flat=True))
    assert {AuditAction.OVERRIDE, AuditAction.SIGN, AuditAction.VIEW} <= actions


def test_the_doctor_amends_through_the_editor(client, north, signed):
    client.force_login(north.doctor)
    client.post(reverse("report-amend", args=[signed.report_id]), {"amendment_note": "Corrected laterality."})

    amendment = ReportVersion.objects.get(number=2)
    assert amendment.status == VersionStatus.DRAFT
    page = client.get(reverse("report-detail", args=[signed.report_id]) + "?version=1")
    assert page.context["version"] == signed and b"Corrected laterality" in page.content


def test_staff_of_another_hospital_get_404(client, south, signed):
    for user in [south.doctor, south.admin, south.patient_user]:
        client.force_login(user)
        for url in [
            reverse("report-detail", args=[signed.report_id]),
            reverse("report-pdf", args=[signed.report_id]),
            reverse("report-version-pdf", args=[signed.pk]),
            reverse("key-image", args=[signed.key_images().first().pk]),
        ]:
            assert client.get(url).status_code == 404, (user, url)
    client.force_login(south.doctor)
    response = client.post(reverse("report-sign", args=[signed.report_id]), {"password": DEFAULT_PASSWORD})
    assert response.status_code == 404


def test_the_api_lists_reports_of_the_key_hospital_and_streams_the_pdf(api_client, north, south, signed):
    listing = api_client.get("/api/v1/reports/", **bearer(north))
    assert listing.status_code == 200
    [row] = listing.json()["results"]
    assert (row["id"], row["status"], row["version"]) == (signed.report_id, "final", 1)
    assert "Spiculated" not in str(row), "lists carry no clinical text: reading it is a recorded view"

    detail = api_client.get(f"/api/v1/reports/{signed.report_id}/", **bearer(north))
    assert detail.json()["versions"][0]["impression"].startswith("Spiculated")
    assert detail.json()["versions"][0]["analyses"][0]["predicted_class"] == "adenocarcinoma"
    assert AuditEvent.objects.filter(actor=north.api_key.user, action=AuditAction.VIEW).count() == 1
    pdf = api_client.get(f"/api/v1/reports/{signed.report_id}/pdf", HTTP_ACCEPT="application/pdf", **bearer(north))
    assert pdf.status_code == 200 and read_body(pdf).startswith(b"%PDF")
    assert AuditEvent.objects.filter(actor=north.api_key.user, action=AuditAction.DOWNLOAD).exists()

    assert api_client.get("/api/v1/reports/", **bearer(south)).json()["results"] == []
    assert api_client.get(f"/api/v1/reports/{signed.report_id}/", **bearer(south)).status_code == 404
    refused = api_client.get(f"/api/v1/reports/{signed.report_id}/pdf", HTTP_ACCEPT="application/pdf", **bearer(south))
    assert refused.status_code == 404 and refused.json() == {"detail": "No Report matches the given query."}


def test_through_the_api_a_patient_sees_only_signed_versions(api_client, north, signed):
    from reports.services import amend_report

    amend_report(report=signed.report, doctor=north.doctor, amendment_note="Draft amendment text.")
    api_client.force_authenticate(north.patient_user)

    [row] = api_client.get("/api/v1/reports/").json()["results"]
    assert (row["status"], row["version"]) == ("final", 1)
    detail = api_client.get(f"/api/v1/reports/{signed.report_id}/").json()
    assert [version["number"] for version in detail["versions"]] == [1]
    assert "Draft amendment text." not in str(detail)


def test_hospital_admins_read_reports_in_the_admin_but_cannot_change_them(client, north, south, signed):
    client.force_login(north.admin)
    assert client.get(reverse("admin:reports_report_changelist")).status_code == 200
    assert client.get(reverse("admin:reports_reportversion_change", args=[signed.pk])).status_code == 200
    response = client.post(reverse("admin:reports_reportversion_change", args=[signed.pk]), {"impression": "x"})
    assert response.status_code == 403
    client.force_login(south.admin)
    assert client.get(reverse("admin:reports_reportversion_change", args=[signed.pk])).status_code in (302, 404)


def test_the_report_panel_on_the_study_page_is_recorded_as_a_view(rf, north, draft):
    from django.template import Context, Template

    request = rf.get("/studies/")
    request.user = north.doctor
    html = Template("{% load report_tags %}{% report_panel study %}").render(
        Context({"request": request, "study": draft.report.study})
    )
    assert "Sign report" in html
    assert AuditEvent.objects.get(action=AuditAction.VIEW).detail == {"version": 1, "via": "study page"}
