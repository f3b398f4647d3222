"""Queueing and running analyses.

Nothing here imports TensorFlow at module level: when an analysis is queued, the champion model
versions are read from the MLflow registry through an alias lookup
(``ml.registry.champion_version``), which touches only the tracking store, on an ``ingest`` worker,
and recorded on the analysis. The heavy work happens in ``ml.tasks.analyse_series`` on the ``gpu``
queue, which loads those recorded versions by number.
"""

import logging
import time
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import models, transaction
from django.utils import timezone

from ml.catalogue import CATALOGUE, LUNG_CT, SeriesKind, describe_kind, entry_by_key, route_series
from ml.models import Analysis, AnalysisStatus, KeyImage
from ml.signals import analysis_succeeded
from portal.audit import record_event
from portal.errors import UserFacingError
from portal.models import AuditAction
from portal.queueing import queue_task
from scans.models import Instance, Series, SeriesStatus

logger = logging.getLogger(__name__)

NO_MODELS_REASON = (
    "No analysis model is installed yet. Ask your administrator to install one "
    "(python manage.py bootstrap_models), then choose Reanalyse."
)
ENTRY_MODELS_MISSING_REASON = (
    "No model for this kind of series ({kind}): the {title} models are not installed yet. Ask your "
    "administrator to install them ({install_hint}), then choose Reanalyse."
)


class ModelsNotInstalled(UserFacingError):
    status_code = 503

    def __init__(self, message=NO_MODELS_REASON):
        super().__init__(message)


class SeriesNotAnalysable(UserFacingError):
    status_code = 409


@dataclass(frozen=True)
class ModelVersions:
    """The registered versions an analysis runs with; part of the analysis's natural key."""

    classifier_name: str
    classifier_version: str
    segmenter_name: str
    segmenter_version: str
    is_demo: bool
    catalogue_entry: str = LUNG_CT.key

    def as_fields(self):
        return {
            "classifier_name": self.classifier_name,
            "classifier_version": self.classifier_version,
            "segmenter_name": self.segmenter_name,
            "segmenter_version": self.segmenter_version,
        }


def champion_model_versions(entry=LUNG_CT):
    """The current champions of a catalogue entry's two models, or raise ModelsNotInstalled."""
    from ml.registry import champion_version

    classifier = champion_version(entry.classifier_name, tracking_uri=settings.MLFLOW_TRACKING_URI)
    segmenter = champion_version(entry.segmenter_name, tracking_uri=settings.MLFLOW_TRACKING_URI)
    if classifier is None or segmenter is None:
        raise ModelsNotInstalled()
    return ModelVersions(
        classifier_name=classifier.name,
        classifier_version=str(classifier.version),
        segmenter_name=segmenter.name,
        segmenter_version=str(segmenter.version),
        is_demo=classifier.is_demo or segmenter.is_demo,
        catalogue_entry=entry.key,
    )


def series_kind(series):
    """What the stored series says about its kind, as the catalogue reads it."""
    return SeriesKind(
        modality=series.modality,
        body_part=series.body_part,
        description=series.description,
        scanning_sequence=series.scanning_sequence,
        sequence_variant=series.sequence_variant,
        inversion_time=series.inversion_time,
    )


def models_for_series(series):
    """The champion versions of the catalogue entry this series is routed to.

    Raises SeriesNotAnalysable when no entry reads this kind of series, and ModelsNotInstalled
    (with a reason naming the kind of series) when the entry's models have no champion.
    """
    kind = series_kind(series)
    routing = route_series(kind)
    if routing.entry is None:
        raise SeriesNotAnalysable(routing.reason)
    try:
        return champion_model_versions(routing.entry)
    except ModelsNotInstalled:
        raise ModelsNotInstalled(
            ENTRY_MODELS_MISSING_REASON.format(
                kind=describe_kind(kind), title=routing.entry.title, install_hint=routing.entry.install_hint
            )
        ) from None


@dataclass(frozen=True)
class ActiveModels:
    """One catalogue entry and its champion versions (None where none is registered)."""

    entry: object  # ml.catalogue.CatalogueEntry
    classifier: object  # ml.registry.RegisteredModelVersion | None
    segmenter: object


