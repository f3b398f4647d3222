from django.urls import path

from scans import viewer, views

urlpatterns = [
    path("worklist/", views.worklist, name="worklist"),
    path("series/<int:pk>/viewer/", viewer.series_viewer, name="series-viewer"),
    path("series/<int:pk>/viewer.json", viewer.series_viewer_state, name="series-viewer-state"),
    path("series/<int:pk>/slices/<int:index>.png", viewer.series_slice_image, name="series-slice-image"),
    path("series/<int:pk>/slices/<int:index>/mask.png", viewer.series_slice_mask, name="series-slice-mask"),
]
