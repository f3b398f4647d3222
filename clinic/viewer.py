"""The slice viewer's server side: what a series holds (JSON) and each slice as a windowed PNG.

Slices are rendered here rather than in the browser so that the browser never needs the DICOM
files (or a JavaScript DICOM decoder): one small PNG per slice and window, cached privately by the
browser, is enough to scroll smoothly. Every lookup goes through ``visible_to``; the viewer is for
clinical staff, so patients (and other hospitals) get 404.
"""

import io
import math
import threading
from collections import OrderedDict

import cachetools
import cv2
import numpy as np
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_GET

from accounts.permissions import ability_required
from imaging.encoding import encode_png
from imaging.pixels import grey_from_image, rescaled_pixels
from imaging.windowing import Window, grey_from_window
from ml.labels import CLASS_NAMES
from ml.models import Analysis, AnalysisStatus
from portal.audit import record_event
from portal.models import AuditAction
from scans.models import Instance, Series, SeriesStatus

#: Browsers keep a rendered slice this long; the URLs carry the slice count and the analysis id,
#: so a series that grows or is reanalysed gets new URLs instead of stale images.
SLICE_CACHE_SECONDS = 3600
#: Overlay colour (RGBA): a warm orange that stands out on grey lung and on bone, half transparent
#: so the tissue under the lesion stays readable; the outline is drawn opaque.
MASK_FILL_RGBA = (255, 122, 0, 96)
MASK_OUTLINE_RGBA = (255, 122, 0, 255)
PROCESSING_STATUSES = (SeriesStatus.RECEIVING, SeriesStatus.RECEIVED, SeriesStatus.QUEUED, SeriesStatus.ANALYSING)


WINDOW_PRESETS = {
    "lung": Window("Lung", centre=-600.0, width=1500.0),
    "mediastinum": Window("Mediastinum", centre=50.0, width=350.0),
}
#: The window stored in the series' own DICOM headers (WindowCenter/WindowWidth).
SERIES_WINDOW = "series"
#: Any centre and width, as dragging on the image sets them (``window=custom&center=..&width=..``).
CUSTOM_WINDOW = "custom"
MAX_WINDOW_WIDTH = 100_000
#: Decoded slices kept per process for rendering and the value readout (a 512² CT slice is 1 MB).
DECODED_SLICES_KEPT = 16


def series_window(instance):
    """The series' own window, or the lung window when its files carry none."""
    if instance.window_width and instance.window_width > 0 and instance.window_center is not None:
        return Window("Series", centre=instance.window_center, width=instance.window_width)
    return WINDOW_PRESETS["lung"]


def requested_window(query, instance):
    """The window a slice request asks for: a preset, the series' own (also when none is named: PNG/JPG
    series have no window), or ``window=custom&center=C&width=W`` while the doctor drags to window.
    Raises Http404 for anything else."""
    name = query.get("window", "") or SERIES_WINDOW
    if name == SERIES_WINDOW:
        return series_window(instance)
    if name in WINDOW_PRESETS:
        return WINDOW_PRESETS[name]
    if name == CUSTOM_WINDOW:
        try:
            centre, width = float(query.get("center", "")), float(query.get("width", ""))
        except ValueError:
            raise Http404("A custom window needs a numeric center and width.") from None
        if not (math.isfinite(centre) and math.isfinite(width)) or not 1 <= width <= MAX_WINDOW_WIDTH:
            raise Http404("The window width must be between 1 and 100000.")
        return Window("Custom", centre=centre, width=width)
    raise Http404(f"Unknown window {name!r}.")


def _first_frame_grey_or_hounsfield(dataset):
    """A 2D array from a dataset: first frame of a multi-frame image, luminance of a colour one."""
    pixels = rescaled_pixels(dataset)
    if getattr(dataset, "SamplesPerPixel", 1) > 1:
        pixels = pixels[0] if pixels.ndim == 4 else pixels
        return cv2.cvtColor(np.clip(pixels, 0, 255).astype(np.uint8), cv2.COLOR_RGB2GRAY), True
    if pixels.ndim == 3:
        pixels = pixels[0]
    return pixels, False


_decoded_slices = cachetools.LRUCache(maxsize=DECODED_SLICES_KEPT)
_decoded_slices_lock = threading.Lock()


@cachetools.cached(_decoded_slices, key=lambda instance: (instance.file.name, instance.file_format),
                   lock=_decoded_slices_lock)
def decoded_slice(instance):
    """``(pixels, is_grey)`` of a stored slice: Hounsfield units (modality LUT) for DICOM, 8-bit grey for
    PNG/JPG and colour DICOM. The few slices being read are kept decoded, so the value readout under the
    pointer and a drag through windows do not decode the file again for every request."""
    import pydicom

    file_format = instance.file_format
    with instance.file.open("rb") as stored:
        content = stored.read()
    if file_format == Instance.Format.IMAGE:
        pixels, is_grey = grey_from_image(io.BytesIO(content)), True
    else:
        pixels, is_grey = _first_frame_grey_or_hounsfield(pydicom.dcmread(io.BytesIO(content)))
    pixels.flags.writeable = False
    return pixels, is_grey


