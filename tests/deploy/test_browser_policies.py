"""Browser and transport policies: CSP without inline script, Permissions-Policy, no-store on patient data,
the API schema behind login, and no server banner."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.urls import reverse

from tests.pipeline.builders import store_phantom_series

REPO_ROOT = Path(__file__).resolve().parents[2]
#: A <script> that runs code in the page: not a data block (type="application/json") and without src.
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/(?:ld\+)?json\")[^>]*>", re.IGNORECASE)
INLINE_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.IGNORECASE)
JAVASCRIPT_URL = re.compile(r"""(?:href|src|action)\s*=\s*["']\s*javascript:""", re.IGNORECASE)


@pytest.fixture
def series(north, settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media"), "base_url": None},
        },
    }
    stored, _ = store_phantom_series(hospital=north.hospital, patient=north.patient, slices=2, size=16)
    return stored


def csp_directives(response):
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


def test_templates_hold_no_inline_script_or_event_handler():
    """The CSP forbids inline script, so a template that used one would break its page: none may."""
    offenders = []
    for template in (REPO_ROOT / "templates").rglob("*.html"):
        if "pdf" in template.parts:  # rendered to PDF by WeasyPrint, never shown by a browser
            continue
        text = template.read_text()
        for pattern in (INLINE_SCRIPT, INLINE_HANDLER, JAVASCRIPT_URL):
            offenders += [f"{template.relative_to(REPO_ROOT)}: {match}" for match in pattern.findall(text)]
    assert offenders == []


@pytest.mark.django_db
def test_every_page_has_a_strict_content_security_policy_and_permissions_policy(client, north):
    client.force_login(north.doctor)
    for url in (reverse("account_login"), reverse("worklist"), "/no-such-page/"):
        response = client.get(url)
        directives = csp_directives(response)
        assert directives["script-src"] == ["'self'"], url
        assert directives["style-src"] == ["'self'"], url
        assert directives["object-src"] == ["'none'"], url
        assert directives["frame-ancestors"] == ["'none'"], url
        assert "'unsafe-inline'" not in response["Content-Security-Policy"], url
        assert "'unsafe-eval'" not in response["Content-Security-Policy"], url
        policy = response["Permissions-Policy"]
        for feature in ("camera=()", "microphone=()", "geolocation=()", "usb=()"):
            assert feature in policy, url


@pytest.mark.django_db
def test_every_answer_with_patient_data_is_no_store(client, api_client, north, series):
    instance = series.instances.first()
    client.force_login(north.doctor)
    pages = [
        reverse("worklist"),
        reverse("study-detail", args=[series.study_id]),
        reverse("series-viewer", args=[series.pk]),
        reverse("series-viewer-state", args=[series.pk]),
        reverse("series-slice-image", args=[series.pk, 0]),
    ]
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {north.api_secret}")
    api = [
        "/api/v1/studies/",
        f"/api/v1/studies/{series.study_id}/",
        "/api/v1/series/",
        "/api/v1/instances/",
        f"/api/v1/instances/{instance.pk}/file/",
        "/api/v1/patients/",
        "/dicomweb/studies",
        f"/dicomweb/studies/{series.study.study_instance_uid}/series",
    ]
    answers = [(url, client.get(url)) for url in pages]
    answers += [(url, api_client.get(url)) for url in api]
    answers.append(("hospital admin dashboard", _logged_in_as(client, north.admin).get(reverse("hospital-dashboard"))))
    for url, response in answers:
        assert response.status_code == 200, url
        cache_control = {part.strip() for part in response["Cache-Control"].split(",")}
        assert "no-store" in cache_control, url
        assert not any(part.startswith("max-age=") and part != "max-age=0" for part in cache_control), url
        assert "Permissions-Policy" in response, url


def _logged_in_as(client, user):
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_static_files_and_health_may_be_cached(client):
    response = client.get("/static/css/portal.css")
    assert response.status_code == 200
    assert "no-store" not in response.get("Cache-Control", "")


@pytest.mark.django_db
def test_api_schema_and_docs_need_a_login(client, api_client, north):
    assert api_client.get("/api/schema/").status_code in (401, 403)
    docs = client.get("/api/docs/")
    assert docs.status_code == 302 and reverse("account_login") in docs["Location"]

    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {north.api_secret}")
    assert api_client.get("/api/schema/").status_code == 200

    client.force_login(north.doctor)
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert INLINE_SCRIPT.findall(html) == [] and "<style" not in html
    script = client.get("/api/docs/?script")
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_gunicorn_does_not_name_itself(tmp_path):
    """The production gunicorn config: no ``Server: gunicorn`` header on any answer."""
    port = free_port()
    environment = {
        **{key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_", "CELERY_"))},
        "DJANGO_SETTINGS_MODULE": "portal.settings.local",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'portal.sqlite3'}",
        "RADASSIST_VAR_DIR": str(tmp_path / "var"),
        "RADASSIST_MEDIA_ROOT": str(tmp_path / "media"),
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "docker/gunicorn.conf.py", "--worker-tmp-dir", str(tmp_path),
         "portal.wsgi:application"],
        cwd=REPO_ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = requests.get(f"http://127.0.0.1:{port}/health/", timeout=5)
                break
            except requests.ConnectionError:
                assert server.poll() is None, "gunicorn exited"
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.3)
        assert "Server" not in response.headers
        assert response.headers["Date"]
    finally:
        os.killpg(server.pid, signal.SIGINT)  # gunicorn's quick shutdown
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
