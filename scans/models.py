"""Studies, series and instances, as DICOM groups them, and the upload batches that brought them in."""
from django.conf import settings
from django.db import models
from django.db.models.functions import Coalesce, Upper
from django.urls import reverse

from portal.tenancy import TenantOwnedModel, TenantQuerySet


def instance_file_path(*, hospital_id, study_instance_uid, series_instance_uid, sop_instance_uid, suffix):
    """Files live under their hospital and UIDs; the name never carries patient data.

    Ingest stores the file before it creates the rows (so that no database lock is held while bytes
    are copied), hence a path computed from the identifiers alone.
    """
    return (
        f"hospitals/{hospital_id}/studies/{study_instance_uid}/"
        f"series/{series_instance_uid}/{sop_instance_uid}{suffix}"
    )


def instance_upload_path(instance, filename):
    series = instance.series
    return instance_file_path(
        hospital_id=series.hospital_id,
        study_instance_uid=series.study.study_instance_uid,
        series_instance_uid=series.series_instance_uid,
        sop_instance_uid=instance.sop_instance_uid,
        suffix=instance.file_suffix,
    )


class PatientCheck(models.TextChoices):
    """Whether the patient a study is filed under is confirmed (see ``scans.ingest.patients``)."""

    CONFIRMED = "", "Confirmed"
    NEEDED = "needed", "Needs patient check"
    REJECTED = "rejected", "Rejected at patient check"


def dicom_person_name(display_name):
    """A display name "Given Middle Family" in DICOM ``Family^Given^Middle`` form, for studies without a DICOM value."""
    words = display_name.split()
    if len(words) < 2:
        return display_name
    return "^".join(part for part in (words[-1], words[0], " ".join(words[1:-1])) if part)


def count_of(queryset, *, grouped_by):
    """A subquery counting ``queryset``'s rows for the outer row, 0 when none: evaluated per row shown only,
    so a page of a list costs its rows, never a GROUP BY over the hospital."""
    counted = queryset.order_by().values(grouped_by).annotate(count=models.Count("pk")).values("count")
    return Coalesce(models.Subquery(counted), 0)


class StudyQuerySet(TenantQuerySet):
    patient_user_lookup = "patient__user"

    def narrow_for_patient(self, rows, user):
        """Patients never see a study whose patient is not confirmed."""
        return rows.filter(patient_check=PatientCheck.CONFIRMED)

    def awaiting_patient_check(self):
        return self.filter(patient_check=PatientCheck.NEEDED)

    def with_counts(self):
        """Each study with ``series_count`` and ``instance_count``."""
        return self.annotate(
            series_count=count_of(Series.objects.filter(study=models.OuterRef("pk")), grouped_by="study"),
            instance_count=count_of(
                Instance.objects.filter(series__study=models.OuterRef("pk")), grouped_by="series__study"
            ),
        )


