from allauth.mfa.models import Authenticator
from django.conf import settings
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
