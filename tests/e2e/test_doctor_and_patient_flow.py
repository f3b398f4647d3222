"""The whole flow in a real browser: a doctor reviews a series, the patient reads the signed report."""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PASSWORD

pytestmark = pytest.mark.e2e


@pytest.fixture
def worlds(north, south):
    return north, south


def store_analysed_series(world, *, slices=8, size=64):
    """A stored phantom series with an analysis whose masks are the phantom's true lesion (no model needed)."""
    import io

    import numpy as np
    from django.core.files.base import ContentFile

    from ml.models import Analysis, AnalysisStatus, KeyImage
    from ml.overlays import outline_overlay_png
    from scans.models import SeriesStatus
    from tests.pipeline.builders import store_phantom_series

    series, phantom = store_phantom_series(hospital=world.hospital, patient=world.patient, slices=slices, size=size)
    areas = phantom.masks.reshape(slices, -1).sum(axis=1)
    tumour = (0.1 + 0.85 * areas / max(areas.max(), 1)).tolist()
    analysis = Analysis.objects.create(
        hospital=world.hospital, series=series, classifier_name="classifier", classifier_version="1",
        segmenter_name="segmenter", segmenter_version="1", status=AnalysisStatus.SUCCEEDED,
        predicted_class=phantom.label,
        class_probabilities={"adenocarcinoma": 0.06, "large_cell_carcinoma": 0.81, "squamous_cell_carcinoma": 0.08,
                             "normal": 0.05},
        slice_probabilities=[[0.0, p, 0.0, 1.0 - p] for p in tumour],
        measurements={"largest_slice": int(areas.argmax())},
    )
    buffer = io.BytesIO()
    np.savez_compressed(buffer, masks=phantom.masks)
    analysis.masks_file.save("masks.npz", ContentFile(buffer.getvalue()))
    slice_index = int(areas.argmax())
    key_image = KeyImage(analysis=analysis, slice_index=slice_index, reason=KeyImage.Reason.LARGEST_LESION,
                         lesion_area=float(areas[slice_index]))
    key_image.overlay.save("key.png", ContentFile(outline_overlay_png(phantom.hounsfield[slice_index],
                                                                      phantom.masks[slice_index])))
    series.status = SeriesStatus.ANALYSED
    series.save(update_fields=["status"])
    return series, analysis


def test_doctor_scrolls_the_viewer_and_toggles_the_overlay(open_browser, worlds):
    north, _ = worlds
    series, _ = store_analysed_series(north)

    doctor = open_browser("doctor")
    page = doctor.log_in(north.doctor.email)
    expect(page).to_have_url(re.compile(r"/worklist/$"))
    doctor.screenshot("worklist")

    page.goto(f"/series/{series.pk}/viewer/")
    viewer = page.locator("[data-viewer]")
    stage = page.locator("[data-viewer-stage]")
    expect(viewer).to_have_attribute("data-slice-index", re.compile(r"\d+"))
    start = int(viewer.get_attribute("data-slice-index"))
    doctor.screenshot("viewer")

    stage.focus()
    page.keyboard.press("Home")
    expect(viewer).to_have_attribute("data-slice-index", "0")
    expect(page.locator("[data-slice-position]")).to_have_text("1 of 8")
    stage.hover()
    page.mouse.wheel(0, 100)
    expect(viewer).to_have_attribute("data-slice-index", re.compile(r"[1-7]"))
    page.keyboard.press("End")
    expect(viewer).to_have_attribute("data-slice-index", "7")
    page.keyboard.press("PageUp")
    expect(viewer).to_have_attribute("data-slice-index", "0")
    page.locator("[data-slice-slider]").fill(str(start + 1))
    expect(viewer).to_have_attribute("data-slice-index", str(start))

    expect(viewer).to_have_attribute("data-overlay", "on")
    expect(page.locator("[data-mask-image]")).to_be_visible()
    page.get_by_label(re.compile("Lesion overlay")).uncheck()
    expect(viewer).to_have_attribute("data-overlay", "off")
    expect(page.locator("[data-mask-image]")).to_be_hidden()
    page.get_by_label(re.compile("Mediastinum")).check()
    expect(page.locator("[data-slice-image]")).to_have_attribute("src", re.compile("window=mediastinum"))
    expect(page.locator("[data-probability-plot] polyline")).to_have_count(1)
    doctor.screenshot("viewer-mediastinum-no-overlay")


def test_doctor_signs_the_report_and_only_its_patient_downloads_the_pdf(open_browser, worlds):
    from reports.services import create_draft_report
    from tests.factories import PatientWithLoginFactory

    north, south = worlds
    other_patient = PatientWithLoginFactory(hospital=north.hospital, user__email="other.patient@north.test")
    _, analysis = store_analysed_series(north)
    report = create_draft_report(analysis=analysis)

    doctor = open_browser("doctor")
    page = doctor.log_in(north.doctor.email)
    page.goto(f"/reports/{report.pk}/")
    page.get_by_role("textbox", name="Impression").fill("Solid mass in the left lower lobe, 4 cm. No effusion.")
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_role("textbox", name="Impression")).to_have_value(re.compile("Solid mass"))
    doctor.screenshot("report-draft")
    page.get_by_role("textbox", name="Re-enter your password").fill("not my password")
    page.get_by_role("button", name="Sign report").click()
    expect(page.get_by_text("That password is not correct")).to_be_visible()
    page.get_by_role("textbox", name="Re-enter your password").fill(PASSWORD)
    page.get_by_role("button", name="Sign report").click()
    expect(page.locator("h1 .badge")).to_have_text(re.compile("Final"))
    doctor.screenshot("report-signed")

    patient = open_browser("patient")
    page = patient.log_in(north.patient.user.email)
    expect(page).to_have_url(re.compile(r"/my/reports/$"))
    patient.screenshot("my-reports")
    page.get_by_role("link", name="Read report").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Your CT report")
    patient.screenshot("report")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download PDF").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".pdf")
    with open(download.path(), "rb") as pdf:
        assert pdf.read(5) == b"%PDF-"

    for who, person in (("other-patient", other_patient.user), ("other-hospital", south.patient.user)):
        stranger = open_browser(who)
        stranger.log_in(person.email)
        assert stranger.open_refused(f"/reports/{report.pk}/") == 404
        assert stranger.open_refused(f"/reports/{report.pk}/pdf/") == 404
        stranger.screenshot("report-not-found")
