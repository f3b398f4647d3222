"""The doctor's study page: one series in the viewer, the AI findings of every series, the report panel."""

from django.urls import reverse

from portal.models import AuditEvent
from tests.factories import AnalysisFactory, SeriesFactory, StudyFactory


def test_study_page_shows_viewer_findings_and_report_panel(client, north):
    study = StudyFactory(hospital=north.hospital, patient=north.patient)
    waiting = SeriesFactory(study=study, series_number=1, status="queued", description="Scout")
    analysed = SeriesFactory(study=study, series_number=2, description="Chest lung kernel")
    AnalysisFactory(series=analysed, predicted_class="squamous_cell_carcinoma")
    client.force_login(north.doctor)

    response = client.get(reverse("study-detail", kwargs={"pk": study.pk}))
    assert response.status_code == 200
    # The analysed series is shown first; the other one is a link that shows it instead.
    assert response.context["shown"] == analysed
    html = response.content.decode()
    assert f'href="?series={waiting.pk}"' in html
    assert "data-viewer" in html and "Squamous cell carcinoma" in html
    assert reverse("series-reanalyse", kwargs={"pk": analysed.pk}) in html
    assert 'id="study-report"' in html and 'data-study-progress=' in html
    assert AuditEvent.objects.filter(target_type="scans.Study", target_id=str(study.pk), action="view").count() == 1

    assert client.get(reverse("study-detail", kwargs={"pk": study.pk}), {"series": waiting.pk}).context[
        "shown"] == waiting


def test_study_page_of_another_hospital_or_for_a_patient_is_not_found(client, north, south):
    study = StudyFactory(hospital=north.hospital, patient=north.patient)
    for user in (south.doctor, north.patient.user):
        client.force_login(user)
        assert client.get(reverse("study-detail", kwargs={"pk": study.pk})).status_code == 404


def test_series_no_model_reads_shows_why_it_was_not_analysed(client, north):
    study = StudyFactory(hospital=north.hospital, patient=north.patient)
    reason = "No model for this kind of series (MR, body part KNEE, sequence T2), so it was not analysed."
    SeriesFactory(study=study, modality="MR", body_part="KNEE", status="no_model", status_reason=reason)
    client.force_login(north.doctor)
    html = client.get(reverse("study-detail", kwargs={"pk": study.pk})).content.decode()
    assert "No model for this series" in html and reason in html