class Study(TenantOwnedModel):
    tenant_parent = "patient"
    hospital = models.ForeignKey("accounts.Hospital", on_delete=models.PROTECT, related_name="studies")
    patient = models.ForeignKey("accounts.Patient", on_delete=models.PROTECT, related_name="studies")
    study_instance_uid = models.CharField("StudyInstanceUID", max_length=64)
    accession_number = models.CharField(max_length=64, blank=True, db_index=True)
    study_date = models.DateField(null=True, blank=True)
    study_time = models.TimeField(null=True, blank=True)
    description = models.CharField(max_length=255, blank=True)
    referring_physician = models.CharField(max_length=255, blank=True)
    patient_check = models.CharField(
        max_length=10, choices=PatientCheck.choices, default=PatientCheck.CONFIRMED, blank=True,
        help_text="A study whose DICOM patient identity disagrees with the record waits for a person's decision.",
    )
    identity_in_files = models.JSONField(
        default=dict, blank=True, help_text="PatientID, name, birth date and sex as the files carry them."
    )
    patient_check_reason = models.CharField(max_length=500, blank=True)
    #: PatientName as the study's files carry it (components and groups: "Yamada^Tarou=山田^太郎=やまだ^たろう"):
    #: QIDO-RS and every DICOM object made from the study answer it unchanged. Empty for image uploads.
    patient_name_dicom = models.CharField(max_length=400, blank=True)
    referring_physician_dicom = models.CharField(max_length=400, blank=True)
    #: StudyID (SH) as the files carry it.
    dicom_study_id = models.CharField("StudyID", max_length=64, blank=True)
    #: Upper-cased copies kept by the database, so that QIDO-RS matches names case-insensitively with an index.
    patient_name_search = models.GeneratedField(
        expression=Upper("patient_name_dicom"),
        output_field=models.CharField(max_length=400),
        db_persist=True,
        db_index=True,
    )
    referring_physician_search = models.GeneratedField(
        expression=Upper("referring_physician_dicom"),
        output_field=models.CharField(max_length=400),
        db_persist=True,
        db_index=True,
    )
    #: A report draft waits for a doctor. Kept by ``reports.models.refresh_review_states`` whenever a report
    #: version is saved or deleted, so the worklist sorts and filters on a column an index serves.
    needs_review = models.BooleanField(default=False, editable=False)
    #: Status of the latest report version ("draft", "final", "amended"), blank without a report; kept the same way.
    report_status = models.CharField(max_length=16, blank=True, editable=False)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="assigned_studies",
        help_text="The doctor of the hospital who is to read this study.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = StudyQuerySet.as_manager()

    class Meta:
        ordering = ["-study_date", "-created_at"]
        verbose_name_plural = "studies"
        constraints = [
            models.UniqueConstraint(fields=["hospital", "study_instance_uid"], name="unique_study_uid_per_hospital")
        ]
        # One index per worklist sort (and the REST, QIDO and admin lists' order), within one hospital, so a
        # page is read from the index in order instead of sorting the hospital's studies.
        # The worklist's indexes leave out studies rejected at the patient check, as the worklist does.
        indexes = [
            models.Index(fields=["hospital", "-needs_review", "-study_date", "-created_at", "-id"],
                         name="study_worklist_newest", condition=~models.Q(patient_check=PatientCheck.REJECTED)),
            models.Index(fields=["hospital", "-needs_review", "study_date", "created_at", "id"],
                         name="study_worklist_oldest", condition=~models.Q(patient_check=PatientCheck.REJECTED)),
            models.Index(fields=["hospital", "-needs_review", "-created_at", "-id"], name="study_worklist_uploaded",
                         condition=~models.Q(patient_check=PatientCheck.REJECTED)),
            models.Index(fields=["hospital", "-needs_review", "report_status"], name="study_worklist_report",
                         condition=~models.Q(patient_check=PatientCheck.REJECTED)),
            models.Index(fields=["hospital", "-study_date", "-created_at", "-id"], name="study_newest_first"),
        ]

    def __str__(self):
        return f"Study {self.accession_number or self.study_instance_uid} ({self.study_date or 'no date'})"

    def get_absolute_url(self):
        return reverse("study-detail", kwargs={"pk": self.pk})

    @property
    def patient_name_for_dicom(self):
        """The PatientName every DICOM answer or object made from this study carries: as received, else the
        patient's display name in DICOM order (image uploads have no DICOM value)."""
        return self.patient_name_dicom or dicom_person_name(self.patient.full_name)

    @property
    def referring_physician_for_dicom(self):
        return self.referring_physician_dicom or dicom_person_name(self.referring_physician)


class SeriesStatus(models.TextChoices):
    RECEIVING = "receiving", "Receiving"
    RECEIVED = "received", "Received"
    QUEUED = "queued", "Queued"
    ANALYSING = "analysing", "Analysing"
    ANALYSED = "analysed", "Analysed"
    REPORTED = "reported", "Reported"
    FAILED = "failed", "Failed"
    #: No catalogue entry reads this kind of series (``ml.catalogue``); the reason says which kind it is.
    NO_MODEL = "no_model", "No model for this series"
    #: Made by RadAssist itself (AI results, signed report PDF): stored like any series, never analysed.
    RESULT = "result", "RadAssist result"


