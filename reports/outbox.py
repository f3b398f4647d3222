"""Forwarding result objects to a hospital's DICOM destinations, from a durable outbox.

Each (destination, SOP Instance UID) pair is one ``OutboxItem`` row, made in the same transaction as the
result object, so nothing is lost when a worker dies and nothing is sent twice: a delivery locks its row
and sends only while it is pending. A destination that does not answer (refused connection, timeout,
HTTP 5xx, an aborted or transiently rejected association, DIMSE "out of resources") is tried again
with growing pauses, by a task scheduled for then and by the sweep that Celery beat runs every minute,
until ``MAX_ATTEMPTS``; a destination that rejects the object (HTTP 4xx, a STOW-RS failure, a C-STORE
failure status) marks it failed at once, with the destination's reason. Hospital admins can send failed
items again from the admin.

The tenant wall: items are made only for destinations of the result object's own hospital, the row
refuses any other pairing when it is saved, and the sender checks it once more before any byte leaves.
"""

import io
import json
import logging
import uuid
from datetime import timedelta
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

import pydicom
from django.db import transaction
from django.utils import timezone
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from portal.audit import record_event
from portal.errors import UserFacingError
from portal.models import AuditAction
from portal.queueing import queue_task
from reports.models import DicomDestination, OutboxItem, OutboxState
from reports.sealed_headers import HeadersUnreadable

logger = logging.getLogger(__name__)

#: Seconds to wait for a destination's answer, per request or DIMSE message.
SEND_TIMEOUT_SECONDS = 30
#: Pauses before the next attempt grow from FIRST_RETRY_SECONDS, doubling up to MAX_RETRY_SECONDS.
FIRST_RETRY_SECONDS = 30
MAX_RETRY_SECONDS = 3600
#: After this many attempts against a destination that does not answer, the item is marked failed.
MAX_ATTEMPTS = 12
SEND_TASK = "reports.tasks.send_outbox_item"


class DestinationUnavailable(Exception):
    """The destination did not take the object this time (down, busy, timed out); worth trying again."""


class DestinationRejected(Exception):
    """The destination answered that it will not store the object; trying again would not change that."""


# Queueing -----------------------------------------------------------------------------------------


def queue_for_destinations(*, result_objects):
    """Make an outbox item for every enabled destination of each object's hospital that wants its kind.

    Runs inside the caller's transaction; each item's send task is queued once that transaction commits.
    """
    items = []
    for result_object in result_objects:
        destinations = DicomDestination.objects.for_hospital(result_object.hospital_id).filter(enabled=True)
        for destination in destinations:
            if not destination.wants(result_object.kind):
                continue
            item, created = OutboxItem.objects.get_or_create(
                destination=destination,
                sop_instance_uid=result_object.sop_instance_uid,
                defaults={"hospital_id": result_object.hospital_id, "result_object": result_object,
                          "next_attempt_at": timezone.now()},
            )
            if created:
                items.append(item)
    for item in items:
        _queue_send(item.pk)
    return items


def _queue_send(item_id, *, countdown=None):
    transaction.on_commit(
        lambda: queue_task(SEND_TASK, countdown=countdown, item_id=item_id)
    )


def send_again(*, items):
    """Put failed (or waiting) items back to pending and send them now; the admin's "send again"."""
    ids = list(items.exclude(state=OutboxState.SENT).values_list("pk", flat=True))
    with transaction.atomic():
        OutboxItem.objects.filter(pk__in=ids).update(
            state=OutboxState.PENDING, attempts=0, next_attempt_at=timezone.now(), updated_at=timezone.now()
        )
        for item_id in ids:
            _queue_send(item_id)
    return len(ids)


def send_due_items(*, now=None):
    """Send every pending item whose next attempt is due (the beat sweep); returns how many were tried."""
    now = now or timezone.now()
    due = list(OutboxItem.objects.due(now).values_list("pk", flat=True))
    for item_id in due:
        send_item(item_id=item_id, now=now)
    return len(due)


# Sending ------------------------------------------------------------------------------------------


def retry_delay(attempts):
    return timedelta(seconds=min(FIRST_RETRY_SECONDS * 2 ** max(attempts - 1, 0), MAX_RETRY_SECONDS))


