from django.urls import path

from scans import viewer, views

urlpatterns = [
    path("worklist/", views.worklist, name="worklist"),
    path("studies/<int:pk>/", views.study_detail, name="study-detail"),
    path("upload/", views.upload, name="upload"),
    path("upload/batches/", views.upload_batch_create, name="upload-batch-create"),
    path("upload/batches/<int:pk>/", views.upload_batch_detail, name="upload-batch-detail"),
    path("upload/batches/<int:pk>/files/", views.upload_batch_files, name="upload-batch-files"),
    path("upload/batches/<int:pk>/close/", views.upload_batch_close, name="upload-batch-close"),
    path("series/<int:pk>/viewer/", viewer.series_viewer, name="series-viewer"),
    path("series/<int:pk>/viewer.json", viewer.series_viewer_state, name="series-viewer-state"),
    path("series/<int:pk>/slices/<int:index>.png", viewer.series_slice_image, name="series-slice-image"),
    path("series/<int:pk>/slices/<int:index>/mask.png", viewer.series_slice_mask, name="series-slice-mask"),
]
