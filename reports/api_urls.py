"""``/api/v1/reports/``, ``/api/v1/reports/{id}/`` and ``/api/v1/reports/{id}/pdf``, each with or without the slash."""

from django.urls import re_path

from reports.api import ReportViewSet

urlpatterns = [
    re_path(r"^reports/?$", ReportViewSet.as_view({"get": "list"}), name="api-report-list"),
    re_path(r"^reports/(?P<pk>\d+)/?$", ReportViewSet.as_view({"get": "retrieve"}), name="api-report-detail"),
    re_path(
        r"^reports/(?P<pk>\d+)/pdf/?$",
        ReportViewSet.as_view({"get": "pdf"}, **ReportViewSet.pdf.kwargs),
        name="api-report-pdf",
    ),
]