class RegistryUnavailable(UserFacingError):
    status_code = 503


def active_models():
    """Every catalogue entry with its current champions, for the hospital admin's models page.

    A SQLite registry that does not exist yet means nothing is installed; reading it must not
    create it. Raises RegistryUnavailable when the registry cannot be read.
    """
    from mlflow.exceptions import MlflowException

    from ml.registry import champion_version, store_exists

    tracking_uri = settings.MLFLOW_TRACKING_URI
    installed = store_exists(tracking_uri)
    try:
        return [
            ActiveModels(
                entry=entry,
                classifier=champion_version(entry.classifier_name, tracking_uri=tracking_uri) if installed else None,
                segmenter=champion_version(entry.segmenter_name, tracking_uri=tracking_uri) if installed else None,
            )
            for entry in CATALOGUE
        ]
    except MlflowException as error:
        logger.warning("model registry unreadable", extra={"error": str(error)})
        raise RegistryUnavailable("The model registry cannot be read right now; try again in a minute.") from error


def _send_analysis_task(analysis_id):
    analysis_id = int(analysis_id)
    transaction.on_commit(lambda: queue_task("ml.tasks.analyse_series", analysis_id=analysis_id))


def _mark_series_queued(series, *, slices_total):
    series.status = SeriesStatus.QUEUED
    series.status_reason = ""
    series.slices_done = 0
    series.slices_total = slices_total
    series.save(update_fields=["status", "status_reason", "slices_done", "slices_total", "updated_at"])


def _new_generation(*, series, versions, requested_by):
    """Make the next generation's analysis and mark every earlier one superseded."""
    now = timezone.now()
    latest = series.analyses.order_by("-generation").first()
    series.analyses.filter(superseded_at__isnull=True).update(superseded_at=now)
    return Analysis.objects.create(
        hospital_id=series.hospital_id,
        series=series,
        generation=latest.generation + 1 if latest else 1,
        requested_by=requested_by,
        is_demo_model=versions.is_demo,
        slices_total=series.instances.count(),
        catalogue_entry=versions.catalogue_entry,
        **versions.as_fields(),
    )


def _hold_series(series_id, *, status, reason):
    Series.objects.filter(pk=series_id).update(status=status, status_reason=reason, updated_at=timezone.now())


def queue_analysis(*, series_id):
    """Queue the analysis of a series that has just completed (runs on an ingest worker).

    The model catalogue (``ml.catalogue``) picks the models from the series' modality, body part and
    MR sequence. Idempotent: called again for the same series and champion versions, it returns the current
    analysis instead of making a second one, and sends the task again only while that analysis
    is still waiting (a duplicate delivery is harmless: the task skips finished work). When a new
    champion was promoted since, or the series has received instances since (late slices), a new
    generation supersedes the earlier analysis. A series no catalogue entry reads is marked "no
    model" with its kind in the reason, and nothing runs; when the entry's models are not
    registered the series is marked failed with a reason the doctor can act on.
    """
    try:
        versions = models_for_series(Series.objects.get(pk=series_id))
    except SeriesNotAnalysable as error:
        logger.info("analysis not queued: no catalogue entry for the series", extra={"series_id": series_id})
        _hold_series(series_id, status=SeriesStatus.NO_MODEL, reason=str(error))
        return None
    except ModelsNotInstalled as error:
        logger.warning("analysis not queued: no champion models registered", extra={"series_id": series_id})
        _hold_series(series_id, status=SeriesStatus.FAILED, reason=str(error))
        return None
    with transaction.atomic():
        series = Series.objects.select_for_update().get(pk=series_id)
        current = series.analyses.current().order_by("-generation").first()
        if (
            current is not None
            and current.slices_total == series.instances.count()
            and all(getattr(current, field) == value for field, value in versions.as_fields().items())
        ):
            analysis = current
            if analysis.status != AnalysisStatus.QUEUED:
                return analysis
        else:
            analysis = _new_generation(series=series, versions=versions, requested_by=None)
        _mark_series_queued(series, slices_total=analysis.slices_total)
        _send_analysis_task(analysis.pk)
    return analysis


