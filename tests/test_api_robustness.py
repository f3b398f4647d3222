"""REST parameters cannot cause a server error or reveal whether another hospital's row exists."""

import json

import pytest

from tests.factories import InstanceFactory, SeriesFactory

pytestmark = pytest.mark.django_db

TOO_LARGE = str(2**70)
#: Every filter that names a row by its id, with the kind of row it names.
ID_FILTERS = [
    ("/api/v1/studies/", "patient", "patient"),
    ("/api/v1/series/", "study", "study"),
    ("/api/v1/series/", "patient", "patient"),
    ("/api/v1/instances/", "series", "series"),
    ("/api/v1/instances/", "study", "study"),
    ("/api/v1/reports/", "study", "study"),
    ("/api/v1/reports/", "study__patient", "patient"),
]


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def rows(north, south):
    """A series with instances in each hospital; ids of the south rows, as the north key would guess them."""
    for world in (north, south):
        series = SeriesFactory(study__hospital=world.hospital, study__patient=world.patient)
        InstanceFactory.create_batch(3, series=series)
        world.rows = {"patient": world.patient.pk, "study": series.study_id, "series": series.pk}
    return north, south


def get(api_client, world, url):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {world.api_secret}")
    return api_client.get(url)


def test_numbers_too_large_for_the_database_are_a_400_with_a_message(api_client, rows):
    north, _ = rows
    for url, parameter, _kind in ID_FILTERS:
        for value in (TOO_LARGE, f"-{TOO_LARGE}", "1e400", "9223372036854775808"):
            response = get(api_client, north, f"{url}?{parameter}={value}")
            assert response.status_code == 400, (url, parameter, value, response.content[:200])
            assert parameter in response.json()


def test_another_hospitals_id_answers_exactly_like_a_missing_id(api_client, rows):
    north, south = rows
    for url, parameter, kind in ID_FILTERS:
        foreign, missing = south.rows[kind], 10**9
        foreign_answer = get(api_client, north, f"{url}?{parameter}={foreign}")
        missing_answer = get(api_client, north, f"{url}?{parameter}={missing}")
        assert foreign_answer.status_code == missing_answer.status_code, (url, parameter)
        assert json.loads(foreign_answer.content.decode().replace(str(foreign), "ID")) == json.loads(
            missing_answer.content.decode().replace(str(missing), "ID")
        ), (url, parameter)
        assert get(api_client, north, f"{url}?{parameter}={north.rows[kind]}").status_code == 200, (url, parameter)


def test_page_size_is_capped_and_offsets_past_the_end_are_empty(api_client, rows, settings):
    north, _ = rows
    settings.RADASSIST_API_MAX_PAGE_SIZE = 2
    page = get(api_client, north, "/api/v1/instances/?limit=100000")  # paged by cursor: the limit is capped too
    assert page.status_code == 200 and len(page.json()["results"]) == 2 and page.json()["next"]
    SeriesFactory.create_batch(2, study__hospital=north.hospital, study__patient=north.patient)
    page = get(api_client, north, "/api/v1/series/?limit=100000")
    assert page.status_code == 200 and len(page.json()["results"]) == 2 and page.json()["count"] == 3
    for offset in (TOO_LARGE, "9223372036854775807", "4"):
        beyond = get(api_client, north, f"/api/v1/series/?offset={offset}&limit={TOO_LARGE}")
        assert beyond.status_code == 200, beyond.content[:200]
        assert beyond.json()["results"] == []
