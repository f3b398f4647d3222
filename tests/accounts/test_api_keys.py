import pytest
from django.core.management import call_command
from django.urls import reverse

from accounts.models import ApiKey
from accounts.services import revoke_api_key

pytestmark = pytest.mark.django_db


def test_create_api_key_command_prints_the_key_once_and_stores_only_a_hash(capsys, north):
    call_command("create_api_key", "--hospital", "north", "--name", "modality")
    secret = capsys.readouterr().out.strip().splitlines()[-1]
    api_key = ApiKey.objects.get(name="modality")
    assert secret.startswith("ra_")
    assert secret not in (api_key.key_hash, api_key.key_prefix)
    assert api_key.key_hash == ApiKey.hash_key(secret)


def test_api_key_acts_as_a_doctor_of_its_hospital(api_client, north, south):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {north.api_secret}")
    me = api_client.get(reverse("api-current-user")).json()
    assert me["hospital"] == "north" and me["role"] == "doctor"
    patients = api_client.get("/api/v1/patients/").json()["results"]
    assert [p["mrn"] for p in patients] == [north.patient.mrn]
    assert api_client.get(f"/api/v1/patients/{south.patient.pk}/").status_code == 404


def test_revoked_and_wrong_keys_are_refused_with_json(api_client, north):
    revoke_api_key(api_key=north.api_key)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {north.api_secret}")
    response = api_client.get("/api/v1/patients/")
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]
    api_client.credentials(HTTP_AUTHORIZATION="Bearer ra_not-a-key")
    assert api_client.get("/api/v1/patients/").status_code == 401


def test_api_without_credentials_is_refused(api_client, db):
    assert api_client.get("/api/v1/patients/").status_code in (401, 403)
