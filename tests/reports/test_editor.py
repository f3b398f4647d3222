"""The doctor's editor: what is signed is what the form shows, the conclusion has no default, auto-save,
measurement corrections, the structured sections, and holding a report from the patient."""

import io

import pytest
from django.core import mail
from django.core.files.base import ContentFile
from django.urls import reverse
from pydicom.data import get_testdata_file
from pypdf import PdfReader

from portal.models import AuditAction, AuditEvent
from reports import services
from reports.models import Conclusion, VersionStatus
from tests.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.django_db


def editor_post(draft, **changes):
    """What the editor's form posts: every field as the page shows it, with the doctor's changes."""
    prefix = f"a{draft.analyses.get().pk}-"
    data = {
        "revision": draft.revision,
        "clinical_indication": draft.clinical_indication,
        "technique": draft.technique,
        "comparison": draft.comparison,
        "findings": draft.findings,
        "impression": draft.impression,
        "recommendation": draft.recommendation,
        "conclusion": "",
        "override_reason": "",
        f"{prefix}largest_diameter": "",
        f"{prefix}volume_ml": "",
        f"{prefix}key_slice_number": "",
        f"{prefix}reason": "",
    }
    data.update({key.replace("correction-", prefix): value for key, value in changes.items()})
    return data


def pdf_pages(pdf_bytes):
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf_bytes)).pages]


def test_signing_saves_and_signs_exactly_the_submitted_content_in_one_step(client, north, draft):
    client.force_login(north.doctor)
    typed = editor_post(
        draft,
        clinical_indication="Cough for three months; smoker.",
        impression="Spiculated mass, right upper lobe.",
        conclusion="agrees",
        password=DEFAULT_PASSWORD,
    )
    response = client.post(reverse("report-sign", args=[draft.report_id]), typed)

    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.status == VersionStatus.FINAL
    assert draft.impression == "Spiculated mass, right upper lobe."
    assert draft.clinical_indication == "Cough for three months; smoker."
    assert draft.conclusion == Conclusion.AGREES
    sign_event = AuditEvent.objects.get(action=AuditAction.SIGN)
    assert sign_event.detail["revision"] == draft.revision


def test_a_stale_editor_is_refused_and_nothing_is_saved_or_signed(client, north, draft):
    client.force_login(north.doctor)
    stale = editor_post(draft, impression="Written in tab one.", conclusion="agrees", password=DEFAULT_PASSWORD)
    services.save_draft(
        version=draft, doctor=north.doctor, sections={"impression": "Saved in tab two."}, conclusion="agrees"
    )

    response = client.post(reverse("report-sign", args=[draft.report_id]), stale)

    assert response.status_code == 409
    assert b"This draft changed since your page showed it" in response.content
    assert b"Written in tab one." in response.content, "the doctor's text is shown again, not lost"
    draft.refresh_from_db()
    assert (draft.status, draft.impression) == (VersionStatus.DRAFT, "Saved in tab two.")
    assert f'name="revision" value="{draft.revision}"'.encode() in response.content


def test_a_reanalysis_makes_an_open_editor_stale(client, north, draft):
    from tests.factories import AnalysisFactory

    client.force_login(north.doctor)
    shown = editor_post(draft, impression="Mass.", conclusion="agrees", password=DEFAULT_PASSWORD)
    old = draft.analyses.get()
    old.superseded_at = old.finished_at or old.queued_at
    old.save(update_fields=["superseded_at"])
    services.create_draft_report(analysis=AnalysisFactory(series=old.series, generation=2, predicted_class="normal"))

    response = client.post(reverse("report-sign", args=[draft.report_id]), shown)

    assert response.status_code == 409
    draft.refresh_from_db()
    assert draft.status == VersionStatus.DRAFT


def test_autosave_answers_json_with_the_new_revision(client, north, draft):
    client.force_login(north.doctor)
    url = reverse("report-edit", args=[draft.report_id])

    saved = client.post(url, editor_post(draft, findings="Edited findings."), HTTP_ACCEPT="application/json")
    assert saved.status_code == 200
    draft.refresh_from_db()
    assert saved.json()["revision"] == draft.revision == 2 and draft.findings == "Edited findings."

    stale = client.post(url, editor_post(draft, revision=1), HTTP_ACCEPT="application/json")
    assert stale.status_code == 409 and "changed since" in stale.json()["error"]

    beacon = client.post(f"{url}?autosave=1", editor_post(draft, findings="Sent on leaving the page."))
    assert beacon.status_code == 200 and beacon.json()["revision"] == 3, "a beacon cannot ask for JSON by header"