def render_slice_png(*, instance, window):
    """One stored slice as an 8-bit grey PNG: DICOM through ``window``, PNG/JPG as stored."""
    pixels, is_grey = decoded_slice(instance)
    return encode_png(pixels if is_grey else grey_from_window(pixels, window))


class _PackedMaskCache:
    """Decoded masks of the few analyses being looked at, bit-packed (a 300-slice 512² series is 10 MB).

    Decompressing a whole .npz for every slice request would make scrolling slow; keeping a handful
    per process lets each mask request cost one slice's unpacking.
    """

    def __init__(self, capacity=4):
        self.capacity = capacity
        self._entries = OrderedDict()
        self._lock = threading.Lock()

    def clear(self):
        """Forget every entry (tests, whose databases reuse primary keys, start from an empty cache)."""
        with self._lock:
            self._entries.clear()

    def slice_of(self, analysis, index):
        key = (analysis.pk, analysis.masks_file.name)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
        if entry is None:
            with analysis.masks_file.open("rb") as stored:
                masks = np.load(io.BytesIO(stored.read()))["masks"].astype(bool)
            entry = (np.packbits(masks.reshape(masks.shape[0], -1), axis=1), masks.shape)
            with self._lock:
                self._entries[key] = entry
                while len(self._entries) > self.capacity:
                    self._entries.popitem(last=False)
        packed, shape = entry
        if not 0 <= index < shape[0]:
            return None
        return np.unpackbits(packed[index], count=shape[1] * shape[2]).reshape(shape[1:]).astype(bool)


mask_cache = _PackedMaskCache()


def mask_overlay_png(mask, *, rows, columns):
    """A transparent PNG of the image's size with the lesion filled and outlined in colour."""
    mask = np.asarray(mask, dtype=np.uint8)
    if mask.shape != (rows, columns):
        mask = cv2.resize(mask, (columns, rows), interpolation=cv2.INTER_NEAREST)
    rgba = np.zeros((rows, columns, 4), dtype=np.uint8)
    rgba[mask.astype(bool)] = MASK_FILL_RGBA
    if mask.any():
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        thickness = max(1, round(max(rows, columns) / 200))
        cv2.drawContours(rgba, contours, -1, MASK_OUTLINE_RGBA, thickness)
    # OpenCV writes BGRA; the fill and outline colours above are RGBA.
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    if not ok:
        raise ValueError("could not encode the mask overlay as PNG")
    return encoded.tobytes()


def _visible_series(request, pk):
    return get_object_or_404(Series.objects.visible_to(request.user).select_related("study__patient"), pk=pk)


def _instances_in_order(request, series):
    return Instance.objects.visible_to(request.user).filter(series=series).in_slice_order()


def _instance_at(request, series, index):
    found = list(_instances_in_order(request, series)[index:index + 1])
    if not found:
        raise Http404("No slice at this position.")
    return found[0]


def current_analysis(request, series):
    """The series' latest analysis that the viewer can show (succeeded, not superseded), or None."""
    return (
        Analysis.objects.visible_to(request.user)
        .current()
        .filter(series=series, status=AnalysisStatus.SUCCEEDED)
        .order_by("-generation")
        .first()
    )


def _private_png(request, *, etag, render_png):
    """A PNG the browser may keep privately; a revalidation with a matching ETag skips the rendering."""
    if request.headers.get("If-None-Match") == etag:
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(render_png(), content_type="image/png")
    response["ETag"] = etag
    patch_cache_control(response, private=True, max_age=SLICE_CACHE_SECONDS)
    return response


def nearest_slice(locations, location):
    """Index of the slice whose location is nearest to ``location``; None without a location to match."""
    if location is None:
        return None
    known = [(abs(value - location), index) for index, value in enumerate(locations) if value is not None]
    return min(known)[1] if known else None


def start_location(state):
    """The slice location a viewer of ``state`` opens at: the lesion's largest slice, else the middle one."""
    locations = state["sliceLocations"]
    if not locations:
        return None
    analysis = state.get("analysis") or {}
    index = analysis.get("largestSlice")
    if not isinstance(index, int) or not 0 <= index < len(locations):
        index = len(locations) // 2
    return locations[index]


def tumour_probabilities(analysis):
    """Per slice, the probability of any tumour class (1 - p(normal)), in slice order."""
    normal = CLASS_NAMES.index("normal")
    return [round(1.0 - row[normal], 4) for row in analysis.slice_probabilities if len(row) > normal]


