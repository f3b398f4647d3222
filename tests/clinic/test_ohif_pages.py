"""OHIF at /viewer/ohif/: its page and configuration, who may load them, and the links that open it.

These tests use a small index.html shaped like @ohif/app's (the real one is checked in the browser
test, tests/e2e/test_ohif.py), so they run without ``make ohif``.
"""

import base64
import hashlib
import json
import re

import pytest
from django.test import Client
from django.urls import reverse

from tests.pipeline.builders import ingest_phantom_series, store_phantom_series

OHIF_INDEX = (
    '<!doctype html><html lang="en"><head><meta charset="UTF-8">'
    '<meta name="msapplication-config" content="/assets/browserconfig.xml">'
    '<script>console.time("scriptToView"),window.PUBLIC_URL="/"</script>'
    '<link rel="manifest" href="/manifest.json"><link rel="icon shortcut" href="/assets/favicon.ico">'
    '<script rel="preload" as="script" src="/app-config.js"></script>'
    '<script rel="preload" as="script" type="module" src="/init-service-worker.js"></script>'
    "<title>OHIF Viewer</title>"
    '<script>function browserImportFunction(n){return import(n)}window.PUBLIC_URL="/"</script>'
    '<script defer src="/app.bundle.0f6159c501addfe9.js"></script><link href="/app.bundle.css" rel="stylesheet">'
    '</head><body><div id="root"></div></body></html>'
)
#: OHIF's Accept header for frames with omitQuotationForMultipartRequest.
FRAMES_ACCEPT = "multipart/related; type=application/octet-stream; transfer-syntax=*"


@pytest.fixture
def ohif_dist(settings, tmp_path):
    (tmp_path / "index.html").write_text(OHIF_INDEX)
    settings.OHIF_DIST_DIR = tmp_path
    return tmp_path


@pytest.fixture
def private_storage(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media"), "base_url": None},
        },
    }


def logged_in(user):
    client = Client()
    client.force_login(user)
    return client


def csp_directives(response):
    return {part.split()[0]: part.split()[1:] for part in response["Content-Security-Policy"].split(";")}


