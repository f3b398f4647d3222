"""The report lifecycle: draft from an analysis, edit, override, sign, amend; PDF storage; patient email.

Reanalysis (a new Analysis generation of a series already in a report):
- while the report has an open draft, the draft switches to the new analysis (the doctor's text is kept);
- once the report is signed, the signed versions stay exactly as signed. The doctor sees that a newer
  analysis exists and amends the report: the amendment is based on the current analyses of its series.
"""

from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.permissions import user_may
from ml.models import Analysis, AnalysisStatus
from portal.audit import record_event
from portal.errors import UserFacingError
from portal.models import AuditAction
from portal.queueing import queue_task
from reports.models import CLASS_LABELS, Report, ReportVersion, VersionStatus
from scans.models import Series, SeriesStatus


class ReportError(UserFacingError):
    """Something the doctor asked for cannot be done; the message says why."""


class NotAllowed(ReportError):
    status_code = 403


class SignatureRefused(ReportError):
    """The re-entered password or authenticator code did not match."""

    status_code = 403


def queue_pdf_render(version):
    """Render the version's PDF on the reports queue once the current transaction has committed."""
    transaction.on_commit(lambda: queue_task("reports.tasks.render_report_pdf", version_id=version.pk))


def analysis_is_current(analysis):
    return analysis.status == AnalysisStatus.SUCCEEDED and not analysis.is_superseded


def current_analyses(report):
    """The latest succeeded analysis of each series the report covers."""
    return (
        Analysis.objects.for_hospital(report.hospital)
        .current()
        .filter(series__in=report.series.all(), status=AnalysisStatus.SUCCEEDED)
    )


def newer_analyses(version):
    """Current analyses of the report's series that this version is not based on (a reanalysis happened)."""
    return current_analyses(version.report).exclude(pk__in=version.analyses.all())


def _report_for_study(analysis):
    study = analysis.series.study
    try:
        with transaction.atomic():
            report, _ = Report.objects.get_or_create(study=study, defaults={"hospital": analysis.hospital})
    except IntegrityError:
        report = Report.objects.get(study=study)
    return Report.objects.select_for_update().get(pk=report.pk)


def create_draft_report(*, analysis):
    """Put a succeeded analysis into its study's report; idempotent.

    The report is found or made for the study; the series joins it. An open draft takes the
    analysis in place of any earlier one of the same series; a report without versions gets
    version 1 as a draft. A signed report is left as signed (see the module docstring). A
    second delivery, or an analysis already superseded by a newer generation, changes nothing.
    """
    with transaction.atomic():
        analysis = Analysis.objects.select_related("series__study").get(pk=analysis.pk)
        if not analysis_is_current(analysis):
            return Report.objects.filter(study=analysis.series.study).first()
        report = _report_for_study(analysis)
        report.series.add(analysis.series)
        draft = report.open_draft()
        if draft is None and not report.versions.exists():
            draft = ReportVersion.objects.create(hospital=report.hospital, report=report, number=1)
        if draft is not None and not draft.analyses.filter(pk=analysis.pk).exists():
            draft.analyses.remove(*draft.analyses.filter(series=analysis.series))
            draft.analyses.add(analysis)
            draft.save(update_fields=["updated_at"])
            queue_pdf_render(draft)
        Series.objects.filter(pk=analysis.series_id).update(status=SeriesStatus.REPORTED)
        return report


def _check_may_edit(*, report, doctor):
    is_doctor_of_hospital = doctor.is_doctor and Report.objects.visible_to(doctor).filter(pk=report.pk).exists()
    if not is_doctor_of_hospital:
        raise NotAllowed("Only doctors of this hospital can change this report.")


def _locked_draft(version):
    version = ReportVersion.objects.select_for_update().select_related("report").get(pk=version.pk)
    if version.status != VersionStatus.DRAFT:
        raise ReportError(
            f"Version {version.number} is already signed and cannot be changed; amend the report instead."
        )
    return version


def _write_text(version, *, impression, recommendation):
    """Put the doctor's text on a locked draft; True if anything changed."""
    impression, recommendation = impression.strip(), recommendation.strip()
    if (version.impression, version.recommendation) == (impression, recommendation):
        return False
    version.impression, version.recommendation = impression, recommendation
    version.save(update_fields=["impression", "recommendation", "updated_at"])
    return True


