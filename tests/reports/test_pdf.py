import io
import shutil
import subprocess

import cv2
import numpy as np
import pytest
from pypdf import PdfReader

from reports.models import CLASS_LABELS

pytestmark = pytest.mark.django_db


def pdf_text(version):
    with version.pdf.open("rb") as pdf:
        reader = PdfReader(io.BytesIO(pdf.read()))
    return "\n".join(page.extract_text() for page in reader.pages), len(reader.pages)


def outline_pixels(pdf_bytes, tmp_path):
    """Pixels of the key images' yellow outline (BGR about (0, 215, 255)) on every page, rendered by pdftoppm."""
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm is missing: install poppler-utils (make system-deps)")
    tmp_path.mkdir(parents=True, exist_ok=True)
    source = tmp_path / "report.pdf"
    source.write_bytes(pdf_bytes)
    subprocess.run(["pdftoppm", "-r", "60", "-png", str(source), str(tmp_path / "page")], check=True)
    count = 0
    for page in sorted(tmp_path.glob("page*.png")):
        image = cv2.imread(str(page)).astype(int)
        blue, green, red = image[..., 0], image[..., 1], image[..., 2]
        count += int(((red > 200) & (green > 170) & (green < 240) & (blue < 80)).sum())
    return count


def test_signed_pdf_holds_patient_finding_measurements_version_and_signature(signed, north):
    text, pages = pdf_text(signed)
    patient = north.patient
    assert patient.full_name in text
    assert patient.mrn in text
    assert patient.birth_date.strftime("%Y-%m-%d") in text
    assert "ACC-NORTH-0042" in text
    assert "Adenocarcinoma" in text and "82.0%" in text and "5.0%" in text
    assert "1.0 mL" in text and "23.4 mm" in text and "slice 3" in text
    assert "Demo model, not for clinical use" in text
    assert "chest-ct-vgg16 3" in text
    assert "Spiculated right upper lobe mass" in text
    assert "50 mm" in text, "the key images carry a scale bar (0.7 mm pixels)"
    assert "version 1" in text and "FINAL" in text
    assert f"Electronically signed by {north.doctor.full_name}" in text
    assert f"Page 1 of {pages}" in text and f"Page {pages} of {pages}" in text


def test_the_fonts_are_embedded(signed):
    with signed.pdf.open("rb") as pdf:
        reader = PdfReader(io.BytesIO(pdf.read()))
    fonts = reader.pages[0]["/Resources"]["/Font"]
    for font in fonts.values():
        descriptor = font.get_object()["/DescendantFonts"][0].get_object()["/FontDescriptor"]
        assert "/FontFile2" in descriptor, f"{font.get_object()['/BaseFont']} is not embedded"
    assert len(fonts) >= 2


def test_without_pixel_spacing_there_is_no_scale_bar(analysis):
    from reports.rendering import build_key_image

    key_image = analysis.key_images.first()
    assert build_key_image(key_image, with_pixels=True).scale_bar is not None
    analysis.series.has_physical_scale = False
    analysis.series.save(update_fields=["has_physical_scale"])
    key_image = analysis.key_images.select_related("analysis__series").first()
    view = build_key_image(key_image, with_pixels=True)
    assert view.scale_bar is None and "pixels" in view.caption


def test_the_rendered_pdf_shows_the_key_images_with_their_outline(analysis, tmp_path):
    from reports.pdf import render_report_pdf
    from reports.services import create_draft_report

    version = create_draft_report(analysis=analysis).versions.get()
    with_images = render_report_pdf(version=version)
    analysis.key_images.all().delete()
    without_images = render_report_pdf(version=version)

    assert outline_pixels(with_images, tmp_path / "with") > 50
    assert outline_pixels(without_images, tmp_path / "without") == 0


def test_the_draft_task_stores_a_draft_pdf_marked_as_draft(analysis, django_capture_on_commit_callbacks):
    from reports.tasks import create_draft_report

    with django_capture_on_commit_callbacks(execute=True):
        create_draft_report(analysis_id=analysis.pk)
    version = analysis.report_versions.get()
    text, _ = pdf_text(version)
    assert "DRAFT: not signed" in text


