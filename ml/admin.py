"""Analyses in the admin: machine-written results, read-only, scoped by tenancy like every other page."""

from django.contrib import admin

from ml.models import Analysis, KeyImage
from portal.admin import ReadOnlyInline, ReadOnlyTenantAdmin


class KeyImageInline(ReadOnlyInline):
    model = KeyImage
    fields = ("slice_index", "reason", "slice_location", "lesion_area")

    def get_queryset(self, request):
        return super().get_queryset(request).visible_to(request.user)


@admin.register(Analysis)
class AnalysisAdmin(ReadOnlyTenantAdmin):
    list_display = (
        "id", "series", "generation", "status", "predicted_class", "classifier_version", "segmenter_version",
        "is_demo_model", "attempts", "queued_at", "finished_at", "superseded_at",
    )
    list_filter = ("status", "is_demo_model", "hospital")
    search_fields = ("series__series_instance_uid", "series__study__study_instance_uid")
    date_hierarchy = "queued_at"
    list_select_related = ("series",)
    inlines = [KeyImageInline]


@admin.register(KeyImage)
class KeyImageAdmin(ReadOnlyTenantAdmin):
    list_display = ("id", "analysis", "slice_index", "reason", "lesion_area")
    list_filter = ("reason",)
    list_select_related = ("analysis", "analysis__series")