def _write_conclusion(version, *, doctor, conclusion_class, reason, request):
    """Put the doctor's conclusion on a locked draft and record an override event; True if anything changed."""
    reason = (reason or "").strip()
    if conclusion_class and conclusion_class not in CLASS_LABELS:
        raise ReportError("Choose one of the listed findings.")
    ai_classes = set(version.analyses.values_list("predicted_class", flat=True))
    if ai_classes == {conclusion_class}:
        conclusion_class = ""
    if conclusion_class and not reason:
        raise ReportError("Give a reason when your conclusion differs from the AI finding.")
    reason = reason if conclusion_class else ""
    previous = version.conclusion_class
    if (previous, version.override_reason) == (conclusion_class, reason):
        return False
    version.conclusion_class, version.override_reason = conclusion_class, reason
    version.save(update_fields=["conclusion_class", "override_reason", "updated_at"])
    record_event(
        action=AuditAction.OVERRIDE,
        target=version,
        actor=doctor,
        request=request,
        detail={
            "ai_classes": sorted(ai_classes),
            "conclusion": conclusion_class or "agrees with AI",
            "previous_conclusion": previous or "agrees with AI",
            "reason": reason,
        },
    )
    return True


def update_draft(*, version, doctor, impression, recommendation):
    """Save the doctor's impression and recommendation on a draft; its PDF is rendered again."""
    with transaction.atomic():
        version = _locked_draft(version)
        _check_may_edit(report=version.report, doctor=doctor)
        if _write_text(version, impression=impression, recommendation=recommendation):
            queue_pdf_render(version)
    return version


def override_ai_class(*, version, doctor, conclusion_class, reason, request=None):
    """Record the doctor's conclusion. Blank (or the AI's own class) means the doctor agrees with the AI;
    any other class needs a reason, which the PDF prints next to the AI finding.
    """
    with transaction.atomic():
        version = _locked_draft(version)
        _check_may_edit(report=version.report, doctor=doctor)
        if _write_conclusion(version, doctor=doctor, conclusion_class=conclusion_class, reason=reason, request=request):
            queue_pdf_render(version)
    return version


def save_draft(*, version, doctor, impression, recommendation, conclusion_class, override_reason, request=None):
    """The editor's form: text and conclusion together, all or nothing, with one PDF render."""
    with transaction.atomic():
        version = _locked_draft(version)
        _check_may_edit(report=version.report, doctor=doctor)
        text_changed = _write_text(version, impression=impression, recommendation=recommendation)
        conclusion_changed = _write_conclusion(
            version, doctor=doctor, conclusion_class=conclusion_class, reason=override_reason, request=request
        )
        if text_changed or conclusion_changed:
            queue_pdf_render(version)
    return version


#: Failed signature attempts a doctor may make in SIGNATURE_ATTEMPT_WINDOW_SECONDS before signing pauses.
MAX_FAILED_SIGNATURE_ATTEMPTS = 5
SIGNATURE_ATTEMPT_WINDOW_SECONDS = 300


def _failed_signature_key(doctor):
    return f"reports:failed-signatures:{doctor.pk}"


def verify_signer(*, doctor, password=None, totp_code=None):
    """A person re-proves who they are: their authenticator code if they have TOTP set up, else their password.

    Failures are counted per doctor, so an unattended session cannot be used to guess the password.
    """
    from allauth.mfa.models import Authenticator

    if not user_may(doctor, "sign"):
        raise NotAllowed("An API key cannot sign reports: signing needs a doctor.")
    failures_key = _failed_signature_key(doctor)
    if cache.get(failures_key, 0) >= MAX_FAILED_SIGNATURE_ATTEMPTS:
        raise SignatureRefused("Too many failed attempts to sign. Wait a few minutes, then try again.")
    authenticator = Authenticator.objects.filter(user=doctor, type=Authenticator.Type.TOTP).first()
    if authenticator is not None:
        verified = bool(totp_code) and authenticator.wrap().validate_code(totp_code.strip())
        message = "That authenticator code is not valid. Enter the current code from your app."
    else:
        verified = bool(password) and doctor.check_password(password)
        message = "That password is not correct. Re-enter your login password to sign."
    if not verified:
        cache.add(failures_key, 0, timeout=SIGNATURE_ATTEMPT_WINDOW_SECONDS)
        cache.incr(failures_key)
        raise SignatureRefused(message)
    cache.delete(failures_key)


