"""The private bucket over real HTTP (moto's S3 server): upload, streamed read, presigned download, deletion."""

import runpy
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.core.files.base import ContentFile
from django.utils.module_loading import import_string

from portal.models import AuditEvent
from portal.storage import private_file_response
from tests.deploy.conftest import BUCKET, s3_client

SETTINGS_FILE = Path(__file__).resolve().parents[2] / "portal" / "settings" / "base.py"
SCAN_BYTES = bytes(range(256)) * 1024  # 256 KiB, several read chunks


def storage_from_settings(monkeypatch, tmp_path, **environment):
    """The default storage exactly as portal/settings/base.py builds it from these environment variables."""
    for key, value in {
        "RADASSIST_VAR_DIR": str(tmp_path),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_S3_REGION_NAME": "us-east-1",
        "AWS_STORAGE_BUCKET_NAME": BUCKET,
        **environment,
    }.items():
        monkeypatch.setenv(key, value)
    configured = runpy.run_path(str(SETTINGS_FILE))["STORAGES"]["default"]
    return import_string(configured["BACKEND"])(**configured["OPTIONS"])


@pytest.fixture
def storage(s3_endpoint, monkeypatch, tmp_path):
    return storage_from_settings(monkeypatch, tmp_path, AWS_S3_ENDPOINT_URL=s3_endpoint)


@pytest.fixture
def stored_scan(storage):
    name = storage.save("scans/north/series-1/slice-001.dcm", ContentFile(SCAN_BYTES))
    yield name
    storage.delete(name)


def test_upload_is_private_and_encrypted(s3_endpoint, storage, stored_scan):
    client = s3_client(s3_endpoint)

    head = client.head_object(Bucket=BUCKET, Key=stored_scan)
    grants = client.get_object_acl(Bucket=BUCKET, Key=stored_scan)["Grants"]

    assert head["ContentLength"] == len(SCAN_BYTES)
    assert head["ServerSideEncryption"] == "AES256"
    assert [grant["Permission"] for grant in grants] == ["FULL_CONTROL"]
    assert all(grant["Grantee"]["Type"] == "CanonicalUser" for grant in grants)
    assert requests.get(f"{s3_endpoint}/{BUCKET}/{stored_scan}", timeout=10).status_code == 403


def test_same_name_never_overwrites_an_existing_scan(storage, stored_scan):
    second = storage.save(stored_scan, ContentFile(b"another file"))
    try:
        assert second != stored_scan
        assert storage.open(stored_scan).read() == SCAN_BYTES
    finally:
        storage.delete(second)


def test_streamed_read_returns_the_uploaded_bytes_in_chunks(storage, stored_scan):
    with storage.open(stored_scan, "rb") as stored:
        chunks = list(stored.chunks(chunk_size=64 * 1024))

    assert len(chunks) == 4
    assert b"".join(chunks) == SCAN_BYTES


def test_presigned_url_downloads_over_http_and_is_short_lived(storage, stored_scan):
    """moto does not enforce expiry, so the signed lifetime is read from the URL (S3 enforces it)."""
    url = storage.url(stored_scan, expire=2)
    query = parse_qs(urlsplit(url).query)

    response = requests.get(url, timeout=10)

    assert response.status_code == 200
    assert response.content == SCAN_BYTES
    assert query["X-Amz-Expires"] == ["2"]
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert "X-Amz-Signature" in query
    assert parse_qs(urlsplit(storage.url(stored_scan)).query)["X-Amz-Expires"] == ["300"]


def test_deleted_scan_is_gone(s3_endpoint, storage):
    name = storage.save("scans/north/series-1/to-delete.dcm", ContentFile(b"DICM"))

    storage.delete(name)

    assert not storage.exists(name)
    listed = s3_client(s3_endpoint).list_objects_v2(Bucket=BUCKET, Prefix=name)
    assert listed.get("KeyCount", 0) == 0


def test_download_redirects_to_presigned_url_with_attachment_name(db, rf, storage, stored_scan):
    from tests.factories import HospitalFactory

    hospital = HospitalFactory()
    request = rf.get("/download")
    request.user = SimpleNamespace(is_authenticated=False)

    response = private_file_response(
        request=request,
        file_field=SimpleNamespace(name=stored_scan, storage=storage),
        target=hospital,
        download_name="CT chest “2024”.dcm",
    )
    downloaded = requests.get(response["Location"], timeout=10)
    query = parse_qs(urlsplit(response["Location"]).query)

    assert response.status_code == 302
    assert downloaded.status_code == 200
    assert downloaded.content == SCAN_BYTES
    assert query["X-Amz-Expires"] == ["300"]
    # S3 answers with these headers; moto ignores the overrides, so the signed request is checked instead.
    encoded_name = "CT%20chest%20%E2%80%9C2024%E2%80%9D.dcm"
    assert query["response-content-disposition"] == [f"attachment; filename*=utf-8''{encoded_name}"]
    assert query["response-content-type"] == ["application/dicom"]
    assert AuditEvent.objects.filter(target_id=str(hospital.pk), detail__file=stored_scan).count() == 1


def test_presigned_urls_use_the_public_endpoint(s3_endpoint, monkeypatch, tmp_path):
    public_endpoint = s3_endpoint.replace("127.0.0.1", "localhost")
    storage = storage_from_settings(
        monkeypatch, tmp_path, AWS_S3_ENDPOINT_URL=s3_endpoint, AWS_S3_PUBLIC_ENDPOINT_URL=public_endpoint
    )
    name = storage.save("overlays/north/key-slice.png", ContentFile(b"PNG bytes"))
    try:
        url = storage.url(name)
        assert url.startswith(f"{public_endpoint}/{BUCKET}/overlays/north/key-slice")
        assert requests.get(url, timeout=10).content == b"PNG bytes"
    finally:
        storage.delete(name)
