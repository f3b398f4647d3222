"""Report pages: the doctor's editor, the patient's portal, and the audited PDF and key image downloads.

Every lookup goes through ``visible_to``: a report of another hospital, another patient's report or a
draft opened by a patient is simply not found (404).
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts.permissions import ability_required, user_may
from portal.audit import record_event
from portal.models import AuditAction
from portal.storage import private_file_response
from reports import services
from reports.forms import AmendForm, DraftForm, HoldForm, SignForm
from reports.models import Report, ReportVersion, key_images_visible_to, readable_versions_of
from reports.rendering import report_context


def visible_report(request, pk):
    return get_object_or_404(Report.objects.visible_to(request.user).select_related("study__patient"), pk=pk)


def visible_versions(request, report):
    """The versions of a report this user may read: all for staff, signed ones for the patient."""
    return ReportVersion.objects.visible_to(request.user).filter(report=report).order_by("-number")


def pdf_not_ready():
    response = HttpResponse(
        "The PDF of this report is being prepared. Please try again in a few seconds.",
        status=503,
        content_type="text/plain; charset=utf-8",
    )
    response["Retry-After"] = "5"
    return response


def pdf_response(request, version):
    if not version.pdf:
        return pdf_not_ready()
    return private_file_response(
        request=request,
        file_field=version.pdf,
        target=version,
        download_name=f"report-{version.report_id}-version-{version.number}.pdf",
    )


def editor_context(request, report, versions):
    """What the doctor's report panel needs (also used by the study page through the report_panel tag)."""
    latest = versions[0] if versions else None
    draft = latest if latest is not None and not latest.is_signed else None
    can_edit = request.user.is_doctor
    return {
        "report": report,
        "versions": versions,
        "latest": latest,
        "draft": draft,
        "can_edit": can_edit and draft is not None,
        "can_sign": can_edit and draft is not None and user_may(request.user, "sign"),
        "can_amend": can_edit and draft is None and latest is not None,
        "can_hold": user_may(request.user, "hold_reports"),
        "newer_analyses": list(services.newer_analyses(latest)) if latest is not None else [],
        "draft_form": DraftForm.for_version(draft) if draft is not None else None,
        "sign_form": SignForm(),
        "amend_form": AmendForm(),
        "signer_uses_totp": signer_uses_totp(request.user),
    }


def signer_uses_totp(user):
    from allauth.mfa.models import Authenticator

    return Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()


@login_required
def report_detail(request, pk):
    """The doctor's editor, or the patient's reading view of the latest signed version."""
    return render_report_page(request, visible_report(request, pk), version_number=request.GET.get("version"))


def render_report_page(request, report, *, version_number=None, draft_form=None, status=200):
    """Show one version (the latest readable one unless a number is given); each showing is audited."""
    versions = list(visible_versions(request, report))
    if not versions:
        raise Http404
    shown = versions[0]
    if version_number:
        shown = next((version for version in versions if str(version.number) == version_number), None)
        if shown is None:
            raise Http404
    record_event(action=AuditAction.VIEW, target=shown, request=request, detail={"version": shown.number})
    context = {**report_context(shown), "versions": versions}
    if request.user.is_patient:
        return render(request, "reports/patient_report.html", context)
    context.update(editor_context(request, report, versions))
    context["shown"] = shown
    if draft_form is not None:
        context["draft_form"] = draft_form
    return render(request, "reports/report_detail.html", context, status=status)


def _editor_action(request, pk, action):
    """Run one editor action on a visible report; a ReportError becomes a message on the editor page."""
    report = visible_report(request, pk)
    try:
        action(report)
    except services.ReportError as error:
        messages.error(request, str(error))
    return redirect("report-detail", pk=report.pk)


def wants_json(request):
    """The editor's auto-save asks for JSON (its beacon on leaving the page cannot set headers, so it says
    ``?autosave=1``); a plain form post gets a page."""
    return "application/json" in request.headers.get("Accept", "") or request.GET.get("autosave") == "1"


@require_POST
@ability_required("edit_reports")
def report_edit(request, pk):
    """Save the draft (the "Save draft" button, or the editor's auto-save asking for JSON).

    A refused save changes nothing: the page shows the editor again with the doctor's text and the
    reason; auto-save gets the reason as JSON (409 when the draft changed elsewhere).
    """
    report = visible_report(request, pk)
    draft = report.open_draft()
    if draft is None:
        if wants_json(request):
            return JsonResponse({"error": "This report has no draft any more; reload the page."}, status=409)
        messages.error(request, "This report has no draft to edit; amend it to make changes.")
        return redirect("report-detail", pk=report.pk)
    form = DraftForm.for_version(draft, data=request.POST)
    if not form.is_valid():
        if wants_json(request):
            errors = [str(error) for errors in form.errors.values() for error in errors]
            return JsonResponse({"error": " ".join(errors)}, status=400)
        return render_report_page(request, report, draft_form=form, status=400)
    try:
        draft = services.save_draft(version=draft, doctor=request.user, request=request, **form.content())
    except services.ReportError as error:
        if wants_json(request):
            return JsonResponse({"error": str(error)}, status=error.status_code)
        return render_report_page(
            request, report, draft_form=refused_editor(request, report, error), status=error.status_code
        )
    if wants_json(request):
        return JsonResponse({"revision": draft.revision, "saved_at": draft.updated_at.isoformat()})
    messages.success(request, "Draft saved.")
    return redirect("report-detail", pk=report.pk)


