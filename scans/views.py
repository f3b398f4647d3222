"""Upload pages and the upload endpoints the browser script (and any session client) drives.

Uploading with a session, as ``static/js/upload.js`` does (a script can do the same; every POST carries
the CSRF token as the ``X-CSRFToken`` header, e.g. the value of the ``csrftoken`` cookie after
``GET /upload/``, and with HTTPS a same-origin ``Referer``):

1. ``POST /upload/batches/`` (``upload-batch-create``) with the form field ``patient`` (a patient id, or
   empty to match each DICOM file's PatientID) -> 201 ``{"id", "files_url", "close_url", "detail_url"}``;
   400 ``{"errors": {...}}`` for a patient the user may not choose.
2. ``POST files_url`` (``upload-batch-files``), multipart with any number of ``files`` parts (and
   optionally one ``paths`` field per file, its path within an uploaded folder), as many times as
   needed -> 200 ``{"files": [{"name", "results": [{"name", "outcome", "reason",
   "failure_reason"}]}]}`` (a zip archive has one result per entry).
3. ``POST close_url`` (``upload-batch-close``) -> 200 ``{"detail_url", "counts": {"stored", "duplicate",
   "rejected"}}``; closing completes the series and queues their analysis.

Only the uploader may add files to a batch, and only until it is closed (409 after). Without JavaScript,
``POST /upload/`` with ``patient`` and ``files`` does all three steps and redirects to the batch page.
"""

from django.db.models import Count
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from accounts.permissions import ability_required
from scans import reconciliation
from scans.forms import PatientCheckForm, UploadStartForm
from scans.ingest import UploadNotAllowed, close_batch, ingest_files, open_batch
from scans.models import FileOutcome, Study, UploadBatch


def _posted_files(request):
    """The posted files with the names to record: the ``paths`` fields, when the script sends one per file.

    Django keeps only the last part of an uploaded file's name; a folder upload sends each file's path
    within the folder as a ``paths`` field, so that the summary tells ``CD1/IM0001`` from ``CD2/IM0001``.
    """
    files = request.FILES.getlist("files")
    paths = request.POST.getlist("paths")
    names = paths if len(paths) == len(files) else [uploaded.name for uploaded in files]
    return list(zip(names, files, strict=True))


def _open_web_batch(request, form):
    """Open a batch from a valid start form; a refusal becomes a form error."""
    try:
        return open_batch(
            hospital=request.user.hospital,
            uploaded_by=request.user,
            source=UploadBatch.Source.WEB,
            patient=form.cleaned_data["patient"],
        )
    except UploadNotAllowed as refusal:
        form.add_error("patient", str(refusal))
        return None


def _ingest_posted(batch, named_files):
    results = ingest_files(batch=batch, files=named_files)
    return [
        {"name": name, "results": [_result_json(result) for result in file_results]}
        for (name, _), file_results in zip(named_files, results, strict=True)
    ]


def _result_json(result):
    return {
        "name": result.uploaded_file.name,
        "outcome": str(result.outcome),
        "reason": result.reason,
        "failure_reason": result.failure_reason,
    }


def _outcome_counts(batch):
    counts = dict.fromkeys(FileOutcome.values, 0)
    for row in batch.files.values("outcome").annotate(number=Count("pk")):
        counts[row["outcome"]] = row["number"]
    return counts


@ability_required("upload")
def upload(request):
    """The upload page; its plain POST (no JavaScript) ingests every file as one batch."""
    form = UploadStartForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        files = _posted_files(request)
        if not files:
            form.add_error(None, "Choose at least one file, folder or zip archive.")
        else:
            batch = _open_web_batch(request, form)
            if batch is not None:
                _ingest_posted(batch, files)
                close_batch(batch=batch)
                return redirect("upload-batch-detail", pk=batch.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "scans/upload.html", {"form": form}, status=status)


@require_POST
@ability_required("upload")
def upload_batch_create(request):
    form = UploadStartForm(request.POST, user=request.user)
    batch = _open_web_batch(request, form) if form.is_valid() else None
    if batch is None:
        return JsonResponse({"errors": form.errors.get_json_data()}, status=400)
    return JsonResponse(
        {
            "id": batch.pk,
            "files_url": reverse("upload-batch-files", kwargs={"pk": batch.pk}),
            "close_url": reverse("upload-batch-close", kwargs={"pk": batch.pk}),
            "detail_url": reverse("upload-batch-detail", kwargs={"pk": batch.pk}),
        },
        status=201,
    )


def _own_web_batch(request, pk):
    return get_object_or_404(
        UploadBatch.objects.visible_to(request.user), pk=pk, uploaded_by=request.user, source=UploadBatch.Source.WEB
    )


@require_POST
@ability_required("upload")
def upload_batch_files(request, pk):
    batch = _own_web_batch(request, pk)
    if batch.closed_at is not None:
        return JsonResponse({"detail": "This upload is already finished; start a new upload."}, status=409)
    return JsonResponse({"files": _ingest_posted(batch, _posted_files(request))})


@require_POST
@ability_required("upload")
def upload_batch_close(request, pk):
    batch = close_batch(batch=_own_web_batch(request, pk))
    return JsonResponse(
        {"detail_url": reverse("upload-batch-detail", kwargs={"pk": batch.pk}), "counts": _outcome_counts(batch)}
    )


@ability_required("upload")
def upload_batch_detail(request, pk):
    """The outcome of every file of a batch; a reload shows the same page."""
    batch = get_object_or_404(UploadBatch.objects.visible_to(request.user).select_related("patient"), pk=pk)
    studies = Study.objects.none()
    if not request.user.is_patient:
        studies = Study.objects.visible_to(request.user).filter(
            series__instances__in=batch.files.filter(outcome=FileOutcome.STORED).values("instance")
        ).distinct().select_related("patient")
    return render(
        request,
        "scans/upload_batch_detail.html",
        {"batch": batch, "files": batch.files.all(), "counts": _outcome_counts(batch), "studies": studies},
    )


@ability_required("read_clinical")
def patient_checks(request):
    """The hospital's studies whose DICOM patient identity disagrees with their record, oldest first."""
    studies = (
        Study.objects.visible_to(request.user).awaiting_patient_check()
        .select_related("patient").order_by("created_at", "pk")
    )
    return render(request, "scans/patient_checks.html", {"studies": studies})


@ability_required("read_clinical")
@require_http_methods(["GET", "POST"])
def patient_check_detail(request, pk):
    """Both identities side by side; assign the study to a record, create one from the files, or reject it."""
    study = get_object_or_404(
        Study.objects.visible_to(request.user).awaiting_patient_check().select_related("patient"), pk=pk
    )
    form = PatientCheckForm(request.POST or None, user=request.user, study=study)
    if request.method == "POST" and form.is_valid():
        decision = form.cleaned_data["decision"]
        try:
            if decision == "assign":
                reconciliation.assign_study(study=study, patient=form.cleaned_data["patient"], user=request.user,
                                            request=request)
            elif decision == "create":
                reconciliation.create_patient_for_study(study=study, user=request.user, request=request)
            else:
                reconciliation.reject_study(study=study, user=request.user, request=request)
        except reconciliation.PatientCheckError as error:
            form.add_error(None, str(error))
        else:
            return redirect("patient-checks")
    return render(request, "scans/patient_check_detail.html", {"study": study, "form": form})
