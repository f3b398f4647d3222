"""Progress JSON and Reanalyse, through tenancy: another hospital's series answers 404."""

from unittest import mock

import pytest
from django.urls import reverse

from ml.models import Analysis, AnalysisStatus
from ml.tasks import analyse_series
from portal.models import AuditAction, AuditEvent
from scans.models import SeriesStatus
from tests.pipeline.builders import store_phantom_series


@pytest.fixture
def queued_series(north, pipeline_settings):
    from ml.services import queue_analysis

    series, _ = store_phantom_series(hospital=north.hospital, patient=north.patient, slices=2, size=32)
    with mock.patch.object(analyse_series, "delay"):
        analysis = queue_analysis(series_id=series.pk)
    Analysis.objects.filter(pk=analysis.pk).update(status=AnalysisStatus.RUNNING, slices_done=1)
    series.__class__.objects.filter(pk=series.pk).update(status=SeriesStatus.ANALYSING, slices_done=1)
    series.refresh_from_db()
    return series


def test_doctor_sees_progress_of_own_series_and_study(client, north, queued_series):
    client.force_login(north.doctor)
    progress = client.get(reverse("series-progress", kwargs={"pk": queued_series.pk})).json()
    assert progress["status"] == "analysing"
    assert (progress["slices_done"], progress["slices_total"]) == (1, 2)
    assert progress["predicted_class"] == ""
    study = client.get(reverse("study-progress", kwargs={"pk": queued_series.study_id})).json()
    assert [entry["id"] for entry in study["series"]] == [queued_series.pk]


@pytest.mark.parametrize("role", ["doctor", "admin", "patient_user"])
def test_other_hospital_gets_404_for_progress_and_reanalyse(client, north, south, queued_series, role):
    client.force_login(getattr(south, role))
    assert client.get(reverse("series-progress", kwargs={"pk": queued_series.pk})).status_code == 404
    assert client.get(reverse("study-progress", kwargs={"pk": queued_series.study_id})).status_code == 404
    assert client.post(reverse("series-reanalyse", kwargs={"pk": queued_series.pk})).status_code == 404
    assert Analysis.objects.filter(series=queued_series).count() == 1


def test_patient_of_the_series_cannot_see_progress(client, north, queued_series):
    client.force_login(north.patient_user)
    assert client.get(reverse("series-progress", kwargs={"pk": queued_series.pk})).status_code == 404


def test_reanalyse_supersedes_and_keeps_the_earlier_analysis(client, north, queued_series):
    first = queued_series.analyses.get()
    Analysis.objects.filter(pk=first.pk).update(status=AnalysisStatus.SUCCEEDED, predicted_class="normal")
    client.force_login(north.doctor)
    with mock.patch.object(analyse_series, "delay") as delay:
        with mock.patch("django.db.transaction.on_commit", side_effect=lambda callback, **_: callback()):
            response = client.post(reverse("series-reanalyse", kwargs={"pk": queued_series.pk}),
                                   {"next": "/worklist/"})
    assert response.status_code == 302 and response["Location"] == "/worklist/"
    first.refresh_from_db()
    second = queued_series.analyses.get(superseded_at__isnull=True)
    assert first.is_superseded and first.predicted_class == "normal"
    assert second.generation == 2 and second.requested_by == north.doctor
    delay.assert_called_once_with(analysis_id=second.pk)
    queued_series.refresh_from_db()
    assert queued_series.status == SeriesStatus.QUEUED
    event = AuditEvent.objects.get(action=AuditAction.REANALYSE)
    assert event.actor == north.doctor and event.target_id == str(queued_series.pk)


def test_reanalyse_through_the_api_with_an_api_key(api_client, north, queued_series):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {north.api_secret}")
    with mock.patch.object(analyse_series, "delay"):
        response = api_client.post(f"/api/v1/series/{queued_series.pk}/reanalyse")
    assert response.status_code == 202, response.content
    assert response.json()["generation"] == 2
    assert response.json()["series"]["status"] == "queued"
    assert queued_series.analyses.filter(superseded_at__isnull=True).count() == 1


def test_reanalyse_api_of_another_hospital_is_404(api_client, north, south, queued_series):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {south.api_secret}")
    assert api_client.post(f"/api/v1/series/{queued_series.pk}/reanalyse").status_code == 404
