"""A patient's earlier studies and the lesion's measurements across them, as lung-nodule follow-up needs.

The history takes, for every study of the patient with a finished analysis, the series whose lesion
volume is largest (the study's index lesion), and compares each study with the one before it:
growth in percent of volume and the volume doubling time ``VDT = Δt · ln 2 / ln(V₂ / V₁)`` in days
(defined only while the lesion grows; a shrinking or stable lesion has none). Measurements in pixels
(PNG/JPG series without physical scale) are not comparable across studies and are left out.
"""

import math
from dataclasses import dataclass
from datetime import date

from ml.models import Analysis, AnalysisStatus
from scans.models import Study

PLOT_WIDTH, PLOT_HEIGHT, PLOT_MARGIN = 320, 120, 24


@dataclass
class MeasurementPoint:
    study: Study
    study_date: date
    volume_ml: float
    largest_diameter_mm: float | None
    growth_percent: float | None = None
    doubling_time_days: float | None = None


def study_day(study):
    return study.study_date or study.created_at.date()


def prior_studies(*, user, study):
    """The patient's other studies that ``user`` may see and that were made before ``study``, newest first."""
    others = Study.objects.visible_to(user).filter(patient_id=study.patient_id).exclude(pk=study.pk)
    day = study_day(study)
    return [other for other in others.order_by("-study_date", "-created_at") if study_day(other) <= day]


def volume_doubling_time_days(*, earlier_ml, later_ml, days):
    """Days for the volume to double at the growth seen between two studies; None unless it grew."""
    if days <= 0 or earlier_ml <= 0 or later_ml <= earlier_ml:
        return None
    return days * math.log(2) / math.log(later_ml / earlier_ml)


def measurement_history(*, user, patient_id):
    """One point per study of the patient with a measured lesion (physical scale only), oldest first."""
    analyses = (
        Analysis.objects.visible_to(user).current()
        .filter(series__study__patient_id=patient_id, status=AnalysisStatus.SUCCEEDED)
        .select_related("series__study")
    )
    index_lesion = {}
    for analysis in analyses:
        measurements = analysis.measurements or {}
        volume = measurements.get("volume_ml")
        if not measurements.get("has_physical_scale", True) or volume is None or volume <= 0:
            continue
        study = analysis.series.study
        if study.pk not in index_lesion or volume > index_lesion[study.pk].volume_ml:
            index_lesion[study.pk] = MeasurementPoint(
                study=study, study_date=study_day(study), volume_ml=float(volume),
                largest_diameter_mm=measurements.get("largest_diameter"),
            )
    points = sorted(index_lesion.values(), key=lambda point: (point.study_date, point.study.pk))
    for earlier, later in zip(points, points[1:], strict=False):
        later.growth_percent = (later.volume_ml - earlier.volume_ml) / earlier.volume_ml * 100.0
        later.doubling_time_days = volume_doubling_time_days(
            earlier_ml=earlier.volume_ml, later_ml=later.volume_ml, days=(later.study_date - earlier.study_date).days
        )
    return points


def history_plot_points(points):
    """SVG polyline coordinates of volume over time, in a PLOT_WIDTH x PLOT_HEIGHT box ("" under two points)."""
    if len(points) < 2:
        return ""
    first, last = points[0].study_date, points[-1].study_date
    span_days = max((last - first).days, 1)
    top = max(point.volume_ml for point in points)
    inner_width, inner_height = PLOT_WIDTH - 2 * PLOT_MARGIN, PLOT_HEIGHT - 2 * PLOT_MARGIN
    coordinates = []
    for point in points:
        x = PLOT_MARGIN + inner_width * (point.study_date - first).days / span_days
        y = PLOT_MARGIN + inner_height * (1 - point.volume_ml / top)
        coordinates.append(f"{x:.1f},{y:.1f}")
    return " ".join(coordinates)


def comparison_text(points):
    """One line per earlier study for the report's comparison section, oldest first."""
    lines = []
    for point in points:
        line = f"{point.study_date:%Y-%m-%d}: lesion volume {point.volume_ml:.2f} mL"
        if point.largest_diameter_mm is not None:
            line += f", largest diameter {point.largest_diameter_mm:.1f} mm"
        if point.growth_percent is not None:
            line += f"; {point.growth_percent:+.0f}% since the previous study"
        if point.doubling_time_days is not None:
            line += f", volume doubling time {point.doubling_time_days:.0f} days"
        lines.append(line)
    return "\n".join(lines)
