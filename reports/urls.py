from django.urls import path

from reports import views

urlpatterns = [
    path("my/reports/", views.patient_reports, name="patient-reports"),
]
