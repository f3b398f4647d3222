"""The whole flow in a real browser: a doctor reviews a series, the patient reads the signed report."""

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e


@pytest.fixture
def worlds(north, south):
    return north, south


def store_analysed_series(world, *, slices=8, size=64):
    """A stored phantom series with an analysis whose masks are the phantom's true lesion (no model needed)."""
    import io

    import numpy as np
    from django.core.files.base import ContentFile

    from ml.models import Analysis, AnalysisStatus
    from scans.models import SeriesStatus
    from tests.pipeline.builders import store_phantom_series

    series, phantom = store_phantom_series(hospital=world.hospital, patient=world.patient, slices=slices, size=size)
    areas = phantom.masks.reshape(slices, -1).sum(axis=1)
    tumour = (0.1 + 0.85 * areas / max(areas.max(), 1)).tolist()
    analysis = Analysis.objects.create(
        hospital=world.hospital, series=series, classifier_name="classifier", classifier_version="1",
        segmenter_name="segmenter", segmenter_version="1", status=AnalysisStatus.SUCCEEDED,
        predicted_class=phantom.label, slice_probabilities=[[0.0, p, 0.0, 1.0 - p] for p in tumour],
        measurements={"largest_slice": int(areas.argmax())},
    )
    buffer = io.BytesIO()
    np.savez_compressed(buffer, masks=phantom.masks)
    analysis.masks_file.save("masks.npz", ContentFile(buffer.getvalue()))
    series.status = SeriesStatus.ANALYSED
    series.save(update_fields=["status"])
    return series


def test_doctor_scrolls_the_viewer_and_toggles_the_overlay(open_browser, worlds):
    north, _ = worlds
    series = store_analysed_series(north)

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
