from allauth.account.adapter import DefaultAccountAdapter
from django.core.exceptions import PermissionDenied

from portal.audit import client_ip


class InvitationOnlyAccountAdapter(DefaultAccountAdapter):
    """No public sign-up: accounts come from a hospital admin's invitation.

    Failed logins are limited per account *and client address* (``ACCOUNT_RATE_LIMITS``), so that
    someone guessing a doctor's password from one place cannot lock the doctor out everywhere else;
    the client address is the one the audit log records (trusted proxies only).
    """

    def is_open_for_signup(self, request):
        return False

    def get_login_redirect_url(self, request):
        return request.user.home_url()

    def get_client_ip(self, request):
        address = client_ip(request)
        if address is None:
            raise PermissionDenied("Unable to determine the client's address.")
        return address

    def _get_login_attempts_cache_key(self, request, **credentials):
        """allauth counts failed logins per email; we count them per email and client address (allauth 65.21)."""
        return f"{super()._get_login_attempts_cache_key(request, **credentials)}:{self.get_client_ip(request)}"
