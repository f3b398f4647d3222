"""REST API of the pipeline: reanalyse a series (progress fields are part of the series resource)."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import permissions, serializers, status
from rest_framework.decorators import api_view, permission_classes
from rest_framework.response import Response

from ml import services
from scans.models import Series


class IsDoctor(permissions.BasePermission):
    """Reanalysis is a clinical decision: doctors and API keys (which act as doctors)."""

    message = "Only doctors and API keys may request a reanalysis."

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated and request.user.is_doctor)


@extend_schema(
    request=None,
    responses={202: inline_serializer("ReanalyseAccepted", {
        "analysis_id": serializers.IntegerField(), "generation": serializers.IntegerField(),
        "series": serializers.DictField(),
    })},
    summary="Analyse a series again with the current champion models; earlier analyses are kept, superseded.",
)
@api_view(["POST"])
@permission_classes([IsDoctor])
def reanalyse_series(request, pk):
    series = get_object_or_404(Series.objects.visible_to(request.user), pk=pk)
    analysis = services.reanalyse_series(series=series, user=request.user, request=request)
    series.refresh_from_db()
    return Response(
        {"analysis_id": analysis.pk, "generation": analysis.generation,
         "series": services.series_progress(series, analysis)},
        status=status.HTTP_202_ACCEPTED,
    )
