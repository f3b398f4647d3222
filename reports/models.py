"""Reports: one per study, made of numbered versions that are never changed once signed.

A report starts as a draft version made from the analyses of the study's series.
A doctor of the hospital edits the draft and signs it: it becomes final. An
amendment is a new version, copied from the last signed one, that is signed the
same way (status "amended"); the earlier versions stay readable. Patients see
only signed versions (final or amended) of reports on their own record, and none
of a report held back from them.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.urls import reverse

from ml.labels import CLASS_NAMES
from portal.tenancy import TenantOwnedModel, TenantQuerySet
from reports.sealed_headers import seal, unseal

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


#: The sections of a structured report, in the order they are printed.
REPORT_SECTIONS = ("clinical_indication", "technique", "comparison", "findings", "impression", "recommendation")


class Conclusion(models.TextChoices):
    """The doctor's verdict on the AI finding. It starts unchosen: an untouched draft says nothing."""

    NOT_CHOSEN = "", "Not chosen yet"
    AGREES = "agrees", "Agrees with the AI finding"
    DIFFERS = "differs", "Differs from the AI finding"


def report_pdf_path(version, filename):
    return f"hospitals/{version.hospital_id}/reports/{version.report_id}/{filename}"


class ReportQuerySet(TenantQuerySet):
    patient_user_lookup = "study__patient__user"

    def narrow_for_patient(self, rows, user):
        """A patient sees a report once a version of it has been signed, its study's patient is confirmed,
        and it is not held back from them."""
        return rows.filter(
            held_from_patient=False, versions__status__in=SIGNED_STATUSES, study__patient_check=""
        ).distinct()


class Report(TenantOwnedModel):
    tenant_parent = "study"
    """The report of one study; it covers the study's analysed series (one or several)."""

    hospital = models.ForeignKey("accounts.Hospital", on_delete=models.PROTECT, related_name="reports")
    study = models.OneToOneField("scans.Study", on_delete=models.PROTECT, related_name="report")
    series = models.ManyToManyField("scans.Series", related_name="reports", help_text="The analysed series it covers.")
    held_from_patient = models.BooleanField(
        default=False,
        help_text="Held back: the patient sees none of its versions until a doctor releases it. "
        "New reports start as the hospital's default says.",
    )
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
        return rows.filter(
            status__in=SIGNED_STATUSES, report__held_from_patient=False, report__study__patient_check=""
        )

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
    #: The structured report, section by section, in the order it is printed.
    clinical_indication = models.TextField(blank=True)
    technique = models.TextField(blank=True, help_text="Pre-filled from the DICOM headers of the series.")
    comparison = models.TextField(blank=True)
    findings = models.TextField(blank=True, help_text="Pre-filled from the AI measurements.")
    impression = models.TextField(blank=True)
    recommendation = models.TextField(blank=True)
    conclusion = models.CharField(max_length=16, blank=True, choices=Conclusion.choices)
    #: The class the doctor concluded when it differs from the AI finding; blank otherwise.
    conclusion_class = models.CharField(max_length=40, blank=True, choices=FINDING_CHOICES)
    override_reason = models.TextField(blank=True)
    amendment_note = models.TextField(blank=True, help_text="Why this version amends the previous one.")
    revision = models.PositiveIntegerField(
        default=1, help_text="Goes up with every change of a draft; the editor sends it back to prove it is current."
    )
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

    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        refresh_review_states(study_ids=[self._study_id()])

    def delete(self, *args, **kwargs):
        study_id = self._study_id()
        result = super().delete(*args, **kwargs)
        refresh_review_states(study_ids=[study_id])
        return result

    def _study_id(self):
        report_field = self._meta.get_field("report")
        if report_field.is_cached(self):
            return self.report.study_id
        return Report.objects.filter(pk=self.report_id).values_list("study_id", flat=True).first()

    @property
    def is_signed(self):
        return self.status in SIGNED_STATUSES

    @property
    def is_amendment(self):
        return self.number > 1

    @property
    def conclusion_label(self):
        return class_label(self.conclusion_class)

    @property
    def agrees_with_ai(self):
        return self.conclusion == Conclusion.AGREES

    @property
    def differs_from_ai(self):
        return self.conclusion == Conclusion.DIFFERS

    def ordered_analyses(self):
        return self.analyses.select_related("series").order_by("series__series_number", "series__pk")

    def key_images(self):
        from ml.models import KeyImage

        return KeyImage.objects.filter(analysis__in=self.analyses.all()).order_by(
            "analysis__series__series_number", "slice_index", "reason"
        )