def send_item(*, item_id, now=None):
    """Send one pending item if its attempt is due; record the outcome. Returns the item.

    The row stays locked while it is sent, so two deliveries of the same task never send it twice.
    """
    with transaction.atomic():
        item = (
            OutboxItem.objects.select_for_update()
            .select_related("destination", "result_object__instance")
            .filter(pk=item_id)
            .first()
        )
        now = now or timezone.now()
        if item is None or item.state != OutboxState.PENDING:
            return item
        if item.next_attempt_at is not None and item.next_attempt_at > now:
            return item
        item.attempts += 1
        try:
            answer = _deliver(item)
        except DestinationRejected as rejection:
            _finish(item, state=OutboxState.FAILED, error=str(rejection))
        except DestinationUnavailable as trouble:
            if item.attempts >= MAX_ATTEMPTS:
                _finish(item, state=OutboxState.FAILED,
                        error=f"Gave up after {item.attempts} attempts. Last: {trouble}")
            else:
                item.last_error = str(trouble)
                item.next_attempt_at = now + retry_delay(item.attempts)
                item.save(update_fields=["attempts", "last_error", "next_attempt_at", "updated_at"])
                _queue_send(item.pk, countdown=retry_delay(item.attempts).total_seconds())
        else:
            item.sent_at = now
            _finish(item, state=OutboxState.SENT, error=answer)
            record_event(
                action=AuditAction.SEND,
                target=item.result_object,
                hospital=item.destination.hospital,
                detail={
                    "destination": item.destination.name,
                    "address": item.destination.address,
                    "kind": item.result_object.kind,
                    "sop_instance_uid": item.sop_instance_uid,
                    "attempts": item.attempts,
                },
            )
    return item


def _finish(item, *, state, error):
    item.state, item.last_error, item.next_attempt_at = state, error, None
    item.save(update_fields=["state", "attempts", "last_error", "next_attempt_at", "sent_at", "updated_at"])


def _deliver(item):
    """Send the item's object; returns a warning to keep (or ""), raises DestinationUnavailable/Rejected."""
    destination, result_object = item.destination, item.result_object
    if not (item.hospital_id == destination.hospital_id == result_object.hospital_id):
        raise DestinationRejected("Refused: the destination belongs to another hospital than the object.")
    if not destination.enabled:
        raise DestinationRejected("The destination is disabled.")
    try:
        with result_object.instance.file.open("rb") as stored:
            content = stored.read()
    except OSError as error:
        raise DestinationUnavailable(f"The stored object could not be read: {error}") from error
    if destination.kind == DicomDestination.Kind.DICOMWEB:
        try:
            headers = destination.headers
        except HeadersUnreadable as error:
            raise DestinationRejected(str(error)) from error
        return send_by_stow(destination=destination, headers=headers, content=content,
                            sop_instance_uid=item.sop_instance_uid)
    return send_by_c_store(destination=destination, content=content)


# DICOMweb STOW-RS ---------------------------------------------------------------------------------

FAILED_SOP_SEQUENCE = "00081198"
FAILURE_REASON = "00081197"
WARNING_REASON = "00081196"


def send_by_stow(*, destination, headers, content, sop_instance_uid):
    """POST one instance to ``<url>/studies`` as multipart/related; see the module docstring for outcomes."""
    if urlsplit(destination.url).scheme not in ("http", "https"):
        raise DestinationRejected("The DICOMweb URL must start with http:// or https://.")
    boundary = uuid.uuid4().hex
    body = b"".join([
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode(), content,
        f"\r\n--{boundary}--\r\n".encode(),
    ])
    request = Request(
        destination.url.rstrip("/") + "/studies",
        data=body,
        method="POST",
        headers={
            **headers,
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
            "Accept": "application/dicom+json",
        },
    )
    try:
        with urlopen(request, timeout=SEND_TIMEOUT_SECONDS) as response:
            status, answer = response.status, response.read()
    except HTTPError as error:
        status, answer = error.code, error.read()
    except (URLError, OSError) as error:
        raise DestinationUnavailable(f"{destination.url} did not answer: {getattr(error, 'reason', error)}") from error
    reason = _stow_failure(answer, sop_instance_uid)
    if status in (408, 429) or status >= 500:
        raise DestinationUnavailable(f"HTTP {status} from {destination.url}{reason}")
    if status >= 300 or reason:
        raise DestinationRejected(f"HTTP {status} from {destination.url}{reason or ''}")
    return _stow_warning(answer)


def _stow_response(answer):
    try:
        parsed = json.loads(answer or b"{}")
    except ValueError:
        return {}
    return parsed[0] if isinstance(parsed, list) and parsed else parsed if isinstance(parsed, dict) else {}


def _stow_failure(answer, sop_instance_uid):
    """The FailureReason the STOW-RS response gives for our instance, as ": FailureReason 0xA900", or ""."""
    failed = _stow_response(answer).get(FAILED_SOP_SEQUENCE, {}).get("Value", [])
    for entry in failed:
        if entry.get("00081155", {}).get("Value", [sop_instance_uid])[0] == sop_instance_uid:
            code = entry.get(FAILURE_REASON, {}).get("Value", ["?"])[0]
            return f": FailureReason 0x{code:04X}" if isinstance(code, int) else f": FailureReason {code}"
    return ""


def _stow_warning(answer):
    code = _stow_response(answer).get(WARNING_REASON, {}).get("Value", [None])[0]
    return f"Stored with warning 0x{code:04X}" if isinstance(code, int) else ""


# DIMSE C-STORE ------------------------------------------------------------------------------------

#: C-STORE statuses that mean "not now" rather than "never": 0xA7xx Refused: out of resources.
_TRANSIENT_STATUS = range(0xA700, 0xA800)


