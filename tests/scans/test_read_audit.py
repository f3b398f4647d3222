"""Every read of patient data through the REST API and DICOMweb writes exactly one audit event."""

import pydicom
import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from portal.api import AuditedReadsMixin
from portal.models import AuditAction, AuditEvent
from portal.tenancy import TenantQuerySet
from scans.models import Instance, UploadBatch
from tests.scans.test_dicomweb import key_client, stow

pytestmark = pytest.mark.django_db


@pytest.fixture
def stored(north, write_ct_series, api_client):
    """A 2-slice CT series stored through STOW-RS (and a batch through the REST upload) by north's API key."""
    paths = write_ct_series(slices=2, size=16, patient_id="MRN-AUDIT-1", patient_name="Audit^Ann")
    assert stow(key_client(north), [path.read_bytes() for path in paths]).status_code == 200
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {north.api_secret}")
    with open(paths[0], "rb") as upload:
        assert api_client.post("/api/v1/uploads/", {"files": [upload]}, format="multipart").status_code == 201
    header = pydicom.dcmread(paths[0], stop_before_pixels=True)
    instance = Instance.objects.get(sop_instance_uid=header.SOPInstanceUID)
    AuditEvent.objects.all()._raw_delete(AuditEvent.objects.db)
    return instance


def api_views():
    """Every view set behind /api/v1/, found by walking the URL resolver."""
    def walk(patterns):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                yield from walk(entry.url_patterns)
            elif isinstance(entry, URLPattern) and hasattr(entry.callback, "cls"):
                yield entry.callback.cls
    return set(walk(get_resolver().url_patterns))


def test_every_api_view_set_of_tenant_data_audits_its_reads():
    view_sets = [
        view for view in api_views()
        if hasattr(view, "get_queryset") and isinstance(getattr(view, "queryset", None), TenantQuerySet)
        and {"list", "retrieve"} & set(dir(view))
    ]
    assert len(view_sets) >= 6
    assert [view.__name__ for view in view_sets if not issubclass(view, AuditedReadsMixin)] == []


def test_each_rest_list_and_detail_read_writes_one_event(api_client, north, stored):
    series = stored.series
    study = series.study
    batch = UploadBatch.objects.for_hospital(north.hospital).order_by("pk").last()
    reads = {
        f"/api/v1/patients/?search={north.patient.mrn}": (AuditAction.SEARCH, "accounts.Patient", ""),
        f"/api/v1/patients/{study.patient_id}/": (AuditAction.VIEW, "accounts.Patient", str(study.patient_id)),
        f"/api/v1/studies/?modality=CT&patient={study.patient_id}": (AuditAction.SEARCH, "scans.Study", ""),
        f"/api/v1/studies/{study.pk}/": (AuditAction.VIEW, "scans.Study", str(study.pk)),
        "/api/v1/series/": (AuditAction.SEARCH, "scans.Series", ""),
        f"/api/v1/series/{series.pk}/": (AuditAction.VIEW, "scans.Series", str(series.pk)),
        f"/api/v1/instances/?series={series.pk}": (AuditAction.SEARCH, "scans.Instance", ""),
        f"/api/v1/instances/{stored.pk}/": (AuditAction.VIEW, "scans.Instance", str(stored.pk)),
        "/api/v1/uploads/": (AuditAction.SEARCH, "scans.UploadBatch", ""),
        f"/api/v1/uploads/{batch.pk}/": (AuditAction.VIEW, "scans.UploadBatch", str(batch.pk)),
        "/api/v1/reports/": (AuditAction.SEARCH, "reports.Report", ""),
    }
    for url, (action, target_type, target_id) in reads.items():
        before = AuditEvent.objects.count()
        response = api_client.get(url, REMOTE_ADDR="192.0.2.10")
        assert response.status_code == 200, url
        assert AuditEvent.objects.count() == before + 1, url
        event = AuditEvent.objects.order_by("-pk").first()
        assert (event.action, event.target_type, event.target_id) == (action, target_type, target_id), url
        assert event.actor == north.api_key.user and event.hospital == north.hospital, url
        assert event.ip_address == "192.0.2.10", url
        if action == AuditAction.SEARCH:
            assert event.detail["ids"] == [row["id"] for row in response.json()["results"]], url
    event = AuditEvent.objects.get(target_type="scans.Study", action=AuditAction.SEARCH)
    assert event.detail["query"] == {"modality": "CT", "patient": str(study.patient_id)}


def test_a_refused_or_missing_read_writes_nothing(api_client, south, stored):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {south.api_secret}")
    assert api_client.get(f"/api/v1/studies/{stored.series.study_id}/").status_code == 404
    assert not AuditEvent.objects.filter(action=AuditAction.VIEW).exists()


def test_each_dicomweb_search_and_retrieve_writes_one_event(north, stored):
    client = key_client(north)
    series = stored.series
    study_uid, series_uid = series.study.study_instance_uid, series.series_instance_uid
    instance_path = f"/dicomweb/studies/{study_uid}/series/{series_uid}/instances/{stored.sop_instance_uid}"
    reads = {
        "/dicomweb/studies?PatientName=Audit*&limit=5": (AuditAction.SEARCH, "scans.Study", "", {}),
        "/dicomweb/series?Modality=CT": (AuditAction.SEARCH, "scans.Series", "", {}),
        f"/dicomweb/studies/{study_uid}/instances": (AuditAction.SEARCH, "scans.Study", study_uid, {}),
        f"/dicomweb/studies/{study_uid}": (AuditAction.DOWNLOAD, "scans.Study", str(series.study_id), {}),
        f"/dicomweb/studies/{study_uid}/series/{series_uid}/metadata": (
            AuditAction.VIEW, "scans.Series", str(series.pk), {}
        ),
        f"{instance_path}/rendered": (
            AuditAction.VIEW, "scans.Instance", stored.sop_instance_uid, {"HTTP_ACCEPT": "image/png"}
        ),
    }
    for url, (action, target_type, target_id, headers) in reads.items():
        before = AuditEvent.objects.count()
        response = client.get(url, **headers)
        assert response.status_code == 200, (url, response.content[:200])
        if hasattr(response, "streaming_content"):
            b"".join(response.streaming_content)
        assert AuditEvent.objects.count() == before + 1, url
        event = AuditEvent.objects.order_by("-pk").first()
        assert (event.action, event.target_type, event.target_id) == (action, target_type, target_id), url
        assert event.actor == north.api_key.user and event.hospital == north.hospital, url
    search = AuditEvent.objects.filter(detail__transaction="QIDO-RS studies").get()
    assert search.detail["query"] == {"PatientName": "Audit*", "limit": "5"}
    assert search.ip_address == "127.0.0.1"


def test_a_dicomweb_read_of_another_hospital_writes_nothing(south, stored):
    study_uid = stored.series.study.study_instance_uid
    assert Client(HTTP_AUTHORIZATION=f"Bearer {south.api_secret}").get(f"/dicomweb/studies/{study_uid}").status_code \
        == 404
    assert AuditEvent.objects.count() == 0