def reanalyse_series(*, series, user, request=None):
    """Run a series again with the current champion models (a doctor's action, audited).

    The earlier analyses are kept and marked superseded; their results stay readable.
    ``series`` must already have been found through ``visible_to(user)``.
    """
    if series.status == SeriesStatus.RECEIVING:
        raise SeriesNotAnalysable("This series is still being received; it is analysed once it is complete.")
    if series.status == SeriesStatus.RESULT:
        raise SeriesNotAnalysable("This series holds RadAssist's own results (SEG, SR or PDF); it is not analysed.")
    if not series.instances.exists():
        raise SeriesNotAnalysable("This series has no images to analyse.")
    versions = models_for_series(series)
    with transaction.atomic():
        series = Series.objects.select_for_update().get(pk=series.pk)
        analysis = _new_generation(series=series, versions=versions, requested_by=user)
        _mark_series_queued(series, slices_total=analysis.slices_total)
        record_event(
            action=AuditAction.REANALYSE,
            target=series,
            actor=user,
            request=request,
            detail={"analysis_id": analysis.pk, "generation": analysis.generation,
                    "catalogue_entry": versions.catalogue_entry, **versions.as_fields()},
        )
        _send_analysis_task(analysis.pk)
    return analysis


# Running an analysis (called by ml.tasks.analyse_series in the worker) ---------------------------

