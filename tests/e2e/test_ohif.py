"""OHIF in a real browser: a doctor opens a stored CT study and OHIF draws it; another hospital's doctor gets nothing.

OHIF reads the study over the portal's DICOMweb with the doctor's session, under the OHIF page's
own Content-Security-Policy, so a refused request or a blocked script shows up here.
"""

import re

import pytest
from playwright.sync_api import expect

from clinic import ohif

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not ohif.is_installed(), reason="the OHIF viewer is not installed: `make ohif` (needs npm)"),
]

#: Non-blank check: mean and variance of the grey level of the first viewport's canvas (alpha ignored).
CANVAS_STATISTICS_SCRIPT = """() => {
  const canvas = document.querySelector("canvas.cornerstone-canvas");
  if (!canvas || !canvas.width || !canvas.height) return null;
  const context = canvas.getContext("2d", {willReadFrequently: true});
  if (!context) return null;
  const {data} = context.getImageData(0, 0, canvas.width, canvas.height);
  let sum = 0, sumOfSquares = 0, count = 0;
  for (let index = 0; index < data.length; index += 4) {
    const grey = (data[index] + data[index + 1] + data[index + 2]) / 3;
    sum += grey; sumOfSquares += grey * grey; count += 1;
  }
  const mean = sum / count;
  return {width: canvas.width, height: canvas.height, mean, variance: sumOfSquares / count - mean * mean};
}"""


def canvas_statistics(page):
    return page.evaluate(CANVAS_STATISTICS_SCRIPT)


def wait_for_drawn_canvas(page, *, timeout_ms=60_000):
    """The first viewport's statistics once it shows more than one grey level; None if it never does."""
    deadline = timeout_ms
    statistics = None
    while deadline > 0:
        statistics = canvas_statistics(page)
        if statistics and statistics["variance"] > 1.0:
            return statistics
        page.wait_for_timeout(500)
        deadline -= 500
    return statistics


@pytest.fixture
def dicom_study(north):
    from tests.pipeline.builders import ingest_phantom_series

    series = ingest_phantom_series(hospital=north.hospital, uploader=north.doctor, patient=north.patient,
                                   slices=8, size=64)
    return series.study


def dicomweb_answers(page):
    """Every /dicomweb/ answer the page got: (status, URL), to say which request failed when OHIF draws nothing."""
    answers = []
    page.on("response", lambda response: answers.append((response.status, response.url))
            if "/dicomweb/" in response.url else None)
    return answers


def test_doctor_opens_a_dicom_study_in_ohif_and_sees_its_pixels(open_browser, north, dicom_study):
    doctor = open_browser("doctor")
    page = doctor.log_in(north.doctor.email)
    answers = dicomweb_answers(page)
    page.goto(f"/studies/{dicom_study.pk}/")
    page.get_by_role("link", name="Open in viewer").click()
    expect(page).to_have_url(re.compile(rf"/viewer/ohif/viewer\?StudyInstanceUIDs={re.escape(dicom_study.study_instance_uid)}"))

    statistics = wait_for_drawn_canvas(page)
    assert statistics and statistics["variance"] > 1.0, f"OHIF drew no image: {statistics}; DICOMweb: {answers}"
    assert any(re.search(r"/frames/1$", url) and status == 200 for status, url in answers), answers
    page.screenshot(path=str(_artifact("ohif-study")))


def test_another_hospitals_doctor_gets_no_image(open_browser, south, dicom_study):
    stranger = open_browser("stranger")
    page = stranger.log_in(south.doctor.email)
    answers = dicomweb_answers(page)
    page.goto(ohif.study_viewer_url(dicom_study.study_instance_uid))

    expect(page.get_by_text(re.compile("requested studies are not available"))).to_be_visible(timeout=60_000)
    statistics = canvas_statistics(page)
    assert statistics is None or statistics["variance"] <= 1.0, statistics
    assert any("/series" in url for _, url in answers), answers
    assert all(status in (200, 404) for status, _ in answers), answers
    assert not any("/frames/" in url or "/metadata" in url for status, url in answers if status == 200), answers
    page.screenshot(path=str(_artifact("ohif-stranger")))


def _artifact(name):
    from tests.e2e.conftest import ARTIFACTS

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / f"{name}.png"
