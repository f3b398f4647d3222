"""Absolute links for emails: to the address people reach the portal at.

With a request (a doctor signing, an admin inviting) that is the request's own scheme and host, so a portal
run on another port or behind another name links to itself. Without one (a task, a command) it is
``settings.SITE_URL``, from RADASSIST_SITE_URL: set it in production; ``make run PORT=…`` sets it for you.
"""

from django.conf import settings


def absolute_url(path, *, request=None):
    if request is not None:
        return request.build_absolute_uri(path)
    return settings.SITE_URL.rstrip("/") + path


def site_root(request=None):
    """The portal's address without a trailing slash, to hand to work done later without the request."""
    return absolute_url("/", request=request).rstrip("/")
