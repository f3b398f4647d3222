"""The test suite's settings (pytest's ``DJANGO_SETTINGS_MODULE``): what is tested behaves as in development.

Same apps, middleware, password validators, storage, broker and database as ``local``, and the
environment still chooses the services (CI sets ``DATABASE_URL`` and ``CELERY_BROKER_URL``). Only
what costs time without being under test differs: passwords are hashed with MD5 instead of PBKDF2
(a quarter of a second for each factory user and each login), and email stays in memory
(``django.core.mail.outbox``) instead of being printed.
"""

from .base import *  # noqa: F403

SECRET_KEY = "radassist-test-only-secret-key-never-used-outside-the-test-suite"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