def send_by_c_store(*, destination, content):
    """One association, one C-STORE, with the object's own SOP class and transfer syntax (or implicit VR)."""
    from pynetdicom import AE

    dataset = pydicom.dcmread(io.BytesIO(content))
    application_entity = AE(ae_title=destination.calling_ae_title)
    application_entity.acse_timeout = application_entity.dimse_timeout = SEND_TIMEOUT_SECONDS
    application_entity.network_timeout = SEND_TIMEOUT_SECONDS
    application_entity.connection_timeout = SEND_TIMEOUT_SECONDS
    transfer_syntaxes = [dataset.file_meta.TransferSyntaxUID]
    if transfer_syntaxes[0] == ExplicitVRLittleEndian:
        transfer_syntaxes.append(ImplicitVRLittleEndian)  # the one every SCP accepts; pynetdicom converts to it
    application_entity.add_requested_context(dataset.SOPClassUID, transfer_syntaxes)
    where = f"{destination.ae_title}@{destination.host}:{destination.port}"
    association = application_entity.associate(destination.host, destination.port, ae_title=destination.ae_title)
    if association.is_rejected:
        rejection = association.acceptor.primitive
        text = f"{where} rejected the association ({rejection.result_str}: {rejection.reason_str})"
        if rejection.result == 0x02:
            raise DestinationUnavailable(text)
        raise DestinationRejected(text)
    if association.rejected_contexts and not association.accepted_contexts:
        raise DestinationRejected(f"{where} does not accept {dataset.SOPClassUID.name} objects.")
    if not association.is_established:
        raise DestinationUnavailable(f"{where} did not accept a connection (refused, aborted or timed out).")
    try:
        status = association.send_c_store(dataset)
    finally:
        association.release()
    if not status or "Status" not in status:
        raise DestinationUnavailable(f"{where} gave no C-STORE response (connection lost or timed out).")
    code = int(status.Status)
    comment = f" ({status.ErrorComment})" if "ErrorComment" in status else ""
    if code == 0x0000:
        return ""
    if code in (0xB000, 0xB006, 0xB007):
        return f"Stored with warning 0x{code:04X}{comment}"
    if code in _TRANSIENT_STATUS:
        raise DestinationUnavailable(f"{where} is out of resources (C-STORE status 0x{code:04X}){comment}")
    raise DestinationRejected(f"{where} refused the object (C-STORE status 0x{code:04X}){comment}")


# Configuring destinations -------------------------------------------------------------------------


class InvalidDestination(UserFacingError):
    """A destination that cannot be saved as given; the message says what to change."""


def add_destination(*, hospital, name, url="", headers=None, ae_title="", host="", port=None,
                    calling_ae_title="", sends_ai_results=True, sends_signed_reports=True):
    """Add a DICOMweb destination (``url``, optional ``headers``) or a DIMSE one (``ae_title``, ``host``, ``port``)."""
    name = (name or "").strip()
    if not name:
        raise InvalidDestination("Give the destination a name.")
    if DicomDestination.objects.for_hospital(hospital).filter(name=name).exists():
        raise InvalidDestination(f"{hospital.name} already has a destination named {name!r}.")
    if bool(url) == bool(ae_title or host or port):
        raise InvalidDestination("Give either a DICOMweb URL, or an AE title, host and port for C-STORE.")
    fields = {"hospital": hospital, "name": name, "headers": dict(headers or {}),
              "sends_ai_results": sends_ai_results, "sends_signed_reports": sends_signed_reports}
    if url:
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
            raise InvalidDestination(f"{url!r} is not a DICOMweb URL; it starts with http:// or https://.")
        fields.update(kind=DicomDestination.Kind.DICOMWEB, url=url)
    else:
        if not (ae_title and host and port):
            raise InvalidDestination("A C-STORE destination needs its AE title, host and port.")
        if len(ae_title) > 16 or len(calling_ae_title or "") > 16:
            raise InvalidDestination("AE titles have at most 16 characters.")
        if not 0 < int(port) < 65536:
            raise InvalidDestination("The port is a number from 1 to 65535.")
        fields.update(kind=DicomDestination.Kind.DIMSE, ae_title=ae_title, host=host, port=int(port))
    if calling_ae_title:
        fields["calling_ae_title"] = calling_ae_title
    return DicomDestination.objects.create(**fields)


def masked_headers(destination):
    """Header names with the start of each value, for showing back without revealing a secret."""
    try:
        headers = destination.headers
    except HeadersUnreadable as error:
        return str(error)
    return ", ".join(f"{name}: {str(value)[:4]}…" for name, value in sorted(headers.items()))


def parse_header(text):
    """'Name: value' into (name, value); raises ValueError with a message for the person typing it."""
    name, separator, value = text.partition(":")
    if not separator or not name.strip() or not value.strip():
        raise ValueError(f"Write each header as 'Name: value' (got {text!r}).")
    return name.strip(), value.strip()


__all__ = [
    "DestinationRejected",
    "DestinationUnavailable",
    "InvalidDestination",
    "add_destination",
    "queue_for_destinations",
    "send_again",
    "send_due_items",
    "send_item",
]
