"""Hostile uploads, generated here: lying lengths, huge declared images, a PNG bomb, oversized requests and
part headers. Each is refused with a reason for the sender, before it costs memory, disk or a decode."""

import io
import struct
import zlib

import pydicom
import pytest

from scans.dicomweb.multipart import MalformedMultipart, read_parts
from scans.ingest import parsing as ingest_parsing
from scans.ingest.parsing import RejectedFile, read_dicom, read_image
from tests.scans.conftest import pydicom_file
from tests.scans.test_dicomweb import BOUNDARY, STOW_CONTENT_TYPE, key_client, multipart_body

PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"
GIGABYTE = 1024**3


def ct_bytes():
    return pydicom_file("CT_small.dcm").read_bytes()


def with_pixel_data_length(data, length):
    """CT_small (explicit VR little endian, Pixel Data OW): the same file with another declared length."""
    start = data.rindex(PIXEL_DATA_TAG + b"OW")
    return data[: start + 8] + struct.pack("<L", length) + data[start + 12:]


def resized(path, *, rows, columns, frames=None):
    dataset = pydicom.dcmread(path)
    dataset.Rows, dataset.Columns = rows, columns
    if frames is not None:
        dataset.NumberOfFrames = frames
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def modality_of(data):
    return str(pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).get("Modality", ""))


@pytest.fixture
def no_decoding(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("pixel data was decoded")

    monkeypatch.setattr(ingest_parsing, "_decode_first_frame", refuse)


def test_a_pixel_data_length_of_4_gb_in_a_small_file_is_rejected():
    data = with_pixel_data_length(ct_bytes(), 0xFFFFFFF0)
    assert len(data) < 64 * 1024
    with pytest.raises(RejectedFile, match=r"Pixel Data element claims 4,294,967,280 bytes"):
        read_dicom(io.BytesIO(data), allowed_modalities={"CT"})


def test_a_header_element_longer_than_the_file_is_rejected():
    data = ct_bytes()
    start = data.rindex(PIXEL_DATA_TAG + b"OW")
    forged = data[:start] + struct.pack("<HH", 0x0029, 0x1010) + b"OB\x00\x00" + struct.pack("<L", 2 * GIGABYTE)
    forged += data[start:]
    with pytest.raises(RejectedFile, match=r"\(0029,1010\) claims 2,147,483,648 bytes"):
        read_dicom(io.BytesIO(forged), allowed_modalities={"CT"})


@pytest.mark.parametrize("name", ["CT_small.dcm", "JPEG-lossy.dcm", "JPEG2000.dcm", "SC_rgb_jpeg_dcmtk.dcm"])
def test_a_huge_declared_image_is_rejected_from_its_header_before_any_decode(name, no_decoding):
    data = resized(pydicom_file(name), rows=16384, columns=16384)
    with pytest.raises(RejectedFile, match="too large: 16,384 x 16,384 pixels per frame") as rejected:
        read_dicom(io.BytesIO(data), allowed_modalities={modality_of(data)})
    assert rejected.value.failure_reason == ingest_parsing.FailureReason.OUT_OF_RESOURCES


def test_too_many_frames_are_rejected_from_the_header(no_decoding):
    data = resized(pydicom_file("JPEG-lossy.dcm"), rows=1024, columns=1024, frames=4096)
    with pytest.raises(RejectedFile, match="too large: 4,096 frames of 1,024 x 1,024"):
        read_dicom(io.BytesIO(data), allowed_modalities={modality_of(data)})


def png_claiming(width, height):
    """A valid-looking PNG header for a width x height grey image, with almost no pixel data."""
    def chunk(kind, payload):
        return struct.pack(">L", len(payload)) + kind + payload + struct.pack(">L", zlib.crc32(kind + payload))

    header = struct.pack(">LLBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(
        b"IEND", b""
    )


def test_a_png_bomb_is_rejected_as_too_large():
    with pytest.raises(RejectedFile, match="too large") as rejected:
        read_image(io.BytesIO(png_claiming(100_000, 100_000)))
    assert rejected.value.failure_reason == ingest_parsing.FailureReason.OUT_OF_RESOURCES


@pytest.mark.django_db
def test_a_png_bomb_uploaded_through_the_api_gets_a_clear_reason(api_client, north):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {north.api_secret}")
    bomb = io.BytesIO(png_claiming(100_000, 100_000))
    bomb.name = "bomb.png"
    response = api_client.post(
        "/api/v1/uploads/", {"files": [bomb], "patient": north.patient.pk}, format="multipart"
    )
    assert response.status_code == 400, response.content
    [result] = response.json()["results"]
    assert result["outcome"] == "rejected" and "too large" in result["reason"]


def test_part_headers_over_the_limit_are_refused_even_in_one_read():
    body = (
        f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\nX-Padding: {'a' * 20_000}\r\n\r\n".encode()
        + b"DICM" + f"\r\n--{BOUNDARY}--\r\n".encode()
    )
    assert len(body) < 64 * 1024  # arrives in a single read of the stream
    with pytest.raises(MalformedMultipart, match="headers are longer than 16 KB"):
        list(read_parts(io.BytesIO(body), BOUNDARY))


class UnreadableBody:
    """A request body that must not be read: the limit is decided from the Content-Length alone."""

    bytes_read = 0

    def read(self, *args):
        raise AssertionError("the body of an oversized request was read")

    readline = read


class EndlessBody:
    """A chunked body (no Content-Length) that never ends: counts what the server reads of it."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.bytes_read = 0

    def read(self, size=-1):
        size = 1024 * 1024 if size is None or size < 0 else size
        data = (self.prefix + b"\0" * size)[:size] if self.bytes_read == 0 else b"\0" * size
        self.bytes_read += len(data)
        return data

    readline = read


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "content_type"),
    [
        ("/api/v1/uploads/", f"multipart/form-data; boundary={BOUNDARY}"),
        ("/upload/batches/1/files/", f"multipart/form-data; boundary={BOUNDARY}"),
        ("/dicomweb/studies", STOW_CONTENT_TYPE),
    ],
)
def test_a_request_over_the_size_limit_is_refused_before_its_body_is_read(north, url, content_type):
    client = key_client(north)
    client.force_login(north.doctor)
    response = client.generic(
        "POST", url, CONTENT_TYPE=content_type, CONTENT_LENGTH=str(3 * GIGABYTE),
        HTTP_ACCEPT="application/json", **{"wsgi.input": UnreadableBody()},
    )
    assert response.status_code == 413
    assert "larger than the 2,064 MB" in response.json()["detail"]


@pytest.mark.django_db
def test_a_chunked_stow_request_is_cut_off_at_the_size_limit(north, settings, write_ct_series):
    settings.RADASSIST_MAX_REQUEST_BYTES = 1024 * 1024
    first_part = multipart_body([write_ct_series(slices=1, size=16)[0].read_bytes()])[: -len(f"--{BOUNDARY}--\r\n")]
    body = EndlessBody(first_part + f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode())
    response = key_client(north).generic(
        "POST", "/dicomweb/studies", CONTENT_TYPE=STOW_CONTENT_TYPE, HTTP_TRANSFER_ENCODING="chunked",
        **{"wsgi.input": body, "wsgi.input_terminated": True, "CONTENT_LENGTH": ""},
    )
    assert response.status_code == 413, response.content[:300]
    assert "larger than the 1 MB" in response.json()["detail"]
    assert body.bytes_read <= 2 * 1024 * 1024
