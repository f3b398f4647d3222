"""Actions on hospitals, users, invitations, API keys and DICOM peers. Views, admin and commands call these."""

import secrets
from datetime import timedelta

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts.models import ApiKey, DicomPeer, Invitation, Role, User, validate_ae_title
from accounts.permissions import IT_ADMIN_INVITABLE_ROLES
from portal.audit import record_event
from portal.errors import UserFacingError
from portal.links import absolute_url
from portal.models import AuditAction
from portal.queueing import queue_task


class InvitationError(UserFacingError):
    pass


def mark_email_verified(user):
    """Invitations and the demo seed vouch for an address, so allauth need not send its own check."""
    EmailAddress.objects.update_or_create(user=user, email=user.email, defaults={"verified": True, "primary": True})


def invite_user(*, hospital, email, role, invited_by, full_name="", patient=None, request=None):
    """Create an invitation and email its one-time link. Returns the invitation."""
    email = email.strip().lower()
    if role not in Role.values:
        raise InvitationError(f"Unknown role {role!r}.")
    if invited_by is not None and invited_by.is_it_admin and role not in IT_ADMIN_INVITABLE_ROLES:
        raise InvitationError("IT admins invite staff only; a doctor or hospital admin invites patients.")
    if role == Role.PATIENT and patient is None:
        raise InvitationError("A patient invitation must name the patient record the login belongs to.")
    if patient is not None and patient.hospital_id != hospital.pk:
        raise InvitationError("That patient record belongs to another hospital.")
    if patient is not None and patient.user_id is not None:
        raise InvitationError("That patient already has a login.")
    if User.objects.filter(email=email).exists():
        raise InvitationError(f"{email} already has an account.")
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        invitation = Invitation.objects.create(
            hospital=hospital,
            email=email,
            full_name=full_name,
            role=role,
            patient=patient,
            token_hash=Invitation.hash_token(token),
            invited_by=invited_by,
            expires_at=timezone.now() + timedelta(days=settings.INVITATION_VALID_DAYS),
        )
        record_event(
            action=AuditAction.INVITE, target=invitation, actor=invited_by, request=request, detail={"role": role}
        )
    link = absolute_url(reverse("accept-invitation", kwargs={"token": token}), request=request)
    queue_invitation_email(invitation, link=link)
    return invitation


def queue_invitation_email(invitation, *, link):
    """Email the invitation from a Celery task once it has committed (a hung mail server holds no request)."""
    transaction.on_commit(
        lambda: queue_task("accounts.tasks.send_invitation_email", invitation_id=invitation.pk, link=link)
    )


def find_open_invitation(token):
    """The invitation behind a link, or an error that says why the link no longer works."""
    invitation = Invitation.objects.filter(token_hash=Invitation.hash_token(token)).select_related("hospital").first()
    if invitation is None:
        raise InvitationError("This invitation link is not valid. Ask your hospital's administrator for a new one.")
    if invitation.accepted_at is not None:
        raise InvitationError("This invitation has already been used. Log in with your email and password.")
    if invitation.is_expired:
        raise InvitationError("This invitation has expired. Ask your hospital's administrator for a new one.")
    return invitation


def accept_invitation(*, token, password, full_name=""):
    """Create the invitee's account with the password they chose; the link then stops working."""
    with transaction.atomic():
        invitation = find_open_invitation(token)
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if invitation.accepted_at is not None:
            raise InvitationError("This invitation has already been used. Log in with your email and password.")
        if User.objects.filter(email=invitation.email).exists():
            raise InvitationError(f"{invitation.email} already has an account. Log in instead.")
        user = User.objects.create_user(
            email=invitation.email,
            password=password,
            full_name=full_name or invitation.full_name,
            hospital=invitation.hospital,
            role=invitation.role,
        )
        mark_email_verified(user)
        if invitation.patient_id:
            invitation.patient.user = user
            invitation.patient.save(update_fields=["user"])
        invitation.accepted_at = timezone.now()
        invitation.save(update_fields=["accepted_at"])
    return user


def _machine_user(*, hospital, kind, full_name):
    """The user a machine (an API key, a DICOM peer) acts as: a doctor of its hospital without a password,
    so that what it sends is attributed to it."""
    client = User(
        email=f"{kind}-{hospital.slug}-{secrets.token_hex(4)}@{kind}.radassist.invalid",
        full_name=full_name,
        hospital=hospital,
        role=Role.DOCTOR,
        is_api_client=True,
    )
    client.set_unusable_password()
    client.save()
    return client


def create_api_key(*, hospital, name, created_by=None):
    """Create a key and its API-client user. Returns (api_key, secret); the secret is never stored."""
    secret = ApiKey.generate_secret()
    with transaction.atomic():
        client = _machine_user(hospital=hospital, kind="api", full_name=f"API key “{name}”")
        api_key = ApiKey.objects.create(
            hospital=hospital, name=name, user=client, key_prefix=secret[:10], key_hash=ApiKey.hash_key(secret)
        )
        record_event(action=AuditAction.API_KEY, target=api_key, actor=created_by, detail={"change": "created"})
    return api_key, secret


def revoke_api_key(*, api_key, revoked_by=None):
    with transaction.atomic():
        api_key.revoked_at = api_key.revoked_at or timezone.now()
        api_key.save(update_fields=["revoked_at"])
        api_key.user.is_active = False
        api_key.user.save(update_fields=["is_active"])
        record_event(action=AuditAction.API_KEY, target=api_key, actor=revoked_by, detail={"change": "revoked"})


def authenticate_api_key(secret):
    """The API-client user of an active key, or None."""
    if not secret or not secret.startswith(ApiKey.PREFIX):
        return None
    api_key = (
        ApiKey.objects.active()
        .select_related("user", "user__hospital")
        .filter(key_hash=ApiKey.hash_key(secret), user__is_active=True)
        .first()
    )
    if api_key is None:
        return None
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > timedelta(minutes=1):
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    return api_key.user


class DicomPeerError(UserFacingError):
    pass


def register_dicom_peer(*, hospital, ae_title, host=None, description=""):
    """Let a scanner or PACS associate with the hospital's AE title, from ``host`` only if given.

    The peer acts through its own API-client user (doctor-level, no password), like an API key,
    so that what it sends is attributed to it.
    """
    try:
        validate_ae_title(ae_title)
    except ValidationError as error:
        raise DicomPeerError(f"{ae_title!r} is not a valid AE title: {' '.join(error.messages)}") from None
    if DicomPeer.objects.for_hospital(hospital).filter(ae_title=ae_title).exists():
        raise DicomPeerError(f"{hospital.name} already has a DICOM peer with the AE title {ae_title}.")
    with transaction.atomic():
        client = _machine_user(hospital=hospital, kind="dicom", full_name=f"DICOM peer {ae_title}")
        return DicomPeer.objects.create(
            hospital=hospital, ae_title=ae_title, host=host or None, description=description, user=client
        )


def remove_dicom_peer(*, peer):
    """The peer may no longer associate; its user stays (inactive) as the author of what it sent."""
    with transaction.atomic():
        peer.user.is_active = False
        peer.user.save(update_fields=["is_active"])
        peer.delete()
