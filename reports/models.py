"""Reports: one per study, made of numbered versions that are never changed once signed.

A report starts as a draft version made from the analyses of the study's series.
A doctor of the hospital edits the draft and signs it: it becomes final. An
amendment is a new version, copied from the last signed one, that is signed the
same way (status "amended"); the earlier versions stay readable. Patients see
only signed versions (final or amended) of reports on their own record.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse

from ml.labels import CLASS_NAMES
from portal.tenancy import TenantOwnedModel, TenantQuerySet

#: Human labels for the classifier's classes (ml.labels.CLASS_NAMES, in the classifier's output order).
_LABELS = {
    "adenocarcinoma": "Adenocarcinoma",
    "large_cell_carcinoma": "Large cell carcinoma",
    "squamous_cell_carcinoma": "Squamous cell carcinoma",
    "normal": "No tumour found (normal)",
}
CLASS_LABELS = {name: _LABELS[name] for name in CLASS_NAMES}
FINDING_CHOICES = list(CLASS_LABELS.items())


def class_label(name):
    return CLASS_LABELS.get(name, name.replace("_", " ").capitalize() if name else "")


class VersionStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    FINAL = "final", "Final"
    AMENDED = "amended", "Amended"


SIGNED_STATUSES = (VersionStatus.FINAL, VersionStatus.AMENDED)


def report_pdf_path(version, filename):
    return f"hospitals/{version.hospital_id}/reports/{version.report_id}/{filename}"


class ReportQuerySet(TenantQuerySet):
    patient_user_lookup = "study__patient__user"

    def narrow_for_patient(self, rows, user):
        """A patient sees a report only once a version of it has been signed."""
        return rows.filter(versions__status__in=SIGNED_STATUSES).distinct()


class Report(TenantOwnedModel):
    tenant_parent = "study"
    """The report of one study; it covers the study's analysed series (one or several)."""

    hospital = models.ForeignKey("accounts.Hospital", on_delete=models.PROTECT, related_name="reports")
    study = models.OneToOneField("scans.Study", on_delete=models.PROTECT, related_name="report")
    series = models.ManyToManyField("scans.Series", related_name="reports", help_text="The analysed series it covers.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ReportQuerySet.as_manager()

    class Meta:
        ordering = ["-study__study_date", "-created_at"]

    def __str__(self):
        return f"Report {self.pk} for {self.study}"

    def get_absolute_url(self):
        return reverse("report-detail", kwargs={"pk": self.pk})

    @property
    def patient(self):
        return self.study.patient

    def latest_version(self):
        return self.versions.order_by("-number").first()

    def latest_signed_version(self):
        return self.versions.filter(status__in=SIGNED_STATUSES).order_by("-number").first()

    def open_draft(self):
        return self.versions.filter(status=VersionStatus.DRAFT).first()


class ReportVersionQuerySet(TenantQuerySet):
    patient_user_lookup = "report__study__patient__user"

    def narrow_for_patient(self, rows, user):
        return rows.filter(status__in=SIGNED_STATUSES)

    def signed(self):
        return self.filter(status__in=SIGNED_STATUSES)


class ReportVersion(TenantOwnedModel):
    tenant_parent = "report"
    """One version of a report. Drafts are edited in place; a signed version is never changed again."""

    hospital = models.ForeignKey("accounts.Hospital", on_delete=models.PROTECT, related_name="+")
    report = models.ForeignKey(Report, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=VersionStatus.choices, default=VersionStatus.DRAFT)
    analyses = models.ManyToManyField(
        "ml.Analysis", related_name="report_versions", help_text="The analyses this version is based on."
    )
    impression = models.TextField(blank=True)
    recommendation = models.TextField(blank=True)
    #: Blank when the doctor agrees with the AI finding; otherwise the class the doctor concluded.
    conclusion_class = models.CharField(max_length=40, blank=True, choices=FINDING_CHOICES)
    override_reason = models.TextField(blank=True)
    amendment_note = models.TextField(blank=True, help_text="Why this version amends the previous one.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="signed_report_versions"
    )
    signed_by_name = models.CharField(max_length=200, blank=True, help_text="The signer's name as it was signed.")
    signed_at = models.DateTimeField(null=True, blank=True)
    pdf = models.FileField(upload_to=report_pdf_path, max_length=400, blank=True)
    pdf_rendered_at = models.DateTimeField(null=True, blank=True)

    objects = ReportVersionQuerySet.as_manager()

    class Meta:
        ordering = ["report_id", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["report", "number"], name="unique_report_version_number"),
            models.UniqueConstraint(fields=["report"], condition=Q(status="draft"), name="one_open_draft_per_report"),
        ]

    def __str__(self):
        return f"Report {self.report_id} version {self.number} ({self.get_status_display()})"

    @property
    def is_signed(self):
        return self.status in SIGNED_STATUSES

    @property
    def is_amendment(self):
        return self.number > 1

    @property
    def conclusion_label(self):
        return class_label(self.conclusion_class)

    def ordered_analyses(self):
        return self.analyses.select_related("series").order_by("series__series_number", "series__pk")

    def key_images(self):
        from ml.models import KeyImage

        return KeyImage.objects.filter(analysis__in=self.analyses.all()).order_by(
            "analysis__series__series_number", "slice_index", "reason"
        )


def key_images_visible_to(user):
    """Key images a user may open: staff see their hospital's; a patient those of their signed reports."""
    from ml.models import KeyImage

    if user.is_authenticated and user.is_patient:
        versions = ReportVersion.objects.visible_to(user)
        return KeyImage.objects.filter(analysis__report_versions__in=versions).distinct()
    return KeyImage.objects.visible_to(user)
