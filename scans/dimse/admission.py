"""Who may associate: the called AE title selects the hospital, the calling AE title must be its registered peer.

The refusals are the standard A-ASSOCIATE-RJ reasons (PS3.8 9.3.4): permanent, by the service user,
"called AE title not recognised" (0x07) or "calling AE title not recognised" (0x03). A peer that is
registered with a host but calls from another address is refused as an unrecognised calling AE, so a
stranger learns nothing more than for a title that does not exist.
"""

from dataclasses import dataclass

from accounts.models import DicomPeer, Hospital

CALLING_AE_NOT_RECOGNISED = 0x03
CALLED_AE_NOT_RECOGNISED = 0x07


class AssociationRefused(Exception):
    def __init__(self, reason, *, diagnostic):
        super().__init__(reason)
        self.diagnostic = diagnostic


@dataclass(frozen=True)
class Admission:
    hospital: Hospital
    peer: DicomPeer


def admit(*, called_ae_title, calling_ae_title, address):
    """The hospital and peer of an association request, or :class:`AssociationRefused` saying why not."""
    hospital = Hospital.objects.filter(ae_title=called_ae_title.strip()).first()
    if hospital is None:
        raise AssociationRefused("no hospital has this called AE title", diagnostic=CALLED_AE_NOT_RECOGNISED)
    peer = (
        DicomPeer.objects.for_hospital(hospital)
        .filter(ae_title=calling_ae_title.strip(), user__is_active=True)
        .select_related("user", "hospital")
        .first()
    )
    if peer is None:
        raise AssociationRefused("the calling AE title is not a peer of this hospital",
                                 diagnostic=CALLING_AE_NOT_RECOGNISED)
    if not peer.accepts_address(address):
        raise AssociationRefused("the peer called from an address it is not registered with",
                                 diagnostic=CALLING_AE_NOT_RECOGNISED)
    return Admission(hospital=hospital, peer=peer)
