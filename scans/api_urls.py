from rest_framework.routers import SimpleRouter

from scans import api

router = SimpleRouter(trailing_slash="/?")
router.register("studies", api.StudyViewSet, basename="api-study")
router.register("series", api.SeriesViewSet, basename="api-series")
router.register("instances", api.InstanceViewSet, basename="api-instance")
router.register("uploads", api.UploadViewSet, basename="api-upload")

urlpatterns = router.urls
