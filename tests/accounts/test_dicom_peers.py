"""Hospital AE titles and the DICOM peers allowed to associate with them: validation, command, seed, admin."""

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse

from accounts.models import DicomPeer, Hospital, validate_ae_title
from accounts.services import register_dicom_peer, remove_dicom_peer

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("title", ["NORTHSIDE", "CT_SCANNER_1", "A", "X" * 16, "PACS 2", "ae-title.1"])
def test_valid_ae_titles(title):
    validate_ae_title(title)


@pytest.mark.parametrize("title", ["", "    ", "X" * 17, "BACK\\SLASH", "TAB\tHERE", "NEW\nLINE", " LEADING",
                                   "TRAILING ", "ÉCHO"])
def test_invalid_ae_titles(title):
    with pytest.raises(ValidationError):
        validate_ae_title(title)


def test_a_hospital_gets_its_slug_in_capitals_unless_an_ae_title_is_chosen(db):
    assert Hospital.objects.create(slug="a-very-long-hospital-slug", name="Long").ae_title == "A-VERY-LONG-HOSP"
    assert Hospital.objects.create(slug="west", name="West", ae_title="WEST_PACS").ae_title == "WEST_PACS"


def test_add_dicom_peer_command_registers_a_peer_with_its_own_machine_user(capsys, north):
    call_command("add_dicom_peer", "--hospital", "north", "--aet", "CT_SCANNER_1", "--host", "10.0.0.5")
    assert "CT_SCANNER_1 may now associate with NORTH" in capsys.readouterr().out
    peer = DicomPeer.objects.get()
    assert (peer.hospital, peer.ae_title, peer.host) == (north.hospital, "CT_SCANNER_1", "10.0.0.5")
    assert peer.user.is_api_client and peer.user.hospital == north.hospital and not peer.user.has_usable_password()
    assert peer.accepts_address("10.0.0.5") and not peer.accepts_address("10.0.0.6")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--hospital", "nowhere", "--aet", "CT1"], "No hospital"),
        (["--hospital", "north", "--aet", "BAD\\AET"], "not a valid AE title"),
        (["--hospital", "north", "--aet", "CT1", "--host", "scanner.local"], "IP address"),
        (["--hospital", "north", "--aet", "TAKEN"], "already has a DICOM peer"),
    ],
)
def test_add_dicom_peer_command_explains_what_is_wrong(north, arguments, message):
    register_dicom_peer(hospital=north.hospital, ae_title="TAKEN")
    with pytest.raises(CommandError, match=message):
        call_command("add_dicom_peer", *arguments)


def test_the_same_calling_ae_title_may_be_a_peer_of_two_hospitals(north, south):
    register_dicom_peer(hospital=north.hospital, ae_title="SHARED_PACS")
    register_dicom_peer(hospital=south.hospital, ae_title="SHARED_PACS")
    assert DicomPeer.objects.filter(ae_title="SHARED_PACS").count() == 2


def test_a_removed_peer_keeps_its_user_as_author_but_inactive(north):
    peer = register_dicom_peer(hospital=north.hospital, ae_title="OLD_CT")
    user = peer.user
    remove_dicom_peer(peer=peer)
    user.refresh_from_db()
    assert not DicomPeer.objects.exists() and not user.is_active


def test_seed_demo_gives_each_hospital_its_ae_title_and_the_demo_pacs(settings):
    settings.DEBUG = True
    call_command("seed_demo", verbosity=0)
    call_command("seed_demo", verbosity=0)
    ae_titles = dict(Hospital.objects.values_list("slug", "ae_title"))
    assert ae_titles == {"northside": "NORTHSIDE", "riverside": "RIVERSIDE"}
    assert sorted(DicomPeer.objects.values_list("hospital__slug", "ae_title")) == [
        ("northside", "DEMO_PACS"), ("riverside", "DEMO_PACS")
    ]


def test_hospital_admin_registers_peers_of_their_own_hospital_only(client, north, south):
    register_dicom_peer(hospital=south.hospital, ae_title="SOUTH_ONLY_PACS")
    client.force_login(north.admin)
    response = client.post(
        reverse("admin:accounts_dicompeer_add"),
        {"ae_title": "NORTH_CT_2", "host": "", "description": "CT room 2", "hospital": south.hospital.pk},
    )
    assert response.status_code == 302
    peer = DicomPeer.objects.get(ae_title="NORTH_CT_2")
    assert peer.hospital == north.hospital and peer.user.hospital == north.hospital
    listing = client.get(reverse("admin:accounts_dicompeer_changelist")).content.decode()
    assert "NORTH_CT_2" in listing and "SOUTH_ONLY_PACS" not in listing
    duplicate = client.post(reverse("admin:accounts_dicompeer_add"), {"ae_title": "NORTH_CT_2", "host": ""})
    assert duplicate.status_code == 200 and "already has a DICOM peer" in duplicate.content.decode()
    invalid = client.post(reverse("admin:accounts_dicompeer_add"), {"ae_title": "BAD\\AET", "host": ""})
    assert invalid.status_code == 200 and "backslash" in invalid.content.decode()


def test_only_the_platform_admin_changes_a_hospitals_ae_title(client, north, superuser):
    client.force_login(north.admin)
    url = reverse("admin:accounts_hospital_change", args=[north.hospital.pk])
    client.post(url, {"name": north.hospital.name, "slug": "north", "ae_title": "HIJACKED"})
    north.hospital.refresh_from_db()
    assert north.hospital.ae_title == "NORTH"
    client.force_login(superuser)
    response = client.post(url, {"name": north.hospital.name, "slug": "north", "ae_title": "NORTH_GENERAL",
                                 "dimse_complete_on_release": "on"})
    assert response.status_code == 302
    north.hospital.refresh_from_db()
    assert north.hospital.ae_title == "NORTH_GENERAL"
    peer = register_dicom_peer(hospital=north.hospital, ae_title="NORTH_CT")
    page = client.get(reverse("admin:accounts_dicompeer_change", args=[peer.pk]))
    assert page.status_code == 200 and 'name="hospital"' not in page.content.decode()
