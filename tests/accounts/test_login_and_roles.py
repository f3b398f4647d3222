import pytest
from django.core import mail
from django.urls import reverse

from accounts.models import Invitation, Role, User
from accounts.services import invite_user
from tests.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.django_db


def log_in(client, email, password=DEFAULT_PASSWORD):
    return client.post(reverse("account_login"), {"login": email, "password": password})


@pytest.mark.parametrize(
    ("role", "home"),
    [("doctor", "worklist"), ("patient_user", "patient-reports"), ("admin", "hospital-dashboard")],
)
def test_each_role_lands_on_its_own_home_after_login(client, north, role, home):
    response = log_in(client, getattr(north, role).email)
    assert response.status_code == 302
    assert response["Location"] == reverse(home)
    assert client.get(response["Location"]).status_code == 200


def test_wrong_password_is_refused_with_a_message(client, north):
    response = log_in(client, north.doctor.email, "not-the-password")
    assert response.status_code == 200
    assert b"not correct" in response.content or b"incorrect" in response.content.lower()
    assert "_auth_user_id" not in client.session


def test_repeated_failed_logins_are_rate_limited(client, north):
    for _ in range(5):
        log_in(client, north.doctor.email, "wrong-password")
    response = log_in(client, north.doctor.email)
    assert "_auth_user_id" not in client.session
    assert response.status_code in (200, 429)


def test_there_is_no_public_sign_up(client):
    response = client.post(
        reverse("account_signup"),
        {"email": "stranger@example.org", "password1": "a-long-password-1", "password2": "a-long-password-1"},
    )
    assert not User.objects.filter(email="stranger@example.org").exists()
    assert b"closed" in response.content.lower()


def test_a_patient_opening_a_doctor_page_gets_404(client, north):
    client.force_login(north.patient_user)
    assert client.get(reverse("worklist")).status_code == 404
    assert client.get(reverse("hospital-dashboard")).status_code == 404


def test_password_reset_sends_a_link_that_sets_a_new_password(client, north):
    client.post(reverse("account_reset_password"), {"email": north.doctor.email})
    assert len(mail.outbox) == 1
    link = next(line for line in mail.outbox[0].body.splitlines() if "/accounts/password/reset/key/" in line)
    path = link[link.index("/accounts/") :].strip()
    response = client.get(path, follow=True)
    form_url = response.redirect_chain[-1][0] if response.redirect_chain else path
    response = client.post(form_url, {"password1": "a-brand-new-password-42", "password2": "a-brand-new-password-42"})
    assert response.status_code == 302
    north.doctor.refresh_from_db()
    assert north.doctor.check_password("a-brand-new-password-42")


def test_invited_doctor_sets_a_password_and_lands_on_the_worklist(client, north):
    with_link = invite_and_get_link(client, north, "new.doctor@north.test", Role.DOCTOR)
    response = client.post(
        with_link,
        {"full_name": "Dr New", "password1": "a-strong-password-77", "password2": "a-strong-password-77"},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("worklist")
    user = User.objects.get(email="new.doctor@north.test")
    assert user.hospital == north.hospital and user.role == Role.DOCTOR


def test_reused_and_expired_invitations_explain_themselves(client, north):
    link = invite_and_get_link(client, north, "once@north.test", Role.DOCTOR)
    client.post(link, {"full_name": "Once", "password1": "a-strong-password-77", "password2": "a-strong-password-77"})
    client.logout()
    response = client.get(link)
    assert response.status_code == 410
    assert b"already been used" in response.content

    link = invite_and_get_link(client, north, "late@north.test", Role.DOCTOR)
    Invitation.objects.filter(email="late@north.test").update(expires_at="2000-01-01T00:00:00Z")
    response = client.post(
        link, {"full_name": "Late", "password1": "a-strong-password-77", "password2": "a-strong-password-77"}
    )
    assert response.status_code == 410
    assert b"expired" in response.content
    assert not User.objects.filter(email="late@north.test").exists()


def test_patient_invitation_links_the_login_to_the_record(client, north, django_capture_on_commit_callbacks):
    from tests.factories import PatientFactory

    record = PatientFactory(hospital=north.hospital)
    client.force_login(north.admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("invite-user"), {"email": "me@patients.test", "role": Role.PATIENT, "patient": record.pk}
        )
    assert response.status_code == 302
    client.logout()
    link = extract_link(mail.outbox[-1].body)
    client.post(link, {"full_name": "Me", "password1": "a-strong-password-77", "password2": "a-strong-password-77"})
    record.refresh_from_db()
    assert record.user.email == "me@patients.test"


def test_an_admin_cannot_invite_for_a_foreign_patient_record(client, north, south):
    client.force_login(north.admin)
    response = client.post(
        reverse("invite-user"), {"email": "x@patients.test", "role": Role.PATIENT, "patient": south.patient.pk}
    )
    assert response.status_code == 200
    assert b"Select a valid choice" in response.content
    assert not Invitation.objects.filter(email="x@patients.test").exists()


def invite_and_get_link(client, world, email, role):
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):
        invite_user(hospital=world.hospital, email=email, role=role, invited_by=world.admin)
    return extract_link(mail.outbox[-1].body)


def extract_link(body):
    line = next(line for line in body.splitlines() if "/invitations/" in line)
    return line[line.index("/invitations/") :].strip()
