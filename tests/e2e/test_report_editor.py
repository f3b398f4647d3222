"""The report editor in a real browser: what is on screen is what gets signed, and drafts save themselves."""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PASSWORD
from tests.e2e.test_doctor_and_patient_flow import store_analysed_series

pytestmark = pytest.mark.e2e


@pytest.fixture
def draft(north):
    from reports.services import create_draft_report

    _, analysis = store_analysed_series(north, slices=4, size=32)
    return create_draft_report(analysis=analysis).versions.get()


def test_typed_edits_are_signed_without_saving_first(open_browser, north, draft):
    doctor = open_browser("doctor")
    page = doctor.log_in(north.doctor.email)
    page.goto(f"/reports/{draft.report_id}/")
    expect(page.get_by_label("Your conclusion")).to_have_value("")
    expect(page.get_by_role("textbox", name="Technique")).to_have_value(re.compile("slice thickness"))

    # Signing before choosing a conclusion is refused next to the field; the typed text stays.
    page.get_by_role("textbox", name="Impression").fill("Solid mass in the left lower lobe.")
    page.get_by_label("Re-enter your password").fill(PASSWORD)
    page.get_by_role("button", name="Sign report").click()
    expect(page.get_by_text("Choose your conclusion before signing")).to_be_visible()
    expect(page.get_by_role("textbox", name="Impression")).to_have_value("Solid mass in the left lower lobe.")
    doctor.errors.remove(f"400 POST {page.url}")  # the refusal answers 400, as it should

    # Typed, never saved, signed at once: the signed version holds what was on screen.
    page.get_by_role("textbox", name="Clinical indication").fill("Persistent cough.")
    page.get_by_role("textbox", name="Impression").fill("Solid mass in the left lower lobe, 3 cm.")
    page.get_by_label("Your conclusion").select_option("agrees")
    page.get_by_label("Re-enter your password").fill(PASSWORD)
    page.get_by_role("button", name="Sign report").click()
    expect(page.locator("h1 .badge")).to_have_text(re.compile("Final"))
    doctor.screenshot("report-signed-as-typed")

    draft.refresh_from_db()
    assert draft.status == "final"
    assert draft.impression == "Solid mass in the left lower lobe, 3 cm."
    assert draft.clinical_indication == "Persistent cough."


def test_the_draft_saves_itself_while_the_doctor_types(open_browser, north, draft):
    doctor = open_browser("doctor")
    page = doctor.log_in(north.doctor.email)
    page.goto(f"/reports/{draft.report_id}/")
    page.get_by_role("textbox", name="Comparison").fill("CT of 3 March 2025: nodule then 8 mm.")
    expect(page.locator("[data-autosave-status]")).to_have_text(re.compile("Draft saved"), timeout=10_000)
    doctor.screenshot("report-autosaved")

    page.reload()
    expect(page.get_by_role("textbox", name="Comparison")).to_have_value("CT of 3 March 2025: nodule then 8 mm.")
    draft.refresh_from_db()
    assert draft.revision == 2
