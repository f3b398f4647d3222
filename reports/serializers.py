from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.reverse import reverse

from accounts.models import Patient
from reports.models import Report, ReportVersion, class_label
from scans.models import Study


class AnalysisSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    series = serializers.IntegerField(source="series_id")
    generation = serializers.IntegerField()
    predicted_class = serializers.CharField()
    predicted_class_label = serializers.SerializerMethodField()
    class_probabilities = serializers.DictField(child=serializers.FloatField())
    measurements = serializers.DictField()
    classifier = serializers.SerializerMethodField()
    segmenter = serializers.SerializerMethodField()
    is_demo_model = serializers.BooleanField()

    def get_predicted_class_label(self, analysis) -> str:
        return class_label(analysis.predicted_class)

    def get_classifier(self, analysis) -> str:
        return f"{analysis.classifier_name} {analysis.classifier_version}"

    def get_segmenter(self, analysis) -> str:
        return f"{analysis.segmenter_name} {analysis.segmenter_version}"


class ReportVersionSerializer(serializers.ModelSerializer):
    analyses = AnalysisSummarySerializer(many=True, source="ordered_analyses")
    conclusion = serializers.SerializerMethodField()
    pdf_url = serializers.SerializerMethodField()

    class Meta:
        model = ReportVersion
        fields = (
            "id",
            "number",
            "status",
            "clinical_indication",
            "technique",
            "comparison",
            "findings",
            "impression",
            "recommendation",
            "conclusion",
            "override_reason",
            "amendment_note",
            "signed_by_name",
            "signed_at",
            "created_at",
            "analyses",
            "pdf_url",
        )

    def get_conclusion(self, version) -> str:
        """The class the doctor concluded, "agrees_with_ai", or "not_chosen" (a draft only)."""
        if version.differs_from_ai:
            return version.conclusion_class
        return "agrees_with_ai" if version.agrees_with_ai else "not_chosen"

    def get_pdf_url(self, version) -> str | None:
        if not version.pdf:
            return None
        return reverse("report-version-pdf", kwargs={"pk": version.pk}, request=self.context.get("request"))


class StudyBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Study
        fields = ("id", "study_instance_uid", "accession_number", "study_date")


class PatientBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Patient
        fields = ("id", "mrn", "full_name")


class ReportSummarySerializer(serializers.ModelSerializer):
    """A report in a list: where it belongs and how far it is, without its clinical text (read one to see that)."""

    study = StudyBriefSerializer(read_only=True)
    patient = PatientBriefSerializer(source="study.patient", read_only=True)
    status = serializers.SerializerMethodField()
    version = serializers.SerializerMethodField()
    pdf_url = serializers.SerializerMethodField()

    class Meta:
        model = Report
        fields = ("id", "study", "patient", "series", "status", "version", "created_at", "updated_at", "pdf_url")

    def readable_versions(self, report):
        """The versions the caller may read, newest first: prefetched for a list (``readable_versions_of``)."""
        if hasattr(report, "readable_versions"):
            return report.readable_versions
        cache = self.context.setdefault("readable_versions", {})
        if report.pk not in cache:
            user = self.context["request"].user
            cache[report.pk] = list(ReportVersion.objects.visible_to(user).filter(report=report).order_by("-number"))
        return cache[report.pk]

    def get_status(self, report) -> str | None:
        versions = self.readable_versions(report)
        return versions[0].status if versions else None

    def get_version(self, report) -> int | None:
        versions = self.readable_versions(report)
        return versions[0].number if versions else None

    def get_pdf_url(self, report) -> str:
        return reverse("api-report-pdf", kwargs={"pk": report.pk}, request=self.context.get("request"))


class ReportSerializer(ReportSummarySerializer):
    """A report with every version the caller may read (a patient: signed ones only), newest first."""

    versions = serializers.SerializerMethodField()

    class Meta(ReportSummarySerializer.Meta):
        fields = (*ReportSummarySerializer.Meta.fields, "versions")

    @extend_schema_field(ReportVersionSerializer(many=True))
    def get_versions(self, report):
        return ReportVersionSerializer(self.readable_versions(report), many=True, context=self.context).data
