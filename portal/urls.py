"""Root URLs. Each app contributes its pages and its part of the REST API; scans DICOMweb too.

``clinic`` contributes the pages that combine the stages (worklist, study page, viewer, dashboard).
"""

from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from portal import health, views

api_v1 = [
    path("", include("accounts.api_urls")),
    path("", include("scans.api_urls")),
    path("", include("ml.api_urls")),
    path("", include("reports.api_urls")),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("health/", health.health, name="health"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("", include("accounts.urls")),
    path("", include("scans.urls")),
    path("", include("ml.urls")),
    path("dicomweb/", include("scans.dicomweb.urls")),
    path("", include("reports.urls")),
    path("", include("clinic.urls")),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its script as a file (no inline script under the Content-Security-Policy).
    path(
        "api/docs/",
        login_required(SpectacularSwaggerSplitView.as_view(url_name="api-schema", template_name="api_docs.html")),
        name="api-docs",
    ),
]
