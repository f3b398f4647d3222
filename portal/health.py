"""``/health/``: is this process able to reach the database, the broker and the storage? For load balancers."""

import uuid

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache


def check_database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def check_broker():
    from celery_app import app

    with app.connection_for_write() as broker:
        broker.ensure_connection(max_retries=1, timeout=2)


def check_storage():
    name = default_storage.save(f"health/{uuid.uuid4().hex}.txt", ContentFile(b"ok"))
    default_storage.delete(name)


CHECKS = {"database": check_database, "broker": check_broker, "storage": check_storage}


@never_cache
def health(request):
    results = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Exception as error:  # noqa: BLE001 - a health check reports any failure instead of raising
            results[name] = {"ok": False, "error": error.__class__.__name__}
        else:
            results[name] = {"ok": True}
    healthy = all(result["ok"] for result in results.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": results}, status=200 if healthy else 503
    )
