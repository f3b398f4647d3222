"""Forwarding to a real Orthanc (Debian's orthanc + orthanc-dicomweb, started here) by STOW-RS and by C-STORE,
retrying a destination that is down, never sending twice, never across hospitals; the command and the admin."""

import io

import pydicom
import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from portal.models import AuditAction, AuditEvent
from reports.dicom_results import make_analysis_result_objects, make_signed_report_object
from reports.models import DicomDestination, OutboxItem, OutboxState
from reports.outbox import MAX_ATTEMPTS, add_destination, send_due_items, send_item
from tests.reports.orthanc import ORTHANC_AE_TITLE, Orthanc, free_port, orthanc_missing
from tests.reports.results_fixtures import analysed_phantom_series

needs_orthanc = pytest.mark.skipif(bool(orthanc_missing()), reason=orthanc_missing() or "Orthanc is installed")


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory):
    if orthanc_missing():
        pytest.skip(orthanc_missing())
    server = Orthanc(tmp_path_factory.mktemp("orthanc")).start()
    yield server
    server.stop()


def signed_version(analysis, world):
    from reports.services import AGREES_WITH_AI, create_draft_report, override_ai_class, sign_report, update_draft
    from tests.factories import DEFAULT_PASSWORD

    draft = create_draft_report(analysis=analysis).versions.get()
    update_draft(version=draft, doctor=world.doctor, impression="Solid nodule.", recommendation="Follow up.")
    override_ai_class(version=draft, doctor=world.doctor, conclusion_class=AGREES_WITH_AI, reason="")
    return sign_report(version=draft, doctor=world.doctor, password=DEFAULT_PASSWORD)


def results_of_a_signed_study(world):
    """SEG, SR and the signed report's Encapsulated PDF of one analysed phantom series, each queued."""
    analysis, _ = analysed_phantom_series(world=world)
    made = make_analysis_result_objects(analysis=analysis)
    made.append(make_signed_report_object(version=signed_version(analysis, world)))
    return analysis.series.study, made


@needs_orthanc
@pytest.mark.parametrize("kind", ["dicomweb", "dimse"])
def test_results_reach_orthanc_by_stow_rs_and_by_c_store(kind, north, orthanc):
    if kind == "dicomweb":
        destination = add_destination(hospital=north.hospital, name="pacs", url=orthanc.dicomweb_url,
                                      headers={"X-Test": "radassist"})
    else:
        destination = add_destination(hospital=north.hospital, name="pacs", ae_title=ORTHANC_AE_TITLE,
                                      host="127.0.0.1", port=orthanc.dicom_port)
    study, made = results_of_a_signed_study(north)
    items = OutboxItem.objects.filter(destination=destination)
    assert items.count() == 3

    assert send_due_items() == 3
    assert set(items.values_list("state", flat=True)) == {OutboxState.SENT}
    uids = {result_object.sop_instance_uid for result_object in made}
    assert uids <= orthanc.sop_instance_uids(study.study_instance_uid)
    for result_object in made:
        with result_object.instance.file.open("rb") as stored:
            assert orthanc.stored_bytes(result_object.sop_instance_uid)[132:140] == stored.read()[132:140]
    sends = AuditEvent.objects.filter(action=AuditAction.SEND, hospital=north.hospital)
    assert sorted(event.detail["sop_instance_uid"] for event in sends) == sorted(uids)

    for item in items:  # a redelivered task finds the item sent and sends nothing
        assert send_item(item_id=item.pk).attempts == 1
    assert sends.count() == 3


@needs_orthanc
def test_a_destination_down_at_first_receives_everything_once_it_comes_back(north, tmp_path):
    implicit_vr_little_endian_only = ["1.2.840.10008.1.2"]  # an older PACS: our objects are converted for it
    later = Orthanc(tmp_path / "pacs", AcceptedTransferSyntaxes=implicit_vr_little_endian_only)
    destination = add_destination(hospital=north.hospital, name="pacs", ae_title=ORTHANC_AE_TITLE,
                                  host="127.0.0.1", port=later.dicom_port)
    study, made = results_of_a_signed_study(north)

    assert send_due_items() == 3
    items = OutboxItem.objects.filter(destination=destination)
    assert set(items.values_list("state", "attempts")) == {(OutboxState.PENDING, 1)}
    assert all("did not accept a connection" in item.last_error for item in items)
    assert send_due_items() == 0  # not due again yet: the next attempt waits

    later.start()
    try:
        assert send_due_items(now=timezone.now() + timezone.timedelta(minutes=5)) == 3
        assert set(items.values_list("state", "attempts")) == {(OutboxState.SENT, 2)}
        assert {result.sop_instance_uid for result in made} <= later.sop_instance_uids(study.study_instance_uid)
        segmentation = next(result for result in made if result.kind == "seg")
        received = pydicom.dcmread(io.BytesIO(later.stored_bytes(segmentation.sop_instance_uid)))
        assert received.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2"
        with segmentation.instance.file.open("rb") as stored:
            assert received.PixelData == pydicom.dcmread(stored).PixelData
    finally:
        later.stop()