def sign_report(*, version, doctor, password=None, totp_code=None, request=None):
    """Sign a draft: it becomes final (version 1) or amended (later versions) and is never changed again."""
    _check_may_edit(report=version.report, doctor=doctor)
    verify_signer(doctor=doctor, password=password, totp_code=totp_code)
    with transaction.atomic():
        version = _locked_draft(version)
        if version.report.study.patient_check:
            raise ReportError(
                "This study is waiting for a patient check: its DICOM patient identity disagrees with the record. "
                "Decide it under Patient checks before signing."
            )
        if not version.impression:
            raise ReportError("Write an impression before signing.")
        version.status = VersionStatus.FINAL if version.number == 1 else VersionStatus.AMENDED
        version.signed_by = doctor
        version.signed_by_name = doctor.get_full_name()
        version.signed_at = timezone.now()
        draft_pdf = version.pdf.name
        version.pdf = ""
        version.pdf_rendered_at = None
        version.save()
        record_event(
            action=AuditAction.SIGN,
            target=version,
            actor=doctor,
            request=request,
            detail={"version": version.number, "status": version.status},
        )
        if draft_pdf:
            transaction.on_commit(lambda: version.pdf.storage.delete(draft_pdf))
        queue_pdf_render(version)
        queue_patient_notification(version)
        queue_signed_report_object(version)
    return version


def queue_signed_report_object(version):
    """The signed version's Encapsulated PDF is made on the reports queue once the signature has committed.

    The task is found by name (reports.tasks imports this module).
    """
    transaction.on_commit(
        lambda: queue_task("reports.tasks.make_signed_report_object", version_id=version.pk)
    )


def amend_report(*, report, doctor, amendment_note, request=None):
    """Open a new draft copied from the last signed version, based on the current analyses; signed like any draft."""
    amendment_note = (amendment_note or "").strip()
    if not amendment_note:
        raise ReportError("Say what the amendment changes and why.")
    _check_may_edit(report=report, doctor=doctor)
    with transaction.atomic():
        report = Report.objects.select_for_update().get(pk=report.pk)
        if report.open_draft() is not None:
            raise ReportError("This report already has an unsigned draft: edit and sign that one.")
        signed = report.latest_signed_version()
        if signed is None:
            raise ReportError("Only a signed report can be amended; sign the draft instead.")
        amendment = ReportVersion.objects.create(
            hospital=report.hospital,
            report=report,
            number=report.latest_version().number + 1,
            impression=signed.impression,
            recommendation=signed.recommendation,
            conclusion_class=signed.conclusion_class,
            override_reason=signed.override_reason,
            amendment_note=amendment_note,
            created_by=doctor,
        )
        amendment.analyses.set(current_analyses(report))
        record_event(
            action=AuditAction.AMEND,
            target=amendment,
            actor=doctor,
            request=request,
            detail={"amends_version": signed.number, "version": amendment.number, "note": amendment_note},
        )
        queue_pdf_render(amendment)
    return amendment


def store_report_pdf(*, version):
    """Render and store the version's PDF. A signed version is rendered once; a draft each time it changes."""
    from reports.pdf import render_report_pdf  # only the reports worker pays for importing WeasyPrint

    with transaction.atomic():
        version = ReportVersion.objects.select_for_update().select_related("report__study__patient").get(pk=version.pk)
        if version.is_signed and version.pdf:
            return version
        previous = version.pdf.name
        pdf_bytes = render_report_pdf(version=version)
        suffix = version.status if version.is_signed else f"draft-{timezone.now():%Y%m%d%H%M%S%f}"
        name = f"report-{version.report_id}-v{version.number}-{suffix}.pdf"
        version.pdf.save(name, ContentFile(pdf_bytes), save=False)
        version.pdf_rendered_at = timezone.now()
        version.save(update_fields=["pdf", "pdf_rendered_at", "updated_at"])
        if previous and previous != version.pdf.name:
            transaction.on_commit(lambda: version.pdf.storage.delete(previous))
    return version


def queue_patient_notification(version):
    """Email the patient from the reports queue once the signature has committed (see portal.email)."""
    transaction.on_commit(lambda: queue_task("reports.tasks.send_report_ready_email", version_id=version.pk))


def notify_patient(*, version):
    """Tell the patient (if they have a login) that a signed report is waiting. The email carries no findings."""
    patient = version.report.study.patient
    if patient.user_id is None or not patient.user.is_active or not patient.user.email:
        return
    context = {
        "patient": patient,
        "version": version,
        "hospital": version.hospital,
        "report_url": settings.SITE_URL.rstrip("/") + reverse("report-detail", kwargs={"pk": version.report_id}),
    }
    send_mail(
        subject=render_to_string("reports/email/report_ready_subject.txt", context).strip(),
        message=render_to_string("reports/email/report_ready.txt", context),
        from_email=None,
        recipient_list=[patient.user.email],
    )
