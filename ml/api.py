"""REST API of the pipeline: reanalyse a series (progress fields are part of the series resource)."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import api_view, permission_classes
from rest_framework.response import Response

from accounts.permissions import MayReanalyse
from ml import services
from scans.models import Series


@extend_schema(
    request=None,
    responses={202: inline_serializer("ReanalyseAccepted", {
        "analysis_id": serializers.IntegerField(), "generation": serializers.IntegerField(),
        "series": serializers.DictField(),
    })},
    summary="Analyse a series again with the current champion models; earlier analyses are kept, superseded.",
)
@api_view(["POST"])
@permission_classes([MayReanalyse])
def reanalyse_series(request, pk):
    series = get_object_or_404(Series.objects.visible_to(request.user), pk=pk)
    analysis = services.reanalyse_series(series=series, user=request.user, request=request)
    series.refresh_from_db()
    return Response(
        {"analysis_id": analysis.pk, "generation": analysis.generation,
         "series": services.series_progress(series, analysis)},
        status=status.HTTP_202_ACCEPTED,
    )
