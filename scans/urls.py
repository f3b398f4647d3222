from django.urls import path

from scans import views

urlpatterns = [
    path("worklist/", views.worklist, name="worklist"),
]
