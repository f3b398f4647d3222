"""An analysis runs exactly the model versions recorded when it was queued."""

from unittest import mock

import pytest

from ml import registry, services
from ml.models import AnalysisStatus
from ml.tasks import analyse_series, inference_engine
from reports.tasks import create_draft_report
from tests.pipeline.builders import store_phantom_series
from tests.pipeline.tiny_models import register_tiny_models

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.filterwarnings("ignore::UserWarning")]


@pytest.fixture
def own_store(pipeline_settings, tmp_path):
    """A store of its own: this test promotes a new champion, which the shared store must never see."""
    pipeline_settings.MLFLOW_TRACKING_URI = f"sqlite:///{tmp_path / 'mlflow.db'}"
    register_tiny_models(pipeline_settings.MLFLOW_TRACKING_URI)
    return pipeline_settings.MLFLOW_TRACKING_URI


def test_champion_promoted_while_queued_does_not_change_what_runs(north, own_store):
    series, _ = store_phantom_series(hospital=north.hospital, patient=north.patient, slices=3, size=32)
    with mock.patch.object(analyse_series, "delay") as analysis_delay, mock.patch.object(create_draft_report, "delay"):
        analysis = services.queue_analysis(series_id=series.pk)
        assert (analysis.classifier_version, analysis.segmenter_version) == ("1", "1")

        # A new champion of both models arrives while the analysis waits in the queue.
        newer = register_tiny_models(own_store, seed=1)
        assert [version.version for version in newer] == [2, 2]
        assert registry.champion_version(registry.CLASSIFIER_MODEL_NAME, tracking_uri=own_store).version == 2

        with mock.patch("ml.inference.load_version", wraps=registry.load_version) as load_version:
            analyse_series.apply(kwargs=analysis_delay.call_args.kwargs)

    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.SUCCEEDED, analysis.failure_reason
    assert {(call.args[0], call.args[1]) for call in load_version.call_args_list} == {
        (registry.CLASSIFIER_MODEL_NAME, 1), (registry.SEGMENTER_MODEL_NAME, 1)
    }
    assert {(key.name, key.version) for key in inference_engine().cached_versions} == {
        (registry.CLASSIFIER_MODEL_NAME, 1), (registry.SEGMENTER_MODEL_NAME, 1)
    }
    # The record still names what ran; the worker did not rewrite it to the new champion.
    assert (analysis.classifier_version, analysis.segmenter_version) == ("1", "1")


def test_a_version_removed_from_the_registry_fails_with_a_reason(north, own_store):
    series, _ = store_phantom_series(hospital=north.hospital, patient=north.patient, slices=2, size=32)
    with mock.patch.object(analyse_series, "delay") as analysis_delay, mock.patch.object(create_draft_report, "delay"):
        analysis = services.queue_analysis(series_id=series.pk)
        analysis.classifier_version = "7"
        analysis.save(update_fields=["classifier_version"])
        analyse_series.apply(kwargs=analysis_delay.call_args.kwargs)
    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.FAILED
    assert "no longer available" in analysis.failure_reason
