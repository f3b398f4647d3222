"""A claimed analysis records how long its series waited from completion to a worker taking it."""

import datetime

from django.utils import timezone

from ml.models import AnalysisStatus
from ml.services import Claim, claim_analysis
from tests.factories import AnalysisFactory, SeriesFactory, StudyFactory


def test_claim_records_queue_wait_and_time_from_series_completion(north):
    completed_at = timezone.now() - datetime.timedelta(seconds=42)
    series = SeriesFactory(study=StudyFactory(hospital=north.hospital), status="queued", completed_at=completed_at)
    analysis = AnalysisFactory(series=series, status=AnalysisStatus.QUEUED, finished_at=None)

    assert claim_analysis(analysis_id=analysis.pk, task_id="delivery-1") == Claim.RUN

    analysis.refresh_from_db()
    assert 42 <= analysis.stage_timings["completion_to_claim"] < 100
    assert analysis.stage_timings["queue_wait"] >= 0


def test_a_series_without_completion_time_records_no_completion_wait(north):
    series = SeriesFactory(study=StudyFactory(hospital=north.hospital), status="queued", completed_at=None)
    analysis = AnalysisFactory(series=series, status=AnalysisStatus.QUEUED, finished_at=None)

    claim_analysis(analysis_id=analysis.pk, task_id="delivery-1")

    analysis.refresh_from_db()
    assert "completion_to_claim" not in analysis.stage_timings
