"""Development settings: what ``make run``, ``manage.py``, the Celery worker and ``portal.wsgi`` use by default.

base.py's embedded services (SQLite and the broker's folders in ``var/``, a local MLflow store,
email printed on the console) with DEBUG on and a published secret key, so the portal starts on
a bare machine; every variable base.py reads still applies (``DATABASE_URL``, ``CELERY_BROKER_URL``...).
``DJANGO_DEBUG=False`` turns Django's debug pages and query log off, nothing more: cookies stay
insecure and the key stays the published one. A deployment uses ``portal.settings.production``.
"""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="radassist-development-only-secret-key-not-for-production")
