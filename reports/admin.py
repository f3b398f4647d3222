from django import forms
from django.contrib import admin

from portal.admin import ReadOnlyInline, ReadOnlyTenantAdmin, TenantAdmin, acts_for_hospital
from reports.models import (
    DicomDestination,
    DicomResultObject,
    MeasurementCorrection,
    OutboxItem,
    Report,
    ReportVersion,
)
from reports.outbox import masked_headers, parse_header, send_again


class ReportVersionInline(ReadOnlyInline):
    model = ReportVersion
    fields = ("number", "status", "signed_by_name", "signed_at", "amendment_note")
    show_change_link = True


@admin.register(Report)
class ReportAdmin(ReadOnlyTenantAdmin):
    """Reports are written and signed in the portal, never in the admin."""

    list_display = ("pk", "study", "held_from_patient", "created_at", "updated_at")
    list_filter = ("hospital",)
    search_fields = ("study__accession_number", "study__patient__mrn", "study__patient__full_name")
    inlines = [ReportVersionInline]


class MeasurementCorrectionInline(ReadOnlyInline):
    model = MeasurementCorrection
    fields = ("analysis", "largest_diameter", "volume_ml", "key_slice_number", "reason", "corrected_by")


@admin.register(ReportVersion)
class ReportVersionAdmin(ReadOnlyTenantAdmin):
    inlines = [MeasurementCorrectionInline]
    list_display = ("report", "number", "status", "signed_by_name", "signed_at")
    list_filter = ("status", "hospital")
    search_fields = ("report__study__accession_number", "signed_by_name")
    #: Private files have no URL; the PDF is downloaded through the audited report-version-pdf view.
    exclude = ("pdf",)


class DicomDestinationForm(forms.ModelForm):
    """The extra headers are write-only: typed as 'Name: value' lines, shown back masked, kept when left blank."""

    url = forms.URLField(label="DICOMweb base URL", required=False, assume_scheme="https",
                         help_text="The service root; instances are POSTed to <url>/studies.")
    new_headers = forms.CharField(
        label="Extra HTTP headers", required=False, widget=forms.Textarea(attrs={"rows": 2}),
        help_text="One 'Name: value' per line, e.g. 'Authorization: Bearer …'. Leave blank to keep the "
                  "current headers; write '-' to remove them.",
    )

    class Meta:
        model = DicomDestination
        fields = ("hospital", "name", "kind", "url", "ae_title", "host", "port", "calling_ae_title",
                  "sends_ai_results", "sends_signed_reports", "enabled")

    def clean_new_headers(self):
        text = self.cleaned_data["new_headers"].strip()
        if not text or text == "-":
            return text
        try:
            return dict(parse_header(line) for line in text.splitlines() if line.strip())
        except ValueError as error:
            raise forms.ValidationError(str(error)) from None

    def save(self, commit=True):
        new_headers = self.cleaned_data.get("new_headers")
        if new_headers == "-":
            self.instance.headers = {}
        elif new_headers:
            self.instance.headers = new_headers
        return super().save(commit=commit)


@admin.register(DicomDestination)
class DicomDestinationAdmin(TenantAdmin):
    form = DicomDestinationForm
    list_display = ("name", "kind", "address", "sends_ai_results", "sends_signed_reports", "enabled", "hospital")
    list_filter = ("kind", "enabled", "hospital")
    readonly_fields = ("current_headers",)

    @admin.display(description="Current extra headers")
    def current_headers(self, destination):
        return masked_headers(destination) or "none"


@admin.register(DicomResultObject)
class DicomResultObjectAdmin(ReadOnlyTenantAdmin):
    list_display = ("sop_instance_uid", "kind", "analysis", "report_version", "created_at", "superseded_at")
    list_filter = ("kind", "hospital")
    search_fields = ("sop_instance_uid",)


@admin.register(OutboxItem)
class OutboxItemAdmin(ReadOnlyTenantAdmin):
    """What was sent where; hospital admins may send failed items again (after fixing the destination)."""

    list_display = ("result_object", "destination", "state", "attempts", "last_error", "next_attempt_at", "sent_at")
    list_filter = ("state", "destination", "hospital")
    search_fields = ("sop_instance_uid", "destination__name")
    actions = ["send_again_now"]

    def get_list_filter(self, request):
        """The destination filter offers only destinations the admin may see."""
        return [
            ("destination", DestinationFilter) if field == "destination" else field
            for field in super().get_list_filter(request)
        ]

    def has_send_again_permission(self, request):
        return request.user.is_superuser or acts_for_hospital(request)

    @admin.action(description="Send again now", permissions=["send_again"])
    def send_again_now(self, request, queryset):
        count = send_again(items=queryset)
        self.message_user(request, f"{count} item(s) queued to be sent again.")


class DestinationFilter(admin.RelatedFieldListFilter):
    def field_choices(self, field, request, model_admin):
        return [(destination.pk, str(destination))
                for destination in DicomDestination.objects.visible_to(request.user)]
