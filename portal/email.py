"""Email is sent from Celery tasks, never inside a request: a slow or hung mail server cannot hold a
web worker, and a refused message is tried again later instead of failing what the user did.

Each send waits at most ``EMAIL_TIMEOUT`` seconds for the server (Django's SMTP backend applies it to
every socket operation); a failure is retried with exponential back-off, ``EMAIL_MAX_RETRIES`` times.
"""

import smtplib

from django.conf import settings

#: Celery options of every email task: what counts as a passing failure, and how it is retried.
EMAIL_TASK_OPTIONS = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    # OSError covers refused connections and socket timeouts (TimeoutError) as well as smtplib's errors.
    "autoretry_for": (smtplib.SMTPException, OSError),
    "retry_backoff": 30,
    "retry_backoff_max": 3600,
    "retry_jitter": True,
    "max_retries": getattr(settings, "EMAIL_MAX_RETRIES", 8),
}
