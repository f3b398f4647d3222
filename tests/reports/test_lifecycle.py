import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value
from django.core import mail
from django.utils import timezone

from portal.models import AuditAction, AuditEvent
from reports import services
from reports.models import Conclusion, Report, ReportVersion, VersionStatus
from scans.models import PatientCheck, SeriesStatus
from tests.factories import DEFAULT_PASSWORD, AnalysisFactory, SeriesFactory

pytestmark = pytest.mark.django_db


def audit_actions(target):
    return list(
        AuditEvent.objects.filter(target_type=target._meta.label, target_id=str(target.pk)).values_list(
            "action", flat=True
        )
    )


def write(version, doctor, impression):
    """The doctor writes an impression and agrees with the AI finding."""
    return services.save_draft(
        version=version, doctor=doctor, sections={"impression": impression}, conclusion=services.AGREES_WITH_AI
    )


def write_and_sign(version, doctor, impression="Stable nodule."):
    write(version, doctor, impression)
    return services.sign_report(version=version, doctor=doctor, password=DEFAULT_PASSWORD)


def reanalyse(analysis):
    """What the pipeline does on "reanalyse": supersede the analysis and store the next generation."""
    analysis.superseded_at = timezone.now()
    analysis.save(update_fields=["superseded_at"])
    return AnalysisFactory(series=analysis.series, generation=analysis.generation + 1, predicted_class="normal")


def test_the_draft_task_is_idempotent_and_leaves_the_series_awaiting_review(analysis):
    from reports.tasks import create_draft_report

    create_draft_report(analysis_id=analysis.pk)
    create_draft_report(analysis_id=analysis.pk)

    report = Report.objects.get()
    assert report.study == analysis.series.study
    assert list(report.versions.values_list("number", "status")) == [(1, "draft")]
    assert list(report.versions.get().analyses.all()) == [analysis]
    analysis.series.refresh_from_db()
    assert analysis.series.status == SeriesStatus.ANALYSED, "only signing makes a series reported"


def test_a_second_analysis_of_the_same_generation_makes_no_second_report(analysis):
    twin = AnalysisFactory(series=analysis.series, generation=analysis.generation, classifier_version="4")

    services.create_draft_report(analysis=analysis)
    services.create_draft_report(analysis=twin)

    version = ReportVersion.objects.get()
    assert list(version.analyses.all()) == [twin], "one analysis per series in a draft: the latest delivered"


def test_a_second_series_of_the_study_joins_the_same_report(analysis):
    other_series = SeriesFactory(study=analysis.series.study, description="Chest soft tissue")
    other = AnalysisFactory(series=other_series)

    services.create_draft_report(analysis=analysis)
    services.create_draft_report(analysis=other)

    report = Report.objects.get()
    assert set(report.series.all()) == {analysis.series, other_series}
    assert set(report.versions.get().analyses.all()) == {analysis, other}


def test_a_reanalysis_moves_the_open_draft_to_the_new_analysis_and_keeps_the_text(draft, north):
    services.update_draft(version=draft, doctor=north.doctor, impression="Kept text.", recommendation="")
    old = draft.analyses.get()
    new = reanalyse(old)

    services.create_draft_report(analysis=new)
    services.create_draft_report(analysis=old)  # a late redelivery of the superseded one changes nothing

    draft.refresh_from_db()
    assert list(draft.analyses.all()) == [new]
    assert draft.impression == "Kept text."
    assert ReportVersion.objects.count() == 1


def test_a_reanalysis_after_signing_leaves_the_final_version_and_the_amendment_uses_it(draft, north):
    write_and_sign(draft, north.doctor)
    old = draft.analyses.get()
    new = reanalyse(old)

    services.create_draft_report(analysis=new)

    final = ReportVersion.objects.get()
    assert final.status == VersionStatus.FINAL and list(final.analyses.all()) == [old]
    assert list(services.newer_analyses(final)) == [new]
    amendment = services.amend_report(report=final.report, doctor=north.doctor, amendment_note="Reanalysed.")
    assert list(amendment.analyses.all()) == [new]


