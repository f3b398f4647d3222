"""Synthetic CT-like chest series with known lesions, for demo models, tests and benchmarks.

A phantom is built in millimetres, so it looks the same at any matrix size: an elliptical body with
a subcutaneous fat rim, two lungs that taper towards the apex and base, heart, aorta and spine, lung
vessels that run as tubes through the slices, Gaussian noise, and (except for ``normal``) one lesion
whose appearance follows its class, a caricature of the radiology textbook picture:

- ``adenocarcinoma``: small peripheral ground-glass nodule (about -450 HU) with a soft edge;
- ``squamous_cell_carcinoma``: central (hilar) solid mass with an air-filled cavity;
- ``large_cell_carcinoma``: big lobulated solid peripheral mass;
- ``normal``: no lesion.

The mask of the lesion is exact (the analytic solid, cavity included), so measurements and Dice
can be checked against it. ``write_dicom_series`` writes real CT Image Storage files with full
geometry; ``write_classification_dataset`` and ``write_segmentation_dataset`` write image sets in
the layouts of the public chest CT-scan image set and of the LGG segmentation set.

Public interface:
    generate_phantom_series(*, label, slices, size, pixel_spacing=None, slice_spacing=2.5,
                            seed=0) -> PhantomSeries
    write_dicom_series(phantom, directory, *, patient_id, patient_name, study_uid=None,
                       series_uid=None, series_number=1, study_description=...,
                       series_description=None, accession_number="", study_date=None)
                       -> list[Path]
    write_classification_dataset(directory, *, images_per_split=None, size=64, seed=0) -> Path
    write_segmentation_dataset(directory, *, patients=4, slices_per_patient=6, size=64,
                               seed=0) -> Path
    write_dicom_training_series(directory, *, series_per_label=3, slices=8, size=64,
                                slice_spacing=5.0, seed=0) -> Path
        ``<directory>/<label>_<n>/0001.dcm...`` with ``lesion_masks.npz`` (``masks``, ``label``)
        beside the files: a training folder both ``train_*`` functions accept
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from imaging.encoding import encode_png
from ml.preprocessing import grey_from_hounsfield

PHANTOM_LABELS = ("adenocarcinoma", "large_cell_carcinoma", "squamous_cell_carcinoma", "normal")

# Folder names of the public chest CT-scan image set: long names in train/valid, short in test.
CHEST_CT_TRAINING_FOLDERS = {
    "adenocarcinoma": "adenocarcinoma_left.lower.lobe_T2_N0_M0_Ib",
    "large_cell_carcinoma": "large.cell.carcinoma_left.hilum_T2_N2_M0_IIIa",
    "squamous_cell_carcinoma": "squamous.cell.carcinoma_left.hilum_T1_N2_M0_IIIa",
    "normal": "normal",
}
CHEST_CT_TEST_FOLDERS = {
    "adenocarcinoma": "adenocarcinoma",
    "large_cell_carcinoma": "large.cell.carcinoma",
    "squamous_cell_carcinoma": "squamous.cell.carcinoma",
    "normal": "normal",
}

FIELD_OF_VIEW_MM = 360.0
AIR_HU, FAT_HU, SOFT_TISSUE_HU, LUNG_HU, BONE_HU, BLOOD_HU = -1000, -100, 40, -850, 700, 45
RESCALE_INTERCEPT = -1024.0
# Beside each series written by write_dicom_training_series: the exact masks, in instance order.
MASKS_FILE_NAME = "lesion_masks.npz"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


@dataclass(frozen=True)
class PhantomSeries:
    """A generated series: Hounsfield slices, exact lesion masks and DICOM geometry.

    ``slice_positions`` are ImagePositionPatient values (mm, centre of the first transmitted
    pixel); ``image_orientation`` is ImageOrientationPatient (axial: rows along +x, columns
    along +y).
    """

    label: str
    hounsfield: np.ndarray  # int16 (slices, rows, columns)
    masks: np.ndarray  # bool (slices, rows, columns)
    pixel_spacing: tuple[float, float]  # (row spacing, column spacing) in mm
    slice_positions: np.ndarray  # float64 (slices, 3)
    image_orientation: tuple[float, float, float, float, float, float]
    slice_thickness: float

    @property
    def lesion_volume_ml(self) -> float:
        """Volume of the mask voxels; slices are evenly spaced along z."""
        spacing = (
            float(self.slice_positions[1, 2] - self.slice_positions[0, 2])
            if len(self.slice_positions) > 1
            else self.slice_thickness
        )
        voxel_mm3 = self.pixel_spacing[0] * self.pixel_spacing[1] * abs(spacing)
        return float(self.masks.sum()) * voxel_mm3 / 1000.0


@dataclass(frozen=True)
class _Lesion:
    centre: tuple[float, float, float]  # x, y, z in mm
    radius: float
    hounsfield: float
    edge_softness: float  # fraction of the radius over which the edge blends into the lung
    cavity_radius: float  # 0 when solid
    lobulation: float  # relative amplitude of the angular radius modulation
    lobulation_phase: float


def _lesion_for(label: str, *, side: float, z_centre: float, rng: np.random.Generator):
    if label == "normal":
        return None
    if label == "adenocarcinoma":
        centre = (side * rng.uniform(95, 105), rng.uniform(-35, 25), z_centre)
        return _Lesion(centre, rng.uniform(11, 15), -350.0, 0.25, 0.0, 0.0, 0.0)
    if label == "squamous_cell_carcinoma":
        centre = (side * rng.uniform(38, 45), rng.uniform(-15, 5), z_centre)
        return _Lesion(centre, rng.uniform(13, 17), 35.0, 0.05, 0.45, 0.0, 0.0)
    if label == "large_cell_carcinoma":
        centre = (side * rng.uniform(75, 85), rng.uniform(-25, 15), z_centre)
        return _Lesion(centre, rng.uniform(21, 26), 40.0, 0.05, 0.0, 0.15, rng.uniform(0, 6.3))
    raise ValueError(f"unknown phantom label {label!r}; expected one of {PHANTOM_LABELS}")


def _inside_ellipse(x, y, *, centre_x, centre_y, semi_x, semi_y) -> np.ndarray:
    return ((x - centre_x) / semi_x) ** 2 + ((y - centre_y) / semi_y) ** 2 <= 1.0


def generate_phantom_series(
    *,
    label: str,
    slices: int,
    size: int,
    pixel_spacing: float | tuple[float, float] | None = None,
    slice_spacing: float = 2.5,
    seed: int = 0,
) -> PhantomSeries:
    """Generate an axial chest series of ``slices`` x ``size`` x ``size`` pixels.

    The lesion (if any) is centred near the middle slice; a single-slice series cuts through the
    lesion centre, which is what the classification image sets use.
    """
    if label not in PHANTOM_LABELS:
        raise ValueError(f"unknown phantom label {label!r}; expected one of {PHANTOM_LABELS}")
    if slices < 1 or size < 8:
        raise ValueError("a phantom needs at least one slice of at least 8 x 8 pixels")
    rng = np.random.default_rng(seed)
    if pixel_spacing is None:
        pixel_spacing = FIELD_OF_VIEW_MM / size
    row_spacing, column_spacing = (
        (float(pixel_spacing), float(pixel_spacing))
        if np.isscalar(pixel_spacing)
        else (float(pixel_spacing[0]), float(pixel_spacing[1]))
    )
    x = ((np.arange(size, dtype=np.float32) - (size - 1) / 2) * column_spacing)[np.newaxis, :]
    y = ((np.arange(size, dtype=np.float32) - (size - 1) / 2) * row_spacing)[:, np.newaxis]
    z_positions = (np.arange(slices) - (slices - 1) / 2) * slice_spacing

    body_scale = rng.uniform(0.92, 1.08)
    body = _inside_ellipse(x, y, centre_x=0, centre_y=0, semi_x=160 * body_scale,
                           semi_y=110 * body_scale)
    muscle = _inside_ellipse(x, y, centre_x=0, centre_y=0, semi_x=148 * body_scale,
                             semi_y=98 * body_scale)
    static = np.full((size, size), AIR_HU, dtype=np.float32)
    static[body] = FAT_HU
    static[muscle] = SOFT_TISSUE_HU
    heart = _inside_ellipse(x, y, centre_x=10, centre_y=25, semi_x=32, semi_y=40)
    aorta = _inside_ellipse(x, y, centre_x=-18, centre_y=62, semi_x=11, semi_y=11)
    spine = _inside_ellipse(x, y, centre_x=0, centre_y=88 * body_scale, semi_x=16, semi_y=15)

    lung_shift = rng.uniform(-6, 6, size=2)
    vessel_count = 12
    vessel_start = rng.uniform(-1, 1, size=(vessel_count, 2))
    vessel_drift = rng.uniform(-0.2, 0.2, size=(vessel_count, 2))
    vessel_radius = rng.uniform(1.5, 3.5, size=vessel_count)
    vessel_side = np.where(np.arange(vessel_count) % 2 == 0, -1.0, 1.0)

    side = float(rng.choice([-1.0, 1.0]))
    z_centre = float(rng.uniform(-0.1, 0.1) * slices * slice_spacing) if slices > 1 else 0.0
    lesion = _lesion_for(label, side=side, z_centre=z_centre, rng=rng)

    chest_length = max(slices * slice_spacing, 1e-6)
    hounsfield = np.empty((slices, size, size), dtype=np.int16)
    masks = np.zeros((slices, size, size), dtype=bool)
    for index, z in enumerate(z_positions):
        fraction = (z - z_positions[0]) / chest_length + 0.5 / slices
        lung_scale = 0.65 + 0.35 * np.sin(np.pi * (0.1 + 0.8 * fraction))
        image = static.copy()
        lungs = np.zeros((size, size), dtype=bool)
        for lung_side, shift in zip((-1.0, 1.0), lung_shift, strict=True):
            lungs |= _inside_ellipse(
                x, y, centre_x=lung_side * 72 + shift, centre_y=-5,
                semi_x=52 * lung_scale * body_scale, semi_y=78 * lung_scale * body_scale,
            )
        lungs &= ~heart
        image[lungs] = LUNG_HU
        vessels = np.zeros((size, size), dtype=bool)
        for start, drift, radius, vessel_lung in zip(
            vessel_start, vessel_drift, vessel_radius, vessel_side, strict=True
        ):
            centre_x = vessel_lung * 72 + start[0] * 35 + drift[0] * z
            centre_y = -5 + start[1] * 55 + drift[1] * z
            vessels |= _inside_ellipse(x, y, centre_x=centre_x, centre_y=centre_y,
                                       semi_x=radius, semi_y=radius)
        image[vessels & lungs] = BLOOD_HU
        image[heart] = BLOOD_HU
        image[aorta] = BLOOD_HU
        image[spine] = BONE_HU
        if lesion is not None:
            _draw_lesion(image, masks[index], lesion, x=x, y=y, z=z)
        image += rng.standard_normal((size, size), dtype=np.float32) * 15.0
        hounsfield[index] = np.clip(np.rint(image), -1024, 3071).astype(np.int16)

    positions = np.stack(
        [
            np.full(slices, -(size - 1) / 2 * column_spacing),
            np.full(slices, -(size - 1) / 2 * row_spacing),
            z_positions,
        ],
        axis=1,
    )
    return PhantomSeries(
        label=label,
        hounsfield=hounsfield,
        masks=masks,
        pixel_spacing=(row_spacing, column_spacing),
        slice_positions=positions,
        image_orientation=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
        slice_thickness=float(slice_spacing),
    )


def _draw_lesion(image, mask, lesion: _Lesion, *, x, y, z) -> None:
    """Paint the lesion's cross-section at height ``z`` into ``image`` and ``mask`` in place."""
    dz = z - lesion.centre[2]
    if abs(dz) >= lesion.radius:
        return
    section_radius = float(np.sqrt(lesion.radius**2 - dz**2))
    dx = x - lesion.centre[0]
    dy = y - lesion.centre[1]
    distance = np.sqrt(dx**2 + dy**2)
    if lesion.lobulation:
        angle = np.arctan2(dy, dx)
        section_radius_map = section_radius * (
            1 + lesion.lobulation * np.sin(3 * angle + lesion.lobulation_phase)
        )
    else:
        section_radius_map = section_radius
    inside = distance <= section_radius_map
    mask |= inside
    softness = max(lesion.edge_softness * lesion.radius, 0.5)
    weight = 1.0 / (1.0 + np.exp(np.clip((distance - section_radius_map) / softness, -50, 50)))
    weight = np.where(inside | (weight > 0.05), weight, 0.0).astype(np.float32)
    image += weight * (lesion.hounsfield - image) * (image < lesion.hounsfield + 200)
    if lesion.cavity_radius and abs(dz) < lesion.cavity_radius * lesion.radius:
        cavity_radius = np.sqrt((lesion.cavity_radius * lesion.radius) ** 2 - dz**2)
        image[distance <= cavity_radius] = LUNG_HU - 50