def test_the_conclusion_starts_unchosen_and_signing_without_one_is_a_form_error(client, north, draft):
    client.force_login(north.doctor)
    page = client.get(reverse("report-detail", args=[draft.report_id])).content.decode()
    assert '<option value="" selected>Choose your conclusion</option>' in page
    assert "Agrees with the AI finding" not in page, "an untouched draft says nothing about agreeing"

    response = client.post(
        reverse("report-sign", args=[draft.report_id]),
        editor_post(draft, impression="Mass.", password=DEFAULT_PASSWORD),
    )
    assert response.status_code == 400
    assert b"Choose your conclusion before signing" in response.content
    draft.refresh_from_db()
    assert draft.status == VersionStatus.DRAFT and draft.impression == ""


def test_an_untouched_drafts_pdf_does_not_say_the_doctor_agrees(draft):
    from reports.pdf import render_report_pdf

    text = "\n".join(pdf_pages(render_report_pdf(version=draft)))
    assert "Agrees with the AI finding" not in text
    assert "Not chosen yet" in text


def test_every_page_of_a_draft_pdf_says_draft_and_a_signed_one_does_not(draft, north):
    from reports.pdf import render_report_pdf

    services.save_draft(
        version=draft,
        doctor=north.doctor,
        sections={"findings": "\n".join(f"Finding line {line}." for line in range(150)), "impression": "Mass."},
        conclusion="agrees",
    )
    draft.refresh_from_db()
    pages = pdf_pages(render_report_pdf(version=draft))
    assert len(pages) >= 3
    assert all("DRAFT" in page.replace("DRAFT: not signed", "") for page in pages)

    signed = services.sign_report(version=draft, doctor=north.doctor, password=DEFAULT_PASSWORD)
    assert not any("DRAFT" in page for page in pdf_pages(render_report_pdf(version=signed)))


def test_corrected_measurements_keep_the_ai_value_and_the_reason(client, north, draft):
    client.force_login(north.doctor)
    url = reverse("report-edit", args=[draft.report_id])
    no_reason = client.post(url, editor_post(draft, **{"correction-largest_diameter": "27.5"}))
    assert no_reason.status_code == 400 and b"Give a reason for correcting" in no_reason.content
    out_of_range = client.post(
        url, editor_post(draft, **{"correction-key_slice_number": "9", "correction-reason": "Wrong slice."})
    )
    assert out_of_range.status_code == 400 and b"must be between 1 and 4" in out_of_range.content
    assert not draft.corrections.exists()

    client.post(
        url,
        editor_post(
            draft,
            **{
                "correction-largest_diameter": "27.5",
                "correction-key_slice_number": "2",
                "correction-reason": "Outline included a vessel.",
            },
        ),
    )
    correction = draft.corrections.get()
    assert (correction.largest_diameter, correction.volume_ml, correction.key_slice_number) == (27.5, None, 2)
    event = AuditEvent.objects.get(action=AuditAction.OVERRIDE, detail__measurement_correction=True)
    assert event.detail["ai"]["largest_diameter"] == 23.4 and event.detail["doctor"]["largest_diameter"] == 27.5

    page = client.get(reverse("report-detail", args=[draft.report_id])).content.decode()
    assert "23.4 mm" in page and "27.5 mm" in page and "Outline included a vessel." in page

    from reports.pdf import render_report_pdf

    draft.refresh_from_db()
    text = "\n".join(pdf_pages(render_report_pdf(version=draft)))
    assert "23.4 mm" in text and "27.5 mm" in text and "slice 2" in text and "Outline included a vessel." in text


