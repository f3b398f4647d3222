from allauth.account.adapter import DefaultAccountAdapter


class InvitationOnlyAccountAdapter(DefaultAccountAdapter):
    """No public sign-up: accounts come from a hospital admin's invitation."""

    def is_open_for_signup(self, request):
        return False

    def get_login_redirect_url(self, request):
        return request.user.home_url()
