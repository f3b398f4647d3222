"""Shared REST API plumbing: JSON errors for every failure, including the ones users cause."""

from rest_framework.views import exception_handler as drf_exception_handler

from portal.audit import query_summary, record_event
from portal.errors import UserFacingError
from portal.models import AuditAction


def exception_handler(exc, context):
    if isinstance(exc, UserFacingError):
        from rest_framework.response import Response

        return Response({"detail": str(exc)}, status=exc.status_code)
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, list):
        response.data = {"detail": response.data}
    return response


class AuditedReadsMixin:
    """Records one audit event for every successful list or retrieve of a view set that holds patient data.

    ``retrieve`` records a view of the object; ``list`` records a search with the query and the ids on
    the page. Added to every view set of tenant data (a test checks that none is left out), so no view
    writes its own read events.
    """

    audited_actions = ("list", "retrieve")

    def get_object(self):
        found = super().get_object()
        self._audited_object = found
        return found

    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        self._audited_page = page
        return page

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if request.method == "GET" and response.status_code == 200 and self.action in self.audited_actions:
            self._record_read(request)
        return response

    def _record_read(self, request):
        if self.action == "retrieve" and getattr(self, "_audited_object", None) is not None:
            record_event(action=AuditAction.VIEW, target=self._audited_object, request=request, detail={"via": "api"})
            return
        page = getattr(self, "_audited_page", None)
        record_event(
            action=AuditAction.SEARCH,
            target_type=self.get_queryset().model._meta.label,
            request=request,
            detail={
                "via": "api",
                "query": query_summary(request.query_params),
                "ids": [row.pk for row in page] if page is not None else [],
            },
        )
