"""WADO-RS frames, bulk data, metadata from stored headers, thumbnails and WADO-URI, on native and compressed files."""

import io
import json
import time

import cv2
import numpy as np
import pydicom
import pytest
from pydicom.encaps import generate_frames
from pydicom.uid import generate_uid

from scans.dicomweb.multipart import read_parts
from scans.ingest.parsing import read_dicom
from scans.models import Instance
from tests.factories import InstanceFactory, SeriesFactory
from tests.scans.dicom_builders import shipped_as_ct
from tests.scans.test_dicomweb import key_client, stow, uids_of

pytestmark = pytest.mark.django_db

OCTET_STREAM = 'multipart/related; type="application/octet-stream"'
SHIPPED = {
    "jpeg-ls": "MR_small_jpeg_ls_lossless.dcm",
    "rle-2-frames": "SC_rgb_rle_2frame.dcm",
    "jpeg-baseline": "SC_rgb_jpeg_dcmtk.dcm",
    "big-endian": "MR_small_bigendian.dcm",
}


def parts_of(response):
    assert response.status_code == 200, response.content
    boundary = response["Content-Type"].rsplit("boundary=", 1)[1]
    body = io.BytesIO(b"".join(response.streaming_content))
    return [(part.headers["content-type"], part.file.read()) for part in read_parts(body, boundary)]


@pytest.fixture
def stored(north, write_ct_series):
    """A native CT series and pydicom's compressed samples, stored in one study; (paths, {name: dataset})."""
    paths = write_ct_series(slices=3, size=16, patient_id="MRN-SHIPPED")
    study_uid = uids_of(paths[0])[0]
    shipped = {key: shipped_as_ct(name, study_uid=study_uid) for key, name in SHIPPED.items()}
    response = stow(key_client(north), [path.read_bytes() for path in paths] + [data for data, _ in shipped.values()])
    assert response.status_code == 200, response.content
    return paths, {key: dataset for key, (_, dataset) in shipped.items()}


def instance_url(dataset):
    return (
        f"/dicomweb/studies/{dataset.StudyInstanceUID}/series/{dataset.SeriesInstanceUID}"
        f"/instances/{dataset.SOPInstanceUID}"
    )


def test_native_frames_are_the_stored_bytes_and_compressed_types_are_406(north, stored):
    paths, _ = stored
    dataset = pydicom.dcmread(paths[1])
    client = key_client(north)

    for accept in (OCTET_STREAM, f"{OCTET_STREAM}; transfer-syntax=1.2.840.10008.1.2.1", "*/*",
                   f"{OCTET_STREAM}; transfer-syntax=*"):
        [(content_type, data)] = parts_of(client.get(f"{instance_url(dataset)}/frames/1", HTTP_ACCEPT=accept))
        assert content_type == "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1"
        assert data == dataset.PixelData
    refused = client.get(f"{instance_url(dataset)}/frames/1", HTTP_ACCEPT='multipart/related; type="image/jpeg"')
    assert refused.status_code == 406 and "detail" in refused.json()
    assert client.get(f"{instance_url(dataset)}/frames/2", HTTP_ACCEPT=OCTET_STREAM).status_code == 404


def test_compressed_frames_as_stored_or_decoded_never_in_another_syntax(north, stored):
    _, shipped = stored
    dataset = shipped["jpeg-ls"]
    url = f"{instance_url(dataset)}/frames/1"
    client = key_client(north)
    [stored_codestream] = list(generate_frames(dataset.PixelData, number_of_frames=1))

    [(content_type, data)] = parts_of(client.get(url, HTTP_ACCEPT=f"{OCTET_STREAM}; transfer-syntax=*"))
    assert content_type == "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.4.80"
    assert data == stored_codestream
    [(content_type, data)] = parts_of(client.get(url, HTTP_ACCEPT='multipart/related; type="image/jls"'))
    assert content_type == "image/jls; transfer-syntax=1.2.840.10008.1.2.4.80" and data == stored_codestream
    [(content_type, data)] = parts_of(client.get(url, HTTP_ACCEPT=OCTET_STREAM))
    assert content_type == "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1"
    assert data == dataset.pixel_array.astype("<i2" if dataset.PixelRepresentation else "<u2").tobytes()
    for accept in ('multipart/related; type="image/jp2"',
                   'multipart/related; type="image/jls"; transfer-syntax=1.2.840.10008.1.2.4.81'):
        assert client.get(url, HTTP_ACCEPT=accept).status_code == 406

    big_endian = shipped["big-endian"]
    [(content_type, data)] = parts_of(client.get(f"{instance_url(big_endian)}/frames/1", HTTP_ACCEPT=OCTET_STREAM))
    assert content_type == "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1"
    assert data == big_endian.pixel_array.astype(big_endian.pixel_array.dtype.newbyteorder("<")).tobytes()


