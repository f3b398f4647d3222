"""What a report version says, gathered once for the PDF (reports.pdf), the doctor's page and the patient's page."""

from dataclasses import dataclass, field

import cv2
import numpy as np
from django.utils import timezone

from reports.models import CLASS_LABELS, class_label

#: Key images in the PDF: the issue asks for two to four.
MAX_KEY_IMAGES = 4
#: Longest side of a key image as embedded in the PDF; larger overlays are scaled down (speed and size).
KEY_IMAGE_MAX_SIDE = 512
#: Scale bar lengths to choose from, in mm: the longest that fits in a quarter of the image width.
SCALE_BAR_LENGTHS_MM = (100, 50, 20, 10, 5, 2, 1)
KEY_IMAGE_SCHEME = "key-image:"
#: What a report says instead of a class when the AI result cannot be relied on (ml.calibration).
INDETERMINATE_LABEL = "Indeterminate"


@dataclass
class ScaleBar:
    """A bar in the key image's own pixel coordinates, drawn in SVG over the image near its lower left corner."""

    length_mm: int
    length_px: float
    image_width: int
    image_height: int

    @property
    def x(self):
        return self.image_width * 0.05

    @property
    def thickness(self):
        return max(1.0, self.image_height * 0.012)

    @property
    def y(self):
        return self.image_height * 0.94 - self.thickness

    @property
    def font_size(self):
        return self.image_width * 0.05

    @property
    def label_y(self):
        return self.y - self.thickness


@dataclass
class KeyImageView:
    key_image: object
    image_name: str
    width: int | None
    height: int | None
    scale_bar: ScaleBar | None
    caption: str
    jpeg: bytes = field(repr=False, default=b"")

    @property
    def pk(self):
        return self.key_image.pk

    @property
    def pdf_source(self):
        return KEY_IMAGE_SCHEME + self.image_name


@dataclass
class Probability:
    label: str
    value: float
    is_predicted: bool

    @property
    def percent(self):
        return round(self.value * 100, 1)


@dataclass
class Finding:
    analysis: object
    series: object
    ai_class_label: str
    probabilities: list
    measurements: list
    notes: list
    model_line: str
    is_demo_model: bool
    #: Why the AI result is indeterminate, in words for the doctor; "" when it is not.
    indeterminate_reason: str = ""
    #: (label, AI value, doctor's value or None) per measurement; see measurement_table.
    measurement_table: list = field(default_factory=list)
    correction: object = None

    @property
    def is_corrected(self):
        return self.correction is not None


def format_number(value, digits=1):
    return f"{value:,.{digits}f}" if value is not None else None


def measurement_rows(measurements):
    """(label, value) rows in the units the measurement was made in: mm when spacing is known, else pixels."""
    if not measurements:
        return [("Lesion", "no measurements recorded")]
    physical = measurements.get("has_physical_scale", False)
    largest_slice = measurements.get("largest_area_slice_index")
    if largest_slice is None:
        return [("Lesion", "no lesion segmented")]
    volume = measurements.get("volume_ml")
    diameter = measurements.get("largest_diameter")
    area = measurements.get("largest_area")
    location = measurements.get("largest_area_slice_location_mm")
    slice_text = f"slice {largest_slice + 1}"
    if location is not None:
        slice_text += f" (location {location:.1f} mm)"
    rows = []
    lesion_count = measurements.get("lesion_count")
    if lesion_count:
        rows.append(("Separate lesions", f"{lesion_count} (measured as 3D connected regions)"))
    return rows + [
        ("Lesion volume", f"{format_number(volume)} mL" if physical and volume is not None else "not measurable"),
        ("Largest diameter", f"{format_number(diameter)} {'mm' if physical else 'pixels'}" if diameter else "—"),
        (
            "Largest lesion area",
            f"{format_number(area)} {'mm²' if physical else 'pixels'} on {slice_text}" if area else "—",
        ),
    ]


def measurement_table(measurements, correction=None):
    """Rows of (label, AI value, doctor's value or None) for the measurements a doctor may correct."""
    measurements = measurements or {}
    physical = measurements.get("has_physical_scale", False)
    length_unit = "mm" if physical else "pixels"
    diameter, volume = measurements.get("largest_diameter"), measurements.get("volume_ml")
    key_slice = measurements.get("largest_area_slice_index")
    other_rows = [row for row in measurement_rows(measurements) if row[0] not in ("Lesion volume", "Largest diameter")]

    def doctor(attribute, text):
        value = getattr(correction, attribute, None) if correction is not None else None
        return text(value) if value is not None else None

    return [
        (
            "Largest diameter",
            f"{format_number(diameter)} {length_unit}" if diameter is not None else "not measured",
            doctor("largest_diameter", lambda value: f"{format_number(value)} {length_unit}"),
        ),
        (
            "Lesion volume",
            f"{format_number(volume)} mL" if physical and volume is not None else "not measurable",
            doctor("volume_ml", lambda value: f"{format_number(value)} mL"),
        ),
        *[(label, value, None) for label, value in other_rows],
        (
            "Key slice",
            f"slice {key_slice + 1}" if key_slice is not None else "no lesion slice",
            doctor("key_slice_number", lambda value: f"slice {value}"),
        ),
    ]


