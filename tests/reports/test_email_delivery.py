"""Email leaves from Celery tasks with a timeout: a mail server that accepts and never answers holds no request,
and no patient's name or address reaches the server log."""

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.core import mail
from django.urls import reverse

from accounts.services import invite_user
from reports import tasks
from reports.services import AGREES_WITH_AI, save_draft
from tests.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.django_db
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def hung_smtp_server(settings):
    """A TCP server that accepts connections and never says a word (not even the SMTP greeting)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = listener.getsockname()
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 1
    yield held
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    listener.close()


@pytest.mark.timeout(60)
def test_signing_answers_at_once_while_the_mail_server_hangs(client, north, draft, hung_smtp_server, monkeypatch,
                                                            django_capture_on_commit_callbacks):
    queued = []
    monkeypatch.setattr(tasks.send_report_ready_email, "delay", lambda **kwargs: queued.append(kwargs))
    monkeypatch.setattr(tasks.render_report_pdf, "delay", lambda **kwargs: None)  # not what this test times
    save_draft(version=draft, doctor=north.doctor, sections={"impression": "Mass."}, conclusion=AGREES_WITH_AI)
    client.force_login(north.doctor)
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("report-sign", args=[draft.report_id]), {"password": DEFAULT_PASSWORD})
    assert response.status_code == 302
    assert time.monotonic() - started < 15
    assert [entry["version_id"] for entry in queued] == [draft.pk]
    assert queued[0]["site_url"] == "http://testserver"  # the address the doctor reached the portal at
    assert hung_smtp_server == [], "the request itself never talked to the mail server"


@pytest.mark.timeout(60)
def test_the_email_task_gives_up_after_the_timeout_and_is_retried(north, signed, hung_smtp_server):
    started = time.monotonic()
    with pytest.raises(OSError) as failure:
        tasks.send_report_ready_email.run(version_id=signed.pk)  # called directly: the retry re-raises
    assert 0.5 < time.monotonic() - started < 10
    assert hung_smtp_server, "the task did reach the mail server"
    assert isinstance(failure.value, tasks.send_report_ready_email.autoretry_for)
    assert tasks.send_report_ready_email.max_retries >= 3


def test_invitations_are_sent_by_a_task(north, monkeypatch, django_capture_on_commit_callbacks):
    from accounts import tasks as account_tasks

    queued = []
    monkeypatch.setattr(account_tasks.send_invitation_email, "delay", lambda **kwargs: queued.append(kwargs))
    with django_capture_on_commit_callbacks(execute=True):
        invitation = invite_user(hospital=north.hospital, email="new.doctor@north.test", role="doctor",
                                 invited_by=north.admin)
    assert mail.outbox == [] and [entry["invitation_id"] for entry in queued] == [invitation.pk]
    account_tasks.send_invitation_email.run(**queued[0])
    assert mail.outbox[0].to == ["new.doctor@north.test"] and queued[0]["link"] in mail.outbox[0].body


def test_the_default_email_backend_keeps_messages_out_of_the_log(tmp_path):
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("EMAIL_", "DJANGO_"))}
    environment.update(DJANGO_SETTINGS_MODULE="portal.settings.local", RADASSIST_VAR_DIR=str(tmp_path))
    script = (
        "import django; django.setup(); from django.core.mail import send_mail; "
        "send_mail('Your report', 'Hello Janet Marker-Patient of 12 Privacy Lane', None, ['janet@patients.test'])"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=environment, capture_output=True,
                            text=True, timeout=120, check=True)
    assert "Marker-Patient" not in result.stdout + result.stderr
    assert "Privacy Lane" not in result.stdout + result.stderr
    [stored] = (tmp_path / "email").iterdir()
    assert "Marker-Patient" in stored.read_text()