def readable_versions_of(user):
    """Prefetch each report's versions ``user`` may read, newest first, as ``report.readable_versions``
    (one query for a whole list of reports)."""
    return models.Prefetch(
        "versions", queryset=ReportVersion.objects.visible_to(user).order_by("-number"), to_attr="readable_versions"
    )


def refresh_review_states(*, study_ids=None):
    """Store on each study whether a draft waits for review and where its latest version stands.

    The worklist sorts and filters on these two columns (an index serves them); every save and delete of a
    report version calls this for its study, in the same transaction. ``study_ids=None`` refreshes every
    study (after a bulk load).
    """
    from scans.models import Study

    versions = ReportVersion.objects.filter(report__study=models.OuterRef("pk"))
    studies = Study.objects.all() if study_ids is None else Study.objects.filter(pk__in=study_ids)
    studies.update(
        needs_review=models.Exists(versions.filter(status=VersionStatus.DRAFT)),
        report_status=Coalesce(
            models.Subquery(versions.order_by("-number").values("status")[:1]), models.Value("")
        ),
    )


def key_images_visible_to(user):
    """Key images a user may open: staff see their hospital's; a patient those of their signed reports."""
    from ml.models import KeyImage

    if user.is_authenticated and user.is_patient:
        versions = ReportVersion.objects.visible_to(user)
        return KeyImage.objects.filter(analysis__report_versions__in=versions).distinct()
    return KeyImage.objects.visible_to(user)


# DICOM result objects and their forwarding ---------------------------------------------------------


class ResultKind(models.TextChoices):
    SEGMENTATION = "seg", "Segmentation (SEG)"
    MEASUREMENT_REPORT = "sr", "Measurement report (SR)"
    SIGNED_REPORT_PDF = "pdf", "Signed report (Encapsulated PDF)"


class DicomResultObjectQuerySet(TenantQuerySet):
    def current(self):
        return self.filter(superseded_at__isnull=True)


