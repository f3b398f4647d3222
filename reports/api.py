from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.renderers import BaseRenderer, JSONRenderer

from portal.api import AuditedReadsMixin
from reports.models import Report, ReportVersion, readable_versions_of
from reports.serializers import ReportSerializer, ReportSummarySerializer
from reports.views import pdf_response


class PdfRenderer(BaseRenderer):
    """Lets a client ask for ``Accept: application/pdf``; the PDF itself is a file response, errors stay JSON."""

    media_type = "application/pdf"
    format = "pdf"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        response = (renderer_context or {}).get("response")
        if response is not None:
            response["Content-Type"] = "application/json"
        return JSONRenderer().render(data)


class ReportViewSet(AuditedReadsMixin, viewsets.ReadOnlyModelViewSet):
    """Reports of the caller's hospital (API keys read them as doctors); a patient sees their signed reports."""

    serializer_class = ReportSerializer
    queryset = Report.objects.none()
    filterset_fields = {"study": ["exact"], "study__patient": ["exact"], "study__study_date": ["gte", "lte"]}

    def get_serializer_class(self):
        return ReportSummarySerializer if self.action == "list" else ReportSerializer

    def get_queryset(self):
        return (
            Report.objects.all()
            .select_related("study__patient")
            .prefetch_related("series", readable_versions_of(self.request.user))
            .order_by("-study__study_date", "-created_at")
        )

    @extend_schema(responses={(200, "application/pdf"): OpenApiResponse(description="The PDF (or a redirect to it)")})
    @action(detail=True, methods=["get"], url_path="pdf", url_name="pdf", renderer_classes=[JSONRenderer, PdfRenderer])
    def pdf(self, request, pk=None):
        """The PDF of the latest version the caller may read: streamed, or a redirect to a short-lived URL (S3)."""
        report = self.get_object()
        version = ReportVersion.objects.visible_to(request.user).filter(report=report).order_by("-number").first()
        if version is None:
            raise Http404
        return pdf_response(request, version)
