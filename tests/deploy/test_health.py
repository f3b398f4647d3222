"""``/health/`` for load balancers: 200 when database, broker and storage answer, 503 with JSON when one does not."""

import pytest
from django.test import override_settings

from celery_app import app as celery_app
from tests.deploy.conftest import free_port


def test_health_is_ok_when_everything_is_reachable(client, db):
    response = client.get("/health/")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": {"ok": True}, "broker": {"ok": True}, "storage": {"ok": True}},
    }
    assert "no-cache" in response["Cache-Control"]


def test_health_answers_503_with_json_when_the_broker_is_unreachable(client, db, monkeypatch):
    unreachable = f"redis://127.0.0.1:{free_port()}/0"
    # Celery prefers the CELERY_BROKER_URL environment variable (set in CI) over its configuration.
    monkeypatch.setenv("CELERY_BROKER_URL", unreachable)
    monkeypatch.setitem(celery_app.conf, "broker_url", unreachable)
    monkeypatch.setitem(celery_app.conf, "broker_write_url", None)

    response = client.get("/health/")

    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["broker"] == {"ok": False, "error": "OperationalError"}
    assert body["checks"]["database"] == {"ok": True}


@pytest.mark.parametrize("method", ["get", "head"])
@override_settings(ALLOWED_HOSTS=["portal.hospital.example"], SECURE_SSL_REDIRECT=True)
def test_probe_over_plain_http_with_any_host_is_answered(client, db, method):
    """A load balancer probes the container by IP over HTTP: no 400 for the host, no 301 to HTTPS."""
    response = getattr(client, method)("/health/", HTTP_HOST="10.0.3.7:8000")

    assert response.status_code == 200


@override_settings(ALLOWED_HOSTS=["portal.hospital.example"], SECURE_SSL_REDIRECT=True)
def test_other_pages_still_redirect_to_https(client, db):
    response = client.get("/accounts/login/", HTTP_HOST="portal.hospital.example")

    assert response.status_code == 301
    assert response["Location"].startswith("https://portal.hospital.example/")