class DicomResultObject(models.Model):
    """A DICOM object RadAssist made, stored as an instance of its study, and what made it.

    SEG and SR come from an analysis; an Encapsulated PDF from a signed report version. A reanalysis
    or an amendment makes new objects; the earlier ones stay stored and are marked superseded.
    """

    hospital = models.ForeignKey("accounts.Hospital", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=8, choices=ResultKind.choices)
    analysis = models.ForeignKey(
        "ml.Analysis", null=True, blank=True, on_delete=models.PROTECT, related_name="dicom_result_objects"
    )
    report_version = models.ForeignKey(
        ReportVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="dicom_result_objects"
    )
    sop_instance_uid = models.CharField("SOPInstanceUID", max_length=64)
    instance = models.OneToOneField("scans.Instance", on_delete=models.PROTECT, related_name="result_object")
    created_at = models.DateTimeField(auto_now_add=True)
    superseded_at = models.DateTimeField(null=True, blank=True)

    objects = DicomResultObjectQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = "DICOM result object"
        constraints = [
            models.UniqueConstraint(fields=["hospital", "sop_instance_uid"], name="unique_result_object_sop_uid"),
            models.UniqueConstraint(
                fields=["analysis", "kind"], condition=Q(analysis__isnull=False),
                name="one_result_object_per_analysis_and_kind",
            ),
            models.UniqueConstraint(
                fields=["report_version"], condition=Q(report_version__isnull=False),
                name="one_result_object_per_report_version",
            ),
            models.CheckConstraint(
                condition=(
                    (Q(kind="pdf") & Q(report_version__isnull=False) & Q(analysis__isnull=True))
                    | (~Q(kind="pdf") & Q(analysis__isnull=False) & Q(report_version__isnull=True))
                ),
                name="result_object_made_by_analysis_or_signed_version",
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.sop_instance_uid}"

    @property
    def is_superseded(self):
        return self.superseded_at is not None


class DicomDestination(models.Model):
    """A hospital system that receives RadAssist's result objects: by DICOMweb STOW-RS or by DIMSE C-STORE."""

    class Kind(models.TextChoices):
        DICOMWEB = "dicomweb", "DICOMweb STOW-RS"
        DIMSE = "dimse", "DICOM C-STORE"

    hospital = models.ForeignKey("accounts.Hospital", on_delete=models.PROTECT, related_name="dicom_destinations")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    url = models.URLField("DICOMweb base URL", max_length=500, blank=True,
                          help_text="The service root; instances are POSTed to <url>/studies.")
    #: Extra HTTP headers ({name: value}, e.g. Authorization), encrypted (reports.sealed_headers); use ``headers``.
    sealed_headers = models.TextField(blank=True, editable=False)
    ae_title = models.CharField("called AE title", max_length=16, blank=True)
    host = models.CharField(max_length=255, blank=True)
    port = models.PositiveIntegerField(null=True, blank=True)
    calling_ae_title = models.CharField(
        "calling AE title", max_length=16, default="RADASSIST",
        help_text="The AE title RadAssist uses when it sends to this destination.",
    )
    sends_ai_results = models.BooleanField(default=True, help_text="Send the AI's SEG and SR after each analysis.")
    sends_signed_reports = models.BooleanField(default=True, help_text="Send each signed report as Encapsulated PDF.")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["hospital_id", "name"]
        verbose_name = "DICOM destination"
        constraints = [
            models.UniqueConstraint(fields=["hospital", "name"], name="unique_dicom_destination_name_per_hospital"),
            models.CheckConstraint(
                condition=(
                    (Q(kind="dicomweb") & ~Q(url=""))
                    | (Q(kind="dimse") & ~Q(ae_title="") & ~Q(host="") & Q(port__isnull=False))
                ),
                name="dicom_destination_has_its_address",
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.address})"

    @property
    def headers(self):
        return unseal(self.sealed_headers)

    @headers.setter
    def headers(self, headers):
        self.sealed_headers = seal(headers)

    @property
    def address(self):
        if self.kind == self.Kind.DICOMWEB:
            return self.url
        return f"{self.ae_title}@{self.host}:{self.port}"

    def wants(self, kind):
        if kind == ResultKind.SIGNED_REPORT_PDF:
            return self.sends_signed_reports
        return self.sends_ai_results


class OutboxState(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class OutboxItemQuerySet(TenantQuerySet):
    def for_study(self, study):
        """What was, or is to be, sent of one study, newest first (the study page shows it)."""
        return (
            self.filter(result_object__instance__series__study=study)
            .select_related("destination", "result_object")
            .order_by("-created_at", "-pk")
        )

    def due(self, now):
        return self.filter(state=OutboxState.PENDING, next_attempt_at__lte=now)


class OutboxItem(models.Model):
    """One result object to deliver to one destination: the durable record a send task works from.

    Unique on (destination, SOP Instance UID), so a second delivery of the same object is never queued.
    """

    hospital = models.ForeignKey("accounts.Hospital", on_delete=models.PROTECT, related_name="+")
    destination = models.ForeignKey(DicomDestination, on_delete=models.CASCADE, related_name="outbox_items")
    result_object = models.ForeignKey(DicomResultObject, on_delete=models.PROTECT, related_name="outbox_items")
    sop_instance_uid = models.CharField("SOPInstanceUID", max_length=64)
    state = models.CharField(max_length=8, choices=OutboxState.choices, default=OutboxState.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, help_text="What the destination (or the network) answered last.")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OutboxItemQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["destination", "sop_instance_uid"], name="send_each_object_once_per_destination"
            )
        ]
        indexes = [models.Index(fields=["state", "next_attempt_at"])]

    def __str__(self):
        return f"{self.result_object} to {self.destination.name}: {self.get_state_display()}"

    def save(self, *args, **kwargs):
        """The tenant wall, checked on every write: an object goes only to a destination of its own hospital."""
        if not (self.hospital_id == self.destination.hospital_id == self.result_object.hospital_id):
            raise ValueError("An outbox item joins a result object and a destination of the same hospital only.")
        super().save(*args, **kwargs)


class MeasurementCorrectionQuerySet(TenantQuerySet):
    hospital_lookup = "version__hospital"


class MeasurementCorrection(models.Model):
    """A doctor's own value for an AI measurement of one analysis in one version, with the reason.

    Blank fields keep the AI's value. The AI's values stay on the analysis, so the report shows both.
    Amendments copy the corrections of the version they amend.
    """

    version = models.ForeignKey(ReportVersion, on_delete=models.CASCADE, related_name="corrections")
    analysis = models.ForeignKey("ml.Analysis", on_delete=models.PROTECT, related_name="+")
    largest_diameter = models.FloatField(
        null=True, blank=True, help_text="mm, or pixels when the series has no physical scale (as the AI's)."
    )
    volume_ml = models.FloatField("volume (mL)", null=True, blank=True)
    key_slice_number = models.PositiveIntegerField(
        null=True, blank=True, help_text="1-based slice number, as the viewer counts slices."
    )
    reason = models.TextField()
    corrected_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    objects = MeasurementCorrectionQuerySet.as_manager()

    class Meta:
        ordering = ["version_id", "analysis_id"]
        constraints = [
            models.UniqueConstraint(fields=["version", "analysis"], name="one_correction_per_analysis_and_version")
        ]

    def __str__(self):
        return f"Correction of analysis {self.analysis_id} in {self.version}"