def test_a_wrong_password_is_refused_and_changes_nothing(draft, north):
    write(draft, north.doctor, "Mass.")

    with pytest.raises(services.SignatureRefused):
        services.sign_report(version=draft, doctor=north.doctor, password="not-my-password")

    draft.refresh_from_db()
    assert draft.status == VersionStatus.DRAFT and draft.signed_by is None and draft.signed_at is None
    assert AuditAction.SIGN not in audit_actions(draft)


def test_signing_makes_the_version_final_records_it_and_emails_the_patient(
    draft, north, django_capture_on_commit_callbacks
):
    write(draft, north.doctor, "Mass.")
    with django_capture_on_commit_callbacks(execute=True):
        services.sign_report(version=draft, doctor=north.doctor, password=DEFAULT_PASSWORD)

    draft.refresh_from_db()
    assert draft.status == VersionStatus.FINAL
    assert draft.analyses.get().series.status == SeriesStatus.REPORTED
    assert draft.signed_by == north.doctor and draft.signed_by_name == north.doctor.full_name
    assert AuditEvent.objects.get(action=AuditAction.SIGN).actor == north.doctor
    assert [message.to for message in mail.outbox] == [[north.patient_user.email]]
    assert "Mass." not in mail.outbox[0].body, "the email must not carry findings"
    assert draft.pdf and draft.pdf.name.endswith("-final.pdf")
    with pytest.raises(services.ReportError):
        services.update_draft(version=draft, doctor=north.doctor, impression="Changed.", recommendation="")


def test_repeated_wrong_passwords_pause_signing_even_with_the_right_one(draft, north):
    write(draft, north.doctor, "Mass.")
    for _ in range(services.MAX_FAILED_SIGNATURE_ATTEMPTS):
        with pytest.raises(services.SignatureRefused, match="not correct"):
            services.sign_report(version=draft, doctor=north.doctor, password="guess")

    with pytest.raises(services.SignatureRefused, match="Too many"):
        services.sign_report(version=draft, doctor=north.doctor, password=DEFAULT_PASSWORD)
    draft.refresh_from_db()
    assert draft.status == VersionStatus.DRAFT


def test_signing_needs_an_impression(draft, north):
    write(draft, north.doctor, "")
    with pytest.raises(services.ReportError, match="impression"):
        services.sign_report(version=draft, doctor=north.doctor, password=DEFAULT_PASSWORD)


