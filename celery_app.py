"""The Celery app: three queues, each served by its own kind of worker.

- ``ingest``  (CPU): finishing series after upload, parsing files pushed in bulk;
- ``gpu``     (GPU in production): the analysis of a series through both networks;
- ``reports`` (CPU): rendering report PDFs and sending notifications.

Long GPU jobs are acknowledged late and requeued if their worker dies, so a
killed worker never loses a job; workers take one job at a time.
"""

import os

from celery import Celery
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.local")

QUEUE_NAMES = ("ingest", "gpu", "reports")

app = Celery("radassist")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    # Each queue has its own exchange and routing key, so a worker started with `-Q gpu` gets only GPU work.
    task_queues=tuple(Queue(name, Exchange(name, type="direct"), routing_key=name) for name in QUEUE_NAMES),
    task_default_queue="ingest",
    task_default_exchange="ingest",
    task_default_routing_key="ingest",
    task_routes={
        "scans.tasks.*": {"queue": "ingest"},
        # Exact names win over the patterns: queueing an analysis is light CPU work, not GPU work.
        "ml.tasks.queue_series_analysis": {"queue": "ingest"},
        "ml.tasks.*": {"queue": "gpu"},
        "reports.tasks.*": {"queue": "reports"},
        # Notifications: invitations are email like the report-ready message.
        "accounts.tasks.*": {"queue": "reports"},
    },
    beat_schedule={
        "close-abandoned-upload-batches": {"task": "scans.tasks.close_abandoned_batches", "schedule": 300.0},
        "send-due-dicom-outbox-items": {"task": "reports.tasks.send_due_outbox_items", "schedule": 60.0},
    },
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    task_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)
app.autodiscover_tasks()
