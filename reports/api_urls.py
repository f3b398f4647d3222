from rest_framework.routers import SimpleRouter

from reports import api

router = SimpleRouter(trailing_slash="/?")
router.register("reports", api.ReportViewSet, basename="api-report")

urlpatterns = router.urls
