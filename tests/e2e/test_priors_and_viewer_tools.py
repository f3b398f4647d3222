"""In a real browser: a prior study side by side with its lesion history, and the viewer's tools."""

import datetime

import pytest
from playwright.sync_api import expect

from tests.e2e.test_doctor_and_patient_flow import store_analysed_series

pytestmark = pytest.mark.e2e


def analysed_study(world, *, day, volume, diameter):
    from ml.models import Analysis

    series, analysis = store_analysed_series(world)
    study = series.study
    study.study_date = day
    study.save(update_fields=["study_date"])
    measurements = {**analysis.measurements, "has_physical_scale": True, "volume_ml": volume,
                    "largest_diameter": diameter}
    Analysis.objects.filter(pk=analysis.pk).update(measurements=measurements)
    return study


def test_a_prior_opens_side_by_side_with_the_lesion_history(open_browser, north):
    earlier = analysed_study(north, day=datetime.date(2026, 2, 1), volume=0.80, diameter=11.0)
    current = analysed_study(north, day=datetime.date(2026, 5, 1), volume=1.60, diameter=14.0)

    doctor = open_browser("doctor")
    page = doctor.log_in(north.doctor.email)
    page.goto(f"/studies/{current.pk}/")
    history = page.locator("#study-priors")
    expect(history.get_by_role("cell", name="1.60 mL")).to_be_visible()
    expect(history.get_by_role("cell", name="100%")).to_be_visible()
    expect(history.get_by_role("cell", name="89 days")).to_be_visible()  # 89 days between the studies, doubled
    doctor.screenshot("study-with-priors")

    history.get_by_role("link", name="Compare side by side").click()
    page.wait_for_url(f"**/studies/{current.pk}/compare/{earlier.pk}/")
    viewers = page.locator("[data-viewer]")
    expect(viewers).to_have_count(2)
    # Both open at the lesion's level, and scrolling the current study moves the prior with it.
    current_viewer, prior_viewer = viewers.nth(0), viewers.nth(1)
    expect(prior_viewer).to_have_attribute("data-slice-index", current_viewer.get_attribute("data-slice-index"))
    current_viewer.locator("[data-viewer-stage]").focus()
    page.keyboard.press("Home")
    expect(current_viewer).to_have_attribute("data-slice-index", "0")
    expect(prior_viewer).to_have_attribute("data-slice-index", "0")
    doctor.screenshot("compare")


def test_the_viewer_windows_by_dragging_zooms_and_reads_hounsfield_units(open_browser, north):
    series, _ = store_analysed_series(north)
    doctor = open_browser("doctor")
    page = doctor.log_in(north.doctor.email)
    page.goto(f"/series/{series.pk}/viewer/")
    viewer = page.locator("[data-viewer]")
    stage = viewer.locator("[data-viewer-stage]")
    readout = viewer.locator("[data-window-readout]")
    expect(readout).to_have_text("W 1500 L -600")

    viewer.locator("[data-tool][value=window]").check()
    box = stage.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 100, box["y"] + box["height"] / 2 + 50, steps=5)
    page.mouse.up()
    expect(readout).not_to_have_text("W 1500 L -600")
    page.wait_for_function(
        "() => document.querySelector('[data-slice-image]').src.includes('window=custom')")

    viewer.get_by_role("button", name="Zoom in").click()
    expect(viewer).to_have_attribute("data-zoom", "1.25")

    viewer.locator("[data-tool][value=scroll]").check()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(viewer.locator("[data-value-readout]")).to_contain_text("HU")
    doctor.screenshot("viewer-tools")
