"""Login limits that slow a guesser down without locking the doctor out, and the idle session timeout."""

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from tests.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.django_db

ATTACKER, DOCTORS_DESK, PROXY = "203.0.113.66", "198.51.100.20", "10.0.0.5"


@pytest.fixture(autouse=True)
def fresh_limits(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    yield
    cache.clear()


def log_in(email, password=DEFAULT_PASSWORD, **headers):
    client = Client()
    response = client.post(reverse("account_login"), {"login": email, "password": password}, **headers)
    return client, response


def logged_in(client):
    return "_auth_user_id" in client.session


def test_guessing_a_doctors_password_from_elsewhere_does_not_lock_the_doctor_out(north):
    for _ in range(12):
        log_in(north.doctor.email, "guess", REMOTE_ADDR=ATTACKER)
    attacker, _ = log_in(north.doctor.email, REMOTE_ADDR=ATTACKER)
    assert not logged_in(attacker), "the guesser's own address is held back, the right password included"

    doctor, _ = log_in(north.doctor.email, REMOTE_ADDR=DOCTORS_DESK)
    assert logged_in(doctor)


def test_failures_back_off_in_steps(north, monkeypatch):
    from allauth.core.internal import ratelimit

    now = [1_000_000.0]
    monkeypatch.setattr(ratelimit.time, "time", lambda: now[0])
    for _ in range(5):
        log_in(north.doctor.email, "guess", REMOTE_ADDR=ATTACKER)
    assert not logged_in(log_in(north.doctor.email, REMOTE_ADDR=ATTACKER)[0])
    now[0] += 5 * 60 + 1
    for _ in range(5):
        log_in(north.doctor.email, "guess", REMOTE_ADDR=ATTACKER)
    now[0] += 5 * 60 + 1
    assert not logged_in(log_in(north.doctor.email, REMOTE_ADDR=ATTACKER)[0]), "10 failures: an hour's wait"
    now[0] += 3600
    assert logged_in(log_in(north.doctor.email, REMOTE_ADDR=ATTACKER)[0])


def test_behind_the_trusted_proxy_one_clients_failures_do_not_lock_out_the_others(north, south, settings):
    settings.RADASSIST_TRUSTED_PROXIES = [PROXY]
    for account in (north.doctor, north.admin, south.doctor) * 12:
        log_in(account.email, "guess", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=ATTACKER)
    doctor, _ = log_in(north.doctor.email, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=DOCTORS_DESK)
    assert logged_in(doctor)


@pytest.fixture
def clock(monkeypatch):
    import accounts.middleware

    now = [2_000_000.0]
    monkeypatch.setattr(accounts.middleware.time, "time", lambda: now[0])
    return now


def test_staff_sessions_end_after_thirty_idle_minutes(client, north, clock):
    client.force_login(north.doctor)
    assert client.get(reverse("worklist")).status_code == 200
    clock[0] += 29 * 60
    assert client.get(reverse("worklist")).status_code == 200, "activity within the window keeps the session"
    clock[0] += 20 * 60
    series_progress = "/series/1/progress.json"
    client.get(series_progress, HTTP_ACCEPT="application/json")  # a page polling by itself is not activity
    clock[0] += 11 * 60
    response = client.get(reverse("worklist"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("account_login"))
    assert "_auth_user_id" not in client.session

    client.force_login(north.doctor)
    client.get(reverse("worklist"))
    clock[0] += 31 * 60
    answer = client.get("/api/v1/studies/", HTTP_ACCEPT="application/json")
    assert answer.status_code == 401 and "without activity" in answer.json()["detail"]


def test_patients_keep_the_default_session(client, north, clock):
    client.force_login(north.patient_user)
    assert client.get(reverse("patient-reports")).status_code == 200
    clock[0] += 6 * 3600
    assert client.get(reverse("patient-reports")).status_code == 200
