"""Every list page costs the same number of queries however many rows the hospital has (no N+1).

Like the tenancy sweep, the pages come from the URL patterns themselves: every pattern without
parameters (admin changelists, the worklist, "My reports", the REST lists, QIDO searches...) is
requested by each role of the hospital with a few rows of every kind, then again with more of each;
a page whose query count grew queries per row.
"""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from reports.models import Report, ReportVersion, VersionStatus
from tests.factories import (
    AnalysisFactory,
    DoctorFactory,
    InstanceFactory,
    KeyImageFactory,
    PatientWithLoginFactory,
    SeriesFactory,
    StudyFactory,
    UploadBatchFactory,
    UploadedFileFactory,
)
from tests.test_tenancy_sweep import url_names_with_parameters

#: Pages that are not lists: they act (logout), redirect, or answer a form whose cost is not per row.
NOT_LISTS = ("logout", "account_logout", "api-schema", "api-docs", "health")


def add_rows(world, *, count):
    """``count`` more rows of every kind in the world's hospital, several tied to its patient login."""
    from accounts.models import Invitation

    for index in range(count):
        patient = world.patient if index % 2 == 0 else PatientWithLoginFactory(hospital=world.hospital)
        doctor = DoctorFactory(hospital=world.hospital)
        study = StudyFactory(hospital=world.hospital, patient=patient, study_date=datetime.date(2026, 1, 1 + index))
        series = SeriesFactory(study=study)
        for _ in range(2):
            InstanceFactory(series=series)
        analysis = AnalysisFactory(series=series)
        KeyImageFactory(analysis=analysis)
        report = Report.objects.create(hospital=world.hospital, study=study)
        report.series.add(series)
        ReportVersion.objects.create(
            hospital=world.hospital, report=report, number=1, status=VersionStatus.FINAL, signed_by=doctor,
            signed_by_name=doctor.full_name, signed_at=datetime.datetime(2026, 1, 2, tzinfo=datetime.UTC),
            created_by=doctor,
        )
        draft = ReportVersion.objects.create(hospital=world.hospital, report=report, number=2, created_by=doctor)
        draft.analyses.add(analysis)
        batch = UploadBatchFactory(hospital=world.hospital, uploaded_by=doctor, patient=patient)
        UploadedFileFactory(batch=batch)
        Invitation.objects.create(
            hospital=world.hospital, email=f"invitee{index}-{Invitation.objects.count()}@north.test", role="doctor",
            token_hash=f"{Invitation.objects.count()}-{index}".ljust(64, "0"), invited_by=world.admin,
            expires_at="2999-01-01T00:00:00Z",
        )


def list_urls():
    return sorted(
        reverse(name) for name, parameters in url_names_with_parameters()
        if not parameters and not name.endswith(NOT_LISTS)
    )


def query_counts(world, client):
    counts = {}
    for role in ("admin", "doctor", "patient_user"):
        client.force_login(getattr(world, role))
        for url in list_urls():
            with CaptureQueriesContext(connection) as queries:
                response = client.get(url)
            if response.status_code == 200:
                counts[(role, url)] = len(queries)
    return counts


@pytest.mark.django_db
def test_list_pages_cost_the_same_queries_with_more_rows(north, client):
    add_rows(north, count=2)
    few = query_counts(north, client)
    add_rows(north, count=6)
    many = query_counts(north, client)

    assert len(few) > 20, "the pages should include the admin changelists, the worklist and the REST lists"
    assert ("admin", reverse("admin:accounts_user_changelist")) in few
    assert ("doctor", reverse("worklist")) in few
    grown = {page: (few[page], many[page]) for page in few if many.get(page, 0) > few[page]}
    assert grown == {}, f"queries per row, (role, url): (with 2 rows, with 8 rows): {grown}"
