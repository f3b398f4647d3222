import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from accounts.models import Hospital, Patient, User

pytestmark = pytest.mark.django_db


def test_seed_demo_is_idempotent_and_prints_the_logins(capsys, settings):
    settings.DEBUG = True
    call_command("seed_demo")
    call_command("seed_demo")
    output = capsys.readouterr().out
    assert "doctor1@northside.example" in output and "Demo password:" in output
    assert set(Hospital.objects.values_list("slug", flat=True)) == {"northside", "riverside"}
    assert User.objects.filter(email__endswith="@northside.example").count() == 6
    assert Patient.objects.filter(hospital__slug="riverside", user__isnull=False).count() == 3


def test_seed_demo_refuses_to_run_with_debug_off(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG"):
        call_command("seed_demo")
    assert not Hospital.objects.exists()


def test_required_mfa_sends_doctors_to_set_up_totp(client, north, settings):
    settings.RADASSIST_REQUIRE_MFA_FOR_STAFF = True
    client.force_login(north.doctor)
    response = client.get(reverse("worklist"))
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_activate_totp")
    client.force_login(north.patient_user)
    assert client.get(reverse("patient-reports")).status_code == 200
