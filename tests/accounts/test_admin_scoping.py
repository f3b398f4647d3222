"""Hospital admins manage their own hospital in Django admin, and only theirs."""
import pytest
from django.urls import reverse

from accounts.models import Patient, Role, User

pytestmark = pytest.mark.django_db


def test_hospital_admin_sees_only_their_hospitals_users_and_patients(client, north, south):
    client.force_login(north.admin)
    users = client.get(reverse("admin:accounts_user_changelist")).content.decode()
    assert north.doctor.email in users
    assert south.doctor.email not in users
    patients = client.get(reverse("admin:accounts_patient_changelist")).content.decode()
    assert north.patient.mrn in patients
    assert south.patient.mrn not in patients


def test_foreign_rows_answer_404_in_admin(client, north, south):
    client.force_login(north.admin)
    for name, obj in [("accounts_user_change", south.doctor), ("accounts_patient_change", south.patient),
                      ("accounts_hospital_change", south.hospital), ("accounts_apikey_change", south.api_key)]:
        response = client.get(reverse(f"admin:{name}", args=[obj.pk]))
        assert response.status_code in (302, 404), name
        assert south.hospital.name not in response.content.decode()


def test_hospital_admin_cannot_create_superusers_or_staff(client, north):
    client.force_login(north.admin)
    assert client.get(reverse("admin:accounts_user_add")).status_code == 403
    change = client.get(reverse("admin:accounts_user_change", args=[north.doctor.pk])).content.decode()
    assert 'name="is_superuser"' not in change
    assert 'name="user_permissions"' not in change
    assert 'name="hospital"' not in change


def test_hospital_admin_cannot_move_a_user_to_another_hospital_or_promote_themselves(client, north, south):
    client.force_login(north.admin)
    client.post(
        reverse("admin:accounts_user_change", args=[north.doctor.pk]),
        {"email": north.doctor.email, "full_name": "Moved", "role": Role.DOCTOR, "is_active": "on",
         "hospital": south.hospital.pk, "is_superuser": "on"},
    )
    north.doctor.refresh_from_db()
    assert north.doctor.hospital == north.hospital
    assert not north.doctor.is_superuser
    client.post(
        reverse("admin:accounts_user_change", args=[north.admin.pk]),
        {"email": north.admin.email, "full_name": "Me", "role": Role.HOSPITAL_ADMIN, "is_superuser": "on",
         "is_active": "on"},
    )
    north.admin.refresh_from_db()
    assert not north.admin.is_superuser
    assert north.admin.role == Role.HOSPITAL_ADMIN


def test_patient_created_in_admin_belongs_to_the_admins_hospital(client, north, south):
    client.force_login(north.admin)
    response = client.post(
        reverse("admin:accounts_patient_add"),
        {"mrn": "NEW-1", "full_name": "New Person", "sex": "F", "hospital": south.hospital.pk},
    )
    assert response.status_code == 302
    assert Patient.objects.get(mrn="NEW-1").hospital == north.hospital


def test_doctors_and_patients_cannot_use_admin(client, north):
    for user in (north.doctor, north.patient_user):
        client.force_login(user)
        response = client.get(reverse("admin:accounts_user_changelist"))
        assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_superuser_sees_every_hospital(client, superuser, north, south):
    client.force_login(superuser)
    users = client.get(reverse("admin:accounts_user_changelist")).content.decode()
    assert north.doctor.email in users and south.doctor.email in users


def test_api_key_can_be_created_in_admin_and_is_shown_once(client, north):
    client.force_login(north.admin)
    response = client.post(reverse("admin:accounts_apikey_add"), {"name": "modality"}, follow=True)
    assert "Copy this key now" in response.content.decode()
    assert User.objects.filter(api_key__name="modality", hospital=north.hospital, is_api_client=True).exists()
