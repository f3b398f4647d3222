"""Display windows and the DICOM linear window function.

A window maps stored values (Hounsfield units for CT, after the modality LUT) to display grey levels.
``grey_from_window`` follows PS3.3 C.11.2.1.2.1 (VOI LUT Function LINEAR) exactly, which is what
``pydicom.pixels.apply_windowing`` and every DICOM viewer compute, so a slice looks the same in the
portal's viewer, in DICOMweb's rendered frames and in a PACS viewer given the same centre and width.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Window:
    """A window of stored values: ``centre ± width / 2`` spans the displayed grey levels."""

    name: str
    centre: float
    width: float

    @property
    def low(self) -> float:
        return self.centre - self.width / 2

    @property
    def high(self) -> float:
        return self.centre + self.width / 2


LUNG_WINDOW = Window("lung", -600.0, 1500.0)
MEDIASTINAL_WINDOW = Window("mediastinal", 40.0, 400.0)
BONE_WINDOW = Window("bone", 400.0, 1800.0)
GREY_EXPORT_WINDOW = Window("grey_export", -300.0, 1600.0)


def grey_from_window(values, window: Window) -> np.ndarray:
    """8-bit grey levels of ``values`` through ``window`` by the DICOM LINEAR function.

    With centre c and width w (w ≥ 1): values at or below ``c - 0.5 - (w - 1) / 2`` are black, values
    above ``c - 0.5 + (w - 1) / 2`` are white, and in between
    ``y = ((x - (c - 0.5)) / (w - 1) + 0.5) * 255``.
    """
    width = max(float(window.width), 1.0)
    values = np.asarray(values, dtype=np.float32)
    if width == 1.0:
        return np.where(values > window.centre - 0.5, 255, 0).astype(np.uint8)
    scaled = ((values - (window.centre - 0.5)) / (width - 1.0) + 0.5) * 255.0
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def window_of_range(values, *, name: str = "frame range") -> Window:
    """The window that spans ``values`` from their minimum to their maximum (for images without one)."""
    low, high = float(np.min(values)), float(np.max(values))
    return Window(name, (low + high) / 2, max(high - low, 1.0))
