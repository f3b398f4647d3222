"""Priors: the patient's earlier studies, side by side at the lesion's level, and the lesion's history."""

import datetime
import math

import pytest
from django.urls import reverse

from clinic.priors import measurement_history, volume_doubling_time_days
from tests.factories import AnalysisFactory, InstanceFactory, SeriesFactory, StudyFactory

pytestmark = pytest.mark.django_db


def test_volume_doubling_time_follows_the_exponential_growth_formula():
    assert volume_doubling_time_days(earlier_ml=1.0, later_ml=2.0, days=90) == pytest.approx(90)
    assert volume_doubling_time_days(earlier_ml=1.0, later_ml=1.5, days=100) == pytest.approx(
        100 * math.log(2) / math.log(1.5))
    assert volume_doubling_time_days(earlier_ml=2.0, later_ml=1.0, days=90) is None  # shrinking: no doubling time
    assert volume_doubling_time_days(earlier_ml=1.0, later_ml=2.0, days=0) is None


def analysed_study(world, *, day, volume, diameter, locations):
    study = StudyFactory(hospital=world.hospital, patient=world.patient, study_date=day)
    series = SeriesFactory(study=study)
    for location in locations:
        InstanceFactory(series=series, slice_location=location)
    measurements = {**AnalysisFactory.measurements.function(), "volume_ml": volume, "largest_diameter": diameter,
                    "largest_area_slice_index": 2}
    AnalysisFactory(series=series, measurements=measurements)
    return study


@pytest.fixture
def follow_up(north):
    first = analysed_study(north, day=datetime.date(2026, 1, 10), volume=1.0, diameter=12.0,
                           locations=[-130.0, -125.0, -120.0, -115.0, -110.0])
    second = analysed_study(north, day=datetime.date(2026, 4, 10), volume=2.0, diameter=15.5,
                            locations=[-122.5, -120.0, -117.5, -115.0, -112.5, -110.0])
    return first, second


def test_history_gives_growth_and_doubling_time_between_studies(north, follow_up):
    first, second = follow_up
    history = measurement_history(user=north.doctor, patient_id=north.patient.pk)
    assert [point.study for point in history] == [first, second]
    assert history[0].growth_percent is None
    assert history[1].growth_percent == pytest.approx(100.0)
    assert history[1].doubling_time_days == pytest.approx(90.0)


def test_study_page_lists_the_prior_and_the_history(client, north, follow_up):
    first, second = follow_up
    client.force_login(north.doctor)
    page = client.get(reverse("study-detail", kwargs={"pk": second.pk})).content.decode()
    assert reverse("study-compare", kwargs={"pk": second.pk, "prior_pk": first.pk}) in page
    assert "2.00 mL" in page and "100%" in page and "90 days" in page
    assert "<polyline" in page


def test_compare_opens_the_prior_at_the_current_lesion_level(client, north, follow_up):
    first, second = follow_up
    client.force_login(north.doctor)
    response = client.get(reverse("study-compare", kwargs={"pk": second.pk, "prior_pk": first.pk}))
    assert response.status_code == 200
    current, prior = (side["viewer_state"] for side in response.context["sides"])
    level = current["sliceLocations"][2]  # the current study's largest lesion slice
    assert prior["sliceLocations"][prior["startSlice"]] == pytest.approx(level, abs=2.5)


def test_another_hospital_cannot_compare(client, north, south, follow_up):
    first, second = follow_up
    client.force_login(south.doctor)
    assert client.get(reverse("study-compare", kwargs={"pk": second.pk, "prior_pk": first.pk})).status_code == 404
