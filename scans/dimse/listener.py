"""The DICOM listener: one pynetdicom application entity answering every hospital's AE title.

Each association runs in its own thread (pynetdicom's), with its own database connection, closed
when the association ends. Several listener processes may run side by side (behind a TCP load
balancer): they share nothing but the database, the broker and storage.

The log has one line per association (who called whom from where, what happened, how it ended)
and one per refused association; never a patient name or identifier.
"""

import logging
import threading
import time
from dataclasses import dataclass, field

from django.db import connections
from pynetdicom import AE, evt

from scans.dimse.admission import AssociationRefused, admit
from scans.dimse.contexts import add_supported_contexts
from scans.dimse.find import InvalidFindQuery, find
from scans.dimse.store import StoreSession, error_comment, status_dataset

logger = logging.getLogger(__name__)

#: The listener's own AE title, sent in its association responses; the called AE title chooses the hospital.
LISTENER_AE_TITLE = "RADASSIST"
REJECTED_PERMANENT = 0x01
REJECTED_TRANSIENT = 0x02
REJECTED_BY_SERVICE_USER = 0x01
NO_REASON_GIVEN = 0x01
FIND_PENDING = 0xFF00
FIND_CANCELLED = 0xFE00
FIND_IDENTIFIER_DOES_NOT_MATCH = 0xA900
FIND_UNABLE_TO_PROCESS = 0xC000


@dataclass
class AssociationState:
    """What one accepted association did, for its C-STOREs and its log line."""

    called_ae_title: str
    calling_ae_title: str
    address: str
    store: StoreSession
    started: float = field(default_factory=time.monotonic)
    echoes: int = 0
    finds: int = 0
    ended: bool = False


class DicomListener:
    """Binds pynetdicom's events to admission, C-ECHO, C-STORE and C-FIND; ``start`` serves in the background."""

    def __init__(self):
        self.application_entity = AE(ae_title=LISTENER_AE_TITLE)
        self.application_entity.require_called_aet = False
        add_supported_contexts(self.application_entity)
        self.associations = {}
        self.lock = threading.Lock()
        self.server = None

    @property
    def handlers(self):
        return [
            (evt.EVT_REQUESTED, self.on_requested),
            (evt.EVT_C_ECHO, self.on_echo),
            (evt.EVT_C_STORE, self.on_store),
            (evt.EVT_C_FIND, self.on_find),
            (evt.EVT_RELEASED, self.on_ended),
            (evt.EVT_ABORTED, self.on_ended),
            (evt.EVT_CONN_CLOSE, self.on_ended),
        ]

    def start(self, *, host, port):
        """Listen on ``host:port`` in background threads; returns the address actually bound (port 0 picks one)."""
        self.server = self.application_entity.start_server((host, port), block=False, evt_handlers=self.handlers)
        return self.server.server_address

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server = None

    # Events ---------------------------------------------------------------------------------------

    def on_requested(self, event):
        """Accept the association only for a hospital's AE title and one of its registered peers."""
        association = event.assoc
        request = association.requestor.primitive
        called, calling = str(request.called_ae_title).strip(), str(request.calling_ae_title).strip()
        address = association.requestor.address
        try:
            admission = admit(called_ae_title=called, calling_ae_title=calling, address=address)
        except AssociationRefused as refusal:
            logger.info("DICOM association refused: %s@%s calling %s: %s", calling, address, called, str(refusal))
            self.reject(association, REJECTED_PERMANENT, refusal.diagnostic)
            return
        except Exception:  # the database is out of reach: the sender may try again later
            logger.exception("DICOM association refused for now: %s@%s calling %s", calling, address, called)
            self.reject(association, REJECTED_TRANSIENT, NO_REASON_GIVEN)
            return
        with self.lock:
            self.associations[association] = AssociationState(
                called_ae_title=called, calling_ae_title=calling, address=address,
                store=StoreSession(admission=admission),
            )

    @staticmethod
    def reject(association, result, diagnostic):
        connections.close_all()  # the association's thread ends here
        association.acse.send_reject(result, REJECTED_BY_SERVICE_USER, diagnostic)
        association.kill()

    def on_echo(self, event):
        self.state_of(event).echoes += 1
        return 0x0000

    def on_store(self, event):
        return self.state_of(event).store.store(event)

    def on_find(self, event):
        state = self.state_of(event)
        state.finds += 1
        try:
            responses = find(hospital=state.store.admission.hospital, identifier=event.identifier)
            for response in responses:
                if event.is_cancelled:
                    yield FIND_CANCELLED, None
                    return
                yield FIND_PENDING, response
        except InvalidFindQuery as error:
            yield status_dataset(FIND_IDENTIFIER_DOES_NOT_MATCH, str(error)), None
            return
        except Exception:
            logger.exception("a DICOM C-FIND failed")
            yield status_dataset(FIND_UNABLE_TO_PROCESS, error_comment("The search failed on our side")), None
            return
        yield 0x0000, None

    def on_ended(self, event):
        """Close the association's batch and log its line, once, however it ended."""
        with self.lock:
            state = self.associations.pop(event.assoc, None)
        try:
            if state is not None:
                self.close(state, event)
        finally:
            connections.close_all()  # this thread's connection; each association thread ends its own

    def close(self, state, event):
        try:
            state.store.close()
        except Exception:
            logger.exception("closing a DICOM association's upload batch failed")
        outcomes = state.store.outcomes
        logger.info(
            "DICOM association %s@%s to %s %s after %.1f s: %d stored, %d duplicate, %d rejected, %d failed, "
            "%d C-FIND, %d C-ECHO",
            state.calling_ae_title, state.address, state.called_ae_title, _ending(event),
            time.monotonic() - state.started, outcomes["stored"], outcomes["duplicate"], outcomes["rejected"],
            outcomes["failed"], state.finds, state.echoes,
        )

    def state_of(self, event):
        with self.lock:
            return self.associations[event.assoc]


def _ending(event):
    if event.event == evt.EVT_RELEASED:
        return "released"
    if event.event == evt.EVT_ABORTED:
        return "aborted"
    return "closed"
