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


@victim_data
def dicomweb_rows(world):
    """A study, series and instance for the DICOMweb URLs, which take DICOM UIDs rather than primary keys."""
    from tests.factories import InstanceFactory, SeriesFactory, StudyFactory

    study = StudyFactory(
        hospital=world.hospital, patient=world.patient, study_instance_uid="1.2.826.0.1.3680043.9.7777.1",
        accession_number="VICTIMACC77",
    )
    series = SeriesFactory(study=study, series_instance_uid="1.2.826.0.1.3680043.9.7777.2")
    instance = InstanceFactory(series=series, sop_instance_uid="1.2.826.0.1.3680043.9.7777.3")
    return Planted(
        objects=[study, series, instance],
        markers=[study.study_instance_uid, series.series_instance_uid, instance.sop_instance_uid, "VICTIMACC77"],
        url_values={
            "study_uid": [study.study_instance_uid],
            "series_uid": [series.series_instance_uid],
            "instance_uid": [instance.sop_instance_uid],
            "frame_list": ["1"],
        },
    )
