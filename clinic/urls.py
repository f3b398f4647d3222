from django.urls import path, re_path

from clinic import ohif, viewer, views

urlpatterns = [
    path("hospital/", views.hospital_dashboard, name="hospital-dashboard"),
    path("hospital/models/", views.hospital_models, name="hospital-models"),
    path("worklist/", views.worklist, name="worklist"),
    path("studies/<int:pk>/", views.study_detail, name="study-detail"),
    path("studies/<int:pk>/compare/<int:prior_pk>/", views.study_compare, name="study-compare"),
    path("studies/<int:pk>/assign/", views.study_assign, name="study-assign"),
    path("series/<int:pk>/viewer/", viewer.series_viewer, name="series-viewer"),
    path("series/<int:pk>/viewer.json", viewer.series_viewer_state, name="series-viewer-state"),
    path("series/<int:pk>/slices/<int:index>.png", viewer.series_slice_image, name="series-slice-image"),
    path("series/<int:pk>/slices/<int:index>/mask.png", viewer.series_slice_mask, name="series-slice-mask"),
    path("series/<int:pk>/slices/<int:index>/value.json", viewer.series_slice_value, name="series-slice-value"),
    path("viewer/ohif/app-config.js", ohif.app_config, name="ohif-config"),
    path("viewer/ohif/viewer", ohif.viewer_page, name="ohif-viewer"),
    re_path(r"^viewer/ohif/(?P<route>.*)$", ohif.viewer_page, name="ohif-page"),
]
