import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand

from accounts.management.commands.seed_demo import DEMO_DICOM_PEER, DEMO_PASSWORD
from accounts.models import Hospital


class Command(BaseCommand):
    help = "Start the portal for development: migrate, seed demo data and models, then run web and worker together."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--dicom-port", type=int, default=settings.DICOM_PORT)

    def handle(self, *args, port, host, dicom_port, **options):
        call_command("migrate", interactive=False, verbosity=0)
        if settings.DEBUG:
            call_command("seed_demo", verbosity=0, stdout=open(os.devnull, "w"))
        if "bootstrap_models" in get_commands():
            call_command("bootstrap_models")
        # The worker's beat schedule lives in var/, which nothing else creates when the database and the
        # broker are external services.
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        # Emails sent without a request (by the worker) link to the port this portal really listens on.
        link_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        environment = dict(os.environ, PYTHONUNBUFFERED="1", RADASSIST_SITE_URL=f"http://{link_host}:{port}")
        processes = [
            # gunicorn rather than runserver: DICOMweb clients send large STOW-RS bodies chunked,
            # which runserver cannot read.
            subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "portal.wsgi:application", "--bind", f"{host}:{port}",
                 "--worker-class", "gthread", "--workers", "2", "--threads", "4", "--timeout", "300",
                 "--access-logfile", "-", "--access-logformat", "%(m)s %(U)s %(s)s"],
                env=environment,
                start_new_session=True,
            ),
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "celery_app",
                    "worker",
                    "-Q",
                    "ingest,gpu,reports",
                    "--concurrency",
                    "1",
                    "--prefetch-multiplier",
                    "1",
                    "--loglevel",
                    "WARNING",
                    # Periodic housekeeping (celery_app.beat_schedule) runs inside the one development worker.
                    "--beat",
                    "--schedule",
                    str(settings.VAR_DIR / "celerybeat-schedule"),
                ],
                env=environment,
                start_new_session=True,
            ),
            subprocess.Popen(
                [sys.executable, str(settings.BASE_DIR / "manage.py"), "run_dicom_listener", "--host", host,
                 "--port", str(dicom_port)],
                env=environment,
                start_new_session=True,
            ),
        ]
        self.stdout.write(self.style.SUCCESS(f"\nRadAssist is running at http://{host}:{port}/"))
        ae_titles = hospital_ae_titles()
        self.stdout.write(f"DICOM: AE titles {', '.join(ae_titles) or '(no hospital yet)'} on {host}:{dicom_port}")
        if settings.DEBUG and ae_titles:
            self.stdout.write(
                f"Demo DICOM sender (dcmtk): storescu -aet {DEMO_DICOM_PEER} -aec {ae_titles[0]} {host} {dicom_port} "
                "file.dcm"
            )
            self.stdout.write(
                "Demo logins: admin@northside.example, doctor1@northside.example, "
                "patient1@northside.example (and doctor2, patient2, patient3; the same at riverside)"
            )
            self.stdout.write(f"Demo password: {DEMO_PASSWORD}")
        self.stdout.write("Press Ctrl-C to stop the web server, the worker and the DICOM listener.\n")
        # Ctrl-C, and a SIGTERM from a process manager, both stop the children before this command exits
        # (a shell that starts this in the background leaves SIGINT ignored unless it is set here).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            while all(process.poll() is None for process in processes):
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            stop_process_groups(processes)


def hospital_ae_titles():
    return list(Hospital.objects.order_by("ae_title").values_list("ae_title", flat=True))


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def stop_process_groups(processes, timeout=20):
    """Stop each child with everything it started (gunicorn and Celery workers), so nothing is left orphaned.

    The children run in sessions of their own, so Ctrl-C reaches only this command, which then stops
    them in order: a polite SIGTERM to the whole group, SIGKILL for whatever is still there after ``timeout``.
    """
    for process in processes:
        signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        signal_group(process, signal.SIGKILL)


def signal_group(process, signum):
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass
