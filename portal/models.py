from django.conf import settings
from django.db import models

from portal.tenancy import TenantQuerySet


class AuditAction(models.TextChoices):
    VIEW = "view", "Viewed"
    DOWNLOAD = "download", "Downloaded"
    SIGN = "sign", "Signed"
    AMEND = "amend", "Amended"
    OVERRIDE = "override", "Overrode AI finding"
    RELEASE = "release", "Held or released a report to the patient"
    REANALYSE = "reanalyse", "Requested reanalysis"
    UPLOAD = "upload", "Uploaded"
    INVITE = "invite", "Invited user"
    API_KEY = "api_key", "Managed API key"
    LOGIN = "login", "Logged in"
    SEND = "send", "Sent to a DICOM destination"
    PATIENT_CHECK = "patient_check", "Decided a patient check"
    ASSIGN = "assign", "Assigned a study to a doctor"
    LOGOUT = "logout", "Logged out"
    LOGIN_FAILED = "login_failed", "Failed to log in"
    SEARCH = "search", "Listed or searched"
    MFA = "mfa", "Two-factor authentication"


class AuditEventQuerySet(TenantQuerySet):
    def update(self, **kwargs):
        raise PermissionError("Audit events are append-only.")

    def delete(self):
        raise PermissionError("Audit events are append-only.")


class AuditEvent(models.Model):
    """Append-only record of who did what to which object, when and from where."""

    hospital = models.ForeignKey("accounts.Hospital", null=True, blank=True, on_delete=models.PROTECT)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    actor_email = models.EmailField(blank=True, help_text="Kept even if the user is later deactivated.")
    action = models.CharField(max_length=32, choices=AuditAction.choices)
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=128)
    target_label = models.CharField(max_length=255, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = models.Manager.from_queryset(AuditEventQuerySet)()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["target_type", "target_id"])]

    def __str__(self):
        actor = self.actor_email or "system"
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {actor} {self.action} {self.target_type} {self.target_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionError("Audit events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("Audit events are append-only.")
