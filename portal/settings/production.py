"""Production settings (the docker images): DEBUG off, HTTPS only, and every shared service named by the environment.

Web and workers run in separate containers that share nothing but the database, the broker,
the model registry and the bucket. An embedded default there would fail without a sound (an
SQLite file or a broker folder inside one container, password-reset links printed into the
logs), so a missing variable stops the start with its name. Private files may still live in a
folder (``RADASSIST_MEDIA_ROOT``) when no bucket is configured, for a single-machine install.
"""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import STORAGES, env

REQUIRED_VARIABLES = ("DJANGO_SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "MLFLOW_TRACKING_URI", "EMAIL_URL")


def require_environment(names):
    missing = [name for name in names if not env.str(name, default="")]
    if missing:
        raise ImproperlyConfigured(
            f"Production settings need these environment variables: {', '.join(missing)} (see docs/production.md)."
        )


require_environment(REQUIRED_VARIABLES)
if env.bool("DJANGO_DEBUG", default=False):
    raise ImproperlyConfigured(
        "DJANGO_DEBUG=True is refused by portal.settings.production: debug pages show patient data. "
        "Use DJANGO_SETTINGS_MODULE=portal.settings.local for development."
    )

DEBUG = False
SECRET_KEY = env.str("DJANGO_SECRET_KEY")

# Static files: collectstatic's output (made at image build), compressed, served by whitenoise.
WHITENOISE_USE_FINDERS = False
WHITENOISE_AUTOREFRESH = False
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"}}

# HTTPS only: the reverse proxy terminates TLS and says so in X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
