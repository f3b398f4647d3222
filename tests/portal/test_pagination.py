"""Totals that stay cheap: exact for short lists, the planner's estimate for long ones on PostgreSQL."""

import pytest
from django.db import connection

from accounts.models import Patient
from portal import pagination
from portal.pagination import EstimatedCountPaginator, estimated_count
from tests.factories import PatientFactory


@pytest.fixture
def patients(north):
    for _ in range(7):
        PatientFactory(hospital=north.hospital)
    return Patient.objects.for_hospital(north.hospital).order_by("full_name", "pk")


def test_short_lists_are_counted_exactly(patients):
    assert estimated_count(patients, exact_up_to=100) == (patients.count(), False)


def test_long_lists_are_estimated_on_postgresql_and_counted_elsewhere(patients):
    count, is_estimate = estimated_count(patients, exact_up_to=3)
    if connection.vendor == "postgresql":
        assert is_estimate and count >= 4
    else:
        assert (count, is_estimate) == (patients.count(), False)


def test_every_page_stays_reachable_and_knows_whether_more_follow(patients, monkeypatch):
    monkeypatch.setattr(pagination, "EXACT_COUNT_LIMIT", 3)
    paginator = EstimatedCountPaginator(patients, 3)
    pages = [paginator.page(number) for number in (1, 2, 3)]
    assert patients.count() == 8  # seven and the world's own patient
    assert [len(page.object_list) for page in pages] == [3, 3, 2]
    assert [page.has_next() for page in pages] == [True, True, False]
    assert [row for page in pages for row in page.object_list] == list(patients)
