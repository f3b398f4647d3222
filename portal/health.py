"""``/health/``: is this process able to reach the database, the broker and the storage? For load balancers.

Load balancers and Docker probe the container directly, over plain HTTP and with
whatever Host header they like, so ``HealthCheckMiddleware`` (first in the
middleware list) answers ``/health/`` before the HTTPS redirect and the
ALLOWED_HOSTS check would turn the probe into a 301 or a 400. The answer names
each check and the class of its error only: nothing about the deployment leaks.
"""

import logging
import os

from django.core.files.storage import default_storage
from django.db import connection
from django.http import JsonResponse
from django.utils.cache import add_never_cache_headers

logger = logging.getLogger(__name__)

HEALTH_PATH = "/health/"
#: Seconds the broker may take to accept a connection before it counts as unreachable.
BROKER_TIMEOUT_SECONDS = 3


def check_database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def check_broker():
    from celery_app import app

    with app.connection_for_write() as broker:
        broker.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=BROKER_TIMEOUT_SECONDS)


def check_storage():
    """Read-only: a bucket HEAD on S3 (reachable, credentials accepted), a writable folder locally.

    Probes arrive every few seconds from every load balancer; writing an object
    each time would cost requests and leave litter after crashes.
    """
    bucket_name = getattr(default_storage, "bucket_name", None)
    if bucket_name:
        default_storage.connection.meta.client.head_bucket(Bucket=bucket_name)
        return
    location = default_storage.location
    os.makedirs(location, exist_ok=True)
    if not os.access(location, os.W_OK):
        raise PermissionError("media folder is not writable")


CHECKS = {"database": check_database, "broker": check_broker, "storage": check_storage}


def health(request):
    results = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Exception as error:  # noqa: BLE001 - a health check reports any failure instead of raising
            logger.warning("health check %s failed", name, extra={"check": name, "error": error.__class__.__name__})
            results[name] = {"ok": False, "error": error.__class__.__name__}
        else:
            results[name] = {"ok": True}
    healthy = all(result["ok"] for result in results.values())
    response = JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": results}, status=200 if healthy else 503
    )
    add_never_cache_headers(response)
    return response


class HealthCheckMiddleware:
    """Answer ``GET /health/`` ahead of host validation and the HTTPS redirect (see the module docstring)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path == HEALTH_PATH and request.method in ("GET", "HEAD"):
            return health(request)
        return self.get_response(request)
