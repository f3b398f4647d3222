"""The test suite's settings (pytest's ``DJANGO_SETTINGS_MODULE``): what is tested behaves as in development.

Same apps, middleware, password validators, storage, broker and database as ``local``, and the
environment still chooses the services (CI sets ``DATABASE_URL`` and ``CELERY_BROKER_URL``). Only
what costs time without being under test differs: passwords are hashed with MD5 instead of PBKDF2
(a third of a second of CPU for each factory user and each login), sessions live in a local-memory
cache of their own instead of a table (a query to read and one to write them on every request of a
logged-in client), and email stays in memory (``django.core.mail.outbox``) instead of being printed.
No test reads session rows; logging in, out and the checks on each request behave the same.
"""

from .base import *  # noqa: F403
from .base import CACHES

SECRET_KEY = "radassist-test-only-secret-key-never-used-outside-the-test-suite"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
SESSION_ENGINE = "django.contrib.sessions.backends.cache"
SESSION_CACHE_ALIAS = "sessions"
# Apart from the default cache, which tests empty between them, and large enough that no session is culled.
CACHES = {
    **CACHES,
    "sessions": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "radassist-test-sessions",
        "OPTIONS": {"MAX_ENTRIES": 100_000},
    },
}