def refused_editor(request, report, error):
    """The editor after the services refused its content: the doctor's text, the reason, and the current
    revision. After a refusal because the draft changed meanwhile, the page then shows the current draft's
    analyses with the doctor's own text, so saving or signing it again is an informed choice."""
    draft = report.open_draft()
    if draft is None:
        messages.error(request, str(error))
        return None
    data = request.POST.copy()
    data["revision"] = str(draft.revision)
    form = DraftForm.for_version(draft, data=data)
    form.is_valid()
    form.add_report_error(error)
    return form


@require_POST
@ability_required("edit_reports")
def report_sign(request, pk):
    """Save and sign what the editor shows, in one step (the sign button is part of the editor's form).

    A post without the editor's fields (an older page, or a client) signs the draft as stored.
    """
    report = visible_report(request, pk)
    draft = report.open_draft()
    if draft is None:
        messages.error(request, "There is no draft to sign.")
        return redirect("report-detail", pk=report.pk)
    sign_form = SignForm(request.POST)
    sign_form.is_valid()
    has_editor_fields = "revision" in request.POST
    form = DraftForm.for_version(draft, data=request.POST) if has_editor_fields else None
    if form is not None and not form.is_valid():
        return render_report_page(request, report, draft_form=form, status=400)
    try:
        version = services.sign_report(
            version=draft,
            doctor=request.user,
            password=sign_form.cleaned_data.get("password"),
            totp_code=sign_form.cleaned_data.get("totp_code"),
            content=form.content() if form is not None else None,
            request=request,
        )
    except services.ReportError as error:
        if form is None:
            messages.error(request, str(error))
            return redirect("report-detail", pk=report.pk)
        return render_report_page(
            request, report, draft_form=refused_editor(request, report, error), status=error.status_code
        )
    messages.success(request, f"Version {version.number} signed ({version.get_status_display().lower()}).")
    return redirect("report-detail", pk=report.pk)


@require_POST
@ability_required("hold_reports")
def report_hold(request, pk):
    """Hold the report back from the patient, or release it to them."""
    form = HoldForm(request.POST)

    def hold(report):
        if not form.is_valid():
            raise services.ReportError("Choose whether to hold or release the report.")
        held = form.cleaned_data["held"]
        services.hold_or_release(report=report, doctor=request.user, held=held, request=request)
        messages.success(
            request,
            "The report is held: the patient does not see it." if held else "The report is released to the patient.",
        )

    return _editor_action(request, pk, hold)


@require_POST
@ability_required("edit_reports")
def report_amend(request, pk):
    form = AmendForm(request.POST)
    form.is_valid()

    def amend(report):
        version = services.amend_report(
            report=report,
            doctor=request.user,
            amendment_note=form.cleaned_data.get("amendment_note", ""),
            request=request,
        )
        messages.success(request, f"Version {version.number} opened as a draft amendment: edit it, then sign it.")

    return _editor_action(request, pk, amend)


@login_required
def report_pdf(request, pk):
    """The PDF of the latest version this user may read (the patient: the latest signed one)."""
    report = visible_report(request, pk)
    version = visible_versions(request, report).first()
    if version is None:
        raise Http404
    return pdf_response(request, version)


@login_required
def report_version_pdf(request, pk):
    version = get_object_or_404(ReportVersion.objects.visible_to(request.user), pk=pk)
    return pdf_response(request, version)


@login_required
def key_image(request, pk):
    """A key image (the slice with its lesion outline), shown inline and recorded as a view."""
    image = get_object_or_404(key_images_visible_to(request.user).select_related("analysis"), pk=pk)
    record_event(
        action=AuditAction.VIEW,
        target=image,
        request=request,
        hospital=image.analysis.hospital,
        detail={"file": image.overlay.name, "analysis": image.analysis_id},
    )
    return private_file_response(
        request=request,
        file_field=image.overlay,
        target=image,
        download_name=f"key-image-{image.pk}.png",
        as_attachment=False,
        audit=False,
    )


@ability_required("read_own_reports")
def patient_reports(request):
    """The patient's signed reports, newest study first."""
    reports = (
        Report.objects.visible_to(request.user).select_related("study", "hospital")
        .prefetch_related(readable_versions_of(request.user)).order_by("-study__study_date", "-created_at")
    )
    rows = [(report, (report.readable_versions or [None])[0]) for report in reports]
    return render(request, "reports/patient_reports.html", {"rows": rows})
