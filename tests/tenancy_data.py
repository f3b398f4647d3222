"""What the tenancy sweep plants in the victim hospital.

Each app registers a builder with ``@victim_data``. A builder receives the
victim's :class:`tests.conftest.HospitalWorld`, creates that app's rows in the
victim hospital (use the factories) and returns a :class:`Planted`: the rows
(their primary keys and identifiers are tried in every URL parameter) and the
marker strings that must never appear in a response to another hospital
(names, MRNs, UIDs, report text...). Keep markers distinctive: at least eight
characters, nothing that could appear on an unrelated page.
"""

from dataclasses import dataclass, field

VICTIM_DATA_BUILDERS = []


@dataclass
class Planted:
    objects: list = field(default_factory=list)
    markers: list = field(default_factory=list)
    #: Extra values to try for URL parameters, by parameter name (e.g. {"study_uid": ["1.2.3"]}).
    url_values: dict = field(default_factory=dict)


def victim_data(builder):
    VICTIM_DATA_BUILDERS.append(builder)
    return builder


@victim_data
def accounts_rows(world):
    from accounts.models import Invitation

    invitation = Invitation.objects.create(
        hospital=world.hospital,
        email="invitee.victim@south.test",
        role="doctor",
        token_hash="0" * 64,
        expires_at="2999-01-01T00:00:00Z",
    )
    return Planted(
        objects=[
            world.hospital,
            world.admin,
            world.doctor,
            world.patient,
            world.patient.user,
            world.api_key,
            invitation,
        ],
        markers=[
            world.hospital.name,
            world.patient.full_name,
            world.patient.mrn,
            world.admin.email,
            world.doctor.email,
            world.patient.user.email,
            invitation.email,
            world.api_key.key_prefix,
        ],
        url_values={"slug": [world.hospital.slug]},
    )
