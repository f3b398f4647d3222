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
        measurements={"largest_area_slice_index": int(areas.argmax())},
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
    page.keyboard.press("Home")
    box = stage.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 100)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 136, steps=4)  # a 36-pixel drag: three slices on
    page.mouse.up()
    expect(viewer).to_have_attribute("data-slice-index", "3")

    expect(viewer).to_have_attribute("data-overlay", "on")
    expect(page.locator("[data-mask-image]")).to_be_visible()
    page.get_by_label(re.compile("Lesion overlay")).uncheck()
    expect(viewer).to_have_attribute("data-overlay", "off")
    expect(page.locator("[data-mask-image]")).to_be_hidden()
    page.get_by_label(re.compile("Mediastinum")).check()
    expect(page.locator("[data-slice-image]")).to_have_attribute("src", re.compile("window=mediastinum"))
    expect(page.locator("[data-probability-plot] polyline")).to_have_count(1)
    doctor.screenshot("viewer-mediastinum-no-overlay")


def write_upload_files(directory, world, *, slices=8, size=64):
    from ml.phantoms import generate_phantom_series, write_dicom_series

    phantom = generate_phantom_series(label="large_cell_carcinoma", slices=slices, size=size, seed=3)
    return write_dicom_series(phantom, directory, patient_id=world.patient.mrn, patient_name=world.patient.full_name,
                              study_description="CT chest phantom")


def test_doctor_uploads_reviews_and_signs_then_only_the_patient_downloads_the_pdf(open_browser, worlds, tmp_path):
    from tests.factories import PatientWithLoginFactory

    north, south = worlds
    other_patient = PatientWithLoginFactory(hospital=north.hospital, user__email="other.patient@north.test")
    files = write_upload_files(tmp_path / "upload", north)

    # The doctor uploads a generated series through the form.
    doctor = open_browser("doctor")
    page = doctor.log_in(north.doctor.email)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Upload").click()
    page.get_by_label("Patient").select_option(str(north.patient.pk))
    page.locator("#upload-files").set_input_files([str(path) for path in files])
    doctor.screenshot("upload-chosen")
    page.get_by_role("button", name="Upload").click()
    summary_link = page.get_by_role("link", name="See the upload summary")
    expect(summary_link).to_be_visible(timeout=90_000)
    doctor.screenshot("upload-progress-done")
    summary_link.click()
    stored = page.locator(".stat").filter(has=page.locator(".stat-label", has_text=re.compile(r"^stored$")))
    expect(stored.locator(".stat-value")).to_have_text("8")
    doctor.screenshot("upload-summary")

    # The worklist puts the new study first, waiting for review.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Worklist").click()
    first_row = page.locator("table.worklist tbody tr").first
    expect(first_row).to_contain_text(north.patient.full_name)
    expect(first_row).to_contain_text("Needs review")
    doctor.screenshot("worklist")

    # Progress reaches "analysed" on the study page (then "reported" once the draft exists), which shows the
    # viewer, the findings and the report editor. Tasks run eagerly, so the upload's last request already
    # carried the analysis through; the page must show its outcome.
    first_row.get_by_role("link", name=north.patient.full_name).click()
    status = page.locator(".live-status").first
    expect(status).to_have_attribute("data-status", re.compile("^(analysed|reported)$"), timeout=60_000)
    expect(page.get_by_role("heading", name="AI findings")).to_be_visible()
    expect(page.locator("#study-findings .finding-class strong")).not_to_be_empty()
    doctor.screenshot("study")
    page.set_viewport_size({"width": 820, "height": 1180})
    doctor.screenshot("study-tablet")
    page.set_viewport_size({"width": 1280, "height": 900})

    # The viewer scrolls with the wheel and the keys, and the overlay turns off and on.
    viewer = page.locator("[data-viewer]")
    stage = page.locator("[data-viewer-stage]")
    expect(viewer).to_have_attribute("data-slice-index", re.compile(r"\d"))
    stage.focus()
    page.keyboard.press("Home")
    expect(page.locator("[data-slice-position]")).to_have_text("1 of 8")
    stage.hover()
    page.mouse.wheel(0, 200)
    expect(viewer).to_have_attribute("data-slice-index", re.compile(r"[1-7]"))
    page.keyboard.press("End")
    expect(page.locator("[data-slice-position]")).to_have_text("8 of 8")
    page.keyboard.press("ArrowUp")
    expect(page.locator("[data-slice-position]")).to_have_text("7 of 8")
    expect(viewer).to_have_attribute("data-overlay", "on")
    page.keyboard.press("o")
    expect(viewer).to_have_attribute("data-overlay", "off")
    page.keyboard.press("o")
    expect(viewer).to_have_attribute("data-overlay", "on")
    expect(page.locator("[data-probability-plot] polyline")).to_have_count(1)

    # The doctor writes the impression and signs, re-entering the password.
    impression = page.get_by_role("textbox", name="Impression")
    impression.fill("Solid mass in the left lower lobe. No pleural effusion.")
    page.get_by_label("Your conclusion").select_option("agrees")
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_role("textbox", name="Impression")).to_have_value(re.compile("Solid mass"))
    password = page.get_by_label("Re-enter your password")
    password.fill("not my password")
    page.get_by_role("button", name="Sign report").click()
    expect(page.get_by_text("That password is not correct")).to_be_visible()
    doctor.errors.remove(f"403 POST {page.url}")  # the refused signature answers 403, as it should
    page.get_by_label("Re-enter your password").fill(PASSWORD)
    page.get_by_role("button", name="Sign report").click()
    expect(page.locator("h1 .badge")).to_have_text(re.compile("Final"))
    report_url = page.url
    doctor.screenshot("report-signed")

    # The patient reads the report and downloads the PDF.
    patient = open_browser("patient")
    page = patient.log_in(north.patient.user.email)
    expect(page).to_have_url(re.compile(r"/my/reports/$"))
    patient.screenshot("my-reports")
    page.get_by_role("link", name="Read report").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Your CT report")
    expect(page.get_by_text("Solid mass in the left lower lobe")).to_be_visible()
    patient.screenshot("report")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download PDF").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".pdf")
    with open(download.path(), "rb") as pdf:
        assert pdf.read(5) == b"%PDF-"

    # On a phone (390 px wide) neither patient page scrolls sideways: tables become cards.
    page.set_viewport_size({"width": 390, "height": 844})
    for path in ("/my/reports/", re.sub(r"^https?://[^/]+", "", report_url)):
        page.goto(path)
        widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert widths[0] <= widths[1], f"{path} scrolls sideways on a phone: {widths}"
    patient.screenshot("report-phone")
    page.set_viewport_size({"width": 1280, "height": 900})

    # Another patient of the hospital, and a patient of another hospital, find nothing there.
    report_path = re.sub(r"^https?://[^/]+", "", report_url)
    for who, person in (("other-patient", other_patient.user), ("other-hospital", south.patient.user)):
        stranger = open_browser(who)
        stranger.log_in(person.email)
        assert stranger.open_refused(report_path) == 404
        assert stranger.open_refused(f"{report_path}pdf/") == 404
        stranger.screenshot("report-not-found")


