from django.contrib import admin

from portal.admin import ReadOnlyInline, ReadOnlyTenantAdmin
from reports.models import Report, ReportVersion


class ReportVersionInline(ReadOnlyInline):
    model = ReportVersion
    fields = ("number", "status", "signed_by_name", "signed_at", "amendment_note")
    show_change_link = True


@admin.register(Report)
class ReportAdmin(ReadOnlyTenantAdmin):
    """Reports are written and signed in the portal, never in the admin."""

    list_display = ("pk", "study", "created_at", "updated_at")
    list_filter = ("hospital",)
    search_fields = ("study__accession_number", "study__patient__mrn", "study__patient__full_name")
    inlines = [ReportVersionInline]


@admin.register(ReportVersion)
class ReportVersionAdmin(ReadOnlyTenantAdmin):
    list_display = ("report", "number", "status", "signed_by_name", "signed_at")
    list_filter = ("status", "hospital")
    search_fields = ("report__study__accession_number", "signed_by_name")
    #: Private files have no URL; the PDF is downloaded through the audited report-version-pdf view.
    exclude = ("pdf",)
