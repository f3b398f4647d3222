"""Response headers every page needs, and the request size limit, applied to every request in one place.

Views cannot forget them: ``ResponseHeadersMiddleware`` puts ``Permissions-Policy`` on every
response and ``Cache-Control: private, no-store`` on every response except the allow-listed
paths that never carry patient data (static files, the health probe). The Content-Security-Policy
comes from django-csp's middleware (settings ``CONTENT_SECURITY_POLICY``).

``RequestSizeLimitMiddleware`` refuses a body larger than ``RADASSIST_MAX_REQUEST_BYTES`` before
any of it is read (by its Content-Length) or while it is read (a chunked body has none), so an
oversized upload never fills the temporary folder first.
"""

from django.conf import settings
from django.http import HttpResponse, JsonResponse

from portal.errors import UserFacingError

NO_STORE = "private, no-store"


def cache_allowed(path):
    """Static files and the health probe carry no patient data; everything else must not be cached."""
    return path.startswith(tuple(settings.RADASSIST_CACHEABLE_PATH_PREFIXES))


class ResponseHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.setdefault("Permissions-Policy", settings.RADASSIST_PERMISSIONS_POLICY)
        if not cache_allowed(request.path):
            response["Cache-Control"] = NO_STORE
            del response["Expires"]
        return response


class RequestTooLarge(UserFacingError):
    status_code = 413

    def __init__(self, limit):
        super().__init__(
            f"The request is larger than the {limit // (1024 * 1024):,} MB this portal accepts at once; "
            "send the files in several smaller uploads."
        )


class LimitedRequestBody:
    """A chunked request body that raises :class:`RequestTooLarge` as soon as more than ``limit`` bytes are read."""

    def __init__(self, body, limit):
        self._body = body
        self.limit = limit
        self.bytes_read = 0

    def _count(self, data):
        self.bytes_read += len(data)
        if self.bytes_read > self.limit:
            raise RequestTooLarge(self.limit)
        return data

    def read(self, size=-1):
        if size is None or size < 0:
            size = self.limit + 1 - self.bytes_read
        return self._count(self._body.read(size))

    def readline(self, size=-1):
        return self._count(self._body.readline(size))

    def __getattr__(self, name):
        return getattr(self._body, name)


def too_large_response(request, error):
    """JSON for the API, DICOMweb and script uploads (which ask for JSON), a short text for anything else."""
    wants_json = request.path.startswith(("/api/", "/dicomweb/")) or "json" in request.META.get("HTTP_ACCEPT", "")
    if wants_json:
        response = JsonResponse({"detail": str(error)}, status=error.status_code)
    else:
        response = HttpResponse(str(error), status=error.status_code, content_type="text/plain; charset=utf-8")
    # The unread body is still on the connection: close it rather than read gigabytes to keep it alive.
    response["Connection"] = "close"
    return response


class RequestSizeLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = settings.RADASSIST_MAX_REQUEST_BYTES
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > limit:
            return too_large_response(request, RequestTooLarge(limit))
        if not declared and "wsgi.input" in request.META:
            request.META["wsgi.input"] = LimitedRequestBody(request.META["wsgi.input"], limit)
        return self.get_response(request)

    def process_exception(self, request, exception):
        """A chunked body that grew too large while a plain Django view read it (DRF views answer it themselves)."""
        if isinstance(exception, RequestTooLarge):
            return too_large_response(request, exception)
        return None