def build_finding(analysis, correction=None):
    probabilities = [
        Probability(
            label=label,
            value=float(analysis.class_probabilities.get(name, 0.0)),
            is_predicted=name == analysis.predicted_class,
        )
        for name, label in CLASS_LABELS.items()
    ]
    notes = list(analysis.measurements.get("notes", [])) if analysis.measurements else []
    if analysis.is_indeterminate:
        notes.insert(0, analysis.indeterminate_reason)
    return Finding(
        analysis=analysis,
        series=analysis.series,
        ai_class_label=INDETERMINATE_LABEL if analysis.is_indeterminate else class_label(analysis.predicted_class),
        probabilities=probabilities,
        measurements=measurement_rows(analysis.measurements),
        notes=notes,
        indeterminate_reason=analysis.indeterminate_reason,
        model_line=(
            f"{analysis.classifier_name} {analysis.classifier_version}, "
            f"{analysis.segmenter_name} {analysis.segmenter_version}"
        ),
        is_demo_model=analysis.is_demo_model,
        measurement_table=measurement_table(analysis.measurements, correction),
        correction=correction,
    )


def scale_bar_for(*, width, height, original_columns, pixel_spacing):
    """A bar of a round length in mm, at most a quarter of the image wide; None without physical scale.

    The overlay may have been scaled from the original slice, so mm per overlay pixel is the
    column spacing times original columns over overlay width.
    """
    if not pixel_spacing or not original_columns:
        return None
    column_spacing_mm = float(pixel_spacing[1]) * original_columns / width
    for length_mm in SCALE_BAR_LENGTHS_MM:
        length_px = length_mm / column_spacing_mm
        if length_px <= width / 4:
            return ScaleBar(length_mm=length_mm, length_px=length_px, image_width=width, image_height=height)
    return None


def prepared_jpeg(image_bytes):
    """The overlay as JPEG, at most KEY_IMAGE_MAX_SIDE wide or high.

    WeasyPrint embeds a JPEG as it is, while it re-compresses a PNG: with four 512 px key images
    that is the difference between far under and far over a second. Quality 90 without chroma
    subsampling keeps the thin coloured outline crisp.
    """
    image = cv2.imdecode(np.frombuffer(image_bytes, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("key image overlay is not a readable image")
    height, width = image.shape[:2]
    if max(height, width) > KEY_IMAGE_MAX_SIDE:
        factor = KEY_IMAGE_MAX_SIDE / max(height, width)
        image = cv2.resize(image, (round(width * factor), round(height * factor)), interpolation=cv2.INTER_AREA)
        height, width = image.shape[:2]
    parameters = [
        cv2.IMWRITE_JPEG_QUALITY, 90,
        cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444,
    ]  # fmt: skip
    ok, encoded = cv2.imencode(".jpg", image, parameters)
    return encoded.tobytes(), width, height


def key_image_caption(key_image):
    parts = [key_image.get_reason_display(), f"slice {key_image.slice_index + 1}"]
    if key_image.slice_location is not None:
        parts.append(f"location {key_image.slice_location:.1f} mm")
    if key_image.lesion_area:
        unit = "mm²" if key_image.analysis.series.has_physical_scale else "pixels"
        parts.append(f"lesion area {key_image.lesion_area:,.1f} {unit}")
    return ", ".join(parts)


def build_key_image(key_image, *, with_pixels):
    """Caption, and for the PDF (with_pixels) the overlay read from private storage with its scale bar.

    Web pages load the image itself through the audited key-image view, so they read nothing here.
    """
    view = KeyImageView(
        key_image=key_image,
        image_name=f"{key_image.pk}.jpg",
        width=None,
        height=None,
        scale_bar=None,
        caption=key_image_caption(key_image),
    )
    if not with_pixels:
        return view
    with key_image.overlay.open("rb") as overlay:
        view.jpeg, view.width, view.height = prepared_jpeg(overlay.read())
    series = key_image.analysis.series
    instance = series.instances.in_slice_order()[key_image.slice_index : key_image.slice_index + 1].first()
    if instance is not None and series.has_physical_scale:
        view.scale_bar = scale_bar_for(
            width=view.width,
            height=view.height,
            original_columns=instance.columns,
            pixel_spacing=instance.pixel_spacing,
        )
    return view


def report_sections(version):
    """(heading, text) of the structured report's sections before the impression, as written so far."""
    return [
        ("Clinical indication", version.clinical_indication),
        ("Technique", version.technique),
        ("Comparison", version.comparison),
        ("Findings", version.findings),
    ]


def report_context(version, *, with_pixels=False):
    """Everything a page or the PDF shows about one version."""
    report = version.report
    study = report.study
    analyses = list(version.ordered_analyses())
    corrections = {correction.analysis_id: correction for correction in version.corrections.all()}
    findings = [build_finding(analysis, corrections.get(analysis.pk)) for analysis in analyses]
    key_images = [
        build_key_image(key_image, with_pixels=with_pixels)
        for key_image in version.key_images().select_related("analysis__series")[:MAX_KEY_IMAGES]
    ]
    return {
        "version": version,
        "report": report,
        "hospital": report.hospital,
        "patient": study.patient,
        "study": study,
        "series_list": [finding.series for finding in findings],
        "findings": findings,
        "key_images": key_images,
        "ai_class_labels": sorted({finding.ai_class_label for finding in findings}),
        "is_demo_model": any(finding.is_demo_model for finding in findings),
        "sections": report_sections(version),
        "previous_version": report.versions.filter(number__lt=version.number).order_by("-number").first(),
        "generated_at": timezone.now(),
    }
