"""Every analysis records the numeric precision its networks ran in (issue 18)."""

import pytest

from ml import services
from ml.inference import InferenceEngine
from ml.models import AnalysisStatus
from tests.pipeline.builders import store_phantom_series

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_the_analysis_records_the_precision_it_ran_in(north, pipeline_settings, precision, monkeypatch):
    monkeypatch.setattr(services, "_send_analysis_task", lambda analysis_id: None)
    series, _ = store_phantom_series(hospital=north.hospital, patient=north.patient, slices=3, size=48)
    analysis = services.queue_analysis(series_id=series.pk)
    assert analysis.precision == ""

    engine = InferenceEngine(tracking_uri=pipeline_settings.MLFLOW_TRACKING_URI, batch_size=4, precision=precision)
    analysis = services.run_analysis(analysis_id=analysis.pk, engine=engine)

    assert analysis.status == AnalysisStatus.SUCCEEDED
    analysis.refresh_from_db()
    assert analysis.precision == precision
