"""Key-slice images for the doctor: the slice in a lung window with the lesion outline drawn on it.

Pure numpy and OpenCV (no Django, no TensorFlow), so the worker can call it between batches and
tests can check it without a database.
"""

import cv2
import numpy as np

from imaging.windowing import LUNG_WINDOW, grey_from_window

#: Outline colour in OpenCV's BGR order: a saturated yellow stays visible on grey lung and on bone.
OUTLINE_BGR = (0, 215, 255)


def outline_overlay_png(image, mask, *, is_grey8=False):
    """A PNG of one slice with the external contour of every lesion in ``mask`` drawn on it.

    ``image`` is a 2D slice in Hounsfield units, or 8-bit grey (PNG/JPG series) when ``is_grey8``;
    ``mask`` is a boolean array of the same shape. The line is about 1/200 of the image wide, so it
    reads the same at 64 and at 512 pixels.
    """
    grey = np.asarray(image, dtype=np.uint8) if is_grey8 else grey_from_window(image, LUNG_WINDOW)
    colour = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != grey.shape:
        raise ValueError(f"mask shape {mask.shape} differs from image shape {grey.shape}")
    if mask.any():
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        thickness = max(1, round(max(grey.shape) / 200))
        cv2.drawContours(colour, contours, -1, OUTLINE_BGR, thickness, lineType=cv2.LINE_AA)
    ok, encoded = cv2.imencode(".png", colour)
    if not ok:
        raise ValueError("could not encode the overlay as PNG")
    return encoded.tobytes()
