"""RadAssist's settings modules, chosen with ``DJANGO_SETTINGS_MODULE``.

- ``base``: what every process shares, each value from the environment with the embedded default;
- ``local``: development, DEBUG on (the default of ``manage.py``, ``celery_app`` and ``portal.wsgi``);
- ``production``: DEBUG off, HTTPS only, every service named by the environment (the docker images);
- ``test``: the test suite (pytest), ``local``'s services with a fast password hasher.
"""
