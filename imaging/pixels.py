"""Pixel arrays from DICOM datasets and image files."""

from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np


def rescaled_pixels(dataset) -> np.ndarray:
    """Pixel data of a pydicom dataset through the modality LUT (float32; Hounsfield units for CT).

    Decoding goes through pydicom's pixel-data plugins (so compressed transfer syntaxes work when a
    plugin is installed) and the modality LUT: ``stored * RescaleSlope + RescaleIntercept``.
    """
    from pydicom.pixels import apply_modality_lut

    stored = dataset.pixel_array
    return np.asarray(apply_modality_lut(stored, dataset), dtype=np.float32)


def grey_from_image(path_or_fileobj: str | Path | BinaryIO) -> np.ndarray:
    """An image file (PNG, JPG, TIFF; colour or grey, 8 or 16 bit) as an 8-bit grey array."""
    if isinstance(path_or_fileobj, (str, Path)):
        encoded = Path(path_or_fileobj).read_bytes()
    else:
        encoded = path_or_fileobj.read()
    buffer = np.frombuffer(encoded, dtype=np.uint8)
    image = cv2.imdecode(buffer, cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise ValueError("not a readable image file (PNG, JPG or TIFF expected)")
    return image
