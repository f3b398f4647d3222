"""Recording audit events. Every read or change of clinical data that a person makes goes through here."""

from portal.models import AuditEvent


def client_ip(request):
    """The client's address; behind the production proxy the first X-Forwarded-For hop is the client."""
    if request is None:
        return None
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if forwarded:
        return forwarded.split(",")[0].strip() or None
    return request.META.get("REMOTE_ADDR") or None


def record_event(*, action, target, actor=None, request=None, hospital=None, detail=None):
    """Append one audit row. ``target`` is the model instance acted on; its hospital is used unless given."""
    if actor is None and request is not None and request.user.is_authenticated:
        actor = request.user
    if hospital is None:
        hospital = getattr(target, "hospital", None)
    return AuditEvent.objects.create(
        hospital=hospital,
        actor=actor,
        actor_email=getattr(actor, "email", "") or "",
        action=action,
        target_type=target._meta.label,
        target_id=str(target.pk),
        target_label=str(target)[:255],
        ip_address=client_ip(request),
        detail=detail or {},
    )
