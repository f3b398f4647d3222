"""Deployment checks (``manage.py check --deploy``) for what the security of the portal relies on."""

from django.conf import settings
from django.core.checks import Tags, Warning, register

PROCESS_LOCAL_CACHES = ("django.core.cache.backends.locmem.LocMemCache", "django.core.cache.backends.dummy.DummyCache")


@register(Tags.security, deploy=True)
def check_shared_cache(app_configs, **kwargs):
    """Login limits count failures in the cache: a per-process cache gives each web worker its own count."""
    if settings.CACHES["default"]["BACKEND"] in PROCESS_LOCAL_CACHES:
        return [
            Warning(
                "The default cache is local to each process, so every web worker keeps its own count of "
                "failed logins.",
                hint="Set CACHE_URL to the Redis shared by the web workers (redis://redis:6379/1 in docker).",
                id="radassist.W001",
            )
        ]
    return []
