"""Audit events for logins, logouts, failed logins and two-factor events, from Django's and allauth's signals.

allauth logs in and out through ``django.contrib.auth``, so these signals see every session
login (password, after MFA, after a password reset) and every failed password check.
"""

from allauth.mfa import signals as mfa_signals
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from portal.audit import record_event
from portal.models import AuditAction


@receiver(user_logged_in, dispatch_uid="audit-login")
def record_login(sender, request, user, **kwargs):
    record_event(action=AuditAction.LOGIN, target=user, actor=user, request=request, hospital=user.hospital)


@receiver(user_logged_out, dispatch_uid="audit-logout")
def record_logout(sender, request, user, **kwargs):
    if user is not None:
        record_event(action=AuditAction.LOGOUT, target=user, actor=user, request=request, hospital=user.hospital)


@receiver(user_login_failed, dispatch_uid="audit-login-failed")
def record_failed_login(sender, credentials, request=None, **kwargs):
    """One event per failed attempt, on the account tried when it exists (Django has already masked the password)."""
    email = str(credentials.get("email") or credentials.get("username") or "")[:254]
    user_model = get_user_model()
    account = user_model.objects.filter(email__iexact=email).first() if email else None
    record_event(
        action=AuditAction.LOGIN_FAILED,
        target=account,
        target_type=user_model._meta.label,
        request=request,
        hospital=getattr(account, "hospital", None),
        detail={"email": email},
    )


def _record_mfa(event):
    def record(sender, request=None, user=None, authenticator=None, **kwargs):
        record_event(
            action=AuditAction.MFA,
            target=user,
            actor=user if event != "code refused" else None,
            request=request,
            hospital=getattr(user, "hospital", None),
            detail={"event": event, "type": getattr(authenticator, "type", "")},
        )

    return record


for _signal, _event in (
    (mfa_signals.authenticator_added, "added"),
    (mfa_signals.authenticator_removed, "removed"),
    (mfa_signals.authenticator_reset, "reset"),
    (mfa_signals.authenticator_used, "code accepted"),
    (mfa_signals.authentication_failed, "code refused"),
):
    _signal.connect(_record_mfa(_event), weak=False, dispatch_uid=f"audit-mfa-{_event}")
