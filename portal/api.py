"""Shared REST API plumbing: JSON errors for every failure, including the ones users cause; audited reads;
filters and pages that no parameter can turn into a server error or an existence oracle."""

import django_filters
from django.conf import settings
from django.core.exceptions import ValidationError
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.views import exception_handler as drf_exception_handler

from portal.audit import record_event, record_search
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
        page = getattr(self, "_audited_page", None) or []
        record_search(
            request=request, target_type=self.get_queryset().model._meta.label, ids=[row.pk for row in page], via="api"
        )


#: The range of the database's integer columns (64-bit primary keys): larger numbers match nothing.
DATABASE_INTEGER_RANGE = (-(2**63), 2**63 - 1)


class VisibleModelChoiceField(django_filters.fields.ModelChoiceField):
    """A primary-key choice that refuses numbers the database cannot hold like any other unknown choice."""

    def to_python(self, value):
        if value not in self.empty_values:
            try:
                number = int(str(value))
            except ValueError:
                number = None
            if number is not None and not DATABASE_INTEGER_RANGE[0] <= number <= DATABASE_INTEGER_RANGE[1]:
                raise ValidationError(self.error_messages["invalid_choice"], code="invalid_choice")
        return super().to_python(value)


class TenantFilterBackend(DjangoFilterBackend):
    """django-filter for every API view, with two guarantees whatever the view's filter set says.

    - Choices of related rows come from ``visible_to``: another hospital's id is refused exactly
      like an id that does not exist, so a filter cannot tell whether a foreign row exists.
    - Numbers are bounded to the database's integer range: an answer of 400 with a message, never a 500.
    """

    def get_filterset(self, request, queryset, view):
        filterset = super().get_filterset(request, queryset, view)
        if filterset is not None:
            restrict_filters(filterset, request)
        return filterset


def restrict_filters(filterset, request):
    for declared in filterset.filters.values():
        if isinstance(declared, django_filters.ModelChoiceFilter):
            choices = declared.get_queryset(request)
            if hasattr(choices, "visible_to"):
                declared.queryset = choices.visible_to(request.user)
            declared.field_class = VisibleModelChoiceField
        elif isinstance(declared, django_filters.NumberFilter):
            declared.extra.setdefault("min_value", DATABASE_INTEGER_RANGE[0])
            declared.extra.setdefault("max_value", DATABASE_INTEGER_RANGE[1])


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    """``limit`` capped at ``RADASSIST_API_MAX_PAGE_SIZE``; an ``offset`` past the end is an empty page."""

    @property
    def max_limit(self):
        return settings.RADASSIST_API_MAX_PAGE_SIZE

    def get_offset(self, request):
        return min(super().get_offset(request), self.count)