def test_rendering_refuses_any_url_that_is_not_a_bundled_file(tmp_path):
    from reports.pdf import LocalOnlyFetcher, RefusedResource, pdf_static_folder

    fetcher = LocalOnlyFetcher(static_folder=pdf_static_folder(), images={"1.jpg": b"jpeg"})
    assert fetcher.fetch((pdf_static_folder() / "report.css").as_uri()).read().startswith(b"/*")
    assert fetcher.fetch("key-image:1.jpg").read() == b"jpeg"
    for url in [
        "https://example.org/logo.png",
        "http://169.254.169.254/latest",
        "file:///etc/passwd",
        "key-image:2.png",
        "ftp://example.org/x",
    ]:
        with pytest.raises(RefusedResource):
            fetcher.fetch(url)


def test_a_remote_image_in_the_template_stops_the_render_instead_of_fetching(tmp_path):
    from weasyprint import HTML
    from weasyprint.urls import FatalURLFetchingError

    from reports.pdf import LocalOnlyFetcher, pdf_static_folder

    fetcher = LocalOnlyFetcher(static_folder=pdf_static_folder(), images={})
    html = HTML(string='<img src="https://example.org/tracker.png">', url_fetcher=fetcher)
    with pytest.raises(FatalURLFetchingError):
        html.write_pdf()


def test_scale_bar_takes_the_overlay_scaling_into_account():
    from reports.rendering import scale_bar_for

    same_size = scale_bar_for(width=512, height=512, original_columns=512, pixel_spacing=[0.7, 0.7])
    assert same_size.length_mm == 50 and same_size.length_px == pytest.approx(50 / 0.7)
    halved = scale_bar_for(width=256, height=256, original_columns=512, pixel_spacing=[0.7, 0.7])
    assert halved.length_mm == 50 and halved.length_px == pytest.approx(50 / 1.4)
    assert scale_bar_for(width=512, height=512, original_columns=512, pixel_spacing=None) is None


def test_large_overlays_are_scaled_down_for_the_pdf():
    from reports.rendering import KEY_IMAGE_MAX_SIDE, prepared_jpeg

    big = np.zeros((1024, 768, 3), np.uint8)
    jpeg, width, height = prepared_jpeg(cv2.imencode(".png", big)[1].tobytes())
    assert (width, height) == (384, KEY_IMAGE_MAX_SIDE)
    assert cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR).shape == (512, 384, 3)


def test_every_classifier_class_has_a_human_label_in_the_same_order():
    from ml.labels import CLASS_NAMES

    assert tuple(CLASS_LABELS) == CLASS_NAMES
    assert all(label and label != name for name, label in CLASS_LABELS.items())


def test_an_indeterminate_ai_result_is_said_in_words_on_the_page_and_in_the_pdf(client, north, draft):
    from django.urls import reverse

    from reports import services
    from reports.pdf import render_report_pdf

    analysis = draft.ordered_analyses().get()
    analysis.indeterminate_reason = (
        "The AI result is indeterminate: the classifier suggests a tumour (95%) but the segmenter outlined no lesion."
    )
    analysis.save(update_fields=["indeterminate_reason"])
    services.override_ai_class(version=draft, doctor=north.doctor, conclusion_class=services.AGREES_WITH_AI, reason="")
    draft.refresh_from_db()

    client.force_login(north.doctor)
    page = client.get(reverse("report-detail", args=[draft.report_id])).content.decode()
    assert "<strong>Indeterminate</strong>" in page and "the segmenter outlined no lesion" in page
    assert "Agrees with the AI finding</strong> (Indeterminate)" in page

    reader = PdfReader(io.BytesIO(render_report_pdf(version=draft)))
    text = " ".join(" ".join(page.extract_text() for page in reader.pages).split())
    assert "Indeterminate" in text and "the segmenter outlined no lesion" in text