def test_frame_lists_of_a_multi_frame_instance_come_in_the_order_asked(north, stored):
    _, shipped = stored
    dataset = shipped["rle-2-frames"]
    client = key_client(north)
    pixels = dataset.pixel_array

    parts = parts_of(client.get(f"{instance_url(dataset)}/frames/2,1", HTTP_ACCEPT=OCTET_STREAM))
    assert [data for _, data in parts] == [pixels[1].tobytes(), pixels[0].tobytes()]
    rle_type = 'multipart/related; type="image/x-dicom-rle"'
    rle = parts_of(client.get(f"{instance_url(dataset)}/frames/2", HTTP_ACCEPT=rle_type))
    assert rle[0][1] == list(generate_frames(dataset.PixelData, number_of_frames=2))[1]
    assert client.get(f"{instance_url(dataset)}/frames/3", HTTP_ACCEPT=OCTET_STREAM).status_code == 404


def test_metadata_comes_from_the_stored_headers_and_its_bulk_data_uri_retrieves_the_pixels(north, stored):
    paths, shipped = stored
    dataset = shipped["jpeg-baseline"]
    client = key_client(north)
    instance = Instance.objects.get(sop_instance_uid=dataset.SOPInstanceUID)
    instance.file.storage.delete(instance.file.name)  # metadata must not need the file

    [metadata] = json.loads(b"".join(client.get(f"{instance_url(dataset)}/metadata").streaming_content))
    assert metadata["00080018"]["Value"] == [dataset.SOPInstanceUID]
    assert metadata["00280004"]["Value"] == [dataset.PhotometricInterpretation]
    pixel_uri = metadata["7FE00010"]["BulkDataURI"]
    assert pixel_uri == f"http://testserver{instance_url(dataset)}/bulkdata/7FE00010"

    native = pydicom.dcmread(paths[0])
    Instance.objects.filter(sop_instance_uid=native.SOPInstanceUID).update(dicom_header=None)  # before backfill
    [native_metadata] = json.loads(b"".join(client.get(f"{instance_url(native)}/metadata").streaming_content))
    assert native_metadata["00100020"]["Value"] == ["MRN-SHIPPED"]
    Instance.objects.filter(sop_instance_uid=dataset.SOPInstanceUID).update(dicom_header=None)
    [unreadable] = json.loads(b"".join(client.get(f"{instance_url(dataset)}/metadata").streaming_content))
    assert unreadable["00080018"]["Value"] == [dataset.SOPInstanceUID] and "00100020" not in unreadable
    bulk = parts_of(client.get(native_metadata["7FE00010"]["BulkDataURI"], HTTP_ACCEPT=OCTET_STREAM))
    assert [data for _, data in bulk] == [native.PixelData]
    assert client.get(f"{instance_url(native)}/bulkdata/00280010").status_code == 404  # Rows is no bulk data


def test_rendered_series_and_study_thumbnails_and_wado_uri(north, stored):
    paths, _ = stored
    dataset = pydicom.dcmread(paths[0])
    client = key_client(north)
    study_url = f"/dicomweb/studies/{dataset.StudyInstanceUID}"

    for url in (f"{study_url}/thumbnail", f"{study_url}/series/{dataset.SeriesInstanceUID}/thumbnail",
                f"{instance_url(dataset)}/thumbnail"):
        response = client.get(url, HTTP_ACCEPT="image/jpeg")
        assert response.status_code == 200 and response["Content-Type"] == "image/jpeg", url
        image = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_GRAYSCALE)
        assert image.shape == (128, 128)
    rendered = parts_of(client.get(
        f"{study_url}/series/{dataset.SeriesInstanceUID}/rendered", HTTP_ACCEPT='multipart/related; type="image/png"'
    ))
    assert [content_type for content_type, _ in rendered] == ["image/png"] * 3
    assert cv2.imdecode(np.frombuffer(rendered[0][1], np.uint8), cv2.IMREAD_UNCHANGED).shape == (16, 16)
    assert len(parts_of(client.get(f"{study_url}/rendered", HTTP_ACCEPT="*/*"))) == 3 + len(SHIPPED)
    small = client.get(f"{instance_url(dataset)}/thumbnail", {"viewport": "32,32"}, HTTP_ACCEPT="image/png")
    assert cv2.imdecode(np.frombuffer(small.content, np.uint8), cv2.IMREAD_UNCHANGED).shape == (32, 32)

    wado = {"requestType": "WADO", "studyUID": dataset.StudyInstanceUID, "seriesUID": dataset.SeriesInstanceUID,
            "objectUID": dataset.SOPInstanceUID}
    file_response = client.get("/dicomweb/wado", {**wado, "contentType": "application/dicom"})
    assert file_response["Content-Type"] == "application/dicom"
    assert b"".join(file_response.streaming_content) == paths[0].read_bytes()
    jpeg = client.get("/dicomweb/wado", {**wado, "windowCenter": "40", "windowWidth": "400"})
    assert jpeg["Content-Type"] == "image/jpeg"
    assert cv2.imdecode(np.frombuffer(jpeg.content, np.uint8), cv2.IMREAD_GRAYSCALE).shape == (16, 16)
    assert client.get("/dicomweb/wado", {**wado, "objectUID": generate_uid()}).status_code == 404
    assert client.get("/dicomweb/wado", {**wado, "requestType": "NOPE"}).status_code == 400


