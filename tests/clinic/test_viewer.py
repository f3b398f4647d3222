"""The slice viewer's server side: windowed slice PNGs, mask overlays, the viewer state, and who may see them."""

import io

import cv2
import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from ml.models import Analysis, AnalysisStatus
from tests.pipeline.builders import store_phantom_series


@pytest.fixture(autouse=True)
def empty_mask_cache():
    from clinic.viewer import mask_cache

    mask_cache.clear()
    yield
    mask_cache.clear()


@pytest.fixture
def series(north):
    stored, phantom = store_phantom_series(hospital=north.hospital, patient=north.patient, slices=4, size=32)
    return stored


def analyse(series, *, masks, tumour_probabilities):
    """A finished analysis as the pipeline stores it: masks .npz and per-slice class probabilities."""
    analysis = Analysis.objects.create(
        hospital=series.hospital, series=series, classifier_name="classifier", classifier_version="1",
        segmenter_name="segmenter", segmenter_version="1", status=AnalysisStatus.SUCCEEDED,
        predicted_class="large_cell_carcinoma",
        # CLASS_NAMES order: adenocarcinoma, large cell, squamous cell, normal.
        slice_probabilities=[[0.0, p, 0.0, 1.0 - p] for p in tumour_probabilities],
        measurements={"largest_area_slice_index": 2},
    )
    buffer = io.BytesIO()
    np.savez_compressed(buffer, masks=masks)
    analysis.masks_file.save("masks.npz", ContentFile(buffer.getvalue()))
    return analysis


def decode_png(response, flags=cv2.IMREAD_UNCHANGED):
    return cv2.imdecode(np.frombuffer(response.content, dtype=np.uint8), flags)


def test_slices_are_private_pngs_rendered_with_the_chosen_window(client, north, series):
    client.force_login(north.doctor)
    lung = client.get(reverse("series-slice-image", kwargs={"pk": series.pk, "index": 1}), {"window": "lung"})
    mediastinum = client.get(
        reverse("series-slice-image", kwargs={"pk": series.pk, "index": 1}), {"window": "mediastinum"}
    )
    assert lung.status_code == mediastinum.status_code == 200
    assert lung["Content-Type"] == "image/png"
    assert "private" in lung["Cache-Control"]
    lung_image, mediastinum_image = decode_png(lung), decode_png(mediastinum)
    assert lung_image.shape == (32, 32) and lung_image.dtype == np.uint8
    # Lung parenchyma is visible grey in the lung window and black in the narrow soft-tissue window.
    assert (lung_image > 20).mean() > (mediastinum_image > 20).mean()


