"""Resampling and encoding of 8-bit images."""

import cv2
import numpy as np


def resize_to(array: np.ndarray, *, height: int, width: int) -> np.ndarray:
    """Resize a 2D or channels-last array; area interpolation when shrinking avoids aliasing."""
    shrinking = height < array.shape[0] or width < array.shape[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    resized = cv2.resize(array, (width, height), interpolation=interpolation)
    if array.ndim == 3 and resized.ndim == 2:
        resized = resized[..., np.newaxis]
    return resized


def encode_png(image: np.ndarray) -> bytes:
    """An 8-bit grey (or BGR) array as PNG bytes."""
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise ValueError("could not encode the image as PNG")
    return encoded.tobytes()


def encode_jpeg(image: np.ndarray, *, quality: int = 90) -> bytes:
    """An 8-bit grey (or BGR) array as baseline JPEG bytes."""
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("could not encode the image as JPEG")
    return encoded.tobytes()
