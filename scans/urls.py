from django.urls import path

from scans import views

urlpatterns = [
    path("upload/", views.upload, name="upload"),
    path("upload/batches/", views.upload_batch_create, name="upload-batch-create"),
    path("upload/batches/<int:pk>/", views.upload_batch_detail, name="upload-batch-detail"),
    path("upload/batches/<int:pk>/files/", views.upload_batch_files, name="upload-batch-files"),
    path("upload/batches/<int:pk>/close/", views.upload_batch_close, name="upload-batch-close"),
    path("patient-checks/", views.patient_checks, name="patient-checks"),
    path("patient-checks/<int:pk>/", views.patient_check_detail, name="patient-check-detail"),
]
