"""Pages that combine scans, analyses and reports: the worklist, the study page and the hospital dashboard."""

from django.contrib import messages
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from accounts.models import Patient, Role, User
from accounts.permissions import ability_required
from clinic import ohif
from clinic.priors import history_plot_points, measurement_history, prior_studies
from clinic.viewer import start_location, viewer_state
from clinic.worklist import PROCESSING_STATUSES, WorklistFilterForm, worklist_rows, worklist_studies
from ml.models import AnalysisStatus
from ml.services import RegistryUnavailable, active_models, current_analyses_by_series
from portal.audit import record_event
from portal.models import AuditAction
from portal.pagination import EstimatedCountPaginator
from reports.models import OutboxItem, Report, ReportVersion
from reports.rendering import build_finding
from scans.assignment import AssignmentError, assign_study
from scans.models import Series, Study

WORKLIST_PAGE_SIZE = 50


@ability_required("read_clinical")
def worklist(request):
    """The hospital's studies, those waiting for a doctor's review first; searchable, filterable, sortable."""
    filters = WorklistFilterForm(request.GET or None)
    page = EstimatedCountPaginator(worklist_studies(user=request.user, filters=filters), WORKLIST_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    context = {
        "page": page, "studies": worklist_rows(user=request.user, study_ids=list(page.object_list)),
        "filters": filters,
        "is_filtered": bool(request.GET),
        "processing_statuses": PROCESSING_STATUSES,
        "ohif_installed": ohif.is_installed(),
    }
    return render(request, "clinic/worklist.html", context)


@ability_required("read_clinical")
def study_detail(request, pk):
    """The doctor's page for one study: the viewer of one series, the AI findings, the report editor."""
    study = get_object_or_404(Study.objects.visible_to(request.user).select_related("patient"), pk=pk)
    record_event(action=AuditAction.VIEW, target=study, request=request)
    series_list = list(
        Series.objects.visible_to(request.user).acquired().filter(study=study)
        .annotate(instance_count=Count("instances")).order_by("series_number", "pk")
    )
    analyses = current_analyses_by_series(user=request.user, series_ids=[series.pk for series in series_list])
    shown = _series_to_show(series_list, request.GET.get("series", ""), analyses)
    history = measurement_history(user=request.user, patient_id=study.patient_id)
    findings = [
        build_finding(analyses[series.pk]) for series in series_list
        if series.pk in analyses and analyses[series.pk].status == AnalysisStatus.SUCCEEDED
    ]
    context = {
        "study": study,
        "series_list": series_list,
        "shown": shown,
        "viewer_state": viewer_state(request, shown) if shown else None,
        "findings": findings,
        "has_report": Report.objects.visible_to(request.user).filter(study=study).exists(),
        "outbox_items": OutboxItem.objects.visible_to(request.user).for_study(study),
        "priors": prior_studies(user=request.user, study=study),
        "doctors": User.objects.visible_to(request.user).filter(role=Role.DOCTOR, is_active=True, is_api_client=False)
        .order_by("full_name", "email"),
        "history": history,
        "history_plot": history_plot_points(history),
        "ohif_url": ohif.viewer_url_for(study),
    }
    return render(request, "clinic/study_detail.html", context)


@ability_required("read_clinical")
def study_compare(request, pk, prior_pk):
    """A study and one of the patient's earlier studies side by side, both opened at the lesion's level."""
    studies = Study.objects.visible_to(request.user).select_related("patient")
    study = get_object_or_404(studies, pk=pk)
    prior = get_object_or_404(studies.filter(patient_id=study.patient_id).exclude(pk=study.pk), pk=prior_pk)
    record_event(action=AuditAction.VIEW, target=study, request=request, detail={"compared_with": prior.pk})
    sides, location = [], None
    for label, shown_study in (("Current", study), ("Prior", prior)):
        series_list = list(Series.objects.visible_to(request.user).acquired().filter(study=shown_study)
                           .order_by("series_number", "pk"))
        analyses = current_analyses_by_series(user=request.user, series_ids=[series.pk for series in series_list])
        series = _series_to_show(series_list, "", analyses)
        state = viewer_state(request, series, open_at_location=location) if series else None
        if state is not None and location is None:
            location = start_location(state)
        sides.append({"label": label, "study": shown_study, "series": series, "viewer_state": state})
    history = measurement_history(user=request.user, patient_id=study.patient_id)
    context = {"study": study, "prior": prior, "sides": sides, "history": history,
               "history_plot": history_plot_points(history)}
    return render(request, "clinic/compare.html", context)


@ability_required("read_clinical")
@require_POST
def study_assign(request, pk):
    """Assign the study to a doctor of the hospital (``doctor``: an id, or empty for nobody); back to ``next``."""
    study = get_object_or_404(Study.objects.visible_to(request.user), pk=pk)
    doctor_id = request.POST.get("doctor", "")
    doctor = None
    if doctor_id:
        doctor = User.objects.visible_to(request.user).filter(pk=doctor_id).first() if doctor_id.isdigit() else None
        if doctor is None:
            messages.error(request, "Choose a doctor of this hospital.")
            return redirect("study-detail", pk=study.pk)
    try:
        assign_study(study=study, doctor=doctor, assigned_by=request.user, request=request)
    except AssignmentError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"Assigned to {doctor.get_full_name()}." if doctor else "No longer assigned.")
    return redirect(_safe_next(request) or reverse("study-detail", kwargs={"pk": study.pk}))


def _safe_next(request):
    """The ``next`` URL of a form, only if it stays on this site."""
    target = request.POST.get("next", "")
    return target if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}) else ""


def _series_to_show(series_list, requested, analyses):
    """The series asked for in the URL, else the first one with an analysis, else the first one."""
    by_id = {str(series.pk): series for series in series_list}
    if requested in by_id:
        return by_id[requested]
    analysed = [series for series in series_list if series.pk in analyses]
    return (analysed or series_list or [None])[0]


@ability_required("administer")
def hospital_dashboard(request):
    """The hospital admin's start page: people, patients, this month's studies and signed reports."""
    user = request.user
    month_start = timezone.localtime().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    signed_this_month = ReportVersion.objects.visible_to(user).signed().filter(signed_at__gte=month_start)
    counts = [
        ("Active users", User.objects.visible_to(user).people().filter(is_active=True).count()),
        ("Patients", Patient.objects.visible_to(user).count()),
        ("Studies this month", Study.objects.visible_to(user).filter(created_at__gte=month_start).count()),
        ("Reports signed this month", signed_this_month.values("report").distinct().count()),
    ]
    context = {"counts": counts, "month": month_start}
    return render(request, "clinic/hospital_dashboard.html", context)


@ability_required("administer")
def hospital_models(request):
    """Read-only: which models analyse which kind of series (``ml.catalogue``) and their champion versions.

    The models are the same for every hospital of the installation; the page says which run on this one's series.
    """
    try:
        entries, unavailable = active_models(), ""
    except RegistryUnavailable as error:
        entries, unavailable = [], str(error)
    return render(request, "clinic/hospital_models.html", {"entries": entries, "unavailable": unavailable})
