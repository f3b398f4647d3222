"""One path from stored pixels to a network input.

A CT slice arrives either as Hounsfield units (from DICOM: ``hounsfield_from_dicom``) or as an 8-bit
grey image (PNG/JPG/TIFF exports such as the public chest CT-scan image set: ``grey_from_image``).
``prepare_slice`` turns either into a float32 ``(input_size, input_size, channels)`` array:

1. 8-bit grey is first mapped back to Hounsfield units by the linear ramp of
   ``PreprocessingConfig.grey_window``: grey 0 is the window's low edge, grey 255 its high edge.
   Grey exports are windowed images whose window is unknown; one documented ramp (centre -300 HU,
   width 1600 HU, i.e. -1100..500 HU) keeps them on the same scale as DICOM input, and
   ``grey_from_hounsfield`` is its exact inverse, used to write phantom image sets.
2. Each window in ``PreprocessingConfig.windows`` becomes one channel: values clipped to
   ``centre +- width / 2`` and scaled to 0..1. The default channels are the lung window
   (-600/1500), the mediastinal window (40/400) and a bone window (400/1800), so the three input
   channels a VGG16 expects each carry a different tissue contrast instead of one repeated grey.
3. The channels are resized to ``input_size`` (area interpolation when shrinking, bilinear when
   enlarging).
4. Normalisation: ``"unit"`` keeps 0..1; ``"imagenet_caffe"`` scales to 0..255 and subtracts the
   ImageNet channel means, which is what VGG16 weights trained on ImageNet expect.

MR has no Hounsfield scale, so CT windows mean nothing on it. A configuration with
``intensity="mr_volume"`` reads source ``"mr"`` only: the whole series is first scaled by
``normalise_mr_volume`` (percentiles 1 and 99 of the voxels inside the head mask become 0 and 1,
computed over the volume so that every slice of a series shares one scale), and each input channel
carries that one normalised image. A CT configuration refuses MR input and an MR configuration
refuses CT input, so a model never reads the other modality's intensities.

The configuration is saved with every registered model (``to_dict``/``from_dict``) and read back at
inference, so a model is never fed differently from how it was trained. Windows, rescaling and
encoding come from the imaging core (``imaging``), shared with the viewer and DICOMweb.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np

from imaging.encoding import resize_to
from imaging.windowing import BONE_WINDOW, GREY_EXPORT_WINDOW, LUNG_WINDOW, MEDIASTINAL_WINDOW, Window

#: The stand-in window of MR configurations: MR input is already scaled to 0..1 per volume.
MR_UNIT_WINDOW = Window(name="mr-unit", centre=0.5, width=1.0)

Source = Literal["hounsfield", "grey8", "mr"]
SOURCES: tuple[str, ...] = ("hounsfield", "grey8", "mr")
NORMALISATIONS: tuple[str, ...] = ("unit", "imagenet_caffe")
#: "ct_windows": one channel per CT window; "mr_volume": the per-volume normalised MR image.
INTENSITIES: tuple[str, ...] = ("ct_windows", "mr_volume")
#: Percentiles of the head's voxels that become 0 and 1 in ``normalise_mr_volume``.
MR_PERCENTILES = (1.0, 99.0)
#: Voxels brighter than this share of the volume's 99.9th percentile form the head mask.
MR_HEAD_THRESHOLD = 0.1

# Channel means (B, G, R order in Keras' "caffe" mode, which VGG16's ImageNet weights were trained
# with), on the 0..255 scale.
IMAGENET_CAFFE_MEANS = np.array([103.939, 116.779, 123.68], dtype=np.float32)


@dataclass(frozen=True)
class PreprocessingConfig:
    """Everything that decides how pixels become a network input; saved with each model."""

    input_size: int = 224
    windows: tuple[Window, ...] = field(
        default=(LUNG_WINDOW, MEDIASTINAL_WINDOW, BONE_WINDOW)
    )
    grey_window: Window = GREY_EXPORT_WINDOW
    normalisation: str = "unit"
    intensity: str = "ct_windows"

    def __post_init__(self) -> None:
        if self.input_size < 8:
            raise ValueError(f"input_size must be at least 8 pixels, got {self.input_size}")
        if not self.windows:
            raise ValueError("at least one window is needed: each window is one input channel")
        if self.normalisation not in NORMALISATIONS:
            raise ValueError(
                f"unknown normalisation {self.normalisation!r}; expected one of {NORMALISATIONS}"
            )
        if self.intensity not in INTENSITIES:
            raise ValueError(f"unknown intensity {self.intensity!r}; expected one of {INTENSITIES}")
        if self.normalisation == "imagenet_caffe" and len(self.windows) != 3:
            raise ValueError("imagenet_caffe normalisation needs exactly three windows")

    @property
    def channels(self) -> int:
        return len(self.windows)

    @classmethod
    def for_mr(cls, *, input_size: int, channels: int = 1) -> PreprocessingConfig:
        """An MR configuration; ``windows`` only sets the channel count (each carries the MR image)."""
        return cls(input_size=input_size, windows=(MR_UNIT_WINDOW,) * channels, intensity="mr_volume")

    def accepts(self, source: str) -> bool:
        return (source == "mr") == (self.intensity == "mr_volume")

    def to_dict(self) -> dict:
        return {
            "intensity": self.intensity,
            "input_size": self.input_size,
            "windows": [asdict(window) for window in self.windows],
            "grey_window": asdict(self.grey_window),
            "normalisation": self.normalisation,
        }

    @classmethod
    def from_dict(cls, data: dict) -> PreprocessingConfig:
        return cls(
            input_size=int(data["input_size"]),
            windows=tuple(Window(**window) for window in data["windows"]),
            grey_window=Window(**data["grey_window"]),
            normalisation=data["normalisation"],
            intensity=data.get("intensity", "ct_windows"),
        )


def hounsfield_from_grey(grey: np.ndarray, *, window: Window = GREY_EXPORT_WINDOW) -> np.ndarray:
    """The documented ramp from 8-bit grey back to Hounsfield units."""
    return window.low + grey.astype(np.float32) * (window.width / 255.0)


def grey_from_hounsfield(
    hounsfield: np.ndarray, *, window: Window = GREY_EXPORT_WINDOW
) -> np.ndarray:
    """Inverse of ``hounsfield_from_grey``: how phantom slices are exported as 8-bit images."""
    scaled = (np.asarray(hounsfield, dtype=np.float32) - window.low) * (255.0 / window.width)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def normalise_mr_volume(slices: Sequence[np.ndarray]) -> list[np.ndarray]:
    """An MR series scaled as one volume: head percentiles 1 and 99 become 0 and 1, clipped.

    MR signal has no absolute scale (it changes with scanner, coil and gain), so only the
    intensities within one volume can be compared; scaling the volume, not each slice, keeps a
    slice that is mostly tumour as bright as it is relative to the rest of the brain.
    """
    volume = np.stack([np.asarray(array, dtype=np.float32) for array in slices])
    ceiling = float(np.percentile(volume, 99.9))
    head = volume[volume > MR_HEAD_THRESHOLD * ceiling] if ceiling > 0 else volume.ravel()
    if head.size == 0:
        head = volume.ravel()
    low, high = (float(value) for value in np.percentile(head, MR_PERCENTILES))
    if high <= low:
        return [np.zeros_like(array) for array in volume]
    return list(np.clip((volume - low) / (high - low), 0.0, 1.0))


def prepare_slice(array: np.ndarray, *, config: PreprocessingConfig, source: Source) -> np.ndarray:
    """One 2D slice as a float32 ``(size, size, channels)`` input.

    ``source`` is "hounsfield" or "grey8" for CT configurations, "mr" (a slice of
    ``normalise_mr_volume``'s output) for MR configurations.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; expected one of {SOURCES}")
    if not config.accepts(source):
        raise ValueError(
            f"a {config.intensity} configuration cannot read {source} slices: CT windows are never applied to MR "
            "and MR scaling is never applied to CT"
        )
    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError(f"a slice must be a 2D array, got shape {array.shape}")
    size = config.input_size
    if source == "mr":
        resized = resize_to(array.astype(np.float32, copy=False), height=size, width=size)
        channels = np.repeat(np.clip(resized, 0.0, 1.0)[..., np.newaxis], config.channels, axis=-1)
    else:
        if source == "grey8":
            hounsfield = hounsfield_from_grey(array, window=config.grey_window)
        else:
            hounsfield = array.astype(np.float32, copy=False)
        hounsfield = resize_to(hounsfield, height=size, width=size)
        channels = np.empty((size, size, config.channels), dtype=np.float32)
        for index, window in enumerate(config.windows):
            channels[..., index] = np.clip((hounsfield - window.low) / window.width, 0.0, 1.0)
    if config.normalisation == "imagenet_caffe":
        channels = channels * 255.0 - IMAGENET_CAFFE_MEANS
    return channels


def prepare_batch(
    arrays: Sequence[np.ndarray], *, config: PreprocessingConfig, source: Source
) -> np.ndarray:
    """Several slices (any original sizes) as one float32 ``(n, size, size, channels)`` batch."""
    batch = np.empty(
        (len(arrays), config.input_size, config.input_size, config.channels), dtype=np.float32
    )
    for index, array in enumerate(arrays):
        batch[index] = prepare_slice(array, config=config, source=source)
    return batch


def prepare_mask(mask: np.ndarray, *, input_size: int) -> np.ndarray:
    """A boolean lesion mask as a float32 ``(size, size, 1)`` training target (0 or 1)."""
    resized = resize_to(np.asarray(mask, dtype=np.float32), height=input_size, width=input_size)
    return (resized >= 0.5).astype(np.float32)[..., np.newaxis]

