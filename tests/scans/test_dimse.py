"""The DICOM listener against dcmtk's echoscu, storescu and findscu (Debian's dcmtk), on a free port.

The listener runs in this process (its associations in pynetdicom's threads) on the test database;
each test waits until the listener has finished every association it started (batch closed) before
it looks at the database.
"""

import shutil
import subprocess
import threading

import pydicom
import pytest
from pydicom.uid import JPEG2000Lossless, RLELossless

from accounts.services import register_dicom_peer
from scans.dimse.listener import DicomListener
from scans.models import FileOutcome, Instance, Series, SeriesStatus, UploadBatch, UploadedFile
from tests.factories import HospitalFactory
from tests.scans.conftest import pydicom_file

pytestmark = [
    pytest.mark.skipif(
        not all(shutil.which(tool) for tool in ("echoscu", "storescu", "findscu")),
        reason="needs dcmtk's echoscu, storescu and findscu (make test installs Debian's dcmtk)",
    ),
    pytest.mark.django_db(transaction=True),
]

DCMTK_TIMEOUT_SECONDS = 60


class ListenerUnderTest:
    """The listener on a free port, counting the associations it has finished."""

    def __init__(self):
        self.listener = DicomListener()
        self.finished = 0
        self.condition = threading.Condition()
        close = self.listener.close

        def counting_close(state, event):
            try:
                close(state, event)
            finally:
                with self.condition:
                    self.finished += 1
                    self.condition.notify_all()

        self.listener.close = counting_close
        _, self.port = self.listener.start(host="127.0.0.1", port=0)

    def wait_for_associations(self, count, timeout=15):
        with self.condition:
            assert self.condition.wait_for(lambda: self.finished >= count, timeout=timeout), (
                f"the listener finished {self.finished} associations, expected {count}"
            )


@pytest.fixture
def north(transactional_db):
    """Only the hospitals (AE titles NORTH and SOUTH): the listener needs no people, whose passwords take seconds."""
    return HospitalFactory(slug="north", name="North Hospital")


@pytest.fixture
def south(transactional_db):
    return HospitalFactory(slug="south", name="South Hospital")


@pytest.fixture
def dicom(north, south):
    register_dicom_peer(hospital=north, ae_title="NORTH_CT")
    register_dicom_peer(hospital=south, ae_title="SOUTH_PACS")
    under_test = ListenerUnderTest()
    yield under_test
    under_test.listener.stop()


def storescu(dicom, *paths, calling="NORTH_CT", called="NORTH", options=()):
    """Send files with storescu (-d: the DIMSE statuses and error comments are in its output)."""
    command = ["storescu", "-d", "-aet", calling, "-aec", called, *options, "127.0.0.1", str(dicom.port),
               *[str(path) for path in paths]]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=DCMTK_TIMEOUT_SECONDS)
    return completed.returncode, completed.stdout + completed.stderr


def echoscu(dicom, *, calling="NORTH_CT", called="NORTH"):
    completed = subprocess.run(
        ["echoscu", "-aet", calling, "-aec", called, "127.0.0.1", str(dicom.port)],
        capture_output=True, text=True, timeout=DCMTK_TIMEOUT_SECONDS,
    )
    return completed.returncode, completed.stdout + completed.stderr


