from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Hospitals and users"

    def ready(self):
        from accounts import login_audit  # noqa: F401 - connects the login, logout and failed-login receivers
