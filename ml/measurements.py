"""Lesion measurements from per-slice masks and DICOM geometry (pure numpy, SciPy and OpenCV).

Public interface:
    measure_lesions(masks, *, pixel_spacing=None, image_positions=None,
                    image_orientation=None, slice_thickness=None) -> LesionMeasurements
    slab_thicknesses(image_positions, image_orientation) -> ndarray (mm per slice)

``masks`` is ``(slices, rows, columns)`` boolean at the original image resolution, in the order of
``image_positions`` (ImagePositionPatient per slice). Every per-slice list and slice index in the
result follows that input order. How the numbers are obtained:

- Slice order and spacing come from the geometry, not from the input order or SliceThickness:
  each ImagePositionPatient is projected on the slice normal (cross product of the two
  ImageOrientationPatient directions) and the slices are sorted along it here, so a caller that
  hands them over in another order still measures the right volume. Two slices at one position
  are refused (``ValueError``). Each slice stands for the slab that reaches half-way to each
  neighbour (the end slices reach as far outwards as inwards), which stays right for uneven
  spacing; spacing that varies by more than ``IRREGULAR_SPACING_TOLERANCE`` is flagged
  (``irregular_slice_spacing`` and a note), because a gap in the series can hide part of a lesion.
  Only when positions are missing does SliceThickness stand in, and ``slice_spacing_source`` says so.
- Area per slice: lesion pixels x row spacing x column spacing (PixelSpacing), in mm^2.
- Lesions are the 3D connected components of the masks (26-connectivity, in slice-position order):
  each has its own row in ``lesions`` (largest volume first) with its voxel count, volume, largest
  diameter and largest area. The top-level figures are over all lesions: total volume, the largest
  diameter of any lesion, the slice with the largest total lesion area.
- Volume: sum over slices of area x slab thickness, in mL (1 mL = 1000 mm^3).
- Largest diameter: the longest in-plane (axial) distance between two boundary pixels of one
  lesion on one slice, measured between pixel centres (as a reader's calliper on the image
  measures it), on the convex hull of the outline, with each axis scaled by its own pixel spacing.
  Measuring between pixel corners instead would add about one pixel to every lesion.
- Largest area: index of the slice with the largest lesion area, and its location along the normal.

Without PixelSpacing the result is in pixels and ``has_physical_scale`` is False; without slice
spacing of any kind the volume is None (voxels are still counted).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

SPACING_FROM_POSITIONS = "image_position_patient"
SPACING_FROM_THICKNESS = "slice_thickness"
SPACING_UNKNOWN = "unknown"
#: Gaps between neighbouring slices that differ from the median gap by more than this fraction of
#: it make the spacing irregular (reconstructions are regular to far better than 5 %).
IRREGULAR_SPACING_TOLERANCE = 0.05


@dataclass(frozen=True)
class LesionMeasurements:
    has_physical_scale: bool
    area_unit: str  # "mm2" or "pixels"
    area_per_slice: list[float]
    lesion_voxel_count: int
    volume_ml: float | None
    slice_spacing_source: str
    irregular_slice_spacing: bool
    lesion_count: int
    lesions: list[dict]  # one row per 3D lesion (``Lesion`` as a dict), largest first
    largest_diameter: float | None  # mm when has_physical_scale, else pixels; None if no lesion
    largest_diameter_slice_index: int | None
    largest_area: float
    largest_area_slice_index: int | None
    largest_area_slice_location_mm: float | None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def slice_normal(image_orientation: Sequence[float]) -> np.ndarray:
    orientation = np.asarray(image_orientation, dtype=np.float64)
    normal = np.cross(orientation[:3], orientation[3:])
    length = np.linalg.norm(normal)
    if length == 0:
        raise ValueError("ImageOrientationPatient row and column directions are parallel")
    return normal / length


def slab_thicknesses(image_positions, image_orientation) -> np.ndarray:
    """Thickness in mm that each slice stands for: half-way to each neighbour along the normal."""
    locations = np.asarray(image_positions, dtype=np.float64) @ slice_normal(image_orientation)
    if len(locations) < 2:
        raise ValueError("slab thickness from positions needs at least two slices")
    gaps = np.abs(np.diff(locations))
    if np.any(gaps == 0):
        raise ValueError("two slices share the same position along the slice normal")
    padded = np.r_[gaps[0], gaps, gaps[-1]]
    return (padded[:-1] + padded[1:]) / 2.0


def _max_feret_diameter(contour: np.ndarray, *, row_spacing: float, column_spacing: float) -> float:
    """Longest distance across an outline, between the centres of its boundary pixels."""
    points = contour.reshape(-1, 2).astype(np.float64) * np.array([column_spacing, row_spacing])
    hull = cv2.convexHull(points.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    differences = hull[:, np.newaxis, :] - hull[np.newaxis, :, :]
    return float(np.sqrt((differences**2).sum(axis=-1)).max())


def _largest_diameter(mask: np.ndarray, *, row_spacing: float, column_spacing: float) -> float:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    return max(
        _max_feret_diameter(contour, row_spacing=row_spacing, column_spacing=column_spacing)
        for contour in contours
    )


@dataclass(frozen=True)
class Lesion:
    """One 3D connected component of the masks; slice indices are in the caller's input order."""

    voxel_count: int
    volume_ml: float | None
    largest_diameter: float
    largest_diameter_slice_index: int
    largest_area: float
    largest_area_slice_index: int
    slice_indices: list[int]


