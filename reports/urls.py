from django.urls import path

from reports import views

urlpatterns = [
    path("my/reports/", views.patient_reports, name="patient-reports"),
    path("reports/<int:pk>/", views.report_detail, name="report-detail"),
    path("reports/<int:pk>/edit/", views.report_edit, name="report-edit"),
    path("reports/<int:pk>/sign/", views.report_sign, name="report-sign"),
    path("reports/<int:pk>/hold/", views.report_hold, name="report-hold"),
    path("reports/<int:pk>/amend/", views.report_amend, name="report-amend"),
    path("reports/<int:pk>/pdf/", views.report_pdf, name="report-pdf"),
    path("reports/versions/<int:pk>/pdf/", views.report_version_pdf, name="report-version-pdf"),
    path("reports/key-images/<int:pk>/", views.key_image, name="key-image"),
]
