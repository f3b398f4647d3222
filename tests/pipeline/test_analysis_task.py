"""The analysis task end to end, in-process, with tiny real models (eager Celery, SQLite)."""

import io
from unittest import mock

import numpy as np
import pytest
from django.utils import timezone

from ml import services
from ml.models import Analysis, AnalysisStatus, KeyImage
from ml.tasks import analyse_series
from reports.tasks import create_draft_report
from scans.models import SeriesStatus
from tests.pipeline.builders import store_phantom_series

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sent_tasks():
    """Tasks the code under test queued: analyses (not run until the test runs them) and report drafts."""
    with (
        mock.patch.object(analyse_series, "delay") as analysis_delay,
        mock.patch.object(create_draft_report, "delay") as report_drafts,
    ):
        yield analysis_delay, report_drafts


def queue(series):
    return services.queue_analysis(series_id=series.pk)


def run_queued(analysis_delay):
    for call in analysis_delay.call_args_list:
        analyse_series.apply(kwargs=call.kwargs)


def test_completed_series_is_analysed_and_report_draft_queued(north, pipeline_settings, sent_tasks):
    analysis_delay, report_drafts = sent_tasks
    series, phantom = store_phantom_series(hospital=north.hospital, patient=north.patient, slices=6, size=64)

    analysis = queue(series)
    series.refresh_from_db()
    assert series.status == SeriesStatus.QUEUED
    assert analysis_delay.call_args.kwargs == {"analysis_id": analysis.pk}
    assert (analysis.classifier_name, analysis.classifier_version) == ("radassist-classifier", "1")
    assert analysis.is_demo_model

    run_queued(analysis_delay)
    analysis.refresh_from_db()
    series.refresh_from_db()
    assert analysis.status == AnalysisStatus.SUCCEEDED, analysis.failure_reason
    assert series.status == SeriesStatus.ANALYSED
    assert (series.slices_done, series.slices_total) == (6, 6)
    assert analysis.predicted_class in analysis.class_probabilities
    assert sum(analysis.class_probabilities.values()) == pytest.approx(1.0, abs=1e-4)
    assert len(analysis.slice_probabilities) == 6 and len(analysis.slice_probabilities[0]) == 4
    assert analysis.measurements["has_physical_scale"] is True
    assert analysis.measurements["area_unit"] == "mm2"
    assert set(analysis.stage_timings) >= {
        "queue_wait", "load", "preprocess", "classify", "segment", "measure", "store"
    }
    assert analysis.started_at <= analysis.finished_at <= timezone.now()
    with analysis.masks_file.open("rb") as stored:
        masks = np.load(io.BytesIO(stored.read()))["masks"]
    assert masks.shape == (6, 64, 64) and masks.dtype == bool

    key_images = list(analysis.key_images.all())
    assert 2 <= len(key_images) <= 4
    assert len({image.slice_index for image in key_images}) == len(key_images), "never the same slice twice"
    with key_images[0].overlay.open("rb") as overlay:
        assert overlay.read(8) == b"\x89PNG\r\n\x1a\n"
    report_drafts.assert_called_once_with(analysis_id=analysis.pk)


def test_png_series_reports_pixel_counts(north, pipeline_settings, sent_tasks):
    analysis_delay, _ = sent_tasks
    series, _ = store_phantom_series(hospital=north.hospital, patient=north.patient, slices=3, size=64, as_png=True)
    analysis = queue(series)
    run_queued(analysis_delay)
    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.SUCCEEDED, analysis.failure_reason
    assert analysis.measurements["has_physical_scale"] is False
    assert analysis.measurements["area_unit"] == "pixels"
    assert analysis.measurements["volume_ml"] is None


def test_redelivered_and_duplicated_work_makes_one_analysis_and_one_draft(north, pipeline_settings, sent_tasks):
    analysis_delay, report_drafts = sent_tasks
    series, _ = store_phantom_series(hospital=north.hospital, patient=north.patient, slices=2, size=64)
    first = queue(series)
    again = queue(series)  # ingest finishing the same series twice
    assert again.pk == first.pk
    run_queued(analysis_delay)
    analyse_series.apply(kwargs={"analysis_id": first.pk})  # a redelivery after success
    assert Analysis.objects.filter(series=series).count() == 1
    assert KeyImage.objects.filter(analysis__series=series).count() >= 2
    report_drafts.assert_called_once_with(analysis_id=first.pk)
    assert queue(series).pk == first.pk
    assert analysis_delay.call_count == 2  # not sent again once the analysis has run


