"""The doctor's worklist: the hospital's studies with what each needs next, searched, filtered and sorted.

Studies whose analysis is done and whose report draft waits for a doctor ("needs review") always come
first, whatever the sort: that is the work the page exists for.
"""

from django import forms
from django.db.models import Count, Exists, OuterRef, Prefetch, Q, Subquery

from ml.models import Analysis, AnalysisStatus
from reports.models import ReportVersion, VersionStatus, class_label
from scans.models import PatientCheck, Series, SeriesStatus, Study

PROCESSING_STATUSES = (SeriesStatus.RECEIVING, SeriesStatus.RECEIVED, SeriesStatus.QUEUED, SeriesStatus.ANALYSING)

SORTS = {
    "newest": ("Newest study first", ("-study_date", "-created_at", "-pk")),
    "oldest": ("Oldest study first", ("study_date", "created_at", "pk")),
    "patient": ("Patient name A–Z", ("patient__full_name", "-study_date", "-pk")),
    "uploaded": ("Most recently uploaded", ("-created_at", "-pk")),
}
STATUS_FILTERS = {
    "needs_review": "Needs review",
    "processing": "Processing",
    "failed": "Analysis failed",
    "signed": "Report signed",
}


class WorklistFilterForm(forms.Form):
    q = forms.CharField(label="Patient name or MRN", required=False, max_length=100,
                        widget=forms.TextInput(attrs={"type": "search", "placeholder": "e.g. Doe or MRN000123"}))
    status = forms.ChoiceField(label="Status", required=False, choices=[("", "All studies"), *STATUS_FILTERS.items()])
    date_from = forms.DateField(label="Study date from", required=False,
                                widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label="to", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    sort = forms.ChoiceField(label="Sort", required=False, choices=[(key, label) for key, (label, _) in SORTS.items()])


def worklist_studies(*, user, filters):
    """The studies ``user`` may see, annotated for the worklist and narrowed by a (validated) filter form."""
    versions = ReportVersion.objects.visible_to(user).filter(report__study=OuterRef("pk"))
    current_analyses = Analysis.objects.visible_to(user).current().filter(
        series__study=OuterRef("pk"), status=AnalysisStatus.SUCCEEDED
    )
    studies = (
        Study.objects.visible_to(user)
        .exclude(patient_check=PatientCheck.REJECTED)
        .select_related("patient")
        .annotate(
            series_count=Count("series", distinct=True),
            instance_count=Count("series__instances"),
            needs_review=Exists(versions.filter(status=VersionStatus.DRAFT)),
            report_status=Subquery(versions.order_by("-number").values("status")[:1]),
            report_id=Subquery(versions.values("report_id")[:1]),
            ai_class=Subquery(
                current_analyses.order_by("series__series_number", "series_id").values("predicted_class")[:1]
            ),
        )
        .prefetch_related(Prefetch("series", queryset=Series.objects.order_by("series_number", "pk")))
    )
    data = filters.cleaned_data if filters.is_valid() else {}
    if data.get("q"):
        query = data["q"].strip()
        studies = studies.filter(Q(patient__full_name__icontains=query) | Q(patient__mrn__icontains=query))
    status = data.get("status")
    if status == "needs_review":
        studies = studies.filter(needs_review=True)
    elif status == "processing":
        studies = studies.filter(series__status__in=PROCESSING_STATUSES).distinct()
    elif status == "failed":
        studies = studies.filter(series__status=SeriesStatus.FAILED).distinct()
    elif status == "signed":
        studies = studies.filter(report_status__in=[VersionStatus.FINAL, VersionStatus.AMENDED])
    if data.get("date_from"):
        studies = studies.filter(study_date__gte=data["date_from"])
    if data.get("date_to"):
        studies = studies.filter(study_date__lte=data["date_to"])
    _, ordering = SORTS[data.get("sort") or "newest"]
    return studies.order_by("-needs_review", *ordering)


def label_ai_classes(studies):
    """The studies of one page as a list, each with ``ai_class_label`` in words."""
    studies = list(studies)
    for study in studies:
        study.ai_class_label = class_label(study.ai_class) if study.ai_class else ""
    return studies
