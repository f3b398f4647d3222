"""gunicorn for the web container.

Threaded workers (gthread): a slow upload of a large series holds one thread, not a whole
process, and the worker keeps answering gunicorn's heartbeat, so long uploads are not
killed by ``timeout``. Django's WSGI handler streams request bodies to temporary files
(FILE_UPLOAD_MAX_MEMORY_SIZE), so uploads need no ASGI server.
Access and error logs are the same redacted JSON lines as Django's, without query strings.
"""

import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
graceful_timeout = 30
keepalive = 5
# Restart workers now and then so a slow leak in a long-lived process cannot grow without bound.
max_requests = 2000
max_requests_jitter = 200
# The reverse proxy in front sets X-Forwarded-Proto; Django trusts it through SECURE_PROXY_SSL_HEADER.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "*")
# Heartbeat files in memory (a container's disk can stall workers); no control socket (/app is read-only).
worker_tmp_dir = "/dev/shm"
control_socket_disable = True

accesslog = "-"
# %(U)s is the path without its query string: searches by patient name travel in query strings.
access_log_format = "%(m)s %(U)s %(s)s %(B)s %(M)sms"
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_patient_data": {"()": "portal.logging.RedactPatientDataFilter"}},
    "formatters": {"json": {"()": "portal.logging.JsonFormatter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["redact_patient_data"]},
    },
    "loggers": {
        "gunicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "gunicorn.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
