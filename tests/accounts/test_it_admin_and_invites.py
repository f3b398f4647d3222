"""Everyday correctness of accounts: invitation links, the invite form's role, the IT admin role, the login page."""

import pytest
from django.core import mail
from django.urls import reverse

from accounts.models import Invitation, Patient, Role
from accounts.services import InvitationError, invite_user
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def it_admin(north):
    return UserFactory(hospital=north.hospital, role=Role.IT_ADMIN, email="it@north.test")


def test_the_login_page_offers_no_sign_up(client):
    page = client.get(reverse("account_login")).content.decode()
    assert reverse("account_signup") not in page and "sign up" not in page.lower()
    assert "Accounts are created by invitation" in page


def test_the_invite_form_preselects_no_role_and_requires_one(client, north):
    client.force_login(north.admin)
    page = client.get(reverse("invite-user")).content.decode()
    assert '<option value="" selected>Choose a role</option>' in page

    response = client.post(reverse("invite-user"), {"email": "new@north.test", "role": ""})
    assert response.status_code == 200 and "This field is required" in response.content.decode()
    assert not Invitation.objects.exists()


def test_the_invitation_link_uses_the_address_the_admin_reached_the_portal_at(
    client, north, settings, django_capture_on_commit_callbacks
):
    settings.ALLOWED_HOSTS = ["radassist.example.org"]
    settings.SITE_URL = "http://127.0.0.1:8000"
    client.force_login(north.admin)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("invite-user"),
            {"email": "new@north.test", "role": Role.DOCTOR},
            SERVER_NAME="radassist.example.org",
            SERVER_PORT="8443",
        )
    assert "http://radassist.example.org:8443/invitations/" in mail.outbox[0].body


def test_without_a_request_the_link_uses_the_configured_site_address(
    north, settings, django_capture_on_commit_callbacks
):
    settings.SITE_URL = "https://portal.hospital.example/"
    with django_capture_on_commit_callbacks(execute=True):
        invite_user(hospital=north.hospital, email="cli@north.test", role=Role.DOCTOR, invited_by=None)
    assert "https://portal.hospital.example/invitations/" in mail.outbox[0].body


def test_an_it_admin_manages_users_but_sees_no_clinical_data(client, it_admin, north, draft_report):
    assert it_admin.is_staff
    assert not Patient.objects.visible_to(it_admin).exists()
    client.force_login(it_admin)

    admin_index = client.get(reverse("admin:index")).content.decode()
    assert reverse("admin:accounts_user_changelist") in admin_index
    assert reverse("admin:accounts_invitation_changelist") in admin_index
    for clinical in (
        "admin:accounts_patient_changelist",
        "admin:reports_report_changelist",
        "admin:scans_study_changelist",
    ):
        assert reverse(clinical) not in admin_index
        assert client.get(reverse(clinical)).status_code in (302, 403)
    assert north.doctor.email in client.get(reverse("admin:accounts_user_changelist")).content.decode()

    for page in (reverse("report-detail", args=[draft_report.pk]), reverse("worklist"), reverse("hospital-dashboard")):
        assert client.get(page).status_code == 404


def test_an_it_admin_invites_staff_but_not_patients(client, it_admin, north):
    client.force_login(it_admin)
    page = client.get(reverse("invite-user")).content.decode()
    assert 'value="patient"' not in page and 'name="patient"' not in page
    invite_user(hospital=north.hospital, email="doc@north.test", role=Role.DOCTOR, invited_by=it_admin)
    with pytest.raises(InvitationError, match="IT admins invite staff only"):
        invite_user(
            hospital=north.hospital, email="p@north.test", role=Role.PATIENT, invited_by=it_admin, patient=north.patient
        )


@pytest.fixture
def draft_report(north):
    from reports.services import create_draft_report
    from tests.factories import AnalysisFactory, SeriesFactory, StudyFactory

    series = SeriesFactory(study=StudyFactory(hospital=north.hospital, patient=north.patient))
    return create_draft_report(analysis=AnalysisFactory(series=series))


def test_a_hospital_admin_sets_their_hospitals_hold_default_and_nothing_else(client, north, south):
    client.force_login(north.admin)
    url = reverse("admin:accounts_hospital_change", args=[north.hospital.pk])
    response = client.post(url, {"hold_reports_by_default": "on", "name": "Renamed", "slug": "renamed"})
    assert response.status_code == 302
    north.hospital.refresh_from_db()
    assert north.hospital.hold_reports_by_default and north.hospital.name == "North Hospital"
    assert client.get(reverse("admin:accounts_hospital_change", args=[south.hospital.pk])).status_code in (302, 404)
