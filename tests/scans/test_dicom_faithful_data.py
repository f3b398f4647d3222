"""Faithful DICOM data: ISO 2022 character sets, person names kept as received, only retrievable UIDs stored."""

import io

import pydicom
import pytest
from django.core.management import call_command
from django.test import Client

from accounts.models import Patient
from scans.dicomweb.frames import bulk_value
from scans.ingest.parsing import RejectedFile, read_dicom, stored_header_json
from scans.models import Instance, Study
from tests.scans.dicom_builders import as_ct_image, charset_ct, charset_sample
from tests.scans.test_dicomweb import FAILED_SOP_SEQUENCE, FAILURE_REASON, key_client, stow, value

pytestmark = pytest.mark.django_db

#: pydicom's character-set samples whose PatientName has more than the alphabetic group, or an ISO 2022 set.
CHARSET_SAMPLES = [
    "chrH31.dcm",  # Japanese, ISO 2022 IR 87 (kanji) after the default set, three groups
    "chrH32.dcm",  # Japanese, ISO 2022 IR 13 (katakana) and IR 87
    "chrI2.dcm",  # Korean, ISO 2022 IR 149, three groups
    "chrJapMulti.dcm",  # a name with no alphabetic group
    "chrKoreanMulti.dcm",
    "chrX1.dcm",  # Chinese, UTF-8
    "chrX2.dcm",  # Chinese, GB18030
    "chrFren.dcm",  # Latin-1
    "chrRuss.dcm",  # Cyrillic
]


def test_character_set_samples_are_stored_and_qido_returns_each_name_as_received(north):
    samples = {sample: charset_ct(sample, patient_id=f"MRN-{sample}") for sample in CHARSET_SAMPLES}
    response = stow(key_client(north), [data for data, _ in samples.values()])
    assert response.status_code == 200, response.content

    for sample, (_, received_name) in samples.items():
        study = Study.objects.get(patient__mrn=f"MRN-{sample}")
        assert study.patient_name_dicom == str(received_name), sample
        [found] = key_client(north).get("/dicomweb/studies", {"PatientID": f"MRN-{sample}"}).json()
        expected = pydicom.Dataset()
        expected.PatientName = received_name
        assert found["00100010"] == expected.to_json_dict()["00100010"], sample
        assert found["00080005"]["Value"] == ["ISO_IR 192"]
        display = Patient.objects.get(mrn=f"MRN-{sample}").full_name
        assert display and not display.startswith("Unknown patient"), sample


def test_components_and_groups_survive_and_names_match_case_insensitively_by_group(north):
    data, _ = charset_ct("chrH31.dcm", patient_id="MRN-YAMADA")
    assert stow(key_client(north), [data]).status_code == 200
    client = key_client(north)

    [study] = client.get("/dicomweb/studies", {"PatientName": "yamada^tarou"}).json()
    assert value(study, "00100010") == {
        "Alphabetic": "Yamada^Tarou", "Ideographic": "山田^太郎", "Phonetic": "やまだ^たろう"
    }
    assert value(study, "00200010") == "H31EXAMPLE"
    assert client.get("/dicomweb/studies", {"PatientName": "Yamada^Tarou=山田^太郎=やまだ^たろう"}).json()
    assert client.get("/dicomweb/studies", {"PatientName": "*山田*"}).json()
    assert client.get("/dicomweb/studies", {"PatientName": "Yamada"}).json() == []  # no implicit substring
    assert Patient.objects.get(mrn="MRN-YAMADA").full_name == "Tarou Yamada"


def test_multi_word_family_names_and_suffixes_come_back_unchanged(north, write_ct_series):
    name = "van der Berg^Anna Maria^^Dr.^PhD"
    paths = write_ct_series(slices=1, size=16, patient_id="MRN-VDB", patient_name=name)
    assert stow(key_client(north), [paths[0].read_bytes()]).status_code == 200

    [study] = key_client(north).get("/dicomweb/studies", {"PatientName": "VAN DER BERG^*"}).json()
    assert value(study, "00100010") == {"Alphabetic": name}
    [instance] = key_client(north).get("/dicomweb/instances", {"PatientID": "MRN-VDB"}).json()
    assert value(instance, "00100010") == {"Alphabetic": name}