def test_series_that_keeps_killing_its_worker_ends_failed(north, pipeline_settings, sent_tasks):
    _, report_drafts = sent_tasks
    series, _ = store_phantom_series(hospital=north.hospital, patient=north.patient, slices=2, size=64)
    analysis = queue(series)
    # Deliveries that started and never finished, as a killed worker leaves them.
    Analysis.objects.filter(pk=analysis.pk).update(
        attempts=pipeline_settings.ANALYSIS_MAX_ATTEMPTS, status=AnalysisStatus.RUNNING, task_id="lost-delivery",
        heartbeat_at=timezone.now() - timezone.timedelta(hours=1),
    )
    analyse_series.apply(kwargs={"analysis_id": analysis.pk})
    analysis.refresh_from_db()
    series.refresh_from_db()
    assert analysis.status == AnalysisStatus.FAILED
    assert "stopped unexpectedly 3 times" in analysis.failure_reason
    assert series.status == SeriesStatus.FAILED
    assert "Reanalyse" in series.status_reason
    report_drafts.assert_not_called()


def test_undecodable_pixel_data_fails_with_a_reason_for_the_doctor(north, pipeline_settings, sent_tasks):
    analysis_delay, report_drafts = sent_tasks
    series, _ = store_phantom_series(hospital=north.hospital, patient=north.patient, slices=3, size=64)
    broken = series.instances.in_slice_order()[1]
    with broken.file.open("rb") as stored:
        content = stored.read()
    with broken.file.storage.open(broken.file.name, "wb") as stored:
        stored.write(content[: len(content) - 4000])  # pixel data cut short
    analysis = queue(series)
    run_queued(analysis_delay)
    analysis.refresh_from_db()
    series.refresh_from_db()
    assert analysis.status == AnalysisStatus.FAILED
    assert series.status == SeriesStatus.FAILED
    assert "Image 2 of the series" in series.status_reason and "could not be decoded" in series.status_reason
    report_drafts.assert_not_called()


def test_database_outage_is_retried_then_completes(north, pipeline_settings, sent_tasks):
    from celery.exceptions import Retry
    from django.db import OperationalError

    analysis_delay, report_drafts = sent_tasks
    series, _ = store_phantom_series(hospital=north.hospital, patient=north.patient, slices=2, size=64)
    analysis = queue(series)
    outage = OperationalError("server closed the connection unexpectedly")
    with mock.patch.object(services, "run_analysis", side_effect=outage), pytest.raises(Retry):
        run_queued(analysis_delay)
    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.QUEUED
    assert analysis.attempts == 0  # the delivery that hit the outage gave its attempt back
    run_queued(analysis_delay)  # the retry
    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.SUCCEEDED
    report_drafts.assert_called_once_with(analysis_id=analysis.pk)


def test_without_models_the_series_fails_with_an_actionable_reason(north, pipeline_settings, tmp_path, sent_tasks):
    pipeline_settings.MLFLOW_TRACKING_URI = f"sqlite:///{tmp_path / 'empty.db'}"
    series, _ = store_phantom_series(hospital=north.hospital, patient=north.patient, slices=1, size=64)
    assert services.queue_analysis(series_id=series.pk) is None
    series.refresh_from_db()
    assert series.status == SeriesStatus.FAILED
    assert "bootstrap_models" in series.status_reason


def test_late_slices_get_a_new_analysis_of_the_whole_series(north, pipeline_settings, sent_tasks):
    analysis_delay, _ = sent_tasks
    series, _ = store_phantom_series(hospital=north.hospital, patient=north.patient, slices=5, size=64)
    first = queue(series)
    run_queued(analysis_delay)
    assert queue(series) == first, "nothing new: the finished analysis stands"

    late = series.instances.order_by("instance_number").last()
    late.pk, late.sop_instance_uid, late.instance_number = None, late.sop_instance_uid + ".9", 6
    late.image_position_patient = [*late.image_position_patient[:2], late.image_position_patient[2] + 5.0]
    late.slice_location += 5.0  # one slice further along (the phantom is axial)
    late.save()
    analysis_delay.reset_mock()
    second = queue(series)
    first.refresh_from_db()
    assert second.generation == first.generation + 1 and first.is_superseded
    assert second.slices_total == 6
    run_queued(analysis_delay)
    second.refresh_from_db()
    assert second.status == AnalysisStatus.SUCCEEDED and len(second.slice_probabilities) == 6


def test_two_slices_at_one_position_fail_with_a_reason_the_doctor_can_act_on(north, pipeline_settings, sent_tasks):
    analysis_delay, _ = sent_tasks
    series, _ = store_phantom_series(hospital=north.hospital, patient=north.patient, slices=4, size=64)
    repeated = series.instances.order_by("instance_number").last()
    repeated.pk, repeated.sop_instance_uid, repeated.instance_number = None, repeated.sop_instance_uid + ".9", 5
    repeated.save()
    analysis = queue(series)
    run_queued(analysis_delay)
    analysis.refresh_from_db()
    series.refresh_from_db()
    assert analysis.status == AnalysisStatus.FAILED and series.status == SeriesStatus.FAILED
    assert "lie at the same position" in analysis.failure_reason
    assert "reconstruction as a series of its own" in series.status_reason