def test_a_stow_rs_destination_that_refuses_connections_is_retried_with_growing_pauses(north):
    destination = add_destination(hospital=north.hospital, name="pacs", url=f"http://127.0.0.1:{free_port()}/dw")
    _, made = results_of_a_signed_study(north)
    item = OutboxItem.objects.filter(destination=destination).first()
    first_try = timezone.now()
    send_item(item_id=item.pk, now=first_try)
    item.refresh_from_db()
    first_pause = item.next_attempt_at - first_try
    send_item(item_id=item.pk, now=item.next_attempt_at)
    item.refresh_from_db()
    assert (item.state, item.attempts) == (OutboxState.PENDING, 2)
    assert "did not answer" in item.last_error
    assert item.next_attempt_at - first_try > 2 * first_pause

    OutboxItem.objects.filter(pk=item.pk).update(attempts=MAX_ATTEMPTS - 1)
    send_item(item_id=item.pk, now=item.next_attempt_at)
    item.refresh_from_db()
    assert item.state == OutboxState.FAILED and item.last_error.startswith(f"Gave up after {MAX_ATTEMPTS} attempts")


@needs_orthanc
def test_nothing_of_one_hospital_reaches_another_hospitals_destination(north, south, orthanc):
    southern = add_destination(hospital=south.hospital, name="pacs", url=orthanc.dicomweb_url)
    study, made = results_of_a_signed_study(north)
    assert not OutboxItem.objects.filter(destination=southern).exists()
    send_due_items()
    assert not {result.sop_instance_uid for result in made} & orthanc.sop_instance_uids(study.study_instance_uid)

    with pytest.raises(ValueError, match="same hospital"):
        OutboxItem.objects.create(hospital=north.hospital, destination=southern, result_object=made[0],
                                  sop_instance_uid=made[0].sop_instance_uid)
    assert not OutboxItem.objects.filter(destination=southern).exists()


def test_destinations_that_want_only_one_kind_get_only_that_kind(north):
    reports_only = add_destination(hospital=north.hospital, name="archive", url="https://archive.test/dw",
                                   sends_ai_results=False)
    switched_off = add_destination(hospital=north.hospital, name="off", url="https://off.test/dw")
    DicomDestination.objects.filter(pk=switched_off.pk).update(enabled=False)
    results_of_a_signed_study(north)
    assert list(OutboxItem.objects.values_list("destination", "result_object__kind")) == [(reports_only.pk, "pdf")]


def test_add_dicom_destination_command(north):
    call_command("add_dicom_destination", "--hospital", "north", "--name", "pacs",
                 "--dicomweb-url", "https://pacs.north.test/dicom-web", "--header", "Authorization: Bearer s3cret")
    call_command("add_dicom_destination", "--hospital", "north", "--name", "modality",
                 "--aet", "PACS", "--host", "10.0.0.5", "--port", "104")
    web, dimse = DicomDestination.objects.get(name="pacs"), DicomDestination.objects.get(name="modality")
    assert (web.kind, web.headers, web.sends_ai_results, web.sends_signed_reports) == (
        "dicomweb", {"Authorization": "Bearer s3cret"}, True, True)
    assert (dimse.kind, dimse.address) == ("dimse", "PACS@10.0.0.5:104")
    for arguments, message in [
        (["--hospital", "nowhere", "--name", "x", "--aet", "A", "--host", "h", "--port", "1"], "No hospital"),
        (["--hospital", "north", "--name", "pacs", "--aet", "A", "--host", "h", "--port", "1"], "already has"),
        (["--hospital", "north", "--name", "y"], "either a DICOMweb URL"),
        (["--hospital", "north", "--name", "y", "--dicomweb-url", "ftp://x"], "not a DICOMweb URL"),
        (["--hospital", "north", "--name", "y", "--aet", "A", "--host", "h"], "AE title, host and port"),
        (["--hospital", "north", "--name", "y", "--dicomweb-url", "https://x", "--header", "nocolon"], "Name: value"),
    ]:
        with pytest.raises(CommandError, match=message):
            call_command("add_dicom_destination", *arguments)