def test_hospital_admin_sees_the_month_at_a_glance(open_browser, worlds):
    north, _ = worlds
    admin = open_browser("admin")
    page = admin.log_in(north.admin.email)
    expect(page).to_have_url(re.compile(r"/hospital/"))
    expect(page.locator(".stat").filter(has_text="Studies this month")).to_be_visible()
    expect(page.locator("main").get_by_role("link", name=re.compile("Invite"))).to_be_visible()
    admin.screenshot("hospital-dashboard")


def test_study_page_follows_the_analysis_without_reloading(open_browser, worlds):
    """Progress, then findings, overlay and the report draft appear on the open page as the pipeline runs."""
    from ml.services import queue_analysis
    from scans.models import Series, SeriesStatus
    from tests.pipeline.builders import store_phantom_series

    north, _ = worlds
    series, _ = store_phantom_series(hospital=north.hospital, patient=north.patient, slices=8, size=64)
    Series.objects.filter(pk=series.pk).update(status=SeriesStatus.QUEUED, slices_total=8)

    doctor = open_browser("doctor")
    page = doctor.log_in(north.doctor.email)
    page.goto(f"/studies/{series.study_id}/")
    status = page.locator(".live-status").first
    expect(status).to_have_attribute("data-status", "queued")
    expect(page.get_by_text("The analysis is not finished yet")).to_be_visible()
    expect(page.get_by_label(re.compile("Lesion overlay"))).to_be_disabled()
    page.evaluate("window.stillTheSamePage = true")

    Series.objects.filter(pk=series.pk).update(status=SeriesStatus.ANALYSING, slices_done=3)
    expect(status).to_have_attribute("data-status", "analysing")
    expect(status).to_contain_text("3 of 8 slices")
    doctor.screenshot("study-analysing")

    queue_analysis(series_id=series.pk)  # eager: the analysis and the report draft run here, in the test thread
    expect(status).to_have_attribute("data-status", re.compile("^(analysed|reported)$"), timeout=30_000)
    expect(page.locator("#study-findings .finding-class strong")).not_to_be_empty(timeout=30_000)
    expect(page.get_by_label(re.compile("Lesion overlay"))).to_be_enabled()
    expect(page.get_by_role("textbox", name="Impression")).to_be_visible(timeout=30_000)
    assert page.evaluate("window.stillTheSamePage") is True
    doctor.screenshot("study-analysed-live")
