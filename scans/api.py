"""REST API for scans: upload instances, list and retrieve studies, series and instances (all through visible_to)."""

import django_filters
from django.conf import settings
from django.db.models import Prefetch
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from accounts.permissions import IsClinicalStaff
from portal.api import AuditedReadsMixin
from portal.storage import private_file_response
from scans.ingest import close_batch, ingest_files, open_batch
from scans.models import FileOutcome, Instance, Series, SeriesStatus, Study, UploadBatch
from scans.serializers import (
    InstanceSerializer,
    SeriesSerializer,
    StudyDetailSerializer,
    StudySerializer,
    UploadBatchSerializer,
    UploadRequestSerializer,
    UploadResponseSerializer,
)


class StudyFilter(django_filters.FilterSet):
    patient = django_filters.NumberFilter(field_name="patient_id")
    patient_mrn = django_filters.CharFilter(field_name="patient__mrn")
    date_from = django_filters.DateFilter(field_name="study_date", lookup_expr="gte")
    date_to = django_filters.DateFilter(field_name="study_date", lookup_expr="lte")
    modality = django_filters.CharFilter(method="filter_modality", label="Has a series of this modality")
    status = django_filters.ChoiceFilter(
        choices=SeriesStatus.choices, method="filter_status", label="Has a series in this status"
    )

    class Meta:
        model = Study
        fields = ("patient", "patient_mrn", "accession_number", "study_instance_uid")

    def filter_modality(self, queryset, name, value):
        return queryset.filter(pk__in=Series.objects.filter(modality__iexact=value).values("study"))

    def filter_status(self, queryset, name, value):
        return queryset.filter(pk__in=Series.objects.filter(status=value).values("study"))


class SeriesFilter(django_filters.FilterSet):
    patient = django_filters.NumberFilter(field_name="study__patient_id")
    date_from = django_filters.DateFilter(field_name="study__study_date", lookup_expr="gte")
    date_to = django_filters.DateFilter(field_name="study__study_date", lookup_expr="lte")
    modality = django_filters.CharFilter(field_name="modality", lookup_expr="iexact")
    status = django_filters.ChoiceFilter(choices=SeriesStatus.choices)

    class Meta:
        model = Series
        fields = ("study", "patient", "modality", "status", "series_instance_uid")


class InstanceFilter(django_filters.FilterSet):
    study = django_filters.NumberFilter(field_name="series__study_id")

    class Meta:
        model = Instance
        fields = ("series", "study", "sop_instance_uid")


class StudyViewSet(AuditedReadsMixin, viewsets.ReadOnlyModelViewSet):
    """Studies of the caller's hospital, newest first, with their series' modalities and sizes."""

    permission_classes = [IsClinicalStaff]
    filterset_class = StudyFilter
    queryset = Study.objects.none()

    def get_queryset(self):
        return (
            Study.objects.all()
            .select_related("patient")
            .with_counts()
            .prefetch_related(
                Prefetch("series", queryset=Series.objects.with_instance_count().order_by("series_number", "pk"))
            )
            .order_by("-study_date", "-created_at", "-pk")
        )

    def get_serializer_class(self):
        return StudyDetailSerializer if self.action == "retrieve" else StudySerializer


class SeriesViewSet(AuditedReadsMixin, viewsets.ReadOnlyModelViewSet):
    """Series with their processing status (received, queued, analysing with slices done of total...);
    the most recently stored study's series first."""

    permission_classes = [IsClinicalStaff]
    serializer_class = SeriesSerializer
    filterset_class = SeriesFilter
    queryset = Series.objects.none()

    def get_queryset(self):
        return (
            Series.objects.all()
            .select_related("study")
            .with_instance_count()
            .order_by("-study_id", "series_number", "pk")
        )


class InstanceCursorPagination(CursorPagination):
    """Instances page by a cursor (the next page starts after the last series shown), so the millionth
    instance costs what the first does; ``next`` and ``previous`` carry the cursor."""

    page_size = 50
    page_size_query_param = "limit"
    ordering = ("series_id", "slice_location", "instance_number", "pk")

    @property
    def max_page_size(self):
        """Capped like every REST list (``RADASSIST_API_MAX_PAGE_SIZE``)."""
        return settings.RADASSIST_API_MAX_PAGE_SIZE


class InstanceViewSet(AuditedReadsMixin, viewsets.ReadOnlyModelViewSet):
    """Stored instances, series by series, each series in slice order (position along the slice normal)."""

    permission_classes = [IsClinicalStaff]
    serializer_class = InstanceSerializer
    filterset_class = InstanceFilter
    pagination_class = InstanceCursorPagination
    queryset = Instance.objects.none()

    def get_queryset(self):
        return Instance.objects.all()

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"], url_path="file")
    def file(self, request, pk=None):
        """The stored file (DICOM, or the grey PNG of an image upload); the download is audited."""
        instance = self.get_object()
        return private_file_response(request=request, file_field=instance.file, target=instance)


class UploadViewSet(AuditedReadsMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Upload batches: POST files to ingest them; GET to see the outcome of every file of earlier uploads."""

    permission_classes = [IsAuthenticated]
    serializer_class = UploadBatchSerializer
    parser_classes = [MultiPartParser, FormParser]
    queryset = UploadBatch.objects.none()

    def get_queryset(self):
        return UploadBatch.objects.all().select_related("uploaded_by").prefetch_related(
            "files__instance"
        )

    @extend_schema(
        request={"multipart/form-data": UploadRequestSerializer},
        responses={
            201: OpenApiResponse(UploadResponseSerializer, description="Every file stored (or already stored)."),
            200: OpenApiResponse(UploadResponseSerializer, description="Some files stored, some rejected."),
            400: OpenApiResponse(UploadResponseSerializer, description="Every file rejected, or no file sent."),
        },
    )
    def create(self, request):
        """Ingest DICOM files, PNG/JPEG images or zip archives as one batch; one result per file (per zip entry)."""
        if request.user.hospital_id is None:
            return Response({"detail": "Uploads belong to a hospital; this account has none."}, status=400)
        request_serializer = UploadRequestSerializer(data=request.data, context={"request": request})
        request_serializer.is_valid(raise_exception=True)
        batch = open_batch(
            hospital=request.user.hospital,
            uploaded_by=request.user,
            source=UploadBatch.Source.API,
            patient=request_serializer.validated_data.get("patient"),
        )
        files = [(uploaded.name, uploaded) for uploaded in request.FILES.getlist("files")]
        results = [result for file_results in ingest_files(batch=batch, files=files) for result in file_results]
        close_batch(batch=batch)
        counts = {outcome: sum(1 for r in results if r.outcome == outcome) for outcome in FileOutcome.values}
        body = {
            "batch": batch.pk,
            **counts,
            "results": [
                {
                    "name": result.uploaded_file.name,
                    "outcome": str(result.outcome),
                    "reason": result.reason,
                    "failure_reason": result.failure_reason,
                    "instance": result.instance.pk if result.instance else None,
                    "series": result.instance.series_id if result.instance else None,
                    "study": result.instance.series.study_id if result.instance else None,
                }
                for result in results
            ],
        }
        if counts[FileOutcome.REJECTED] == 0:
            code = status.HTTP_201_CREATED
        elif counts[FileOutcome.REJECTED] == len(results):
            code = status.HTTP_400_BAD_REQUEST
        else:
            code = status.HTTP_200_OK
        return Response(UploadResponseSerializer(body).data, status=code)