def test_admin_shows_each_hospital_its_own_destinations_and_outbox_and_never_the_full_header(north, south):
    add_destination(hospital=north.hospital, name="north-pacs", url="https://pacs.north.test/dw",
                    headers={"Authorization": "Bearer north-secret-token"})
    results_of_a_signed_study(north)
    northern = Client()
    northern.force_login(north.admin)
    destination = DicomDestination.objects.get()
    page = northern.get(f"/admin/reports/dicomdestination/{destination.pk}/change/").content.decode()
    assert "Bear" in page and "north-secret-token" not in page
    assert northern.get("/admin/reports/outboxitem/").content.decode().count("north-pacs") >= 3

    southern = Client()
    southern.force_login(south.admin)
    assert "north-pacs" not in southern.get("/admin/reports/outboxitem/").content.decode()
    assert southern.get(f"/admin/reports/dicomdestination/{destination.pk}/change/").status_code in (302, 404)

    item = OutboxItem.objects.first()
    OutboxItem.objects.filter(pk=item.pk).update(state=OutboxState.FAILED, last_error="HTTP 400")
    send_again = {"action": "send_again_now", "_selected_action": [item.pk]}
    assert southern.post("/admin/reports/outboxitem/", send_again).status_code in (200, 302)
    item.refresh_from_db()
    assert item.state == OutboxState.FAILED
    assert northern.post("/admin/reports/outboxitem/", send_again).status_code == 302
    item.refresh_from_db()
    assert (item.state, item.attempts) == (OutboxState.PENDING, 0)


def test_study_outbox_include_lists_the_studys_items(north):
    from django.template.loader import render_to_string

    add_destination(hospital=north.hospital, name="north-pacs", url="https://pacs.north.test/dw")
    study, _ = results_of_a_signed_study(north)
    items = OutboxItem.objects.visible_to(north.doctor).for_study(study)
    html = render_to_string("reports/_outbox_status.html", {"outbox_items": items})
    assert html.count("north-pacs") == 3 and "Pending" in html


@needs_orthanc
def test_the_tasks_make_and_send_everything_once_their_transactions_commit(
    north, orthanc, django_capture_on_commit_callbacks
):
    from reports.services import AGREES_WITH_AI, create_draft_report, override_ai_class, sign_report, update_draft
    from reports.tasks import make_result_objects
    from tests.factories import DEFAULT_PASSWORD

    add_destination(hospital=north.hospital, name="pacs", url=orthanc.dicomweb_url)
    analysis, _ = analysed_phantom_series(world=north)
    with django_capture_on_commit_callbacks(execute=True):
        make_result_objects.delay(analysis_id=analysis.pk)
    draft = create_draft_report(analysis=analysis).versions.get()
    update_draft(version=draft, doctor=north.doctor, impression="Solid nodule.", recommendation="Follow up.")
    override_ai_class(version=draft, doctor=north.doctor, conclusion_class=AGREES_WITH_AI, reason="")
    with django_capture_on_commit_callbacks(execute=True):
        sign_report(version=draft, doctor=north.doctor, password=DEFAULT_PASSWORD)
    assert sorted(OutboxItem.objects.values_list("result_object__kind", "state")) == [
        ("pdf", "sent"), ("seg", "sent"), ("sr", "sent")]
    sent = set(OutboxItem.objects.values_list("sop_instance_uid", flat=True))
    assert sent <= orthanc.sop_instance_uids(analysis.series.study.study_instance_uid)


def test_extra_headers_are_stored_encrypted_and_survive_a_secret_key_rotation(north, settings):
    destination = add_destination(hospital=north.hospital, name="pacs", url="https://pacs.north.test/dw",
                                  headers={"Authorization": "Bearer north-secret-token"})
    stored = DicomDestination.objects.filter(pk=destination.pk).values_list("sealed_headers", flat=True).get()
    assert "north-secret-token" not in stored and "Authorization" not in stored

    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-rotated-secret-key-for-the-test-only"
    assert DicomDestination.objects.get().headers == {"Authorization": "Bearer north-secret-token"}

    settings.SECRET_KEY_FALLBACKS = []
    _, made = results_of_a_signed_study(north)
    item = OutboxItem.objects.first()
    send_item(item_id=item.pk)
    item.refresh_from_db()
    assert item.state == OutboxState.FAILED and "enter them again" in item.last_error
