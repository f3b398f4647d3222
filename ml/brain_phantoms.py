"""Synthetic brain MRI studies with a known tumour, for brain demo models and tests.

A phantom is built in millimetres (so it looks the same at any matrix size) from analytic solids:
scalp, skull, a brain of grey matter around white matter, two lateral ventricles and, unless
``with_tumour=False``, one ellipsoidal tumour. Each solid has a signal per sequence, a caricature
of the textbook contrasts:

- FLAIR: cerebrospinal fluid is dark (nulled by the long inversion time), the tumour bright;
- T1 before contrast: fluid dark-grey, tumour slightly darker than brain;
- T1 after gadolinium: as T1, with the tumour enhancing.

MR signal has no absolute scale, so every study gets its own receiver gain (a factor of 0.5 to 2)
and a smooth bias field, and Rician-like noise: models must read intensities per volume.

The tumour mask is exact (voxel centres inside the analytic ellipsoid), so measured volumes and
Dice can be checked against it. ``write_brain_mr_study`` writes each sequence as an MR Image
Storage series with real geometry (PixelSpacing, ImagePositionPatient, ImageOrientationPatient,
SliceThickness) and the header a scanner writes for it (SeriesDescription, ScanningSequence,
SequenceVariant, InversionTime, EchoTime, RepetitionTime), BodyPartExamined "BRAIN".

Public interface:
    BRAIN_SEQUENCES: {"FLAIR", "T1", "T1_POST"} -> SequenceProtocol
    generate_brain_phantom(*, slices=12, size=64, with_tumour=True, seed=0,
                           field_of_view_mm=220.0, slice_spacing=5.0) -> BrainPhantom
    write_brain_mr_study(phantom, directory, *, patient_id, patient_name, study_uid=None,
                         sequences=("FLAIR", "T1", "T1_POST"), study_date=None)
                         -> dict[str, list[Path]]   (paths per sequence, in slice order)
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
AXIAL_ORIENTATION = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
#: Head semi-axes in mm (left-right, anterior-posterior, head-foot).
HEAD_SEMI_AXES_MM = (72.0, 90.0, 80.0)
SCALP_MM, SKULL_MM, CORTEX_MM = 4.0, 6.0, 4.0
MAX_STORED_VALUE = 4095


@dataclass(frozen=True)
class SequenceProtocol:
    """How a sequence is named in its header, and the signal of each tissue on it."""

    description: str
    scanning_sequence: tuple[str, ...]
    sequence_variant: tuple[str, ...]
    inversion_time: float | None
    echo_time: float
    repetition_time: float
    signal: dict  # tissue -> signal before gain and bias


BRAIN_SEQUENCES: dict[str, SequenceProtocol] = {
    "FLAIR": SequenceProtocol(
        description="AX T2 FLAIR", scanning_sequence=("SE", "IR"), sequence_variant=("SK", "SP", "MP"),
        inversion_time=2500.0, echo_time=120.0, repetition_time=9000.0,
        signal={"scalp": 350, "skull": 30, "grey": 620, "white": 480, "fluid": 60, "tumour": 1250},
    ),
    "T1": SequenceProtocol(
        description="AX T1 PRE", scanning_sequence=("SE",), sequence_variant=("SK", "SP"),
        inversion_time=None, echo_time=12.0, repetition_time=500.0,
        signal={"scalp": 900, "skull": 60, "grey": 560, "white": 760, "fluid": 250, "tumour": 430},
    ),
    "T1_POST": SequenceProtocol(
        description="AX T1 POST GAD", scanning_sequence=("SE",), sequence_variant=("SK", "SP"),
        inversion_time=None, echo_time=12.0, repetition_time=500.0,
        signal={"scalp": 900, "skull": 60, "grey": 560, "white": 760, "fluid": 250, "tumour": 1150},
    ),
}


@dataclass(frozen=True)
class BrainPhantom:
    """A generated brain study: one volume per sequence on one grid, and the exact tumour mask."""

    images: dict  # sequence name -> uint16 (slices, rows, columns)
    tumour_masks: np.ndarray  # bool (slices, rows, columns)
    pixel_spacing: tuple[float, float]  # (row spacing, column spacing) in mm
    slice_positions: np.ndarray  # float64 (slices, 3): ImagePositionPatient
    image_orientation: tuple[float, float, float, float, float, float]
    slice_thickness: float

    @property
    def has_tumour(self) -> bool:
        return bool(self.tumour_masks.any())

    @property
    def slice_spacing(self) -> float:
        if len(self.slice_positions) < 2:
            return self.slice_thickness
        return float(abs(self.slice_positions[1, 2] - self.slice_positions[0, 2]))

    @property
    def tumour_volume_ml(self) -> float:
        voxel_mm3 = self.pixel_spacing[0] * self.pixel_spacing[1] * self.slice_spacing
        return float(self.tumour_masks.sum()) * voxel_mm3 / 1000.0


def _inside(x, y, z, *, centre, semi_axes) -> np.ndarray:
    return (((x - centre[0]) / semi_axes[0]) ** 2 + ((y - centre[1]) / semi_axes[1]) ** 2
            + ((z - centre[2]) / semi_axes[2]) ** 2) <= 1.0


def generate_brain_phantom(
    *,
    slices: int = 12,
    size: int = 64,
    with_tumour: bool = True,
    seed: int = 0,
    field_of_view_mm: float = 220.0,
    slice_spacing: float = 5.0,
) -> BrainPhantom:
    """A brain study of ``slices`` axial slices of ``size`` x ``size`` pixels, all sequences on one grid."""
    if slices < 1 or size < 16:
        raise ValueError("a brain phantom needs at least one slice of 16 x 16 pixels")
    rng = np.random.default_rng(seed)
    spacing = field_of_view_mm / size
    coordinates = (np.arange(size) - (size - 1) / 2.0) * spacing
    z_positions = (np.arange(slices) - (slices - 1) / 2.0) * slice_spacing
    z, y, x = np.meshgrid(z_positions, coordinates, coordinates, indexing="ij")
    head = np.array(HEAD_SEMI_AXES_MM)
    origin = (0.0, 0.0, 0.0)
    tissues = {
        "scalp": _inside(x, y, z, centre=origin, semi_axes=head),
        "skull": _inside(x, y, z, centre=origin, semi_axes=head - SCALP_MM),
        "grey": _inside(x, y, z, centre=origin, semi_axes=head - SCALP_MM - SKULL_MM),
        "white": _inside(x, y, z, centre=origin, semi_axes=head - SCALP_MM - SKULL_MM - CORTEX_MM),
        "fluid": (_inside(x, y, z, centre=(-9.0, 4.0, 6.0), semi_axes=(5.0, 20.0, 12.0))
                  | _inside(x, y, z, centre=(9.0, 4.0, 6.0), semi_axes=(5.0, 20.0, 12.0))),
    }
    tumour = np.zeros_like(tissues["scalp"])
    if with_tumour:
        side = rng.choice([-1.0, 1.0])
        semi_axes = rng.uniform(9.0, 15.0, size=3)
        span = max(0.0, (slices - 1) / 2.0 * slice_spacing - semi_axes[2] / 2)
        centre = (side * rng.uniform(28.0, 40.0), rng.uniform(-35.0, 35.0), rng.uniform(-span, span))
        tumour = _inside(x, y, z, centre=centre, semi_axes=semi_axes) & tissues["grey"]  # inside the brain
    # Later tissues overwrite earlier ones: scalp, skull, cortex, white matter, fluid, tumour.
    gain = float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
    bias = 1.0 + 0.1 * (x / head[0]) + 0.08 * (y / head[1])
    images = {}
    for name, protocol in BRAIN_SEQUENCES.items():
        signal = np.zeros(x.shape, dtype=np.float64)
        for tissue in ("scalp", "skull", "grey", "white", "fluid"):
            signal[tissues[tissue]] = protocol.signal[tissue]
        signal[tumour] = protocol.signal["tumour"]
        noise_sigma = 12.0
        noisy = np.hypot(signal + rng.normal(0.0, noise_sigma, x.shape), rng.normal(0.0, noise_sigma, x.shape))
        images[name] = np.clip(np.rint(noisy * bias * gain), 0, MAX_STORED_VALUE).astype(np.uint16)
    positions = np.stack([np.full(slices, coordinates[0]), np.full(slices, coordinates[0]), z_positions], axis=1)
    return BrainPhantom(
        images=images,
        tumour_masks=tumour,
        pixel_spacing=(spacing, spacing),
        slice_positions=positions,
        image_orientation=AXIAL_ORIENTATION,
        slice_thickness=slice_spacing,
    )


def write_brain_mr_study(
    phantom: BrainPhantom,
    directory: str | Path,
    *,
    patient_id: str,
    patient_name: str,
    study_uid: str | None = None,
    sequences: tuple[str, ...] = ("FLAIR", "T1", "T1_POST"),
    study_date: datetime.date | None = None,
) -> dict[str, list[Path]]:
    """Write each sequence as an MR Image Storage series of one study (explicit VR little endian, uint16)."""
    from pydicom.uid import generate_uid

    from ml.phantoms import new_dicom_file

    directory = Path(directory)
    study_uid = study_uid or generate_uid()
    frame_of_reference_uid = generate_uid()
    study_date = study_date or datetime.date.today()
    normal = np.cross(phantom.image_orientation[:3], phantom.image_orientation[3:])
    written = {}
    for series_number, name in enumerate(sequences, start=1):
        protocol = BRAIN_SEQUENCES[name]
        series_uid = generate_uid()
        volume = phantom.images[name]
        series_directory = directory / name
        series_directory.mkdir(parents=True, exist_ok=True)
        paths = []
        for index in range(volume.shape[0]):
            path = series_directory / f"{index + 1:04d}.dcm"
            dataset = new_dicom_file(
                path, sop_class_uid=MR_IMAGE_STORAGE, study_uid=study_uid, series_uid=series_uid,
                frame_of_reference_uid=frame_of_reference_uid, patient_id=patient_id, patient_name=patient_name,
                study_date=study_date,
            )
            dataset.StudyDescription = "Phantom brain MRI"
            dataset.SeriesDescription = protocol.description
            dataset.StudyID = "1"
            dataset.Modality = "MR"
            dataset.Manufacturer = "RadAssist phantom"
            dataset.BodyPartExamined = "BRAIN"
            dataset.MagneticFieldStrength = "1.5"
            dataset.ScanningSequence = list(protocol.scanning_sequence)
            dataset.SequenceVariant = list(protocol.sequence_variant)
            dataset.ScanOptions = ""
            dataset.MRAcquisitionType = "2D"
            dataset.EchoTime = f"{protocol.echo_time:g}"
            dataset.RepetitionTime = f"{protocol.repetition_time:g}"
            if protocol.inversion_time is not None:
                dataset.InversionTime = f"{protocol.inversion_time:g}"
            dataset.SeriesNumber = series_number
            dataset.InstanceNumber = index + 1
            dataset.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
            position = phantom.slice_positions[index]
            dataset.ImagePositionPatient = [f"{value:.4f}" for value in position]
            dataset.ImageOrientationPatient = [f"{value:.6f}" for value in phantom.image_orientation]
            dataset.SliceLocation = f"{float(np.dot(position, normal)):.4f}"
            dataset.PixelSpacing = [f"{value:.6f}" for value in phantom.pixel_spacing]
            dataset.SliceThickness = f"{phantom.slice_thickness:.4f}"
            dataset.SpacingBetweenSlices = f"{phantom.slice_spacing:.4f}"
            dataset.SamplesPerPixel = 1
            dataset.PhotometricInterpretation = "MONOCHROME2"
            dataset.Rows, dataset.Columns = volume.shape[1:]
            dataset.BitsAllocated = 16
            dataset.BitsStored = 12
            dataset.HighBit = 11
            dataset.PixelRepresentation = 0
            dataset.PixelData = volume[index].astype("<u2").tobytes()
            dataset.save_as(path, enforce_file_format=True)
            paths.append(path)
        written[name] = paths
    return written
