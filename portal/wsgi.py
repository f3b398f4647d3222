"""The WSGI application, as gunicorn serves it (``portal.wsgi:application``)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.local")
#: Web requests get the web statement timeout (settings.DATABASE_STATEMENT_TIMEOUT_MS).
os.environ.setdefault("RADASSIST_PROCESS_KIND", "web")
django_application = get_wsgi_application()


class RequestBody:
    """gunicorn's request body, read in the sizes the caller asks for.

    gunicorn's ``Body.read(size)`` pulls from its length or de-chunking reader 1,024 bytes at a
    time, copying its buffer at each step; for a 150 MB series pushed through STOW-RS or the
    upload form that was a fifth of the web worker's time. Both readers answer ``read(size)`` in
    one go, so they are read directly whenever nothing is buffered in front of them; everything
    else (``readline``, a read after one) goes through gunicorn's own object. The connection's
    socket is read up to 256 KB per call instead of 8 KB, which saves most of the system calls.

    Kept, since no library replaces it: the cost is inside gunicorn's ``Body.read`` and no gunicorn
    setting changes it, and another server would change the deployment for one hot path. It relies
    on gunicorn's internals and steps aside when they change, so tests/deploy/test_wsgi_request_body.py
    fails when a gunicorn request is no longer wrapped or its reads are small again.
    """

    SOCKET_READ_BYTES = 256 * 1024

    def __init__(self, body):
        self._body = body
        reader = body.reader
        unreader = getattr(reader, "unreader", None) or getattr(getattr(reader, "req", None), "unreader", None)
        if isinstance(getattr(unreader, "mxchunk", None), int) and hasattr(unreader, "sock"):
            unreader.mxchunk = max(unreader.mxchunk, self.SOCKET_READ_BYTES)

    def read(self, size=-1):
        if size is None or size < 0 or self._body.buf.tell():
            return self._body.read(size)
        return self._body.reader.read(size)

    def __getattr__(self, name):
        return getattr(self._body, name)


def hide_gunicorn_banner():
    """Drop the ``Server: gunicorn`` header gunicorn writes on every response (it has no setting for that).

    Naming the server and so its version range helps an attacker pick exploits and helps nobody
    else. Done here rather than in docker/gunicorn.conf.py so that ``make run`` is covered too.
    """
    try:
        from gunicorn.http import wsgi as gunicorn_wsgi
    except ImportError:
        return
    default_headers = gunicorn_wsgi.Response.default_headers
    if getattr(default_headers, "hides_server_banner", False):
        return

    def headers_without_server(response):
        return [header for header in default_headers(response) if not header.lower().startswith("server:")]

    headers_without_server.hides_server_banner = True
    gunicorn_wsgi.Response.default_headers = headers_without_server


hide_gunicorn_banner()


def application(environ, start_response):
    body = environ.get("wsgi.input")
    if callable(getattr(getattr(body, "reader", None), "read", None)) and hasattr(getattr(body, "buf", None), "tell"):
        environ["wsgi.input"] = RequestBody(body)
    return django_application(environ, start_response)
