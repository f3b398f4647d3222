import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import api_view
from rest_framework.response import Response

from accounts.models import Patient
from accounts.serializers import CurrentUserSerializer, PatientSerializer
from portal.api import AuditedReadsMixin


class PatientFilter(django_filters.FilterSet):
    search = django_filters.CharFilter(method="filter_search", label="Name or MRN contains")

    class Meta:
        model = Patient
        fields = {"mrn": ["exact"], "birth_date": ["exact", "gte", "lte"]}

    def filter_search(self, queryset, name, value):
        return queryset.search(value)


class PatientViewSet(AuditedReadsMixin, viewsets.ReadOnlyModelViewSet):
    """Patients of the caller's hospital (a patient sees only their own record)."""

    serializer_class = PatientSerializer
    filterset_class = PatientFilter
    queryset = Patient.objects.none()

    def get_queryset(self):
        return Patient.objects.all()


@extend_schema(responses=CurrentUserSerializer)
@api_view(["GET"])
def current_user(request):
    """Who the credentials belong to: useful to check an API key."""
    return Response(CurrentUserSerializer(request.user).data)