def test_an_amendment_keeps_every_section_and_correction(signed, north):
    services.amend_report(report=signed.report, doctor=north.doctor, amendment_note="Typo.")
    draft = signed.report.open_draft()
    services.save_draft(
        version=draft,
        doctor=north.doctor,
        sections={"comparison": "CT of 2025-03-01."},
        conclusion="agrees",
        corrections=[
            services.CorrectionInput(analysis_id=draft.analyses.get().pk, volume_ml=1.5, reason="Manual volume.")
        ],
    )
    amended = services.sign_report(version=draft, doctor=north.doctor, password=DEFAULT_PASSWORD)
    services.amend_report(report=signed.report, doctor=north.doctor, amendment_note="Second.")

    second = signed.report.open_draft()
    assert (second.impression, second.comparison, second.technique) == (
        amended.impression,
        "CT of 2025-03-01.",
        amended.technique,
    )
    assert second.conclusion == Conclusion.AGREES
    assert second.corrections.get().volume_ml == 1.5


def test_the_draft_is_prefilled_with_technique_from_the_dicom_headers_and_findings_from_the_ai(north):
    from tests.factories import AnalysisFactory, InstanceFactory, SeriesFactory, StudyFactory

    series = SeriesFactory(study=StudyFactory(hospital=north.hospital, patient=north.patient), description="Chest")
    with open(get_testdata_file("CT_small.dcm"), "rb") as dicom:
        instance = InstanceFactory(series=series, slice_thickness=None)
        instance.file.save("ct-small.dcm", ContentFile(dicom.read()))
    draft = services.create_draft_report(analysis=AnalysisFactory(series=series)).versions.get()

    assert "GE MEDICAL SYSTEMS RHAPSODE" in draft.technique
    assert "120 kVp" in draft.technique and "slice thickness 5 mm" in draft.technique
    assert "contrast agent ISOVUE300/100" in draft.technique
    assert "Adenocarcinoma (82%)" in draft.findings and "23.4 mm" in draft.findings


def test_a_series_without_readable_headers_still_gets_a_technique_line(draft):
    assert "scanner not recorded" in draft.technique and "slice thickness 1.25 mm" in draft.technique


def test_a_held_report_stays_hidden_from_the_patient_until_released(
    client, north, draft, settings, django_capture_on_commit_callbacks
):
    settings.ALLOWED_HOSTS = ["testserver", "portal.test"]
    services.hold_or_release(report=draft.report, doctor=north.doctor, held=True)
    with django_capture_on_commit_callbacks(execute=True):
        services.save_draft(version=draft, doctor=north.doctor, sections={"impression": "Mass."}, conclusion="agrees")
        services.sign_report(version=draft, doctor=north.doctor, password=DEFAULT_PASSWORD)
    assert mail.outbox == []
    client.force_login(north.patient_user)
    assert client.get(reverse("report-detail", args=[draft.report_id])).status_code == 404
    assert client.get(reverse("report-pdf", args=[draft.report_id])).status_code == 404
    assert b"Mass." not in client.get(reverse("patient-reports")).content

    client.force_login(north.doctor)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("report-hold", args=[draft.report_id]), {"held": "0"}, SERVER_NAME="portal.test")
    assert response.status_code == 302
    assert [message.to for message in mail.outbox] == [[north.patient_user.email]]
    assert f"http://portal.test/reports/{draft.report_id}/" in mail.outbox[0].body, "the link uses the portal's address"
    assert AuditEvent.objects.filter(action=AuditAction.RELEASE).count() == 2
    client.force_login(north.patient_user)
    assert client.get(reverse("report-detail", args=[draft.report_id])).status_code == 200


def test_a_hospital_that_holds_by_default_starts_its_reports_held(analysis):
    hospital = analysis.hospital
    hospital.hold_reports_by_default = True
    hospital.save(update_fields=["hold_reports_by_default"])
    assert services.create_draft_report(analysis=analysis).held_from_patient


def test_the_signing_email_links_to_the_address_the_doctor_used(
    client, north, draft, settings, django_capture_on_commit_callbacks
):
    settings.ALLOWED_HOSTS = ["radassist.example.org"]
    client.force_login(north.doctor)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("report-sign", args=[draft.report_id]),
            editor_post(draft, impression="Mass.", conclusion="agrees", password=DEFAULT_PASSWORD),
            SERVER_NAME="radassist.example.org",
        )
    assert f"http://radassist.example.org/reports/{draft.report_id}/" in mail.outbox[0].body