def viewer_state(request, series, *, open_at_location=None):
    """Everything the viewer script needs to draw a series; also embedded in the page for the first paint.

    With ``open_at_location`` (mm along the slice normal) the viewer opens at the slice nearest to it, so a
    prior study opens at the level of the lesion in the current one.
    """
    instances = list(_instances_in_order(request, series).only("pk", "slice_location", "file_format",
                                                               "window_center", "window_width"))
    count = len(instances)
    locations = [instance.slice_location for instance in instances]
    is_grey_image = bool(instances) and instances[0].file_format == Instance.Format.IMAGE
    windows = []
    if not is_grey_image:
        own = series_window(instances[0]) if instances else WINDOW_PRESETS["lung"]
        named = [*WINDOW_PRESETS.items(), (SERIES_WINDOW, own)]
        windows = [{"name": name, "label": "Series" if name == SERIES_WINDOW else window.name,
                    "detail": f"W{window.width:g} L{window.centre:g}", "centre": window.centre, "width": window.width}
                   for name, window in named]
    image_base = reverse("series-slice-image", kwargs={"pk": series.pk, "index": 0})
    state = {
        "seriesId": series.pk,
        "status": series.status,
        "statusLabel": series.get_status_display(),
        "statusReason": series.status_reason,
        "processing": series.status in PROCESSING_STATUSES,
        "sliceCount": count,
        "sliceLocations": locations,
        "imageUrl": image_base.replace("/0.png", "/{index}.png") + f"?n={count}&window={{window}}",
        "valueUrl": reverse("series-slice-value", kwargs={"pk": series.pk, "index": 0}).replace(
            "/0/value.json", "/{index}/value.json"),
        "windows": windows,
        "defaultWindow": "lung" if windows else "",
        "analysis": None,
        "startSlice": nearest_slice(locations, open_at_location),
    }
    analysis = current_analysis(request, series)
    if analysis is not None:
        mask_base = reverse("series-slice-mask", kwargs={"pk": series.pk, "index": 0})
        state["analysis"] = {
            "id": analysis.pk,
            "predictedClass": analysis.predicted_class.replace("_", " "),
            "isDemoModel": analysis.is_demo_model,
            "tumourProbabilities": tumour_probabilities(analysis),
            "maskUrl": (mask_base.replace("/0/mask.png", "/{index}/mask.png") + f"?analysis={analysis.pk}")
            if analysis.masks_file else "",
            "largestSlice": (analysis.measurements or {}).get("largest_area_slice_index"),
        }
    return state


@ability_required("read_clinical")
@require_GET
def series_viewer(request, pk):
    """A full-page viewer for one series (the study page embeds the same partial).

    Opening the viewer is audited once; the slice and mask images it then loads are not, one by one.
    """
    series = _visible_series(request, pk)
    record_event(action=AuditAction.VIEW, target=series, request=request)
    context = {"series": series, "viewer_state": viewer_state(request, series)}
    return render(request, "clinic/series_viewer.html", context)


@ability_required("read_clinical")
@require_GET
def series_viewer_state(request, pk):
    response = JsonResponse(viewer_state(request, _visible_series(request, pk)))
    patch_cache_control(response, private=True, no_cache=True)
    return response


@ability_required("read_clinical")
@require_GET
def series_slice_image(request, pk, index):
    series = _visible_series(request, pk)
    instance = _instance_at(request, series, index)
    window = requested_window(request.GET, instance)
    return _private_png(
        request, etag=f'"{instance.sha256[:20]}-{window.centre:g}-{window.width:g}"',
        render_png=lambda: render_slice_png(instance=instance, window=window),
    )


@ability_required("read_clinical")
@require_GET
def series_slice_value(request, pk, index):
    """The stored value under the pointer: Hounsfield units for CT (grey level for PNG/JPG), at pixel (x, y)."""
    series = _visible_series(request, pk)
    instance = _instance_at(request, series, index)
    try:
        x, y = int(request.GET.get("x", "")), int(request.GET.get("y", ""))
    except ValueError:
        return JsonResponse({"error": "x and y must be whole pixel coordinates."}, status=400)
    pixels, is_grey = decoded_slice(instance)
    if not (0 <= y < pixels.shape[0] and 0 <= x < pixels.shape[1]):
        return JsonResponse({"error": f"The slice is {pixels.shape[1]} x {pixels.shape[0]} pixels."}, status=400)
    unit = "grey" if is_grey else ("HU" if series.modality == "CT" else "")
    response = JsonResponse({"x": x, "y": y, "value": round(float(pixels[y, x]), 1), "unit": unit})
    patch_cache_control(response, private=True, max_age=SLICE_CACHE_SECONDS)
    return response


@ability_required("read_clinical")
@require_GET
def series_slice_mask(request, pk, index):
    """The lesion mask of one slice as a transparent PNG (from the analysis named in the URL, else the current one)."""
    series = _visible_series(request, pk)
    instance = _instance_at(request, series, index)
    analyses = Analysis.objects.visible_to(request.user).filter(series=series, status=AnalysisStatus.SUCCEEDED)
    analysis_id = request.GET.get("analysis", "")
    if analysis_id:
        if not analysis_id.isdigit():
            raise Http404("Unknown analysis.")
        analysis = get_object_or_404(analyses, pk=int(analysis_id))
    else:
        analysis = current_analysis(request, series)
    if analysis is None or not analysis.masks_file:
        raise Http404("This series has no segmentation yet.")
    mask = mask_cache.slice_of(analysis, index)
    if mask is None:
        raise Http404("The segmentation has no mask for this slice.")
    return _private_png(
        request, etag=f'"mask-{analysis.pk}-{index}"',
        render_png=lambda: mask_overlay_png(mask, rows=instance.rows, columns=instance.columns),
    )