def test_with_an_authenticator_the_doctor_signs_with_its_code_not_the_password(draft, north):
    secret = generate_totp_secret()
    TOTP.activate(north.doctor, secret)
    write(draft, north.doctor, "Mass.")

    with pytest.raises(services.SignatureRefused):
        services.sign_report(version=draft, doctor=north.doctor, password=DEFAULT_PASSWORD)
    with pytest.raises(services.SignatureRefused):
        services.sign_report(version=draft, doctor=north.doctor, totp_code="000000")
    code = format_hotp_value(hotp_value(secret, int(timezone.now().timestamp()) // 30))
    services.sign_report(version=draft, doctor=north.doctor, totp_code=code)

    draft.refresh_from_db()
    assert draft.status == VersionStatus.FINAL
    assert Authenticator.objects.filter(user=north.doctor).count() == 1


@pytest.mark.parametrize("who", ["api_key_user", "admin", "other_hospital_doctor"])
def test_only_a_doctor_of_the_hospital_in_person_may_sign(draft, north, south, who):
    signer = {"api_key_user": north.api_key.user, "admin": north.admin, "other_hospital_doctor": south.doctor}[who]
    write(draft, north.doctor, "Mass.")

    with pytest.raises(services.NotAllowed):
        services.sign_report(version=draft, doctor=signer, password=DEFAULT_PASSWORD)
    draft.refresh_from_db()
    assert draft.status == VersionStatus.DRAFT


def test_an_amendment_is_a_new_signed_version_and_the_earlier_one_stays_readable(signed, north):
    first_pdf = signed.pdf.name
    with pytest.raises(services.ReportError, match="amendment"):
        services.amend_report(report=signed.report, doctor=north.doctor, amendment_note="  ")

    amendment = services.amend_report(
        report=signed.report, doctor=north.doctor, amendment_note="Lesion size corrected."
    )
    assert (amendment.number, amendment.status) == (2, VersionStatus.DRAFT)
    assert amendment.impression == signed.impression
    write_and_sign(amendment, north.doctor, impression="Mass, 25 mm.")

    amendment.refresh_from_db()
    signed.refresh_from_db()
    assert amendment.status == VersionStatus.AMENDED and amendment.amendment_note == "Lesion size corrected."
    assert signed.status == VersionStatus.FINAL and signed.impression.startswith("Spiculated")
    assert signed.pdf.name == first_pdf and signed.pdf.storage.exists(first_pdf)
    assert AuditAction.AMEND in audit_actions(amendment)


def test_the_patient_is_emailed_when_an_amendment_is_signed(signed, north, django_capture_on_commit_callbacks):
    mail.outbox.clear()
    amendment = services.amend_report(report=signed.report, doctor=north.doctor, amendment_note="Corrected.")
    with django_capture_on_commit_callbacks(execute=True):
        services.sign_report(version=amendment, doctor=north.doctor, password=DEFAULT_PASSWORD)

    assert [message.to for message in mail.outbox] == [[north.patient_user.email]]
    assert "amended" in mail.outbox[0].body


def test_a_patient_without_a_login_gets_no_email(analysis, north, django_capture_on_commit_callbacks):
    patient = analysis.series.study.patient
    patient.user = None
    patient.save(update_fields=["user"])
    version = services.create_draft_report(analysis=analysis).versions.get()
    write(version, north.doctor, "Mass.")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.sign_report(version=version, doctor=north.doctor, password=DEFAULT_PASSWORD)
    services.notify_patient(version=version)

    assert callbacks and mail.outbox == []


def test_an_override_needs_a_reason_and_is_recorded(draft, north):
    with pytest.raises(services.ReportError, match="reason"):
        services.override_ai_class(version=draft, doctor=north.doctor, conclusion_class="normal", reason="")

    services.override_ai_class(
        version=draft, doctor=north.doctor, conclusion_class="normal", reason="Scarring on the prior CT."
    )
    draft.refresh_from_db()
    assert (draft.conclusion_class, draft.override_reason) == ("normal", "Scarring on the prior CT.")
    event = AuditEvent.objects.get(action=AuditAction.OVERRIDE)
    assert event.detail["conclusion"] == "normal" and event.detail["ai_classes"] == ["adenocarcinoma"]


def test_choosing_the_ai_class_itself_counts_as_agreeing(draft, north):
    services.override_ai_class(version=draft, doctor=north.doctor, conclusion_class="adenocarcinoma", reason="")
    draft.refresh_from_db()
    assert (draft.conclusion, draft.conclusion_class) == (Conclusion.AGREES, "")
    event = AuditEvent.objects.get(action=AuditAction.OVERRIDE)
    assert (event.detail["conclusion"], event.detail["previous_conclusion"]) == ("agrees with AI", "not chosen")


def test_a_study_waiting_for_its_patient_check_cannot_be_signed(draft, north):
    study = draft.report.study
    write(draft, north.doctor, "Nodule.")
    study.patient_check = PatientCheck.NEEDED
    study.save()
    with pytest.raises(services.ReportError, match="patient check"):
        services.sign_report(version=draft, doctor=north.doctor, password=DEFAULT_PASSWORD)
    draft.refresh_from_db()
    assert draft.status == VersionStatus.DRAFT
