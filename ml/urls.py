from django.urls import path

from ml import views

urlpatterns = [
    path("series/<int:pk>/progress.json", views.series_progress, name="series-progress"),
    path("studies/<int:pk>/progress.json", views.study_progress, name="study-progress"),
    path("series/<int:pk>/reanalyse/", views.series_reanalyse, name="series-reanalyse"),
]
