"""The doctor's worklist: the hospital's studies with what each needs next, searched, filtered and sorted.

Studies whose analysis is done and whose report draft waits for a doctor ("needs review") always come
first, whatever the sort: that is the work the page exists for.
"""

from django import forms
from django.db.models import Count, Exists, OuterRef, Prefetch

from accounts.models import Patient
from clinic.ohif import has_dicom_images
from ml.models import Analysis, AnalysisStatus
from reports.models import SIGNED_STATUSES, Report, class_label
from scans.models import PatientCheck, Series, SeriesStatus, Study

PROCESSING_STATUSES = (SeriesStatus.RECEIVING, SeriesStatus.RECEIVED, SeriesStatus.QUEUED, SeriesStatus.ANALYSING)

SORTS = {
    "newest": ("Newest study first", ("-study_date", "-created_at", "-pk")),
    "oldest": ("Oldest study first", ("study_date", "created_at", "pk")),
    "patient": ("Patient name A–Z", ("patient__full_name", "-study_date", "-pk")),
    "uploaded": ("Most recently uploaded", ("-created_at", "-pk")),
}
STATUS_FILTERS = {
    "assigned_to_me": "Assigned to me",
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
    """The ids of the studies ``user`` may see, narrowed by a (validated) filter form, in worklist order.

    Only stored columns are filtered and sorted on (``Study.needs_review`` and ``report_status`` are kept
    when report versions change), so an index per sort serves the order and a page is read, not the
    hospital; :func:`worklist_rows` then adds what the page shows for its rows only.
    """
    studies = Study.objects.visible_to(user).exclude(patient_check=PatientCheck.REJECTED)
    data = filters.cleaned_data if filters.is_valid() else {}
    if data.get("q"):
        studies = studies.filter(patient__in=Patient.objects.visible_to(user).search(data["q"]))
    status = data.get("status")
    series = Series.objects.visible_to(user).filter(study=OuterRef("pk"))
    if status == "assigned_to_me":
        studies = studies.filter(assigned_to=user)
    elif status == "needs_review":
        studies = studies.filter(needs_review=True)
    elif status == "processing":
        studies = studies.filter(Exists(series.filter(status__in=PROCESSING_STATUSES)))
    elif status == "failed":
        studies = studies.filter(Exists(series.filter(status=SeriesStatus.FAILED)))
    elif status == "signed":
        studies = studies.filter(report_status__in=SIGNED_STATUSES)
    if data.get("date_from"):
        studies = studies.filter(study_date__gte=data["date_from"])
    if data.get("date_to"):
        studies = studies.filter(study_date__lte=data["date_to"])
    _, ordering = SORTS[data.get("sort") or "newest"]
    return studies.order_by("-needs_review", *ordering).values_list("pk", flat=True)


def worklist_rows(*, user, study_ids):
    """The studies of one page, in the page's order, each with its series (and their instance counts),
    ``series_count``, ``instance_count``, ``report_id`` and ``ai_class_label``: a few queries over these
    rows only."""
    series = Series.objects.annotate(instance_count=Count("instances")).order_by("series_number", "pk")
    studies = {
        study.pk: study
        for study in Study.objects.visible_to(user).filter(pk__in=study_ids).select_related("patient", "assigned_to")
        .annotate(has_dicom_images=has_dicom_images())
        .prefetch_related(Prefetch("series", queryset=series))
    }
    report_ids = dict(Report.objects.visible_to(user).filter(study__in=study_ids).values_list("study_id", "pk"))
    ai_classes = {}
    for study_id, predicted_class in (
        Analysis.objects.visible_to(user).current()
        .filter(series__study__in=study_ids, status=AnalysisStatus.SUCCEEDED)
        .order_by("series__series_number", "series_id").values_list("series__study_id", "predicted_class")
    ):
        ai_classes.setdefault(study_id, predicted_class)
    rows = []
    for study_id in study_ids:
        study = studies.get(study_id)
        if study is None:
            continue
        shown_series = study.series.all()
        study.series_count = len(shown_series)
        study.instance_count = sum(one.instance_count for one in shown_series)
        study.report_id = report_ids.get(study_id)
        study.ai_class = ai_classes.get(study_id, "")
        study.ai_class_label = class_label(study.ai_class) if study.ai_class else ""
        rows.append(study)
    return rows