NONCONFORMANT_UIDS = {
    "1.2.840.abc.7": "not a DICOM UID",
    "1.2..3": "not a DICOM UID",
    "1.2.3.": "not a DICOM UID",
    "1." + "2" * 70: "longer than the 64 characters",
}


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI", "ignore:The value length")
def test_uids_a_retrieve_url_cannot_carry_are_rejected_with_the_reason(north):
    files = []
    for uid, why in NONCONFORMANT_UIDS.items():
        dataset = pydicom.dcmread(charset_sample("chrFren.dcm"))
        dataset.SeriesInstanceUID = uid
        files.append(as_ct_image(dataset))
        with pytest.raises(RejectedFile, match=why):
            read_dicom(io.BytesIO(files[-1]), allowed_modalities={"CT"})

    response = stow(key_client(north), files)
    assert response.status_code == 409
    failures = response.json()[FAILED_SOP_SEQUENCE]["Value"]
    assert [value(item, FAILURE_REASON) for item in failures] == [0xA900] * len(files)
    assert not Instance.objects.exists()


def test_unknown_dicomweb_paths_answer_json_404(north):
    for client in (key_client(north), Client()):
        for path in ("/dicomweb/nothing-here", "/dicomweb/studies/1.2.3/frobnicate", "/dicomweb/studies/1.2.x"):
            response = client.get(path)
            assert response.status_code == 404, path
            assert response["Content-Type"] == "application/json"
            assert "detail" in response.json()
        assert client.post("/dicomweb/nothing-here").status_code == 404


def test_backfill_stores_headers_and_study_values_of_older_rows(north):
    data, received_name = charset_ct("chrI2.dcm", patient_id="MRN-OLD")
    assert stow(key_client(north), [data]).status_code == 200
    Instance.objects.update(dicom_header=None)
    Study.objects.update(patient_name_dicom="", dicom_study_id="")

    call_command("backfill_dicom_headers", stdout=io.StringIO())

    instance = Instance.objects.get()
    assert instance.dicom_header["00100020"]["Value"] == ["MRN-OLD"]
    assert Study.objects.get().patient_name_dicom == str(received_name)


def test_the_stored_header_is_pydicoms_dicom_json_with_bulk_data_named_by_path():
    dataset = pydicom.dcmread(charset_sample("chrH32.dcm"))
    icon = pydicom.Dataset()
    icon.Rows = icon.Columns = 64
    icon.add_new(0x7FE00010, "OB", b"\x01" * 4096)
    dataset.IconImageSequence = [icon]
    dataset.add_new(0x00091010, "OB", b"\x02" * 2048)
    data = as_ct_image(dataset)
    for _ in range(2):  # the second file's unchanged values come from the per-process cache
        stored = read_dicom(io.BytesIO(data), allowed_modalities={"CT"}).dicom_json

    expected = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).to_json_dict(
        bulk_data_threshold=1024, bulk_data_element_handler=lambda element: f"tag {element.tag:08X}"
    )
    assert stored["00880200"]["Value"][0]["7FE00010"] == {"vr": "OB", "BulkDataURI": "bulkdata/00880200/0/7FE00010"}
    assert stored["00091010"] == {"vr": "OB", "BulkDataURI": "bulkdata/00091010"}
    assert stored["7FE00010"] == {"vr": "OW", "BulkDataURI": "bulkdata/7FE00010"}
    assert stored["00080005"] == {"vr": "CS", "Value": ["ISO_IR 192"]}
    same = {tag for tag in expected if tag not in ("00080005", "00091010", "00880200")}
    assert {tag: stored[tag] for tag in same} == {tag: expected[tag] for tag in same}
    assert stored["00100010"]["Value"] == [
        {"Alphabetic": "ﾔﾏﾀﾞ^ﾀﾛｳ", "Ideographic": "山田^太郎", "Phonetic": "やまだ^たろう"}
    ]
    assert bulk_value(io.BytesIO(data), "00880200/0/7FE00010") == b"\x01" * 4096
    assert bulk_value(io.BytesIO(data), "00091010") == b"\x02" * 2048


def test_a_stored_header_names_pixel_data_only_when_the_file_has_some():
    with_pixels = as_ct_image(pydicom.dcmread(charset_sample("chrFren.dcm")))
    assert stored_header_json(io.BytesIO(with_pixels))["7FE00010"] == {"vr": "OW", "BulkDataURI": "bulkdata/7FE00010"}
    report_like = pydicom.dcmread(io.BytesIO(with_pixels))
    del report_like.PixelData
    without_pixels = io.BytesIO()
    report_like.save_as(without_pixels, enforce_file_format=True)
    assert "7FE00010" not in stored_header_json(without_pixels)
