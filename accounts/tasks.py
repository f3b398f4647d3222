"""Account email on the reports queue (routed in celery_app), sent with a timeout and retried (portal.email)."""

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string

from accounts.models import Invitation
from portal.email import EMAIL_TASK_OPTIONS


@shared_task(**EMAIL_TASK_OPTIONS)
def send_invitation_email(*, invitation_id, link):
    """Email an invitation its one-time link (the link holds the token, which the database keeps only hashed)."""
    invitation = Invitation.objects.filter(pk=invitation_id).select_related("hospital").first()
    if invitation is None:
        return
    context = {"invitation": invitation, "link": link, "valid_days": settings.INVITATION_VALID_DAYS}
    send_mail(
        subject=f"You are invited to RadAssist at {invitation.hospital.name}",
        message=render_to_string("accounts/email/invitation.txt", context),
        from_email=None,
        recipient_list=[invitation.email],
    )
