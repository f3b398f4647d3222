"""Recording audit events. Every read or change of clinical data that a person makes goes through here.

The client address is the TCP peer, unless that peer is one of the configured trusted proxies
(``RADASSIST_TRUSTED_PROXIES``, in the order a request passes them): then it is the hop the
proxies say they received the request from (X-Forwarded-For), found with django-ipware. Either
way it is parsed as an IP address, so whatever else a client writes in the header is never stored.
"""

import ipaddress

from django.conf import settings
from django.http import HttpRequest
from ipware import get_client_ip

from portal.models import AuditAction, AuditEvent

#: Longest value kept of each query parameter, and most parameters kept, in a query summary.
QUERY_VALUE_CHARACTERS = 100
QUERY_PARAMETERS = 30


def _ip_or_none(value):
    try:
        return str(ipaddress.ip_address((value or "").strip()))
    except ValueError:
        return None


def client_ip(request):
    """The client's address as a valid IP, or None; X-Forwarded-For only counts when sent by a trusted proxy."""
    if request is None:
        return None
    peer = _ip_or_none(request.META.get("REMOTE_ADDR"))
    proxies = settings.RADASSIST_TRUSTED_PROXIES
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if peer is None or not proxies or not forwarded:
        return peer
    # The peer is the last hop of the chain: ipware then checks the trailing hops against the proxies in order.
    chain = HttpRequest()
    chain.META = {"HTTP_X_FORWARDED_FOR": f"{forwarded}, {peer}"}
    client, _ = get_client_ip(
        chain, proxy_trusted_ips=proxies, request_header_order=["HTTP_X_FORWARDED_FOR"], strict=False
    )
    return _ip_or_none(client) or peer


def query_summary(parameters):
    """What was searched for: the request's query parameters, bounded in number and length."""
    summary = {}
    for key in list(parameters)[:QUERY_PARAMETERS]:
        values = parameters.getlist(key) if hasattr(parameters, "getlist") else [parameters[key]]
        summary[str(key)[:QUERY_VALUE_CHARACTERS]] = ",".join(str(value) for value in values)[:QUERY_VALUE_CHARACTERS]
    return summary


def record_event(*, action, target=None, target_type="", target_id="", actor=None, request=None, hospital=None,
                 detail=None):
    """Append one audit row.

    ``target`` is the model instance acted on (its hospital is used unless given); reads of many
    rows at once (lists, searches) name a ``target_type`` and put the ids or the query in ``detail``.
    """
    if actor is None and request is not None and request.user.is_authenticated:
        actor = request.user
    if hospital is None:
        hospital = getattr(target, "hospital", None) if target is not None else getattr(actor, "hospital", None)
    if target is not None:
        target_type, target_id, target_label = target._meta.label, str(target.pk), str(target)[:255]
    else:
        target_label = ""
    return AuditEvent.objects.create(
        hospital=hospital,
        actor=actor,
        actor_email=getattr(actor, "email", "") or "",
        action=action,
        target_type=target_type,
        target_id=str(target_id)[:128],
        target_label=target_label,
        ip_address=client_ip(request),
        detail=detail or {},
    )


def record_search(*, request, target_type, ids, via):
    """One audit row for a read of many rows at once (a list, a search, a worklist page): the query and the ids shown.

    ``via`` names the door ("api", "worklist", ...); ``ids`` are the primary keys of the rows in the answer.
    """
    return record_event(
        action=AuditAction.SEARCH,
        target_type=target_type,
        request=request,
        detail={"via": via, "query": query_summary(request.GET), "ids": list(ids)},
    )