def _sorted_locations(image_positions, image_orientation, *, slices: int):
    """Positions along the normal and the order that sorts them; refuses repeats and wrong counts."""
    locations = np.asarray(image_positions, dtype=np.float64) @ slice_normal(image_orientation)
    if len(locations) != slices:
        raise ValueError(f"{len(locations)} slice positions for {slices} mask slices")
    order = np.argsort(locations, kind="stable")
    if np.any(np.diff(locations[order]) == 0):
        raise ValueError("two slices share the same position along the slice normal")
    return locations, order


def _is_irregular(sorted_locations: np.ndarray) -> bool:
    gaps = np.diff(sorted_locations)
    if len(gaps) < 2:
        return False
    median = float(np.median(gaps))
    return bool(np.abs(gaps - median).max() > IRREGULAR_SPACING_TOLERANCE * median)


def measure_lesions(
    masks,
    *,
    pixel_spacing: Sequence[float] | None = None,
    image_positions: Sequence[Sequence[float]] | None = None,
    image_orientation: Sequence[float] | None = None,
    slice_thickness: float | None = None,
) -> LesionMeasurements:
    from scipy import ndimage

    masks = np.asarray(masks).astype(bool)
    if masks.ndim != 3:
        raise ValueError(f"masks must be (slices, rows, columns), got shape {masks.shape}")
    notes = []
    has_physical_scale = pixel_spacing is not None
    row_spacing, column_spacing = (
        (float(pixel_spacing[0]), float(pixel_spacing[1])) if has_physical_scale else (1.0, 1.0)
    )
    if not has_physical_scale:
        notes.append("no PixelSpacing: areas and diameters are in pixels, volume is unknown")
    pixel_area = row_spacing * column_spacing
    pixel_counts = masks.reshape(masks.shape[0], -1).sum(axis=1)
    areas = pixel_counts * pixel_area

    locations = None
    order = np.arange(len(masks))
    irregular = False
    if image_positions is not None and image_orientation is not None:
        locations, order = _sorted_locations(image_positions, image_orientation, slices=len(masks))
        irregular = _is_irregular(locations[order])
        if irregular:
            notes.append(
                "slice spacing is irregular (gaps between slices differ): part of a lesion may lie "
                "between slices; check the series for missing slices"
            )
    thicknesses = None
    spacing_source = SPACING_UNKNOWN
    if locations is not None and len(masks) > 1:
        thicknesses = np.empty(len(masks))
        thicknesses[order] = slab_thicknesses(
            np.asarray(image_positions, dtype=np.float64)[order], image_orientation
        )
        spacing_source = SPACING_FROM_POSITIONS
    elif slice_thickness:
        thicknesses = np.full(len(masks), float(slice_thickness))
        spacing_source = SPACING_FROM_THICKNESS
        notes.append("slice positions missing: SliceThickness used as the spacing between slices")
    else:
        notes.append("no slice positions or thickness: volume is unknown")
    with_volume = has_physical_scale and thicknesses is not None

    # Components are found in slice-position order, so neighbours in space are neighbours here.
    labels, count = ndimage.label(masks[order], structure=np.ones((3, 3, 3), dtype=bool))
    lesions = []
    for component in range(1, count + 1):
        in_lesion = labels == component
        counts_sorted = in_lesion.reshape(len(masks), -1).sum(axis=1)
        lesion_areas = np.zeros(len(masks))
        lesion_areas[order] = counts_sorted * pixel_area
        diameters = {
            int(order[position]): _largest_diameter(
                in_lesion[position], row_spacing=row_spacing, column_spacing=column_spacing
            )
            for position in np.flatnonzero(counts_sorted)
        }
        widest = max(diameters, key=diameters.get)
        lesions.append(Lesion(
            voxel_count=int(counts_sorted.sum()),
            volume_ml=float((lesion_areas * thicknesses).sum() / 1000.0) if with_volume else None,
            largest_diameter=diameters[widest],
            largest_diameter_slice_index=widest,
            largest_area=float(lesion_areas.max()),
            largest_area_slice_index=int(lesion_areas.argmax()),
            slice_indices=sorted(diameters),
        ))
    lesions.sort(key=lambda lesion: lesion.voxel_count, reverse=True)

    widest_lesion = max(lesions, key=lambda lesion: lesion.largest_diameter, default=None)
    largest_area_index = int(areas.argmax()) if pixel_counts.any() else None
    return LesionMeasurements(
        has_physical_scale=has_physical_scale,
        area_unit="mm2" if has_physical_scale else "pixels",
        area_per_slice=[float(area) for area in areas],
        lesion_voxel_count=int(pixel_counts.sum()),
        volume_ml=float((areas * thicknesses).sum() / 1000.0) if with_volume else None,
        slice_spacing_source=spacing_source,
        irregular_slice_spacing=irregular,
        lesion_count=len(lesions),
        lesions=[asdict(lesion) for lesion in lesions],
        largest_diameter=widest_lesion.largest_diameter if widest_lesion else None,
        largest_diameter_slice_index=(
            widest_lesion.largest_diameter_slice_index if widest_lesion else None
        ),
        largest_area=float(areas.max()) if len(areas) else 0.0,
        largest_area_slice_index=largest_area_index,
        largest_area_slice_location_mm=(
            float(locations[largest_area_index])
            if locations is not None and largest_area_index is not None
            else None
        ),
        notes=notes,
    )