def new_dicom_file(path, *, sop_class_uid, study_uid, series_uid, frame_of_reference_uid, patient_id, patient_name,
                   study_date):
    """A new explicit-little-endian DICOM file dataset with the identifiers every generated slice carries."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, generate_uid

    sop_instance_uid = generate_uid()
    file_meta = FileMetaDataset()
    file_meta.MediaStorageSOPClassUID = sop_class_uid
    file_meta.MediaStorageSOPInstanceUID = sop_instance_uid
    file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    dataset = FileDataset(str(path), {}, file_meta=file_meta, preamble=b"\0" * 128)
    dataset.SOPClassUID = sop_class_uid
    dataset.SOPInstanceUID = sop_instance_uid
    dataset.StudyInstanceUID = study_uid
    dataset.SeriesInstanceUID = series_uid
    dataset.FrameOfReferenceUID = frame_of_reference_uid
    dataset.PatientID = patient_id
    dataset.PatientName = patient_name
    dataset.StudyDate = dataset.SeriesDate = study_date.strftime("%Y%m%d")
    dataset.StudyTime = dataset.SeriesTime = "120000"
    return dataset


def write_dicom_series(
    phantom: PhantomSeries,
    directory: str | Path,
    *,
    patient_id: str,
    patient_name: str,
    study_uid: str | None = None,
    series_uid: str | None = None,
    series_number: int = 1,
    study_description: str = "Phantom chest CT",
    series_description: str | None = None,
    accession_number: str = "",
    study_date: datetime.date | None = None,
) -> list[Path]:
    """Write the phantom as CT Image Storage files (explicit VR little endian, int16 pixels).

    Files are named by instance number; returns their paths in slice order.
    """
    from pydicom.uid import generate_uid

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    study_uid = study_uid or generate_uid()
    series_uid = series_uid or generate_uid()
    frame_of_reference_uid = generate_uid()
    study_date = study_date or datetime.date.today()
    rows, columns = phantom.hounsfield.shape[1:]
    stored = (phantom.hounsfield.astype(np.int32) - int(RESCALE_INTERCEPT)).astype("<i2")
    normal = np.cross(phantom.image_orientation[:3], phantom.image_orientation[3:])
    paths = []
    for index in range(phantom.hounsfield.shape[0]):
        path = directory / f"{index + 1:04d}.dcm"
        dataset = new_dicom_file(
            path, sop_class_uid=CT_IMAGE_STORAGE, study_uid=study_uid, series_uid=series_uid,
            frame_of_reference_uid=frame_of_reference_uid, patient_id=patient_id, patient_name=patient_name,
            study_date=study_date,
        )
        dataset.AccessionNumber = accession_number
        dataset.StudyDescription = study_description
        dataset.SeriesDescription = series_description or f"Phantom axial ({phantom.label})"
        dataset.StudyID = "1"
        dataset.Modality = "CT"
        dataset.Manufacturer = "RadAssist phantom"
        dataset.BodyPartExamined = "CHEST"
        dataset.SeriesNumber = series_number
        dataset.InstanceNumber = index + 1
        dataset.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
        position = phantom.slice_positions[index]
        dataset.ImagePositionPatient = [f"{value:.4f}" for value in position]
        dataset.ImageOrientationPatient = [f"{value:.6f}" for value in phantom.image_orientation]
        dataset.SliceLocation = f"{float(np.dot(position, normal)):.4f}"
        dataset.PixelSpacing = [f"{value:.6f}" for value in phantom.pixel_spacing]
        dataset.SliceThickness = f"{phantom.slice_thickness:.4f}"
        dataset.SamplesPerPixel = 1
        dataset.PhotometricInterpretation = "MONOCHROME2"
        dataset.Rows = rows
        dataset.Columns = columns
        dataset.BitsAllocated = 16
        dataset.BitsStored = 16
        dataset.HighBit = 15
        dataset.PixelRepresentation = 1
        dataset.RescaleIntercept = f"{RESCALE_INTERCEPT:.0f}"
        dataset.RescaleSlope = "1"
        dataset.RescaleType = "HU"
        dataset.WindowCenter = "-600"
        dataset.WindowWidth = "1500"
        dataset.PixelData = stored[index].tobytes()
        dataset.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def write_classification_dataset(
    directory: str | Path,
    *,
    images_per_split: Mapping[str, int] | None = None,
    size: int = 64,
    seed: int = 0,
) -> Path:
    """Write ``<split>/<class folder>/<n>.png`` like the public chest CT-scan image set.

    Each image is a single phantom slice through the lesion centre, exported with the documented
    Hounsfield-to-grey ramp. ``images_per_split`` gives images per class in each split.
    """
    directory = Path(directory)
    images_per_split = images_per_split or {"train": 24, "valid": 8, "test": 8}
    image_seed = seed * 1_000_003
    for split, count in images_per_split.items():
        folders = CHEST_CT_TEST_FOLDERS if split == "test" else CHEST_CT_TRAINING_FOLDERS
        for label in PHANTOM_LABELS:
            class_directory = directory / split / folders[label]
            class_directory.mkdir(parents=True, exist_ok=True)
            for number in range(count):
                image_seed += 1
                phantom = generate_phantom_series(label=label, slices=1, size=size,
                                                  seed=image_seed)
                grey = grey_from_hounsfield(phantom.hounsfield[0])
                (class_directory / f"{number:04d}.png").write_bytes(encode_png(grey))
    return directory


def write_segmentation_dataset(
    directory: str | Path,
    *,
    patients: int = 4,
    slices_per_patient: int = 6,
    size: int = 64,
    seed: int = 0,
) -> Path:
    """Write ``<patient>/<patient>_<n>.tif`` beside ``<patient>_<n>_mask.tif`` (LGG layout).

    Each patient is one phantom series with a tumour of a random class; masks are 0/255.
    """
    directory = Path(directory)
    rng = np.random.default_rng(seed)
    tumour_labels = PHANTOM_LABELS[:3]
    for patient in range(patients):
        phantom = generate_phantom_series(
            label=tumour_labels[int(rng.integers(len(tumour_labels)))],
            slices=slices_per_patient,
            size=size,
            slice_spacing=5.0,
            seed=int(rng.integers(2**31)),
        )
        name = f"TCGA_PH_{patient:04d}_20200101"
        patient_directory = directory / name
        patient_directory.mkdir(parents=True, exist_ok=True)
        for number, (slice_hounsfield, mask) in enumerate(
            zip(phantom.hounsfield, phantom.masks, strict=True), start=1
        ):
            cv2.imwrite(str(patient_directory / f"{name}_{number}.tif"),
                        grey_from_hounsfield(slice_hounsfield))
            cv2.imwrite(str(patient_directory / f"{name}_{number}_mask.tif"),
                        mask.astype(np.uint8) * 255)
    return directory


def write_dicom_training_series(
    directory: str | Path,
    *,
    series_per_label: int = 3,
    slices: int = 8,
    size: int = 64,
    slice_spacing: float = 5.0,
    seed: int = 0,
) -> Path:
    """Write DICOM series with their exact masks, one folder per series, for training.

    Each folder holds the CT files of one phantom series and ``MASKS_FILE_NAME`` with ``masks``
    (bool, in InstanceNumber order) and ``label``.
    """
    directory = Path(directory)
    series_seed = seed * 1_000_003
    for label in PHANTOM_LABELS:
        for number in range(series_per_label):
            series_seed += 1
            phantom = generate_phantom_series(label=label, slices=slices, size=size,
                                              slice_spacing=slice_spacing, seed=series_seed)
            series_directory = directory / f"{label}_{number:03d}"
            write_dicom_series(phantom, series_directory, patient_id=f"PH-{series_seed}",
                               patient_name=f"Phantom^{label}^{number}")
            np.savez_compressed(series_directory / MASKS_FILE_NAME, masks=phantom.masks,
                                label=np.array(label))
    return directory