@pytest.mark.django_db
def test_viewer_page_loads_ohif_from_the_static_files_with_its_own_policy(ohif_dist, north):
    response = logged_in(north.doctor).get("/viewer/ohif/viewer?StudyInstanceUIDs=1.2.3")

    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('window.PUBLIC_URL="/static/ohif/"') == 2
    assert 'src="/viewer/ohif/app-config.js"' in html
    assert 'src="/static/ohif/app.bundle.0f6159c501addfe9.js"' in html
    assert 'href="/static/ohif/manifest.json"' in html
    assert 'content="/static/ohif/assets/browserconfig.xml"' in html
    assert not re.search(r'(?:href|src|content)="/(?!static/ohif/|viewer/ohif/app-config\.js")', html)

    directives = csp_directives(response)
    inline_scripts = re.findall(r"<script>(.*?)</script>", html)
    hashes = [f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"
              for script in inline_scripts]
    assert directives["script-src"] == ["'self'", "'wasm-unsafe-eval'", *hashes]
    assert directives["worker-src"] == ["'self'", "blob:"]
    assert directives["connect-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert "'unsafe-eval'" not in response["Content-Security-Policy"]


@pytest.mark.django_db
def test_every_ohif_route_answers_the_same_page(ohif_dist, north):
    client = logged_in(north.doctor)
    for url in ("/viewer/ohif/", "/viewer/ohif/viewer/radassist?StudyInstanceUIDs=1.2.3", "/viewer/ohif/segmentation"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert 'window.PUBLIC_URL="/static/ohif/"' in response.content.decode(), url


@pytest.mark.django_db
def test_app_config_reads_the_portals_own_dicomweb_read_only(ohif_dist, north):
    response = logged_in(north.doctor).get(reverse("ohif-config"))

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    text = response.content.decode()
    assert text.startswith("window.config = ") and text.rstrip().endswith(";")
    config = json.loads(text.removeprefix("window.config = ").rstrip().removesuffix(";"))
    assert config["routerBasename"] == "/viewer/ohif"
    assert config["showStudyList"] is False
    [source] = config["dataSources"]
    assert source["sourceName"] == config["defaultDataSourceName"]
    settings = source["configuration"]
    assert settings["qidoRoot"] == settings["wadoRoot"] == "http://testserver/dicomweb"
    assert settings["wadoUriRoot"] == "http://testserver/dicomweb/wado"
    assert settings["imageRendering"] == settings["thumbnailRendering"] == "wadors"
    assert settings["supportsFuzzyMatching"] is False and settings["supportsWildcard"] is True
    assert settings["enableStudyLazyLoad"] is True and settings["omitQuotationForMultipartRequest"] is True
    assert settings["supportsReject"] is False and settings["supportsStow"] is False
    assert settings["dicomUploadEnabled"] is False


@pytest.mark.django_db
def test_only_clinical_staff_load_the_viewer(ohif_dist, north):
    for url in ("/viewer/ohif/viewer?StudyInstanceUIDs=1.2.3", reverse("ohif-config")):
        anonymous = Client().get(url)
        assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"], url
        assert logged_in(north.patient_user).get(url).status_code == 404, url


@pytest.mark.django_db
def test_without_make_ohif_the_viewer_says_it_is_not_installed(settings, tmp_path, north):
    settings.OHIF_DIST_DIR = tmp_path / "absent"
    response = logged_in(north.doctor).get("/viewer/ohif/viewer?StudyInstanceUIDs=1.2.3")
    assert response.status_code == 404
    assert "make ohif" in response.content.decode()


@pytest.mark.django_db
def test_open_in_viewer_links_only_dicom_studies(ohif_dist, private_storage, north):
    dicom_series, _ = store_phantom_series(hospital=north.hospital, patient=north.patient, slices=2, size=16)
    png_series, _ = store_phantom_series(hospital=north.hospital, patient=north.patient, slices=2, size=16,
                                         as_png=True)
    client = logged_in(north.doctor)
    dicom_link = f"/viewer/ohif/viewer?StudyInstanceUIDs={dicom_series.study.study_instance_uid}"
    png_link = f"/viewer/ohif/viewer?StudyInstanceUIDs={png_series.study.study_instance_uid}"

    worklist = client.get(reverse("worklist")).content.decode()
    assert dicom_link in worklist
    assert png_link not in worklist
    assert dicom_link in client.get(reverse("study-detail", args=[dicom_series.study_id])).content.decode()
    assert "Open in viewer" not in client.get(reverse("study-detail", args=[png_series.study_id])).content.decode()


@pytest.mark.django_db
def test_no_viewer_link_while_ohif_is_not_installed(settings, tmp_path, private_storage, north):
    settings.OHIF_DIST_DIR = tmp_path / "absent"
    series, _ = store_phantom_series(hospital=north.hospital, patient=north.patient, slices=2, size=16)
    client = logged_in(north.doctor)
    assert "Open in viewer" not in client.get(reverse("worklist")).content.decode()
    assert "Open in viewer" not in client.get(reverse("study-detail", args=[series.study_id])).content.decode()


@pytest.mark.django_db
def test_ohifs_dicomweb_requests_work_with_the_session_and_stop_at_the_tenant_wall(private_storage, north, south):
    """The requests OHIF makes, with its headers, as a logged-in doctor; writes still need the CSRF token."""
    series = ingest_phantom_series(hospital=north.hospital, uploader=north.doctor, patient=north.patient,
                                   slices=2, size=16)
    instance = series.instances.order_by("instance_number").first()
    study_uid, series_uid = series.study.study_instance_uid, series.series_instance_uid
    instance_url = f"/dicomweb/studies/{study_uid}/series/{series_uid}/instances/{instance.sop_instance_uid}"
    requests = [
        (f"/dicomweb/studies?StudyInstanceUID={study_uid}", "application/dicom+json"),
        (f"/dicomweb/studies/{study_uid}/series", "application/dicom+json"),
        (f"/dicomweb/studies/{study_uid}/series/{series_uid}/metadata", "application/dicom+json"),
        (f"{instance_url}/frames/1", FRAMES_ACCEPT),
    ]
    doctor = Client(enforce_csrf_checks=True)
    doctor.force_login(north.doctor)
    for url, accept in requests:
        response = doctor.get(url, HTTP_ACCEPT=accept)
        assert response.status_code == 200, (url, response.status_code)
    frame = b"".join(doctor.get(f"{instance_url}/frames/1", HTTP_ACCEPT=FRAMES_ACCEPT).streaming_content)
    assert len(frame) > 16 * 16 * 2

    stranger = Client(enforce_csrf_checks=True)
    stranger.force_login(south.doctor)
    for url, accept in requests:
        answer = stranger.get(url, HTTP_ACCEPT=accept)
        assert answer.status_code == 404 or json.loads(answer.content) == [], (url, answer.status_code)

    store = doctor.post("/dicomweb/studies", data=b"", content_type="multipart/related; type=\"application/dicom\"")
    assert store.status_code == 403
    assert "CSRF" in store.content.decode()
