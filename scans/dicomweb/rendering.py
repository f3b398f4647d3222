"""Rendered frames for WADO-RS (PS3.18 8.3.5.1.3): one frame as an 8-bit PNG or JPEG a browser can show.

Greyscale pixels go through the modality LUT (RescaleSlope/Intercept, so CT is in Hounsfield units)
and then the DICOM linear window (``imaging.windowing``): the one asked for in the ``window`` query
parameter, else the stored WindowCenter/WindowWidth, else the lung window for CT (the portal reads
chest CT) or the frame's own range otherwise. MONOCHROME1 is inverted so that the picture looks as radiologists expect.
"""

import cv2
import numpy as np
import pydicom
from pydicom.pixels import apply_modality_lut

from imaging.encoding import encode_jpeg, encode_png, resize_to
from imaging.windowing import LUNG_WINDOW, Window, grey_from_window, window_of_range
from portal.errors import UserFacingError

RENDERED_MEDIA_TYPES = ("image/jpeg", "image/png")
JPEG_QUALITY = 90


class CannotRender(UserFacingError):
    status_code = 400


class FrameNotFound(UserFacingError):
    status_code = 404


def window_from_parameter(text):
    """``"center,width[,function]"`` (PS3.18 8.3.5.1.3.1) -> Window; only the linear function is drawn."""
    pieces = [piece.strip() for piece in text.split(",")]
    try:
        centre, width = float(pieces[0]), float(pieces[1])
    except (IndexError, ValueError):
        raise CannotRender("window must be 'center,width' or 'center,width,linear'.") from None
    if width <= 0:
        raise CannotRender("The window width must be positive.")
    return Window("requested", centre, width)


MAXIMUM_VIEWPORT = 4096


def viewport_from_parameter(text):
    """``"width,height"`` (PS3.18 8.3.5.1.3.1; either may be left empty) -> (width or None, height or None)."""
    pieces = [piece.strip() for piece in text.split(",")][:2] + [""]
    sizes = []
    for piece in pieces[:2]:
        if piece and not (piece.isdigit() and 1 <= int(piece) <= MAXIMUM_VIEWPORT):
            raise CannotRender(f"viewport sizes are whole numbers from 1 to {MAXIMUM_VIEWPORT}.")
        sizes.append(int(piece) if piece else None)
    if sizes == [None, None]:
        raise CannotRender("viewport must be 'width,height'.")
    return tuple(sizes)


def fitted(image, viewport):
    """The image scaled to fit the viewport (width, height; None leaves that side free), aspect kept."""
    width, height = viewport
    rows, columns = image.shape[:2]
    scale = min(width / columns if width else float("inf"), height / rows if height else float("inf"))
    return resize_to(image, height=max(1, round(rows * scale)), width=max(1, round(columns * scale)))


def display_window(*, requested, instance, modality, frame):
    if requested is not None:
        return requested
    if instance.window_center is not None and instance.window_width:
        return Window("stored", instance.window_center, instance.window_width)
    if modality == "CT":
        return LUNG_WINDOW
    return window_of_range(frame)


def frame_pixels(dataset, frame_number):
    """Frame ``frame_number`` (1-based) of the dataset, decoded through pydicom's pixel-data plugins."""
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    if not 1 <= frame_number <= frames:
        raise FrameNotFound(f"The instance has {frames} frame(s); there is no frame {frame_number}.")
    try:
        pixels = dataset.pixel_array
    except Exception as error:  # any decoder failure is the stored file's fault: say so rather than answer 500
        raise CannotRender(f"The pixel data cannot be decoded: {error}") from None
    return pixels[frame_number - 1] if frames > 1 else pixels


def render_frame(*, fileobj, instance, frame_number, media_type, window=None, quality=JPEG_QUALITY, viewport=None):
    """Encoded image bytes of one frame of a stored DICOM file, scaled to ``viewport`` when given."""
    dataset = pydicom.dcmread(fileobj)
    pixels = frame_pixels(dataset, frame_number)
    photometric = str(dataset.get("PhotometricInterpretation", "MONOCHROME2"))
    if pixels.ndim == 3:
        image = pixels.astype(np.uint8) if pixels.dtype != np.uint8 else pixels
        if photometric.startswith("YBR"):
            from pydicom.pixels import convert_color_space

            image = convert_color_space(image, photometric, "RGB")
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    else:
        values = np.asarray(apply_modality_lut(pixels, dataset), dtype=np.float32)
        chosen = display_window(
            requested=window, instance=instance, modality=str(dataset.get("Modality", "")), frame=values
        )
        image = grey_from_window(values, chosen)
        if photometric == "MONOCHROME1":
            image = 255 - image
    if viewport is not None:
        image = fitted(image, viewport)
    try:
        return encode_png(image) if media_type == "image/png" else encode_jpeg(image, quality=quality)
    except ValueError:
        raise CannotRender("The frame could not be encoded as an image.") from None
