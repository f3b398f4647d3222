"""Queueing routes each series through the model catalogue: the right pair, or nothing with a reason."""

from unittest import mock

import pytest
from django.utils import timezone

from ml import services
from ml.models import Analysis
from ml.tasks import analyse_series
from scans.models import Series, SeriesStatus, Study
from tests.pipeline.builders import store_phantom_series

pytestmark = pytest.mark.django_db(transaction=True)


def received_series(north, *, modality, body_part="", description="", **sequence):
    study = Study.objects.create(hospital=north.hospital, patient=north.patient,
                                 study_instance_uid=f"2.25.{timezone.now().timestamp():.0f}{len(description)}")
    return Series.objects.create(
        hospital=north.hospital, study=study, series_instance_uid=f"{study.study_instance_uid}.1",
        modality=modality, body_part=body_part, description=description, status=SeriesStatus.RECEIVED,
        completed_at=timezone.now(), **sequence,
    )


@pytest.fixture
def analysis_delay():
    with mock.patch.object(analyse_series, "delay") as delay:
        yield delay


def test_lung_ct_series_runs_the_lung_pair(north, pipeline_settings, analysis_delay):
    series, _ = store_phantom_series(hospital=north.hospital, patient=north.patient, slices=1, size=32)
    analysis = services.queue_analysis(series_id=series.pk)
    assert (analysis.classifier_name, analysis.segmenter_name) == ("radassist-classifier", "radassist-segmenter")
    assert analysis.catalogue_entry == "lung-ct"


def test_brain_flair_series_runs_the_brain_pair(north, pipeline_settings, analysis_delay):
    series = received_series(north, modality="MR", body_part="BRAIN", description="AX T2 FLAIR",
                             scanning_sequence="SE\\IR", inversion_time=2500.0)
    analysis = services.queue_analysis(series_id=series.pk)
    assert (analysis.classifier_name, analysis.segmenter_name) == (
        "radassist-brain-classifier", "radassist-brain-segmenter")
    assert analysis.catalogue_entry == "brain-mr-flair" and analysis.is_demo_model
    series.refresh_from_db()
    assert series.status == SeriesStatus.QUEUED
    analysis_delay.assert_called_once_with(analysis_id=analysis.pk)


@pytest.mark.parametrize(
    ("series_fields", "named"),
    [
        ({"modality": "MR", "body_part": "KNEE", "description": "COR PD FLAIR"}, "MR, body part KNEE, sequence FLAIR"),
        ({"modality": "MR", "body_part": "BRAIN", "description": "AX T1 POST"}, "MR, body part BRAIN, sequence T1"),
    ],
)
def test_other_mr_is_held_with_the_reason_and_analysed_by_nothing(north, pipeline_settings, analysis_delay,
                                                                 series_fields, named):
    series = received_series(north, **series_fields)
    assert services.queue_analysis(series_id=series.pk) is None
    series.refresh_from_db()
    assert series.status == SeriesStatus.NO_MODEL
    assert series.status_reason.startswith("No model for this kind of series (") and named in series.status_reason
    assert not Analysis.objects.filter(series=series).exists()
    analysis_delay.assert_not_called()
    with pytest.raises(services.SeriesNotAnalysable, match="No model for this kind of series"):
        services.models_for_series(series)


def test_matching_entry_without_registered_models_names_the_kind(north, pipeline_settings, tmp_path, analysis_delay):
    pipeline_settings.MLFLOW_TRACKING_URI = f"sqlite:///{tmp_path / 'empty.db'}"
    series = received_series(north, modality="MR", body_part="HEAD", description="Dark Fluid")
    assert services.queue_analysis(series_id=series.pk) is None
    series.refresh_from_db()
    assert series.status == SeriesStatus.FAILED
    assert "No model for this kind of series (MR, body part HEAD, sequence FLAIR)" in series.status_reason
    assert "Brain MRI (FLAIR) models are not installed" in series.status_reason
    assert "radassist-brain-segmenter" in series.status_reason
    analysis_delay.assert_not_called()