def test_metadata_of_a_300_instance_series_comes_from_the_database_in_well_under_a_second(north, write_ct_series):
    [path] = write_ct_series(slices=1, size=16, patient_id="MRN-BIG")
    header = read_dicom(io.BytesIO(path.read_bytes()), allowed_modalities={"CT"}).dicom_json
    series = SeriesFactory(study__hospital=north.hospital, study__patient=north.patient)
    InstanceFactory.create_batch(300, series=series, dicom_header=header)  # rows only: no file behind them
    url = f"/dicomweb/studies/{series.study.study_instance_uid}/series/{series.series_instance_uid}/metadata"
    client = key_client(north)
    assert client.get("/dicomweb/studies").status_code == 200  # a warm process, as a server is

    started = time.perf_counter()
    response = client.get(url)
    metadata = json.loads(b"".join(response.streaming_content))
    seconds = time.perf_counter() - started

    assert len(metadata) == 300
    assert metadata[0]["7FE00010"]["BulkDataURI"].startswith(f"http://testserver{url.removesuffix('/metadata')}")
    assert seconds < 1.0, f"{seconds:.2f} s"


def test_retrieve_transcodes_to_explicit_little_endian_when_asked_and_refuses_other_syntaxes(north, stored):
    _, shipped = stored
    dataset = shipped["jpeg-ls"]
    client = key_client(north)
    dicom = 'multipart/related; type="application/dicom"'

    [(content_type, data)] = parts_of(
        client.get(instance_url(dataset), HTTP_ACCEPT=f"{dicom}; transfer-syntax=1.2.840.10008.1.2.1")
    )
    assert content_type == "application/dicom; transfer-syntax=1.2.840.10008.1.2.1"
    transcoded = pydicom.dcmread(io.BytesIO(data))
    assert transcoded.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert np.array_equal(transcoded.pixel_array, dataset.pixel_array)
    [(content_type, _)] = parts_of(client.get(instance_url(dataset), HTTP_ACCEPT=f"{dicom}; transfer-syntax=*"))
    assert content_type == "application/dicom; transfer-syntax=1.2.840.10008.1.2.4.80"
    jpeg = client.get(instance_url(dataset), HTTP_ACCEPT=f"{dicom}; transfer-syntax=1.2.840.10008.1.2.4.50")
    assert jpeg.status_code == 406
    big_endian = client.get(
        instance_url(shipped["big-endian"]), HTTP_ACCEPT=f"{dicom}; transfer-syntax=1.2.840.10008.1.2.1"
    )
    assert big_endian.status_code == 406


def test_frames_of_rows_without_a_recorded_syntax_and_of_uploaded_images_answer_cleanly(client, north):
    """Rows stored before ingest recorded the transfer syntax read it from the file; images have no frames."""
    from tests.pipeline.builders import store_phantom_series

    client.force_login(north.doctor)
    accept = {"HTTP_ACCEPT": "multipart/related; type=application/octet-stream; transfer-syntax=*"}
    for as_png, expected in ((False, {200}), (True, {400, 404})):  # DICOMweb serves no uploaded images
        series, _ = store_phantom_series(hospital=north.hospital, patient=north.patient, slices=1, size=16,
                                         as_png=as_png)
        instance = series.instances.get()
        instance.transfer_syntax_uid = ""
        instance.save(update_fields=["transfer_syntax_uid"])
        url = (f"/dicomweb/studies/{series.study.study_instance_uid}/series/{series.series_instance_uid}"
               f"/instances/{instance.sop_instance_uid}/frames/1")
        assert client.get(url, **accept).status_code in expected
