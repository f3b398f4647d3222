"""Role checks for views. Visibility of rows is decided by ``visible_to``; these decide who may use a page."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import Http404
from rest_framework import permissions


def role_required(*roles):
    """Only users with one of these roles may use the view; others get 404, as if the page did not exist."""

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if request.user.hospital_id is None or request.user.role not in roles:
                raise Http404
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


class IsClinicalStaff(permissions.BasePermission):
    """Doctors, hospital admins and API keys (which act as doctors)."""

    message = "This endpoint is for hospital staff and API keys."

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and (user.is_doctor or user.is_hospital_admin))
