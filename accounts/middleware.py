import time

from allauth.mfa.models import Authenticator
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.http import JsonResponse
from django.shortcuts import redirect

from accounts.permissions import user_may


class RequireMultiFactorMiddleware:
    """With RADASSIST_REQUIRE_MFA_FOR_STAFF, doctors and hospital admins must set up TOTP before anything else."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if settings.RADASSIST_REQUIRE_MFA_FOR_STAFF and self.must_enrol(request):
            return redirect("mfa_activate_totp")
        return self.get_response(request)

    @staticmethod
    def must_enrol(request):
        user = request.user
        if not (user_may(user, "read_clinical") or user_may(user, "manage_users")) or user.is_api_client:
            return False
        if request.path.startswith(("/accounts/", "/static/")):
            return False
        return not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()


class IdleSessionTimeoutMiddleware:
    """Log a browser session out after a while without activity (staff: 30 minutes by default).

    A workstation left open in a reading room must not stay logged in to patient data. The time
    of the last request is kept in the session, rewritten at most once a minute; requests a page
    makes by itself (``RADASSIST_IDLE_BACKGROUND_PATH_SUFFIXES``) do not count as activity.
    API keys carry no session and are not affected.
    """

    SESSION_KEY = "radassist_last_activity"
    REFRESH_SECONDS = 60

    def __init__(self, get_response):
        self.get_response = get_response

    @staticmethod
    def timeout_for(user):
        if not user.is_authenticated:
            return 0
        if user.is_patient and not user.is_staff:
            return settings.RADASSIST_PATIENT_IDLE_TIMEOUT_SECONDS
        return settings.RADASSIST_STAFF_IDLE_TIMEOUT_SECONDS

    def __call__(self, request):
        timeout = self.timeout_for(request.user)
        if not timeout:
            return self.get_response(request)
        now = int(time.time())
        last_activity = request.session.get(self.SESSION_KEY)
        if last_activity is not None and now - last_activity > timeout:
            return self.log_out(request, timeout)
        background = request.path.endswith(tuple(settings.RADASSIST_IDLE_BACKGROUND_PATH_SUFFIXES))
        if not background and (last_activity is None or now - last_activity >= self.REFRESH_SECONDS):
            request.session[self.SESSION_KEY] = now
        return self.get_response(request)

    @staticmethod
    def log_out(request, timeout):
        logout(request)
        message = f"You were logged out after {timeout // 60} minutes without activity. Please log in again."
        if request.path.startswith(("/api/", "/dicomweb/")) or "json" in request.META.get("HTTP_ACCEPT", ""):
            return JsonResponse({"detail": message}, status=401)
        messages.info(request, message)
        return redirect_to_login(request.get_full_path())
