"""The report lifecycle: draft from an analysis, edit, override, correct, sign, amend, hold or release;
PDF storage; patient email.

Reanalysis (a new Analysis generation of a series already in a report):
- while the report has an open draft, the draft switches to the new analysis (the doctor's text is kept);
- once the report is signed, the signed versions stay exactly as signed. The doctor sees that a newer
  analysis exists and amends the report: the amendment is based on the current analyses of its series.
"""

from dataclasses import dataclass

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
from portal.links import site_root
from portal.models import AuditAction
from portal.queueing import queue_task
from reports import prefill
from reports.models import (
    CLASS_LABELS,
    REPORT_SECTIONS,
    Conclusion,
    MeasurementCorrection,
    Report,
    ReportVersion,
    VersionStatus,
)
from scans.models import Series, SeriesStatus

#: The editor's conclusion choice that agrees with the AI finding (the others are finding classes).
AGREES_WITH_AI = "agrees"


class ReportError(UserFacingError):
    """Something the doctor asked for cannot be done; the message says why.

    ``field`` names the editor's form field the message belongs to, when there is one.
    """

    def __init__(self, message, *, field=None):
        super().__init__(message)
        self.field = field


class NotAllowed(ReportError):
    status_code = 403


class StaleDraft(ReportError):
    """The editor showed an older revision of the draft than the one stored."""

    status_code = 409


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
            report, _ = Report.objects.get_or_create(
                study=study,
                defaults={
                    "hospital": analysis.hospital,
                    "held_from_patient": analysis.hospital.hold_reports_by_default,
                },
            )
    except IntegrityError:
        report = Report.objects.get(study=study)
    return Report.objects.select_for_update().get(pk=report.pk)


def _switch_draft_analysis(draft, analysis):
    """Base an open draft on a new analysis of one of its series.

    The pre-filled technique and findings follow the new analysis unless the doctor has edited them;
    the revision goes up, so an editor still showing the old analysis cannot sign over the change.
    """
    draft = ReportVersion.objects.select_for_update().get(pk=draft.pk)
    old_analyses = list(draft.ordered_analyses())
    draft.analyses.remove(*draft.analyses.filter(series=analysis.series))
    draft.analyses.add(analysis)
    new_analyses = list(draft.ordered_analyses())
    if draft.technique == prefill.technique_text(old_analyses):
        draft.technique = prefill.technique_text(new_analyses)
    if draft.findings == prefill.findings_text(old_analyses):
        draft.findings = prefill.findings_text(new_analyses)
    draft.revision += 1
    draft.save(update_fields=["technique", "findings", "revision", "updated_at"])


def create_draft_report(*, analysis):
    """Put a succeeded analysis into its study's report; idempotent.

    The report is found or made for the study (held from the patient if the hospital holds reports by
    default); the series joins it. An open draft takes the analysis in place of any earlier one of the
    same series; a report without versions gets version 1 as a draft, its technique and findings
    pre-filled. A signed report is left as signed (see the module docstring). A second delivery, or an
    analysis already superseded by a newer generation, changes nothing. The series stays "analysed"
    (awaiting review): only signing makes it "reported".
    """
    with transaction.atomic():
        analysis = Analysis.objects.select_related("series__study", "hospital").get(pk=analysis.pk)
        if not analysis_is_current(analysis):
            return Report.objects.filter(study=analysis.series.study).first()
        report = _report_for_study(analysis)
        report.series.add(analysis.series)
        draft = report.open_draft()
        if draft is None and not report.versions.exists():
            draft = ReportVersion.objects.create(
                hospital=report.hospital,
                report=report,
                number=1,
                technique=prefill.technique_text([analysis]),
                findings=prefill.findings_text([analysis]),
            )
            draft.analyses.add(analysis)
            queue_pdf_render(draft)
        elif draft is not None and not draft.analyses.filter(pk=analysis.pk).exists():
            _switch_draft_analysis(draft, analysis)
            queue_pdf_render(draft)
        return report


def _check_may_edit(*, report, doctor):
    is_doctor_of_hospital = doctor.is_doctor and Report.objects.visible_to(doctor).filter(pk=report.pk).exists()
    if not is_doctor_of_hospital:
        raise NotAllowed("Only doctors of this hospital can change this report.")