class AnalysisFailed(Exception):
    """An error that will not go away by retrying; ``reason`` is written for the doctor."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class Claim:
    """What a delivery of the analysis task should do after trying to claim the analysis."""

    RUN = "run"
    SKIP = "skip"  # finished, superseded, or failed by the crash-loop guard
    WAIT = "wait"  # another delivery is running it right now


CRASH_LOOP_REASON = (
    "The analysis stopped unexpectedly {attempts} times (the process running it was lost), so it was "
    "not tried again. Choose Reanalyse to try once more, or contact support if it keeps failing."
)
TIMEOUT_REASON = "The analysis took longer than the time allowed and was stopped. Choose Reanalyse to try again."
UNEXPECTED_REASON = "The analysis failed because of an internal error. Choose Reanalyse to try again."
UNAVAILABLE_REASON = (
    "The analysis could not reach the database or the image storage for too long. Choose Reanalyse to try again."
)


def claim_analysis(*, analysis_id, task_id):
    """Start one delivery: lock the row, decide whether to run, and count the attempt.

    Committed on its own before any work, so that a delivery whose worker is killed still leaves
    its attempt counted: after ``ANALYSIS_MAX_ATTEMPTS`` such deliveries the analysis is failed
    instead of killing worker after worker. A redelivery of the same message (same task id, after
    the worker was lost) takes over at once; a different message for the same analysis waits while
    the running one keeps its heartbeat fresh.
    """
    now = timezone.now()
    with transaction.atomic():
        analysis = Analysis.objects.select_for_update().select_related("series").get(pk=analysis_id)
        if analysis.status in (AnalysisStatus.SUCCEEDED, AnalysisStatus.FAILED) or analysis.is_superseded:
            return Claim.SKIP
        if (
            analysis.status == AnalysisStatus.RUNNING
            and analysis.task_id != task_id
            and analysis.heartbeat_at is not None
            and (now - analysis.heartbeat_at).total_seconds() < settings.ANALYSIS_HEARTBEAT_TIMEOUT_SECONDS
        ):
            return Claim.WAIT
        if analysis.attempts >= settings.ANALYSIS_MAX_ATTEMPTS:
            _record_failure(analysis, CRASH_LOOP_REASON.format(attempts=analysis.attempts), now=now)
            return Claim.SKIP
        analysis.attempts += 1
        analysis.status = AnalysisStatus.RUNNING
        analysis.task_id = task_id or ""
        analysis.started_at = now
        analysis.heartbeat_at = now
        analysis.slices_done = 0
        analysis.stage_timings = {"queue_wait": round((now - analysis.queued_at).total_seconds(), 3)}
        if analysis.series.completed_at is not None:
            # From the series' completion (batch closed, STOW-RS quiet period over) to a GPU worker taking it:
            # the queueing task's wait on the ingest queue and the analysis' wait on the gpu queue together.
            analysis.stage_timings["completion_to_claim"] = round(
                (now - analysis.series.completed_at).total_seconds(), 3
            )
        analysis.save(update_fields=[
            "attempts", "status", "task_id", "started_at", "heartbeat_at", "slices_done", "stage_timings"
        ])
        Series.objects.filter(pk=analysis.series_id).update(
            status=SeriesStatus.ANALYSING, status_reason="", slices_done=0, slices_total=analysis.slices_total,
            updated_at=now,
        )
    return Claim.RUN


def give_back_attempt(*, analysis_id):
    """A delivery that ends in a retry did finish: it must not count towards the crash-loop guard.

    Best effort: when the database itself is what failed, the attempt stays counted.
    """
    Analysis.objects.filter(pk=analysis_id, attempts__gt=0, status=AnalysisStatus.RUNNING).update(
        attempts=models.F("attempts") - 1, status=AnalysisStatus.QUEUED
    )


def _record_failure(analysis, reason, *, now):
    analysis.status = AnalysisStatus.FAILED
    analysis.failure_reason = reason
    analysis.finished_at = now
    analysis.save(update_fields=["status", "failure_reason", "finished_at"])
    if not analysis.is_superseded:
        Series.objects.filter(pk=analysis.series_id).update(
            status=SeriesStatus.FAILED, status_reason=reason, updated_at=now
        )


def fail_analysis(*, analysis_id, reason):
    """Terminal failure with a reason the doctor reads on the study page."""
    with transaction.atomic():
        analysis = Analysis.objects.select_for_update().get(pk=analysis_id)
        if analysis.status == AnalysisStatus.SUCCEEDED:
            return
        _record_failure(analysis, reason, now=timezone.now())


@dataclass
class LoadedSlices:
    """A series read from storage in slice order: one 2D array per slice and the geometry to measure with."""

    arrays: list
    source: str  # "hounsfield" (CT DICOM), "mr" (MR DICOM) or "grey8" (PNG/JPG)
    instances: list


def _read_instance_bytes(instance):
    with instance.file.open("rb") as stored:
        return stored.read()


def _decode_instance(instance, content, *, position):
    """One slice as a 2D array; anything undecodable is a permanent failure named for the doctor."""
    import io

    import pydicom

    from imaging.pixels import grey_from_image
    from imaging.pixels import rescaled_pixels as hounsfield_from_dicom

    try:
        if instance.file_format == Instance.Format.IMAGE:
            return grey_from_image(io.BytesIO(content))
        dataset = pydicom.dcmread(io.BytesIO(content))
        hounsfield = hounsfield_from_dicom(dataset)
    except Exception as error:  # pydicom and its pixel plugins raise many unrelated types
        raise AnalysisFailed(
            f"Image {position} of the series (instance number {instance.instance_number or '?'}) could not be "
            f"decoded, so the series cannot be analysed: {error}"
        ) from error
    if hounsfield.ndim != 2:
        raise AnalysisFailed(
            f"Image {position} of the series is a multi-frame or colour image ({hounsfield.shape}); "
            "only single-frame grey CT slices can be analysed."
        )
    return hounsfield


def _check_distinct_positions(instances):
    """Slices measured as a volume must each have a place of their own along the slice normal."""
    seen = {}
    for position, instance in enumerate(instances, start=1):
        if instance.slice_location is None:
            continue
        location = round(instance.slice_location, 3)
        if location in seen:
            raise AnalysisFailed(
                f"Images {seen[location]} and {position} of the series lie at the same position ({location:g} mm "
                "along the slice normal): the series holds repeated or overlapping slices, for example two "
                "reconstructions. Upload each reconstruction as a series of its own."
            )
        seen[location] = position


def load_series_slices(analysis, *, heartbeat):
    instances = list(Instance.objects.filter(series_id=analysis.series_id).in_slice_order())
    if not instances:
        raise AnalysisFailed("The series has no stored images to analyse.")
    formats = {instance.file_format for instance in instances}
    if len(formats) > 1:
        raise AnalysisFailed("The series mixes DICOM files and PNG/JPG images; upload them as separate series.")
    _check_distinct_positions(instances)
    arrays = []
    for position, instance in enumerate(instances, start=1):
        try:
            content = _read_instance_bytes(instance)
        except FileNotFoundError as error:
            raise AnalysisFailed(
                f"Image {position} of the series is missing from storage; upload the series again."
            ) from error
        arrays.append(_decode_instance(instance, content, position=position))
        if position % 50 == 0:
            heartbeat()
    if formats == {Instance.Format.IMAGE}:
        source = "grey8"
    else:
        entry = entry_by_key(analysis.catalogue_entry) or LUNG_CT
        source = entry.pixel_source
    return LoadedSlices(arrays=arrays, source=source, instances=instances)


def _geometry(instances):
    """Measurement inputs from the stored DICOM geometry; None where a slice lacks it."""
    first = instances[0]
    positions = [instance.image_position_patient for instance in instances]
    return {
        "pixel_spacing": first.pixel_spacing,
        "image_positions": positions if all(positions) else None,
        "image_orientation": first.image_orientation_patient,
        "slice_thickness": first.slice_thickness,
    }


def _masks_npz(masks):
    import io

    buffer = io.BytesIO()
    np.savez_compressed(buffer, masks=np.asarray(masks, dtype=bool))
    return buffer.getvalue()


def _run_recorded_versions(analysis, loaded, *, engine, heartbeat):
    """Run exactly the model versions the analysis recorded when it was queued.

    A champion promoted while the analysis waited does not change what runs, so the versions named
    on the analysis (and in its report) are the ones that produced its results.
    """
    from ml.inference import ModelVersionKey
    from ml.registry import ModelNotRegistered

    try:
        return engine.run_series(
            loaded.arrays,
            source=loaded.source,
            classifier=ModelVersionKey(analysis.classifier_name, int(analysis.classifier_version)),
            segmenter=ModelVersionKey(analysis.segmenter_name, int(analysis.segmenter_version)),
            progress=lambda done, total: heartbeat(done),
        )
    except ModelNotRegistered as error:
        raise AnalysisFailed(
            f"The model versions this analysis was queued with are no longer available ({error}). "
            "Choose Reanalyse to run the current models."
        ) from error


def _display_slices(loaded):
    """The slices key images are drawn on, and whether they are 8-bit grey already.

    CT is shown in the lung window (``ml.overlays``); MR has no Hounsfield scale, so it is shown
    scaled per volume the way the models read it.
    """
    if loaded.source == "mr":
        from ml.preprocessing import normalise_mr_volume

        return [np.rint(array * 255.0).astype(np.uint8) for array in normalise_mr_volume(loaded.arrays)], True
    return loaded.arrays, loaded.source == "grey8"


def run_analysis(*, analysis_id, engine):
    """Analyse one claimed analysis end to end and store its results (see ml.tasks.analyse_series).

    Runs the model versions recorded on the analysis and never rewrites them. Progress (slices done,
    heartbeat) is committed after each batch. The results are written in one transaction at the
    end, which also queues the report draft on commit.
    """
    from ml.key_images import choose_key_slices
    from ml.measurements import measure_lesions
    from ml.overlays import outline_overlay_png

    analysis = Analysis.objects.select_related("series").get(pk=analysis_id)
    timings = dict(analysis.stage_timings)

    def heartbeat(slices_done=None):
        now = timezone.now()
        fields = {"heartbeat_at": now}
        if slices_done is not None:
            fields["slices_done"] = slices_done
        Analysis.objects.filter(pk=analysis_id).update(**fields)
        if slices_done is not None:
            Series.objects.filter(pk=analysis.series_id, status=SeriesStatus.ANALYSING).update(
                slices_done=slices_done, updated_at=now
            )

    clock = time.perf_counter()
    loaded = load_series_slices(analysis, heartbeat=heartbeat)
    timings["load"] = round(time.perf_counter() - clock, 3)

    prediction = _run_recorded_versions(analysis, loaded, engine=engine, heartbeat=heartbeat)
    timings.update({stage: round(seconds, 3) for stage, seconds in prediction.timings.items()})

    clock = time.perf_counter()
    masks = np.asarray(prediction.masks, dtype=bool)
    geometry = _geometry(loaded.instances) if loaded.source != "grey8" else {}
    measurements = measure_lesions(masks, **geometry).to_dict()
    timings["measure"] = round(time.perf_counter() - clock, 3)

    clock = time.perf_counter()
    class_names = list(prediction.class_names)
    slice_probabilities = np.asarray(prediction.slice_probabilities, dtype=np.float64)
    tumour_probabilities = 1.0 - slice_probabilities[:, class_names.index("normal")]
    key_images = []
    display_slices, display_is_grey8 = _display_slices(loaded)
    for slice_index, reason in choose_key_slices(
        measurements=measurements,
        tumour_probabilities=tumour_probabilities,
        slice_locations=[instance.slice_location for instance in loaded.instances],
    ):
        instance = loaded.instances[slice_index]
        png = outline_overlay_png(display_slices[slice_index], masks[slice_index], is_grey8=display_is_grey8)
        key_image = KeyImage(
            analysis=analysis,
            slice_index=slice_index,
            reason=reason,
            slice_location=instance.slice_location,
            lesion_area=measurements["area_per_slice"][slice_index],
        )
        key_image.overlay.save(f"key-slice-{slice_index + 1:04d}-{reason}.png", ContentFile(png), save=False)
        key_images.append(key_image)
    masks_name = f"masks-{analysis.attempts}.npz"
    analysis.masks_file.save(masks_name, ContentFile(_masks_npz(masks)), save=False)

    with transaction.atomic():
        locked = Analysis.objects.select_for_update().get(pk=analysis_id)
        if locked.status == AnalysisStatus.SUCCEEDED:
            return locked
        KeyImage.objects.filter(analysis=locked).delete()
        KeyImage.objects.bulk_create(key_images)
        now = timezone.now()
        locked.masks_file = analysis.masks_file.name
        locked.predicted_class = prediction.series_class
        locked.class_probabilities = {name: float(p) for name, p in prediction.series_probabilities.items()}
        locked.indeterminate_reason = prediction.indeterminate_reason
        locked.slice_probabilities = [[round(float(p), 6) for p in row] for row in slice_probabilities]
        locked.measurements = measurements
        locked.precision = prediction.precision
        locked.slices_total = locked.slices_done = len(loaded.arrays)
        locked.status = AnalysisStatus.SUCCEEDED
        locked.failure_reason = ""
        locked.finished_at = now
        timings["store"] = round(time.perf_counter() - clock, 3)
        locked.stage_timings = timings
        locked.save()
        if not locked.is_superseded:
            Series.objects.filter(pk=locked.series_id).update(
                status=SeriesStatus.ANALYSED, status_reason="", slices_done=len(loaded.arrays),
                slices_total=len(loaded.arrays), updated_at=now,
            )
            transaction.on_commit(lambda: analysis_succeeded.send(sender=Analysis, analysis_id=analysis_id))
    return locked


def current_analyses_by_series(*, user, series_ids):
    """The current (not superseded) analysis of each series that ``user`` may see, by series id."""
    analyses = Analysis.objects.visible_to(user).current().filter(series_id__in=series_ids).order_by("generation")
    return {analysis.series_id: analysis for analysis in analyses}


def series_progress(series, analysis):
    """The status fields the worklist, the study page and the REST API all show for a series."""
    finished = analysis is not None and analysis.status == AnalysisStatus.SUCCEEDED
    return {
        "id": series.pk,
        "status": series.status,
        "status_display": series.get_status_display(),
        "slices_done": series.slices_done,
        "slices_total": series.slices_total,
        "failure_reason": series.status_reason if series.status in (SeriesStatus.FAILED, SeriesStatus.NO_MODEL)
        else "",
        "predicted_class": analysis.predicted_class if finished else "",
        "is_indeterminate": bool(finished and analysis.is_indeterminate),
        "is_demo_model": bool(analysis and analysis.is_demo_model),
        "analysis_id": analysis.pk if analysis else None,
        "generation": analysis.generation if analysis else None,
    }
