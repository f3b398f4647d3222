"""Dropping files on the upload page sends them like chosen ones, with their folder paths."""

import base64
import re

import pytest
from playwright.sync_api import expect

from tests.e2e.test_doctor_and_patient_flow import write_upload_files

pytestmark = pytest.mark.e2e

DROP_SCRIPT = """([files]) => {
  const transfer = new DataTransfer();
  for (const [name, encoded] of files) {
    const bytes = Uint8Array.from(atob(encoded), (c) => c.charCodeAt(0));
    transfer.items.add(new File([bytes], name, {type: "application/dicom"}));
  }
  const zone = document.getElementById("upload-drop-zone");
  zone.dispatchEvent(new DragEvent("dragover", {dataTransfer: transfer, bubbles: true, cancelable: true}));
  zone.dispatchEvent(new DragEvent("drop", {dataTransfer: transfer, bubbles: true, cancelable: true}));
}"""


def test_doctor_drops_files_on_the_upload_page(open_browser, north, tmp_path):
    files = write_upload_files(tmp_path / "dropped", north, slices=3, size=32)
    encoded = [[path.name, base64.b64encode(path.read_bytes()).decode()] for path in files]

    doctor = open_browser("doctor")
    page = doctor.log_in(north.doctor.email)
    page.goto("/upload/")
    page.get_by_label("Patient").select_option(str(north.patient.pk))
    page.evaluate(DROP_SCRIPT, [encoded])
    expect(page.locator("#upload-dropped")).to_have_text("3 dropped files ready to upload.")
    doctor.screenshot("upload-dropped")
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#upload-status")).to_have_text(re.compile(r"Done: 3 stored"), timeout=60_000)
    expect(page.locator("#upload-file-rows tr")).to_have_count(3)