def test_a_cached_slice_is_revalidated_without_rendering_again(client, north, series):
    client.force_login(north.doctor)
    url = reverse("series-slice-image", kwargs={"pk": series.pk, "index": 0})
    first = client.get(url, {"window": "lung"})
    again = client.get(url, {"window": "lung"}, HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304


def test_series_own_window_comes_from_the_dicom_headers(client, north, series):
    client.force_login(north.doctor)
    url = reverse("series-slice-image", kwargs={"pk": series.pk, "index": 0})
    own = client.get(url, {"window": "series"})
    assert own.status_code == 200
    state = client.get(reverse("series-viewer-state", kwargs={"pk": series.pk})).json()
    assert [window["name"] for window in state["windows"]] == ["lung", "mediastinum", "series"]


@pytest.mark.parametrize("query", [{"window": "bone-and-more"}, {"window": "custom", "center": "1"}])
def test_unknown_window_or_slice_is_not_found(client, north, series, query):
    client.force_login(north.doctor)
    assert client.get(reverse("series-slice-image", kwargs={"pk": series.pk, "index": 0}), query).status_code == 404
    assert client.get(reverse("series-slice-image", kwargs={"pk": series.pk, "index": 4})).status_code == 404


def test_png_series_are_shown_grey_without_window_choices(client, north):
    png_series, _ = store_phantom_series(hospital=north.hospital, patient=north.patient, slices=2, size=32,
                                         as_png=True)
    client.force_login(north.doctor)
    response = client.get(reverse("series-slice-image", kwargs={"pk": png_series.pk, "index": 0}))
    assert response.status_code == 200 and decode_png(response).shape == (32, 32)
    state = client.get(reverse("series-viewer-state", kwargs={"pk": png_series.pk})).json()
    assert state["windows"] == [] and state["sliceCount"] == 2


def test_mask_overlay_is_transparent_except_the_lesion(client, north, series):
    masks = np.zeros((4, 32, 32), dtype=bool)
    masks[2, 10:20, 12:22] = True
    analysis = analyse(series, masks=masks, tumour_probabilities=[0.1, 0.4, 0.9, 0.2])
    client.force_login(north.doctor)
    response = client.get(reverse("series-slice-mask", kwargs={"pk": series.pk, "index": 2}),
                          {"analysis": analysis.pk})
    assert response.status_code == 200 and "private" in response["Cache-Control"]
    overlay = decode_png(response)
    assert overlay.shape == (32, 32, 4)
    alpha = overlay[..., 3]
    assert alpha[15, 17] > 0 and alpha[0, 0] == 0
    empty_slice = decode_png(client.get(reverse("series-slice-mask", kwargs={"pk": series.pk, "index": 0})))
    assert empty_slice[..., 3].max() == 0


def test_viewer_state_carries_the_per_slice_probability_and_mask_url(client, north, series):
    masks = np.zeros((4, 32, 32), dtype=bool)
    analyse(series, masks=masks, tumour_probabilities=[0.1, 0.4, 0.9, 0.2])
    client.force_login(north.doctor)
    state = client.get(reverse("series-viewer-state", kwargs={"pk": series.pk})).json()
    assert state["sliceCount"] == 4
    assert state["analysis"]["tumourProbabilities"] == pytest.approx([0.1, 0.4, 0.9, 0.2])
    assert state["analysis"]["largestSlice"] == 2
    assert "{index}" in state["analysis"]["maskUrl"] and "{index}" in state["imageUrl"]


def test_no_mask_before_the_analysis(client, north, series):
    client.force_login(north.doctor)
    assert client.get(reverse("series-slice-mask", kwargs={"pk": series.pk, "index": 0})).status_code == 404
    state = client.get(reverse("series-viewer-state", kwargs={"pk": series.pk})).json()
    assert state["analysis"] is None and state["processing"] is True


def test_viewer_page_shows_the_controls(client, north, series):
    client.force_login(north.doctor)
    page = client.get(reverse("series-viewer", kwargs={"pk": series.pk}))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-viewer' in html and 'js/viewer.js' in html
    assert "W1500 L-600" in html and "W350 L50" in html


def test_other_hospitals_and_patients_get_not_found(client, north, south, series):
    analyse(series, masks=np.zeros((4, 32, 32), dtype=bool), tumour_probabilities=[0.1] * 4)
    urls = [
        reverse("series-viewer", kwargs={"pk": series.pk}),
        reverse("series-viewer-state", kwargs={"pk": series.pk}),
        reverse("series-slice-image", kwargs={"pk": series.pk, "index": 0}),
        reverse("series-slice-mask", kwargs={"pk": series.pk, "index": 0}),
    ]
    for user in (south.doctor, south.admin, north.patient.user):
        client.force_login(user)
        assert [client.get(url).status_code for url in urls] == [404] * 4, user


def test_opening_the_viewer_is_audited_once_not_per_slice(client, north, series):
    from portal.models import AuditEvent

    client.force_login(north.doctor)
    client.get(reverse("series-viewer", kwargs={"pk": series.pk}))
    for index in range(4):
        client.get(reverse("series-slice-image", kwargs={"pk": series.pk, "index": index}))
    events = AuditEvent.objects.filter(target_type="scans.Series", target_id=str(series.pk))
    assert [(event.action, event.actor_id) for event in events] == [("view", north.doctor.pk)]


def test_png_series_slices_load_through_the_url_the_viewer_builds(client, north):
    """The viewer fills ``window={window}`` with nothing for PNG/JPG series: that must still show the slice."""
    png_series, _ = store_phantom_series(hospital=north.hospital, patient=north.patient, slices=2, size=32,
                                         as_png=True)
    client.force_login(north.doctor)
    state = client.get(reverse("series-viewer-state", kwargs={"pk": png_series.pk})).json()
    url = state["imageUrl"].replace("{index}", "1").replace("{window}", state["defaultWindow"])
    response = client.get(url)
    assert response.status_code == 200 and decode_png(response).shape == (32, 32)


def test_dragging_sets_a_custom_window_rendered_by_the_dicom_formula(client, north, series):
    client.force_login(north.doctor)
    url = reverse("series-slice-image", kwargs={"pk": series.pk, "index": 1})
    narrow = decode_png(client.get(url, {"window": "custom", "center": "40", "width": "1"}))
    wide = decode_png(client.get(url, {"window": "custom", "center": "40", "width": "4000"}))
    assert set(np.unique(narrow)) <= {0, 255}  # width 1: a threshold at the centre
    assert len(np.unique(wide)) > 2
    for bad in ({"window": "custom"}, {"window": "custom", "center": "x", "width": "10"},
                {"window": "custom", "center": "0", "width": "0"}):
        assert client.get(url, bad).status_code == 404


def test_the_value_under_the_pointer_is_in_hounsfield_units(client, north, series):
    import pydicom

    client.force_login(north.doctor)
    instance = series.instances.in_slice_order()[1]
    with instance.file.open("rb") as stored:
        dataset = pydicom.dcmread(stored)
    expected = float(dataset.pixel_array[5, 7]) * float(dataset.RescaleSlope) + float(dataset.RescaleIntercept)
    url = reverse("series-slice-value", kwargs={"pk": series.pk, "index": 1})
    reading = client.get(url, {"x": 7, "y": 5}).json()
    assert reading == {"x": 7, "y": 5, "value": pytest.approx(expected, abs=0.05), "unit": "HU"}
    assert client.get(url, {"x": 99, "y": 5}).status_code == 400
    assert client.get(url, {"x": "a", "y": 5}).status_code == 400
