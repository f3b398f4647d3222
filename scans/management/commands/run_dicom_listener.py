import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand

from accounts.models import Hospital
from scans.dimse.listener import DicomListener


class Command(BaseCommand):
    help = "Run the DICOM listener (C-STORE, C-FIND, C-ECHO) for every hospital's AE title until stopped."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="Address to listen on (0.0.0.0 for every interface)")
        parser.add_argument("--port", type=int, default=settings.DICOM_PORT)

    def handle(self, *args, host, port, **options):
        listener = DicomListener()
        bound_host, bound_port = listener.start(host=host, port=port)
        titles = ", ".join(Hospital.objects.order_by("ae_title").values_list("ae_title", flat=True)) or "(none yet)"
        self.stdout.write(f"DICOM listener on {bound_host}:{bound_port}, AE titles {titles}", ending="\n")
        self.stdout.flush()
        stopped = threading.Event()
        signal.signal(signal.SIGTERM, lambda signum, frame: stopped.set())
        signal.signal(signal.SIGINT, lambda signum, frame: stopped.set())
        while not stopped.wait(timeout=1):
            pass
        listener.stop()