def _locked_draft(version, *, expected_revision=None):
    """The draft, locked for this transaction; refused if signed, or changed since the editor showed it."""
    version = ReportVersion.objects.select_for_update().select_related("report").get(pk=version.pk)
    if version.status != VersionStatus.DRAFT:
        raise ReportError(
            f"Version {version.number} is already signed and cannot be changed; amend the report instead."
        )
    if expected_revision is not None and expected_revision != version.revision:
        raise StaleDraft(
            "This draft changed since your page showed it (saved in another window, or a newer analysis "
            "arrived). Nothing was saved or signed. Your text is shown below against the current draft: "
            "check it, then save or sign again."
        )
    return version


def _write_sections(version, *, sections):
    """Put the doctor's text of each section on a locked draft; True if anything changed."""
    unknown = set(sections) - set(REPORT_SECTIONS)
    if unknown:
        raise ValueError(f"not report sections: {sorted(unknown)}")
    changed = False
    for name, text in sections.items():
        text = (text or "").strip()
        if getattr(version, name) != text:
            setattr(version, name, text)
            changed = True
    return changed


def _write_conclusion(version, *, doctor, conclusion, reason, request):
    """Put the doctor's conclusion on a locked draft and record an override event; True if anything changed.

    ``conclusion`` is ``AGREES_WITH_AI``, one of the finding classes, or blank (not chosen yet; a draft
    may be saved so, but not signed). Choosing the AI's own class counts as agreeing.
    """
    reason = (reason or "").strip()
    if conclusion and conclusion != AGREES_WITH_AI and conclusion not in CLASS_LABELS:
        raise ReportError("Choose one of the listed conclusions.", field="conclusion")
    ai_classes = set(version.analyses.values_list("predicted_class", flat=True))
    if conclusion == AGREES_WITH_AI or ai_classes == {conclusion}:
        verdict, conclusion_class = Conclusion.AGREES, ""
    elif conclusion:
        verdict, conclusion_class = Conclusion.DIFFERS, conclusion
    else:
        verdict, conclusion_class = Conclusion.NOT_CHOSEN, ""
    if verdict == Conclusion.DIFFERS and not reason:
        raise ReportError("Give a reason when your conclusion differs from the AI finding.", field="override_reason")
    reason = reason if verdict == Conclusion.DIFFERS else ""
    before = (version.conclusion, version.conclusion_class, version.override_reason)
    if before == (verdict, conclusion_class, reason):
        return False
    version.conclusion, version.conclusion_class, version.override_reason = verdict, conclusion_class, reason
    record_event(
        action=AuditAction.OVERRIDE,
        target=version,
        actor=doctor,
        request=request,
        detail={
            "ai_classes": sorted(ai_classes),
            "conclusion": _conclusion_for_audit(verdict, conclusion_class),
            "previous_conclusion": _conclusion_for_audit(before[0], before[1]),
            "reason": reason,
        },
    )
    return True


def _conclusion_for_audit(verdict, conclusion_class):
    return conclusion_class or {Conclusion.AGREES: "agrees with AI", Conclusion.NOT_CHOSEN: "not chosen"}.get(
        verdict, verdict
    )


@dataclass(frozen=True)
class CorrectionInput:
    """The doctor's values for one analysis's measurements, as typed; None keeps the AI's value."""

    analysis_id: int
    largest_diameter: float | None = None
    volume_ml: float | None = None
    key_slice_number: int | None = None
    reason: str = ""

    @property
    def values(self):
        return {
            "largest_diameter": self.largest_diameter,
            "volume_ml": self.volume_ml,
            "key_slice_number": self.key_slice_number,
        }


def _write_corrections(version, *, doctor, corrections, request):
    """Store the doctor's measurement corrections on a locked draft, each with its reason; True if any changed."""
    analyses = {analysis.pk: analysis for analysis in version.analyses.select_related("series")}
    existing = {correction.analysis_id: correction for correction in version.corrections.all()}
    changed = False
    for correction in corrections:
        analysis = analyses.get(correction.analysis_id)
        if analysis is None:
            raise ReportError("That analysis is not part of this draft; reload the page.")
        values = correction.values
        reason = correction.reason.strip()
        label = prefill.series_label(analysis.series)
        current = existing.get(analysis.pk)
        if all(value is None for value in values.values()):
            if current is not None:
                current.delete()
                _record_correction(version, doctor, analysis, before=current, after=None, reason="", request=request)
                changed = True
            continue
        if not reason:
            raise ReportError(
                f"Give a reason for correcting the AI's measurements of {label}.", field=f"a{analysis.pk}-reason"
            )
        slice_count = analysis.series.instances.count()
        if values["key_slice_number"] is not None and not 1 <= values["key_slice_number"] <= slice_count:
            raise ReportError(
                f"The key slice of {label} must be between 1 and {slice_count}.",
                field=f"a{analysis.pk}-key_slice_number",
            )
        if current is not None and (current.reason, {key: getattr(current, key) for key in values}) == (
            reason,
            values,
        ):
            continue
        after = MeasurementCorrection.objects.update_or_create(
            version=version, analysis=analysis, defaults={**values, "reason": reason, "corrected_by": doctor}
        )[0]
        _record_correction(version, doctor, analysis, before=current, after=after, reason=reason, request=request)
        changed = True
    return changed


def _record_correction(version, doctor, analysis, *, before, after, reason, request):
    def values_of(correction):
        if correction is None:
            return None
        return {key: getattr(correction, key) for key in ("largest_diameter", "volume_ml", "key_slice_number")}

    measurements = analysis.measurements or {}
    largest_area_slice = measurements.get("largest_area_slice_index")
    record_event(
        action=AuditAction.OVERRIDE,
        target=version,
        actor=doctor,
        request=request,
        detail={
            "measurement_correction": True,
            "analysis": analysis.pk,
            "ai": {
                "largest_diameter": measurements.get("largest_diameter"),
                "volume_ml": measurements.get("volume_ml"),
                "key_slice_number": largest_area_slice + 1 if largest_area_slice is not None else None,
            },
            "previous": values_of(before),
            "doctor": values_of(after),
            "reason": reason,
        },
    )


def _write_draft(version, *, doctor, sections, conclusion, override_reason, corrections, request):
    """All of the editor's content on a locked draft, all or nothing; True if anything changed."""
    sections_changed = _write_sections(version, sections=sections)
    conclusion_changed = _write_conclusion(
        version, doctor=doctor, conclusion=conclusion, reason=override_reason, request=request
    )
    corrections_changed = _write_corrections(version, doctor=doctor, corrections=corrections, request=request)
    if not (sections_changed or conclusion_changed or corrections_changed):
        return False
    version.revision += 1
    version.save()
    return True


def update_draft(*, version, doctor, **sections):
    """Save the text of some sections of a draft (keyword per section); its PDF is rendered again."""
    with transaction.atomic():
        version = _locked_draft(version)
        _check_may_edit(report=version.report, doctor=doctor)
        if _write_sections(version, sections=sections):
            version.revision += 1
            version.save()
            queue_pdf_render(version)
    return version


def override_ai_class(*, version, doctor, conclusion_class, reason, request=None):
    """Record the doctor's conclusion: a finding class (the AI's own one means agreeing), or AGREES_WITH_AI.
    A class other than the AI's needs a reason, which the PDF prints next to the AI finding.
    """
    with transaction.atomic():
        version = _locked_draft(version)
        _check_may_edit(report=version.report, doctor=doctor)
        if _write_conclusion(version, doctor=doctor, conclusion=conclusion_class, reason=reason, request=request):
            version.revision += 1
            version.save()
            queue_pdf_render(version)
    return version


def save_draft(
    *,
    version,
    doctor,
    sections,
    conclusion,
    override_reason="",
    corrections=(),
    expected_revision=None,
    request=None,
):
    """The editor's form: sections, conclusion and measurement corrections together, all or nothing, with one
    PDF render. With ``expected_revision`` (what the editor showed) a draft changed since then is refused.
    """
    with transaction.atomic():
        version = _locked_draft(version, expected_revision=expected_revision)
        _check_may_edit(report=version.report, doctor=doctor)
        if _write_draft(
            version,
            doctor=doctor,
            sections=sections,
            conclusion=conclusion,
            override_reason=override_reason,
            corrections=corrections,
            request=request,
        ):
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


def _check_ready_to_sign(version):
    if version.conclusion == Conclusion.NOT_CHOSEN:
        raise ReportError(
            "Choose your conclusion before signing: agree with the AI finding, or give your own with a reason.",
            field="conclusion",
        )
    if not version.impression:
        raise ReportError("Write an impression before signing.", field="impression")


