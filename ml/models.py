"""The Django side of ml/: one Analysis per run of the models over a series, and its key images."""
from django.conf import settings
from django.db import models

from portal.tenancy import TenantOwnedModel, TenantQuerySet


def analysis_file_path(analysis, filename):
    return f"hospitals/{analysis.hospital_id}/analyses/{analysis.pk}/{filename}"


def key_image_path(key_image, filename):
    return f"hospitals/{key_image.analysis.hospital_id}/analyses/{key_image.analysis_id}/{filename}"


class AnalysisStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class AnalysisQuerySet(TenantQuerySet):
    """Patients never query analyses directly: they see results only inside their signed reports."""

    def current(self):
        """The latest analysis of each series; earlier ones are kept but superseded."""
        return self.filter(superseded_at__isnull=True)


class Analysis(TenantOwnedModel):
    tenant_parent = "series"
    """One run of the classifier and the segmenter over one series.

    Keyed by (series, model versions, generation): a redelivered task finds the
    row it already made instead of making a second one; "reanalyse" starts a new
    generation and marks the previous analysis superseded.
    """

    hospital = models.ForeignKey("accounts.Hospital", on_delete=models.PROTECT, related_name="analyses")
    series = models.ForeignKey("scans.Series", on_delete=models.PROTECT, related_name="analyses")
    generation = models.PositiveIntegerField(default=1, help_text="1 for the first analysis, +1 per reanalysis.")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    classifier_name = models.CharField(max_length=100)
    classifier_version = models.CharField(max_length=32)
    segmenter_name = models.CharField(max_length=100)
    segmenter_version = models.CharField(max_length=32)
    #: Key of the ``ml.catalogue`` entry the series was routed to ("lung-ct", "brain-mr-flair").
    catalogue_entry = models.CharField(max_length=40, blank=True)
    is_demo_model = models.BooleanField(default=False, help_text="Made by a demo model: not for clinical use.")
    status = models.CharField(max_length=16, choices=AnalysisStatus.choices, default=AnalysisStatus.QUEUED)
    failure_reason = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Deliveries started; guards against crash loops.")
    #: Celery task id of the delivery that claimed the run; a redelivery of the same message carries the same id.
    task_id = models.CharField(max_length=64, blank=True)
    #: Touched by the running delivery after every batch; a stale heartbeat means that delivery is gone.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    slices_total = models.PositiveIntegerField(default=0)
    slices_done = models.PositiveIntegerField(default=0)
    #: Series-level class (one of ml.networks.CLASS_NAMES) and its probabilities {class name: p}.
    predicted_class = models.CharField(max_length=40, blank=True)
    class_probabilities = models.JSONField(default=dict, blank=True)
    #: Why the series result is indeterminate (the networks disagree, or the calibrated probability of a
    #: tumour is too close to call); empty when it is determinate. Reports print it for the doctor.
    indeterminate_reason = models.TextField(blank=True)
    #: Per slice, in slice order: [[p per class], ...].
    slice_probabilities = models.JSONField(default=list, blank=True)
    #: ml.measurements result as a dict (areas per slice, volume, diameter, largest slice, has_physical_scale).
    measurements = models.JSONField(default=dict, blank=True)
    #: Compressed boolean masks (numpy .npz, key "masks", shape (slices, rows, columns)).
    masks_file = models.FileField(upload_to=analysis_file_path, max_length=400, blank=True)
    #: Numeric precision the networks ran in (ml.precision: "float32", "bfloat16", "float16", or each
    #: network's where they differ); reduced precision only after the agreement gate accepted it.
    precision = models.CharField(max_length=64, blank=True)
    #: Seconds per stage: queue_wait, load, preprocess, classify, segment, measure, store; and
    #: completion_to_claim, from the series' completion to the start of this run.
    stage_timings = models.JSONField(default=dict, blank=True)
    queued_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    superseded_at = models.DateTimeField(null=True, blank=True)

    objects = AnalysisQuerySet.as_manager()

    class Meta:
        ordering = ["-queued_at"]
        verbose_name_plural = "analyses"
        constraints = [
            models.UniqueConstraint(
                fields=["series", "generation", "classifier_name", "classifier_version", "segmenter_name",
                        "segmenter_version"],
                name="one_analysis_per_series_generation_and_model_versions",
            )
        ]

    def __str__(self):
        return f"Analysis {self.pk} of {self.series} ({self.get_status_display()})"

    @property
    def is_superseded(self):
        return self.superseded_at is not None

    @property
    def is_indeterminate(self):
        return bool(self.indeterminate_reason)

    @property
    def precision_note(self):
        """The report's method line for the precision; says when reduced precision was used and checked."""
        if not self.precision:
            return ""
        if self.precision == "float32":
            return "numeric precision float32"
        return f"numeric precision {self.precision} (reduced precision, checked against float32 before use)"


class KeyImageQuerySet(TenantQuerySet):
    hospital_lookup = "analysis__hospital"


class KeyImage(models.Model):
    """A slice worth showing: the original and the same slice with the lesion contour drawn on it."""

    class Reason(models.TextChoices):
        LARGEST_LESION = "largest_lesion", "Largest lesion area"
        LARGEST_DIAMETER = "largest_diameter", "Largest lesion diameter"
        UPPER_EXTENT = "upper_extent", "Upper extent of the lesion"
        LOWER_EXTENT = "lower_extent", "Lower extent of the lesion"
        HIGHEST_PROBABILITY = "highest_probability", "Highest tumour probability"

    analysis = models.ForeignKey(Analysis, on_delete=models.CASCADE, related_name="key_images")
    slice_index = models.PositiveIntegerField(help_text="Index in slice order.")
    reason = models.CharField(max_length=32, choices=Reason.choices)
    slice_location = models.FloatField(null=True, blank=True)
    lesion_area = models.FloatField(null=True, blank=True, help_text="mm², or pixels without physical scale.")
    overlay = models.ImageField(upload_to=key_image_path, max_length=400)

    objects = KeyImageQuerySet.as_manager()

    class Meta:
        ordering = ["analysis_id", "slice_index"]
        constraints = [
            models.UniqueConstraint(fields=["analysis", "slice_index", "reason"], name="unique_key_image_per_reason")
        ]

    def __str__(self):
        return f"Key image, slice {self.slice_index + 1} ({self.get_reason_display()})"
