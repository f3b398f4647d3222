"""Lesion measurements from per-slice masks and DICOM geometry (pure numpy and OpenCV).

Public interface:
    measure_lesions(masks, *, pixel_spacing=None, image_positions=None,
                    image_orientation=None, slice_thickness=None) -> LesionMeasurements
    slab_thicknesses(image_positions, image_orientation) -> ndarray (mm per slice)

``masks`` is ``(slices, rows, columns)`` boolean at the original image resolution, in the order of
``image_positions`` (ImagePositionPatient per slice). How the numbers are obtained:

- Area per slice: lesion pixels x row spacing x column spacing (PixelSpacing), in mm^2.
- Slice spacing comes from the geometry, not from SliceThickness: each ImagePositionPatient is
  projected on the slice normal (cross product of the two ImageOrientationPatient directions) and
  each slice stands for the slab that reaches half-way to each neighbour (the end slices reach as
  far outwards as inwards). For evenly spaced slices that is ``area x spacing``; it stays right for
  uneven spacing and for slices that overlap or leave gaps (thickness is not spacing). Only when
  positions are missing does SliceThickness stand in, and ``slice_spacing_source`` says so.
- Volume: sum over slices of area x slab thickness, in mL (1 mL = 1000 mm^3).
- Largest diameter: the longest in-plane (axial) extent of any single lesion outline, i.e. the
  maximum Feret diameter over the external contours of every slice (as RECIST measures it), found
  on the convex hull of the pixel corners, with each axis scaled by its own pixel spacing.
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


@dataclass(frozen=True)
class LesionMeasurements:
    has_physical_scale: bool
    area_unit: str  # "mm2" or "pixels"
    area_per_slice: list[float]
    lesion_voxel_count: int
    volume_ml: float | None
    slice_spacing_source: str
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


def _max_feret_diameter(contour: np.ndarray, *, row_spacing: float, column_spacing: float):
    """Longest distance across an outline, measured between pixel corners."""
    points = contour.reshape(-1, 2).astype(np.float64)  # x (column), y (row)
    corners = (points[:, np.newaxis, :] + np.array(
        [[-0.5, -0.5], [-0.5, 0.5], [0.5, -0.5], [0.5, 0.5]]
    )[np.newaxis]).reshape(-1, 2)
    scaled = corners * np.array([column_spacing, row_spacing])
    hull = cv2.convexHull(scaled.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    differences = hull[:, np.newaxis, :] - hull[np.newaxis, :, :]
    return float(np.sqrt((differences**2).sum(axis=-1)).max())


def measure_lesions(
    masks,
    *,
    pixel_spacing: Sequence[float] | None = None,
    image_positions: Sequence[Sequence[float]] | None = None,
    image_orientation: Sequence[float] | None = None,
    slice_thickness: float | None = None,
) -> LesionMeasurements:
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
    pixel_counts = masks.reshape(masks.shape[0], -1).sum(axis=1)
    areas = pixel_counts * row_spacing * column_spacing

    locations = None
    if image_positions is not None and image_orientation is not None:
        locations = np.asarray(image_positions, dtype=np.float64) @ slice_normal(image_orientation)
    thicknesses = None
    spacing_source = SPACING_UNKNOWN
    if locations is not None and len(masks) > 1:
        thicknesses = slab_thicknesses(image_positions, image_orientation)
        spacing_source = SPACING_FROM_POSITIONS
    elif slice_thickness:
        thicknesses = np.full(len(masks), float(slice_thickness))
        spacing_source = SPACING_FROM_THICKNESS
        notes.append("slice positions missing: SliceThickness used as the spacing between slices")
    else:
        notes.append("no slice positions or thickness: volume is unknown")

    volume_ml = None
    if has_physical_scale and thicknesses is not None:
        volume_ml = float((areas * thicknesses).sum() / 1000.0)

    largest_diameter = None
    largest_diameter_index = None
    for index in np.flatnonzero(pixel_counts):
        contours, _ = cv2.findContours(
            masks[index].astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
        )
        for contour in contours:
            diameter = _max_feret_diameter(
                contour, row_spacing=row_spacing, column_spacing=column_spacing
            )
            if largest_diameter is None or diameter > largest_diameter:
                largest_diameter, largest_diameter_index = diameter, int(index)

    largest_area_index = int(areas.argmax()) if pixel_counts.any() else None
    return LesionMeasurements(
        has_physical_scale=has_physical_scale,
        area_unit="mm2" if has_physical_scale else "pixels",
        area_per_slice=[float(area) for area in areas],
        lesion_voxel_count=int(pixel_counts.sum()),
        volume_ml=volume_ml,
        slice_spacing_source=spacing_source,
        largest_diameter=largest_diameter,
        largest_diameter_slice_index=largest_diameter_index,
        largest_area=float(areas.max()) if len(areas) else 0.0,
        largest_area_slice_index=largest_area_index,
        largest_area_slice_location_mm=(
            float(locations[largest_area_index])
            if locations is not None and largest_area_index is not None
            else None
        ),
        notes=notes,
    )
