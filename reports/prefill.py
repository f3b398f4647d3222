"""The text a new draft starts with: the technique from the DICOM headers, the findings from the AI measurements.

Both are only a starting point the doctor edits. The technique reads the header of one stored instance per
series (pixel data is not read), so drafting a report stays cheap however long the series is.
"""

import logging

import pydicom
from pydicom.errors import InvalidDicomError

from reports.models import class_label
from reports.rendering import measurement_rows

logger = logging.getLogger(__name__)

#: Header elements the technique line needs; reading stops after the last of them.
TECHNIQUE_TAGS = ["Manufacturer", "ManufacturerModelName", "KVP", "SliceThickness", "ContrastBolusAgent"]


def series_label(series):
    name = series.description or f"series {series.series_number or series.pk}"
    return f"{series.modality} {name}".strip()


def technique_headers(series):
    """Scanner, kVp, slice thickness and contrast agent of a series, from one stored DICOM instance.

    Returns a dict with whatever the header holds (missing elements are simply absent); an instance
    that is not DICOM or cannot be read gives an empty dict, never an error: the doctor writes it instead.
    """
    instance = series.instances.in_slice_order().filter(file_format="dicom").first()
    if instance is None:
        return {}
    headers = {}
    try:
        with instance.file.open("rb") as stored:
            dataset = pydicom.dcmread(stored, stop_before_pixels=True, specific_tags=TECHNIQUE_TAGS)
    except (OSError, InvalidDicomError, ValueError) as error:
        logger.warning("technique headers of series %s not readable: %s", series.pk, error)
        dataset = None
    for keyword in TECHNIQUE_TAGS:
        value = getattr(dataset, keyword, None) if dataset is not None else None
        if value not in (None, ""):
            headers[keyword] = str(value).strip()
    if "SliceThickness" not in headers and instance.slice_thickness:
        headers["SliceThickness"] = f"{instance.slice_thickness:g}"
    return headers


def technique_line(series):
    headers = technique_headers(series)
    scanner = " ".join(headers[key] for key in ("Manufacturer", "ManufacturerModelName") if key in headers)
    parts = [f"{series_label(series)}, {series.instances.count()} images"]
    parts.append(f"scanner {scanner}" if scanner else "scanner not recorded")
    if "KVP" in headers:
        parts.append(f"{_number(headers['KVP'])} kVp")
    if "SliceThickness" in headers:
        parts.append(f"slice thickness {_number(headers['SliceThickness'])} mm")
    contrast = headers.get("ContrastBolusAgent")
    parts.append(f"contrast agent {contrast}" if contrast else "no contrast agent recorded")
    return "; ".join(parts) + "."


def _number(text):
    try:
        return f"{float(text):g}"
    except ValueError:
        return text


def technique_text(analyses):
    return "\n".join(technique_line(analysis.series) for analysis in analyses)


def findings_line(analysis):
    probability = analysis.class_probabilities.get(analysis.predicted_class)
    likelihood = f" ({probability * 100:.0f}%)" if probability is not None else ""
    measured = "; ".join(f"{label.lower()}: {value}" for label, value in measurement_rows(analysis.measurements))
    return (
        f"{series_label(analysis.series)}: AI finding {class_label(analysis.predicted_class)}{likelihood}. "
        f"{measured[:1].upper()}{measured[1:]}."
    )


def findings_text(analyses):
    return "\n".join(findings_line(analysis) for analysis in analyses)