class SeriesQuerySet(TenantQuerySet):
    patient_user_lookup = "study__patient__user"

    def narrow_for_patient(self, rows, user):
        """Patients read their results in signed reports, never as the AI's DICOM result objects, and never
        a series of a study still waiting for its patient check."""
        return rows.acquired().filter(study__patient_check=PatientCheck.CONFIRMED)

    def acquired(self):
        """Series that came from a scanner or an upload, without RadAssist's own result series."""
        return self.exclude(status=SeriesStatus.RESULT)

    def with_instance_count(self):
        return self.annotate(
            instance_count=count_of(Instance.objects.filter(series=models.OuterRef("pk")), grouped_by="series")
        )


class Series(TenantOwnedModel):
    tenant_parent = "study"
    hospital = models.ForeignKey("accounts.Hospital", on_delete=models.PROTECT, related_name="series")
    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="series")
    series_instance_uid = models.CharField("SeriesInstanceUID", max_length=64)
    series_number = models.IntegerField(null=True, blank=True)
    modality = models.CharField(max_length=16)
    description = models.CharField(max_length=255, blank=True)
    body_part = models.CharField(max_length=64, blank=True)
    #: MR only: ScanningSequence, SequenceVariant (backslash-joined codes) and InversionTime in ms,
    #: which with the description tell a FLAIR series from other sequences (``ml.catalogue``).
    scanning_sequence = models.CharField(max_length=64, blank=True)
    sequence_variant = models.CharField(max_length=64, blank=True)
    inversion_time = models.FloatField(null=True, blank=True)
    #: False for PNG/JPG slices: no pixel spacing, so measurements are pixel counts.
    has_physical_scale = models.BooleanField(default=True)
    status = models.CharField(max_length=16, choices=SeriesStatus.choices, default=SeriesStatus.RECEIVING)
    status_reason = models.TextField(
        blank=True, help_text="Why the series failed or was not analysed, written for the doctor."
    )
    slices_done = models.PositiveIntegerField(default=0)
    slices_total = models.PositiveIntegerField(default=0)
    last_instance_at = models.DateTimeField(null=True, blank=True)
    #: A STOW-RS quiet-period check is queued; it reschedules itself until the series is quiet.
    quiet_check_pending = models.BooleanField(default=False)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = SeriesQuerySet.as_manager()

    class Meta:
        ordering = ["study_id", "series_number", "created_at"]
        verbose_name_plural = "series"
        constraints = [
            models.UniqueConstraint(fields=["hospital", "series_instance_uid"], name="unique_series_uid_per_hospital")
        ]
        indexes = [
            models.Index(fields=["hospital", "status", "study"], name="series_status_per_hospital"),
            models.Index(fields=["hospital", "-study", "series_number", "id"], name="series_newest_study_first"),
        ]

    def __str__(self):
        return f"Series {self.series_number or ''} {self.description or self.series_instance_uid}".strip()


class InstanceQuerySet(TenantQuerySet):
    patient_user_lookup = "series__study__patient__user"

    def narrow_for_patient(self, rows, user):
        return rows.exclude(series__status=SeriesStatus.RESULT).filter(
            series__study__patient_check=PatientCheck.CONFIRMED
        )

    def in_slice_order(self):
        """Sorted along the slice normal (computed at ingest), then by InstanceNumber."""
        return self.order_by("slice_location", "instance_number", "pk")


