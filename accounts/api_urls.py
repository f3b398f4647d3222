from django.urls import path
from rest_framework.routers import SimpleRouter

from accounts import api

router = SimpleRouter(trailing_slash="/?")
router.register("patients", api.PatientViewSet, basename="patient")

urlpatterns = [path("me/", api.current_user, name="api-current-user"), *router.urls]
