"""Logins, logouts and failed logins are audited, with a client address that a client cannot forge."""

import pytest
from django.urls import reverse

from portal.models import AuditAction, AuditEvent
from tests.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.django_db


def log_in(client, email, password=DEFAULT_PASSWORD, **headers):
    return client.post(reverse("account_login"), {"login": email, "password": password}, **headers)


def test_login_logout_and_failed_login_are_recorded(client, north):
    log_in(client, north.doctor.email, "wrong-password")
    log_in(client, "nobody@nowhere.test", "wrong-password")
    log_in(client, north.doctor.email)
    client.post(reverse("account_logout"))

    logins = AuditEvent.objects.exclude(action=AuditAction.API_KEY).order_by("pk")
    events = list(logins.values_list("action", "target_id", "actor_id", "hospital_id"))
    doctor = north.doctor
    assert events == [
        (AuditAction.LOGIN_FAILED, str(doctor.pk), None, north.hospital.pk),
        (AuditAction.LOGIN_FAILED, "", None, None),
        (AuditAction.LOGIN, str(doctor.pk), doctor.pk, north.hospital.pk),
        (AuditAction.LOGOUT, str(doctor.pk), doctor.pk, north.hospital.pk),
    ]
    failed = AuditEvent.objects.filter(action=AuditAction.LOGIN_FAILED).order_by("pk")
    assert [event.detail["email"] for event in failed] == [doctor.email, "nobody@nowhere.test"]
    assert all("password" not in str(event.detail) for event in failed)
    assert all(event.ip_address == "127.0.0.1" for event in logins)


@pytest.mark.parametrize("forwarded", ["not-an-ip", "<script>alert(1)</script>", "203.0.113.9", ""])
def test_without_trusted_proxies_the_forwarded_header_is_ignored(client, north, forwarded, settings):
    settings.RADASSIST_TRUSTED_PROXIES = []
    log_in(client, north.doctor.email, HTTP_X_FORWARDED_FOR=forwarded, REMOTE_ADDR="198.51.100.4")
    assert AuditEvent.objects.get(action=AuditAction.LOGIN).ip_address == "198.51.100.4"


@pytest.mark.parametrize(
    ("forwarded", "stored"),
    [
        ("203.0.113.9", "203.0.113.9"),
        # A client's own X-Forwarded-For is kept by the proxy, which appends the address it saw.
        ("192.0.2.66, 203.0.113.9", "203.0.113.9"),
        ("not-an-ip", "10.0.0.5"),
        ("<script>alert(1)</script>", "10.0.0.5"),
        ("2001:db8::7", "2001:db8::7"),
    ],
)
def test_behind_a_trusted_proxy_the_client_is_the_hop_it_forwards_validated(client, north, settings, forwarded,
                                                                             stored):
    settings.RADASSIST_TRUSTED_PROXIES = ["10.0.0.0/24"]
    log_in(client, north.doctor.email, HTTP_X_FORWARDED_FOR=forwarded, REMOTE_ADDR="10.0.0.5")
    assert AuditEvent.objects.get(action=AuditAction.LOGIN).ip_address == stored


def test_a_forwarded_header_from_an_untrusted_peer_is_ignored(client, north, settings):
    settings.RADASSIST_TRUSTED_PROXIES = ["10.0.0.5"]
    log_in(client, north.doctor.email, HTTP_X_FORWARDED_FOR="203.0.113.9", REMOTE_ADDR="198.51.100.4")
    assert AuditEvent.objects.get(action=AuditAction.LOGIN).ip_address == "198.51.100.4"


def test_two_factor_codes_refused_and_accepted_are_recorded(client, north):
    from allauth.mfa.totp.internal import auth as totp

    secret = totp.generate_totp_secret()
    totp.TOTP.activate(north.doctor, secret)
    log_in(client, north.doctor.email)
    client.post(reverse("mfa_authenticate"), {"code": "000000"})
    code = totp.format_hotp_value(totp.hotp_value(secret, next(totp.yield_hotp_counters_from_time())))
    client.post(reverse("mfa_authenticate"), {"code": code})
    assert "_auth_user_id" in client.session

    events = AuditEvent.objects.filter(action=AuditAction.MFA).order_by("pk")
    assert [event.detail["event"] for event in events] == ["code refused", "code accepted"]
    assert all(event.target_id == str(north.doctor.pk) for event in events)
    assert AuditEvent.objects.filter(action=AuditAction.LOGIN, actor=north.doctor).count() == 1