class Instance(TenantOwnedModel):
    tenant_parent = "series"
    """One stored DICOM SOP instance, or one PNG/JPG slice (then the UIDs are generated by the portal)."""

    class Format(models.TextChoices):
        DICOM = "dicom", "DICOM"
        IMAGE = "image", "PNG/JPEG image"

    hospital = models.ForeignKey("accounts.Hospital", on_delete=models.PROTECT, related_name="instances")
    series = models.ForeignKey(Series, on_delete=models.PROTECT, related_name="instances")
    sop_instance_uid = models.CharField("SOPInstanceUID", max_length=64)
    sop_class_uid = models.CharField("SOPClassUID", max_length=64, blank=True)
    transfer_syntax_uid = models.CharField(max_length=64, blank=True)
    instance_number = models.IntegerField(null=True, blank=True)
    file_format = models.CharField(max_length=8, choices=Format.choices, default=Format.DICOM)
    file = models.FileField(upload_to=instance_upload_path, max_length=400)
    file_size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    rows = models.PositiveIntegerField()
    columns = models.PositiveIntegerField()
    number_of_frames = models.PositiveIntegerField(default=1)
    #: [row spacing, column spacing] in mm, or null without physical scale.
    pixel_spacing = models.JSONField(null=True, blank=True)
    slice_thickness = models.FloatField(null=True, blank=True)
    image_position_patient = models.JSONField(null=True, blank=True)
    image_orientation_patient = models.JSONField(null=True, blank=True)
    #: Position along the slice normal in mm (from ImagePositionPatient), used to sort and space slices.
    slice_location = models.FloatField(null=True, blank=True)
    rescale_slope = models.FloatField(default=1.0)
    rescale_intercept = models.FloatField(default=0.0)
    window_center = models.FloatField(null=True, blank=True)
    window_width = models.FloatField(null=True, blank=True)
    #: The DICOM header as DICOM JSON without pixel data (``scans.ingest.parsing.header_json``): WADO-RS metadata and
    #: QIDO-RS answer from it without opening the file. Null for image uploads and not yet backfilled rows.
    dicom_header = models.JSONField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = InstanceQuerySet.as_manager()

    class Meta:
        ordering = ["series_id", "slice_location", "instance_number", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["hospital", "sop_instance_uid"], name="unique_sop_uid_per_hospital")
        ]
        indexes = [
            models.Index(fields=["hospital", "series", "slice_location", "instance_number", "id"],
                         name="instance_slice_order"),
        ]

    def __str__(self):
        return f"Instance {self.instance_number or ''} {self.sop_instance_uid}".strip()

    @property
    def file_suffix(self):
        return ".dcm" if self.file_format == self.Format.DICOM else ".png"


class UploadBatchQuerySet(TenantQuerySet):
    patient_user_lookup = "uploaded_by"


class UploadBatch(TenantOwnedModel):
    """One upload (web form, REST call, STOW-RS request or DICOM association) and the outcome of every file in it."""

    tenant_parent = "patient"

    class Source(models.TextChoices):
        WEB = "web", "Web upload"
        API = "api", "REST API"
        STOW = "stow", "DICOMweb STOW-RS"
        DIMSE = "dimse", "DICOM C-STORE"

    hospital = models.ForeignKey("accounts.Hospital", on_delete=models.PROTECT, related_name="upload_batches")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="upload_batches")
    patient = models.ForeignKey(
        "accounts.Patient", null=True, blank=True, on_delete=models.PROTECT,
        help_text="The patient chosen for the upload; empty when matched from each file's PatientID.",
    )
    source = models.CharField(max_length=8, choices=Source.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    objects = UploadBatchQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "upload batches"

    def __str__(self):
        return f"{self.get_source_display()} by {self.uploaded_by} at {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def completes_series_on_close(self):
        """Whether closing the batch completes its series, or the quiet period after the last instance does.

        STOW-RS requests are many per series, so they leave it to the quiet period; a DICOM association
        is one per series (or study) and completes them on release, unless its hospital chose the quiet period.
        """
        if self.source == self.Source.STOW:
            return False
        if self.source == self.Source.DIMSE:
            return self.hospital.dimse_complete_on_release
        return True


class FileOutcome(models.TextChoices):
    STORED = "stored", "Stored"
    DUPLICATE = "duplicate", "Duplicate"
    REJECTED = "rejected", "Rejected"


class UploadedFileQuerySet(TenantQuerySet):
    hospital_lookup = "batch__hospital"
    patient_user_lookup = "batch__uploaded_by"


class UploadedFile(models.Model):
    """What happened to one file of a batch (a zip archive contributes one row per entry)."""

    batch = models.ForeignKey(UploadBatch, on_delete=models.CASCADE, related_name="files")
    name = models.CharField(max_length=500, help_text="File name as sent, with the zip path for archive entries.")
    size = models.BigIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=FileOutcome.choices)
    reason = models.TextField(blank=True, help_text="Why the file was rejected, written for the uploader.")
    #: DICOM PS3.4 FailureReason code of a rejection (0xC000, 0xA900, ...), as STOW-RS reports it.
    failure_reason = models.PositiveIntegerField(null=True, blank=True)
    instance = models.ForeignKey(Instance, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = UploadedFileQuerySet.as_manager()

    class Meta:
        ordering = ["batch_id", "pk"]

    def __str__(self):
        return f"{self.name}: {self.get_outcome_display()}"
