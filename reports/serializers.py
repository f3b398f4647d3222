from rest_framework import serializers
from rest_framework.reverse import reverse

from reports.models import Report, ReportVersion, class_label


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

    def get_predicted_class_label(self, analysis):
        return class_label(analysis.predicted_class)

    def get_classifier(self, analysis):
        return f"{analysis.classifier_name} {analysis.classifier_version}"

    def get_segmenter(self, analysis):
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

    def get_conclusion(self, version):
        return version.conclusion_class or "agrees_with_ai"

    def get_pdf_url(self, version):
        if not version.pdf:
            return None
        return reverse("report-version-pdf", kwargs={"pk": version.pk}, request=self.context.get("request"))


class ReportSerializer(serializers.ModelSerializer):
    """A report with the versions the caller may read (a patient: signed ones only)."""

    study = serializers.SerializerMethodField()
    patient = serializers.SerializerMethodField()
    status = serializers.SerializerMethodField()
    versions = serializers.SerializerMethodField()
    pdf_url = serializers.SerializerMethodField()

    class Meta:
        model = Report
        fields = ("id", "study", "patient", "series", "status", "created_at", "updated_at", "pdf_url", "versions")

    def readable_versions(self, report):
        cache = self.context.setdefault("readable_versions", {})
        if report.pk not in cache:
            user = self.context["request"].user
            cache[report.pk] = list(ReportVersion.objects.visible_to(user).filter(report=report).order_by("-number"))
        return cache[report.pk]

    def get_study(self, report):
        study = report.study
        return {
            "id": study.pk,
            "study_instance_uid": study.study_instance_uid,
            "accession_number": study.accession_number,
            "study_date": study.study_date,
        }

    def get_patient(self, report):
        patient = report.study.patient
        return {"id": patient.pk, "mrn": patient.mrn, "full_name": patient.full_name}

    def get_status(self, report):
        versions = self.readable_versions(report)
        return versions[0].status if versions else None

    def get_pdf_url(self, report):
        return reverse("api-report-pdf", kwargs={"pk": report.pk}, request=self.context.get("request"))

    def get_versions(self, report):
        return ReportVersionSerializer(self.readable_versions(report), many=True, context=self.context).data
