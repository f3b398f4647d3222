"""Doctor-facing pipeline views: live progress JSON and the Reanalyse action."""

from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from accounts.permissions import ability_required
from ml import services
from portal.errors import UserFacingError
from scans.models import Series, Study


def _progress_response(request, series_list):
    analyses = services.current_analyses_by_series(user=request.user, series_ids=[s.pk for s in series_list])
    return [services.series_progress(series, analyses.get(series.pk)) for series in series_list]


@require_GET
@ability_required("read_clinical")
def series_progress(request, pk):
    series = get_object_or_404(Series.objects.visible_to(request.user), pk=pk)
    response = JsonResponse(_progress_response(request, [series])[0])
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
@ability_required("read_clinical")
def study_progress(request, pk):
    study = get_object_or_404(Study.objects.visible_to(request.user), pk=pk)
    series_list = list(Series.objects.visible_to(request.user).filter(study=study))
    response = JsonResponse({"study": study.pk, "series": _progress_response(request, series_list)})
    response["Cache-Control"] = "private, no-store"
    return response


@require_POST
@ability_required("reanalyse")
def series_reanalyse(request, pk):
    series = get_object_or_404(Series.objects.visible_to(request.user).select_related("study"), pk=pk)
    try:
        analysis = services.reanalyse_series(series=series, user=request.user, request=request)
    except UserFacingError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"Series queued for analysis again (analysis {analysis.generation}).")
    next_url = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()},
                                       require_https=request.is_secure()):
        return redirect(next_url)
    return redirect(series.study.get_absolute_url())