def findscu(dicom, tmp_path, level, keys, *, calling="NORTH_CT", called="NORTH"):
    """Study Root C-FIND; returns the response identifiers as pydicom datasets."""
    output = tmp_path / f"find-{level}-{called}-{len(list(tmp_path.glob('find-*')))}"
    output.mkdir()
    arguments = ["-S", "-k", f"QueryRetrieveLevel={level}"]
    for key in keys:
        arguments += ["-k", key]
    completed = subprocess.run(
        ["findscu", "-aet", calling, "-aec", called, *arguments, "-X", "-od", str(output),
         "127.0.0.1", str(dicom.port)],
        capture_output=True, text=True, timeout=DCMTK_TIMEOUT_SECONDS,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return [pydicom.dcmread(path) for path in sorted(output.glob("rsp*.dcm"))]


def compressed_ct(tmp_path, transfer_syntax):
    dataset = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    dataset.compress(transfer_syntax)
    path = tmp_path / f"ct-{transfer_syntax.keyword}.dcm"
    dataset.save_as(path, enforce_file_format=True)
    return path


def test_c_echo_from_a_registered_peer_succeeds(dicom):
    returncode, output = echoscu(dicom)
    assert returncode == 0, output


def test_an_unregistered_calling_ae_title_is_rejected_at_association(dicom, write_ct_series):
    (path,) = write_ct_series(slices=1)
    returncode, output = storescu(dicom, path, calling="STRANGER")
    assert returncode != 0
    assert "Calling AE Title Not Recognized" in output
    returncode, output = echoscu(dicom, called="NOBODY_HERE")
    assert returncode != 0
    assert "Called AE Title Not Recognized" in output
    assert not UploadBatch.objects.exists() and not Instance.objects.exists()


def test_a_peer_registered_with_a_host_is_refused_from_another_address(dicom, north):
    register_dicom_peer(hospital=north, ae_title="CT_ROOM_2", host="10.0.0.5")
    returncode, output = echoscu(dicom, calling="CT_ROOM_2")
    assert returncode != 0
    assert "Calling AE Title Not Recognized" in output


def test_a_series_is_stored_and_completes_when_the_association_is_released(
    dicom, north, write_ct_series, queued_analyses
):
    paths = write_ct_series(slices=20, size=64)
    returncode, output = storescu(dicom, *paths)
    assert returncode == 0, output
    dicom.wait_for_associations(1)
    batch = UploadBatch.objects.get()
    assert batch.source == UploadBatch.Source.DIMSE and batch.closed_at is not None
    assert batch.uploaded_by == north.dicom_peers.get(ae_title="NORTH_CT").user
    assert batch.files.filter(outcome=FileOutcome.STORED).count() == 20
    series = Series.objects.get()
    assert series.hospital == north
    assert series.instances.count() == 20
    assert series.status == SeriesStatus.RECEIVED
    assert queued_analyses == [series.pk]


def test_a_hospital_may_leave_dicom_series_to_the_quiet_period(dicom, north, write_ct_series, quiet_checks):
    north.dimse_complete_on_release = False
    north.save()
    returncode, output = storescu(dicom, *write_ct_series(slices=2))
    assert returncode == 0, output
    dicom.wait_for_associations(1)
    series = Series.objects.get()
    assert series.status == SeriesStatus.RECEIVING
    assert quiet_checks == [series.pk]


@pytest.mark.parametrize(
    ("transfer_syntax", "proposal"),
    [(RLELossless, "--propose-rle"), (JPEG2000Lossless, "--propose-j2k-lossless")],
    ids=["rle", "jpeg2000"],
)
def test_a_compressed_instance_is_stored_as_sent(dicom, tmp_path, transfer_syntax, proposal):
    path = compressed_ct(tmp_path, transfer_syntax)
    returncode, output = storescu(dicom, path, options=[proposal])
    assert returncode == 0, output
    dicom.wait_for_associations(1)
    instance = Instance.objects.get()
    assert instance.transfer_syntax_uid == transfer_syntax
    assert instance.rows == 128


def test_a_deflated_instance_is_inflated_and_stored(dicom, write_ct_series):
    (path,) = write_ct_series(slices=1)
    returncode, output = storescu(dicom, path, options=["--propose-deflated"])
    assert returncode == 0, output
    assert "Deflated" in output
    dicom.wait_for_associations(1)
    instance = Instance.objects.get()
    assert instance.transfer_syntax_uid == pydicom.uid.ExplicitVRLittleEndian
    with instance.file.open("rb") as stored:
        assert pydicom.dcmread(stored).pixel_array.shape == (16, 16)


def test_a_duplicate_gets_the_elements_discarded_warning(dicom, write_ct_series):
    paths = write_ct_series(slices=2)
    assert storescu(dicom, *paths)[0] == 0
    returncode, output = storescu(dicom, paths[0])
    assert returncode == 0, output
    assert "0xb006" in output.lower()
    assert "Already stored" in output
    dicom.wait_for_associations(2)
    assert Instance.objects.count() == 2
    assert UploadedFile.objects.filter(outcome=FileOutcome.DUPLICATE).count() == 1


def test_an_instance_without_pixel_data_is_refused_with_the_reason(dicom, tmp_path):
    dataset = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    del dataset.PixelData
    path = tmp_path / "no-pixels.dcm"
    dataset.save_as(path, enforce_file_format=True)
    returncode, output = storescu(dicom, path)
    assert "0x0122" in output
    assert "ErrorComment" in output and "holds no image" in output
    dicom.wait_for_associations(1)
    assert not Instance.objects.exists()
    rejected = UploadedFile.objects.get()
    assert rejected.outcome == FileOutcome.REJECTED and "no pixel data" in rejected.reason


def test_the_called_ae_title_decides_the_hospital(dicom, north, south, write_ct_series):
    returncode, output = storescu(dicom, *write_ct_series(slices=2), calling="SOUTH_PACS", called="SOUTH")
    assert returncode == 0, output
    returncode, output = storescu(dicom, *write_ct_series(slices=1), calling="NORTH_CT", called="SOUTH")
    assert returncode != 0 and "Calling AE Title Not Recognized" in output
    dicom.wait_for_associations(1)
    assert Instance.objects.for_hospital(south).count() == 2
    assert not Instance.objects.for_hospital(north).exists()


def test_c_find_sees_only_the_called_hospitals_studies_and_series(dicom, north, south, write_ct_series, tmp_path):
    north_paths = write_ct_series(slices=2, patient_id="NORTH-MRN-1", accession_number="ACC-NORTH")
    south_paths = write_ct_series(slices=3, patient_id="SOUTH-MRN-1", accession_number="ACC-SOUTH")
    assert storescu(dicom, *north_paths)[0] == 0
    assert storescu(dicom, *south_paths, calling="SOUTH_PACS", called="SOUTH")[0] == 0
    dicom.wait_for_associations(2)
    north_study_uid = pydicom.dcmread(north_paths[0]).StudyInstanceUID

    studies = findscu(dicom, tmp_path, "STUDY", ["StudyInstanceUID", "PatientID", "AccessionNumber",
                                                 "NumberOfStudyRelatedInstances", "ModalitiesInStudy"])
    assert [(study.StudyInstanceUID, study.PatientID, study.AccessionNumber) for study in studies] == [
        (north_study_uid, "NORTH-MRN-1", "ACC-NORTH")
    ]
    assert studies[0].NumberOfStudyRelatedInstances == 2 and studies[0].ModalitiesInStudy == "CT"
    assert findscu(dicom, tmp_path, "STUDY", ["StudyInstanceUID", "PatientID=SOUTH-MRN-1"]) == []

    series = findscu(dicom, tmp_path, "SERIES", [f"StudyInstanceUID={north_study_uid}", "SeriesInstanceUID",
                                                 "Modality", "NumberOfSeriesRelatedInstances"])
    assert len(series) == 1
    assert series[0].Modality == "CT" and series[0].NumberOfSeriesRelatedInstances == 2
    status = series[0].private_block(0x0011, "RADASSIST")[0x01].value
    assert status == Series.objects.for_hospital(north).get().status == SeriesStatus.RECEIVED

    south_series = findscu(dicom, tmp_path, "SERIES", ["SeriesInstanceUID", "PatientID"],
                           calling="SOUTH_PACS", called="SOUTH")
    assert [item.PatientID for item in south_series] == ["SOUTH-MRN-1"]
    assert findscu(dicom, tmp_path, "SERIES", [f"StudyInstanceUID={north_study_uid}"],
                   calling="SOUTH_PACS", called="SOUTH") == []


@pytest.mark.parametrize(
    ("keys", "reason"),
    [(["QueryRetrieveLevel=IMAGE", "SOPInstanceUID"], "STUDY or SERIES"),
     (["QueryRetrieveLevel=STUDY", "StudyDate=2020"], "YYYYMMDD")],
    ids=["image-level", "malformed-date"],
)
def test_a_c_find_the_listener_cannot_answer_is_refused_with_the_reason(dicom, keys, reason):
    arguments = [argument for key in keys for argument in ("-k", key)]
    completed = subprocess.run(
        ["findscu", "-d", "-aet", "NORTH_CT", "-aec", "NORTH", "-S", *arguments, "127.0.0.1", str(dicom.port)],
        capture_output=True, text=True, timeout=DCMTK_TIMEOUT_SECONDS,
    )
    output = completed.stdout + completed.stderr
    assert "0xa900" in output.lower() and reason in output


def test_the_listener_logs_one_line_per_association_without_patient_data(dicom, write_ct_series, caplog):
    caplog.set_level("INFO", logger="scans.dimse.listener")
    paths = write_ct_series(slices=2, patient_id="MRN-SECRET-77", patient_name="Secretname^Zelda")
    assert storescu(dicom, *paths)[0] == 0
    dicom.wait_for_associations(1)
    (line,) = [record.getMessage() for record in caplog.records if record.name == "scans.dimse.listener"]
    assert line.startswith("DICOM association NORTH_CT@127.0.0.1 to NORTH released")
    assert "2 stored" in line
    assert "Secretname" not in line and "MRN-SECRET-77" not in line


def test_an_aborted_association_still_closes_its_batch_and_keeps_what_was_stored(dicom, write_ct_series):
    """pynetdicom as the sender here: dcmtk's storescu cannot be told to abort after its first instance."""
    from pynetdicom import AE
    from pynetdicom.sop_class import CTImageStorage

    paths = write_ct_series(slices=2)
    sender = AE(ae_title="NORTH_CT")
    sender.add_requested_context(CTImageStorage, pydicom.dcmread(paths[0]).file_meta.TransferSyntaxUID)
    association = sender.associate("127.0.0.1", dicom.port, ae_title="NORTH")
    assert association.is_established
    assert association.send_c_store(pydicom.dcmread(paths[0])).Status == 0x0000
    association.abort()
    dicom.wait_for_associations(1)
    batch = UploadBatch.objects.get()
    assert batch.closed_at is not None
    assert Instance.objects.count() == 1