def sign_report(*, version, doctor, password=None, totp_code=None, content=None, request=None):
    """Sign a draft: it becomes final (version 1) or amended (later versions) and is never changed again.

    ``content`` is what the editor showed when the doctor pressed "Sign" (the keyword arguments of
    :func:`save_draft` without version, doctor and request). It is saved and signed in one transaction, so
    the signed version is exactly what the doctor last saw; with its ``expected_revision`` a draft that
    changed meanwhile is refused, and nothing is saved or signed.
    """
    _check_may_edit(report=version.report, doctor=doctor)
    verify_signer(doctor=doctor, password=password, totp_code=totp_code)
    with transaction.atomic():
        content = dict(content or {})
        version = _locked_draft(version, expected_revision=content.pop("expected_revision", None))
        if version.report.study.patient_check:
            raise ReportError(
                "This study is waiting for a patient check: its DICOM patient identity disagrees with the record. "
                "Decide it under Patient checks before signing."
            )
        if content:
            _write_draft(version, doctor=doctor, request=request, **content)
        _check_ready_to_sign(version)
        version.status = VersionStatus.FINAL if version.number == 1 else VersionStatus.AMENDED
        version.signed_by = doctor
        version.signed_by_name = doctor.get_full_name()
        version.signed_at = timezone.now()
        draft_pdf = version.pdf.name
        version.pdf = ""
        version.pdf_rendered_at = None
        version.save()
        # Only a signed report makes its series "reported"; until then they stay analysed, awaiting review.
        Series.objects.filter(pk__in=version.analyses.values("series")).update(status=SeriesStatus.REPORTED)
        record_event(
            action=AuditAction.SIGN,
            target=version,
            actor=doctor,
            request=request,
            detail={"version": version.number, "status": version.status, "revision": version.revision},
        )
        if draft_pdf:
            transaction.on_commit(lambda: version.pdf.storage.delete(draft_pdf))
        queue_pdf_render(version)
        if not version.report.held_from_patient:
            queue_patient_notification(version, site_url=site_root(request))
        queue_signed_report_object(version)
    return version


def queue_signed_report_object(version):
    """The signed version's Encapsulated PDF is made on the reports queue once the signature has committed.

    The task is found by name (reports.tasks imports this module).
    """
    transaction.on_commit(
        lambda: queue_task("reports.tasks.make_signed_report_object", version_id=version.pk)
    )


def hold_or_release(*, report, doctor, held, request=None):
    """Hold a report back from the patient, or release it. Releasing a signed report emails the patient."""
    if not user_may(doctor, "hold_reports"):
        raise NotAllowed("Only a doctor, in person, holds a report back from the patient or releases it.")
    _check_may_edit(report=report, doctor=doctor)
    with transaction.atomic():
        report = Report.objects.select_for_update().get(pk=report.pk)
        if report.held_from_patient == held:
            return report
        report.held_from_patient = held
        report.save(update_fields=["held_from_patient", "updated_at"])
        signed = report.latest_signed_version()
        record_event(
            action=AuditAction.RELEASE,
            target=report,
            actor=doctor,
            request=request,
            detail={"held_from_patient": held, "signed_version": signed.number if signed else None},
        )
        if not held and signed is not None:
            queue_patient_notification(signed, site_url=site_root(request))
    return report


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
            **{name: getattr(signed, name) for name in REPORT_SECTIONS},
            conclusion=signed.conclusion,
            conclusion_class=signed.conclusion_class,
            override_reason=signed.override_reason,
            amendment_note=amendment_note,
            created_by=doctor,
        )
        analyses = list(current_analyses(report))
        amendment.analyses.set(analyses)
        MeasurementCorrection.objects.bulk_create(
            MeasurementCorrection(
                version=amendment,
                analysis_id=correction.analysis_id,
                largest_diameter=correction.largest_diameter,
                volume_ml=correction.volume_ml,
                key_slice_number=correction.key_slice_number,
                reason=correction.reason,
                corrected_by=correction.corrected_by,
            )
            for correction in signed.corrections.filter(analysis__in=analyses)
        )
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


def queue_patient_notification(version, *, site_url):
    """Email the patient from the reports queue once the signature has committed (see portal.email).

    ``site_url`` is the portal's address as the signing doctor reached it (portal.links.site_root).
    """
    transaction.on_commit(
        lambda: queue_task("reports.tasks.send_report_ready_email", version_id=version.pk, site_url=site_url)
    )


def notify_patient(*, version, site_url=None):
    """Tell the patient (if they have a login) that a signed report is waiting. The email carries no findings.

    A report held back from the patient sends nothing; releasing it sends the email then.
    """
    report = version.report
    patient = report.study.patient
    if report.held_from_patient:
        return
    if patient.user_id is None or not patient.user.is_active or not patient.user.email:
        return
    context = {
        "patient": patient,
        "version": version,
        "hospital": version.hospital,
        "report_url": (site_url or site_root()) + reverse("report-detail", kwargs={"pk": version.report_id}),
    }
    send_mail(
        subject=render_to_string("reports/email/report_ready_subject.txt", context).strip(),
        message=render_to_string("reports/email/report_ready.txt", context),
        from_email=None,
        recipient_list=[patient.user.email],
    )
