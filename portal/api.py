"""Shared REST API plumbing: JSON errors for every failure, including the ones users cause."""

from rest_framework.views import exception_handler as drf_exception_handler

from portal.errors import UserFacingError


def exception_handler(exc, context):
    if isinstance(exc, UserFacingError):
        from rest_framework.response import Response

        return Response({"detail": str(exc)}, status=exc.status_code)
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, list):
        response.data = {"detail": response.data}
    return response
