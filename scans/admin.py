"""Scans in the admin: read-only (they come from DICOM files), each hospital admin seeing their own hospital's."""

from django.contrib import admin

from portal.admin import ReadOnlyInline, ReadOnlyTenantAdmin
from scans.models import Instance, Series, Study, UploadBatch, UploadedFile


class SeriesInline(admin.TabularInline):
    model = Series
    fields = ("series_number", "modality", "description", "status", "slices_total", "completed_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        """The parent admin (through visible_to) already decided that this row may be seen."""
        return True


@admin.register(Study)
class StudyAdmin(ReadOnlyTenantAdmin):
    list_display = ("study_date", "patient", "accession_number", "description", "hospital")
    list_filter = ("study_date", "hospital")
    search_fields = ("accession_number", "study_instance_uid", "patient__mrn", "patient__full_name")
    date_hierarchy = "study_date"
    list_select_related = ("patient", "hospital")
    inlines = [SeriesInline]


@admin.register(Series)
class SeriesAdmin(ReadOnlyTenantAdmin):
    list_display = ("__str__", "study", "modality", "status", "has_physical_scale", "slices_total", "completed_at")
    list_filter = ("status", "modality", "has_physical_scale", "hospital")
    search_fields = ("series_instance_uid", "description", "study__study_instance_uid", "study__patient__mrn")
    list_select_related = ("study",)


@admin.register(Instance)
class InstanceAdmin(ReadOnlyTenantAdmin):
    list_display = ("sop_instance_uid", "series", "instance_number", "slice_location", "file_format", "file_size")
    list_filter = ("file_format", "hospital")
    search_fields = ("sop_instance_uid", "series__series_instance_uid", "sha256")
    list_select_related = ("series",)


class UploadedFileInline(ReadOnlyInline):
    model = UploadedFile
    fields = ("name", "size", "outcome", "reason", "failure_reason")


@admin.register(UploadBatch)
class UploadBatchAdmin(ReadOnlyTenantAdmin):
    list_display = ("created_at", "source", "uploaded_by", "patient", "closed_at", "hospital")
    list_filter = ("source", "hospital")
    search_fields = ("uploaded_by__email", "patient__mrn")
    date_hierarchy = "created_at"
    list_select_related = ("uploaded_by", "patient", "hospital")
    inlines = [UploadedFileInline]
