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
    from accounts.services import register_dicom_peer

    dicom_peer = register_dicom_peer(hospital=world.hospital, ae_title="VICTIMSCANNER42", host="10.9.8.7")
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
            dicom_peer,
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
            dicom_peer.ae_title,
        ],
        url_values={"slug": [world.hospital.slug]},
    )


@victim_data
def scans_rows(world):
    """A study with a real stored DICOM file, and the upload batch that brought it, with its rejected sibling."""
    import tempfile
    from pathlib import Path

    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from ml.phantoms import generate_phantom_series, write_dicom_series
    from tests.factories import InstanceFactory, SeriesFactory, StudyFactory, UploadBatchFactory, UploadedFileFactory

    study = StudyFactory(
        hospital=world.hospital, patient=world.patient, study_instance_uid="1.2.826.0.1.3680043.9.8888.1",
        accession_number="VICTIMSCANACC42", description="VictimStudyDescription",
    )
    series = SeriesFactory(
        study=study, series_instance_uid="1.2.826.0.1.3680043.9.8888.2", description="VictimSeriesDescription",
        status="received",
    )
    with tempfile.TemporaryDirectory() as directory:
        path = write_dicom_series(
            generate_phantom_series(label="normal", slices=1, size=8), directory,
            patient_id=world.patient.mrn, patient_name="Victim^Scan", study_uid=study.study_instance_uid,
            series_uid=series.series_instance_uid,
        )[0]
        data = Path(path).read_bytes()
    stored_name = f"hospitals/{world.hospital.pk}/tenancy-sweep/victim-instance.dcm"
    default_storage.delete(stored_name)
    default_storage.save(stored_name, ContentFile(data))
    instance = InstanceFactory(
        series=series, sop_instance_uid="1.2.826.0.1.3680043.9.8888.3", file=stored_name, file_size=len(data),
        rows=8, columns=8,
    )
    batch = UploadBatchFactory(hospital=world.hospital, uploaded_by=world.doctor, patient=world.patient)
    stored = UploadedFileFactory(batch=batch, name="victim-upload-IM0001.dcm", instance=instance)
    rejected = UploadedFileFactory(
        batch=batch, name="victim-upload-REPORT.dcm", outcome="rejected", failure_reason=0x0122,
        reason="This DICOM file holds no image (no pixel data).",
    )
    return Planted(
        objects=[study, series, instance, batch, stored, rejected],
        markers=[
            study.study_instance_uid, series.series_instance_uid, instance.sop_instance_uid, "VICTIMSCANACC42",
            "VictimStudyDescription", "VictimSeriesDescription", "victim-upload-IM0001", "victim-upload-REPORT",
        ],
        url_values={
            "study_uid": [study.study_instance_uid],
            "series_uid": [series.series_instance_uid],
            "instance_uid": [instance.sop_instance_uid],
            "frame_list": ["1"],
        },
    )


@victim_data
def report_rows(world):
    """A study with an analysis, a key image and a signed report (with its PDF) of the victim's patient."""
    from django.core.files.base import ContentFile

    from reports.services import create_draft_report, override_ai_class, sign_report, update_draft
    from tests.factories import DEFAULT_PASSWORD, AnalysisFactory, KeyImageFactory, SeriesFactory, StudyFactory

    study = StudyFactory(
        hospital=world.hospital, patient=world.patient, accession_number="VICTIMREPORTACC7",
        study_instance_uid="1.2.826.0.1.3680043.9.8888.71",
    )
    series = SeriesFactory(
        study=study, description="VictimReportSeries", series_instance_uid="1.2.826.0.1.3680043.9.8888.72"
    )
    analysis = AnalysisFactory(series=series)
    key_image = KeyImageFactory(analysis=analysis, slice_index=0)
    version = create_draft_report(analysis=analysis).versions.get()
    update_draft(
        version=version, doctor=world.doctor, impression="VictimImpressionText-4815",
        recommendation="VictimRecommendationText-1623",
    )
    override_ai_class(
        version=version, doctor=world.doctor, conclusion_class="normal", reason="VictimOverrideReason-42"
    )
    sign_report(version=version, doctor=world.doctor, password=DEFAULT_PASSWORD)
    version.pdf.save("victim-report.pdf", ContentFile(b"%PDF-1.4\n% VictimReportPdfBody-2718\n%%EOF\n"))
    return Planted(
        objects=[study, series, analysis, key_image, version.report, version],
        markers=[
            "VICTIMREPORTACC7", "VictimReportSeries", "VictimImpressionText-4815", "VictimRecommendationText-1623",
            "VictimOverrideReason-42", "VictimReportPdfBody-2718",
        ],
    )
