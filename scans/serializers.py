from rest_framework import serializers

from accounts.models import Patient
from scans.models import FileOutcome, Instance, Series, Study, UploadBatch, UploadedFile


class SeriesSerializer(serializers.ModelSerializer):
    study_instance_uid = serializers.CharField(source="study.study_instance_uid", read_only=True)
    instance_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Series
        fields = (
            "id", "study", "study_instance_uid", "series_instance_uid", "series_number", "modality", "description",
            "body_part", "has_physical_scale", "status", "status_reason", "slices_done", "slices_total",
            "instance_count", "last_instance_at", "completed_at", "created_at",
        )


class StudySerializer(serializers.ModelSerializer):
    patient_mrn = serializers.CharField(source="patient.mrn", read_only=True)
    patient_name = serializers.CharField(source="patient.full_name", read_only=True)
    modalities = serializers.SerializerMethodField()
    series_count = serializers.IntegerField(read_only=True)
    instance_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Study
        fields = (
            "id", "study_instance_uid", "accession_number", "study_date", "study_time", "description",
            "referring_physician", "patient", "patient_mrn", "patient_name", "modalities", "series_count",
            "instance_count", "created_at",
        )

    def get_modalities(self, study) -> list[str]:
        return sorted({series.modality for series in study.series.all()})


class StudyDetailSerializer(StudySerializer):
    series = serializers.SerializerMethodField()

    class Meta(StudySerializer.Meta):
        fields = (*StudySerializer.Meta.fields, "series")

    def get_series(self, study) -> list[dict]:
        return SeriesSerializer(study.series.all(), many=True).data


class InstanceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Instance
        fields = (
            "id", "series", "sop_instance_uid", "sop_class_uid", "transfer_syntax_uid", "instance_number",
            "file_format", "file_size", "sha256", "rows", "columns", "number_of_frames", "pixel_spacing",
            "slice_thickness", "image_position_patient", "image_orientation_patient", "slice_location",
            "rescale_slope", "rescale_intercept", "window_center", "window_width", "created_at",
        )


class UploadedFileSerializer(serializers.ModelSerializer):
    series = serializers.IntegerField(source="instance.series_id", read_only=True, allow_null=True)

    class Meta:
        model = UploadedFile
        fields = ("name", "size", "outcome", "reason", "failure_reason", "instance", "series")


class UploadBatchSerializer(serializers.ModelSerializer):
    uploaded_by = serializers.CharField(source="uploaded_by.email", read_only=True)
    files = UploadedFileSerializer(many=True, read_only=True)

    class Meta:
        model = UploadBatch
        fields = ("id", "source", "patient", "uploaded_by", "created_at", "closed_at", "files")


class UploadRequestSerializer(serializers.Serializer):
    """Multipart: any number of ``files`` parts (DICOM, PNG/JPEG or zip) and an optional ``patient`` id."""

    files = serializers.ListField(child=serializers.FileField(allow_empty_file=True), allow_empty=False)
    patient = serializers.PrimaryKeyRelatedField(
        queryset=Patient.objects.none(), required=False, allow_null=True,
        help_text="File everything under this patient; without it, patients are matched by DICOM PatientID.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None:
            self.fields["patient"].queryset = Patient.objects.visible_to(request.user)


class UploadResultSerializer(serializers.Serializer):
    name = serializers.CharField()
    outcome = serializers.ChoiceField(choices=FileOutcome.choices)
    reason = serializers.CharField(allow_blank=True)
    failure_reason = serializers.IntegerField(allow_null=True, help_text="DICOM FailureReason of a rejection.")
    instance = serializers.IntegerField(allow_null=True)
    series = serializers.IntegerField(allow_null=True)
    study = serializers.IntegerField(allow_null=True)


class UploadResponseSerializer(serializers.Serializer):
    batch = serializers.IntegerField()
    stored = serializers.IntegerField()
    duplicate = serializers.IntegerField()
    rejected = serializers.IntegerField()
    results = UploadResultSerializer(many=True)
