"""A PACS pushing a series through STOW-RS to gunicorn, as production runs it (docker/gunicorn.conf.py).

dicomweb-client sends bodies over its chunk size with ``Transfer-Encoding: chunked``; Django's
test server cannot read those, so this test starts gunicorn itself with the production settings
on a SQLite database of its own, pushes a generated series in small chunks, and reads it back with the same client.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient

REPO_ROOT = Path(__file__).resolve().parents[2]
GUNICORN_CONFIG = REPO_ROOT / "docker" / "gunicorn.conf.py"

pytestmark = pytest.mark.slow

SETUP = """
import json
from accounts.models import Hospital
from accounts.services import create_api_key
hospital = Hospital.objects.create(slug="pacs-test", name="PACS Test Hospital")
_, secret = create_api_key(hospital=hospital, name="pacs")
print(json.dumps({"secret": secret}))
"""


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def gunicorn_portal(tmp_path):
    port = free_port()
    environment = {
        **{key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_", "CELERY_"))},
        # Production settings, with the services they require kept on this machine.
        "DJANGO_SETTINGS_MODULE": "portal.settings.production",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'portal.sqlite3'}",
        "CELERY_BROKER_URL": "filesystem://",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}",
        "EMAIL_URL": "consolemail://",
        "RADASSIST_VAR_DIR": str(tmp_path / "var"),
        "RADASSIST_MEDIA_ROOT": str(tmp_path / "media"),
        "DJANGO_SECRET_KEY": "gunicorn-stow-test-" + "x" * 40,
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
    }
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--verbosity", "0"], cwd=REPO_ROOT, env=environment, check=True, timeout=300)
    setup = subprocess.run([*manage, "shell", "-c", SETUP], cwd=REPO_ROOT, env=environment, check=True,
                           capture_output=True, text=True, timeout=120)
    secret = json.loads(setup.stdout.strip().splitlines()[-1])["secret"]
    log = open(tmp_path / "gunicorn.log", "w")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONFIG), "portal.wsgi:application"],
        cwd=REPO_ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "gunicorn.log").read_text()
            try:
                if requests.get(f"{url}/health/", timeout=2).ok:
                    break
            except (requests.ConnectionError, requests.Timeout):  # not listening yet, or still loading the app
                pass
            assert time.monotonic() < deadline, "gunicorn did not answer /health/ within 60 s"
            time.sleep(0.3)
        yield url, secret
    finally:
        os.killpg(process.pid, signal.SIGINT)  # quick shutdown: no waiting for keep-alive connections
        process.wait(timeout=30)
        log.close()


def test_chunked_stow_rs_through_gunicorn_stores_every_instance(gunicorn_portal, write_ct_series):
    url, secret = gunicorn_portal
    paths = write_ct_series(slices=12, size=128)
    datasets = [pydicom.dcmread(path) for path in paths]
    # 64 KB chunks: the 12 instances (about 400 KB) go out with chunked transfer encoding.
    client = DICOMwebClient(url=f"{url}/dicomweb", headers={"Authorization": f"Bearer {secret}"},
                            chunk_size=64 * 1024)
    answer = client.store_instances(datasets)
    stored = {item.ReferencedSOPInstanceUID for item in answer.ReferencedSOPSequence}
    assert stored == {dataset.SOPInstanceUID for dataset in datasets}
    assert "FailedSOPSequence" not in answer

    study_uid = datasets[0].StudyInstanceUID
    [study] = client.search_for_studies(search_filters={"StudyInstanceUID": study_uid})
    assert study["00201208"]["Value"] == [12]  # NumberOfStudyRelatedInstances
    middle = datasets[6]
    retrieved = client.retrieve_instance(study_uid, middle.SeriesInstanceUID, middle.SOPInstanceUID)
    assert retrieved.pixel_array.tobytes() == middle.pixel_array.tobytes()

    again = client.store_instances(datasets[:3])  # a PACS re-sending after a timeout
    assert len(again.ReferencedSOPSequence) == 3 and "FailedSOPSequence" not in again
    client._session.close()


def test_bodies_with_a_length_through_gunicorn_store_every_file(gunicorn_portal, write_ct_series):
    """STOW-RS with Content-Length (the client's default under its chunk size) and the REST upload form."""
    url, secret = gunicorn_portal
    headers = {"Authorization": f"Bearer {secret}"}
    stow_paths, form_paths = write_ct_series(slices=4, size=64), write_ct_series(slices=5, size=64)
    client = DICOMwebClient(url=f"{url}/dicomweb", headers=headers)
    answer = client.store_instances([pydicom.dcmread(path) for path in stow_paths])
    assert len(answer.ReferencedSOPSequence) == 4 and "FailedSOPSequence" not in answer
    client._session.close()

    files = [("files", (path.name, path.read_bytes(), "application/dicom")) for path in form_paths]
    files.append(("files", ("notes.txt", b"not a scan", "text/plain")))
    response = requests.post(f"{url}/api/v1/uploads/", headers=headers, files=files, timeout=60)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["stored"], body["rejected"]) == (5, 1)
    assert [result["outcome"] for result in body["results"]] == ["stored"] * 5 + ["rejected"]
