"""Phantom series: anatomy in Hounsfield units, exact masks, real DICOM files, image-set layouts."""

import numpy as np
import pydicom
import pytest

from imaging.pixels import grey_from_image
from imaging.pixels import rescaled_pixels as hounsfield_from_dicom
from ml.labels import CLASS_NAMES, class_name_from_folder
from ml.measurements import measure_lesions
from ml.phantoms import (
    PHANTOM_LABELS,
    generate_phantom_series,
    write_classification_dataset,
    write_dicom_series,
    write_segmentation_dataset,
)


@pytest.mark.parametrize("label", PHANTOM_LABELS)
def test_phantom_has_chest_anatomy_and_lesion_by_class(label):
    phantom = generate_phantom_series(label=label, slices=5, size=64, slice_spacing=5.0, seed=1)
    assert phantom.hounsfield.shape == phantom.masks.shape == (5, 64, 64)
    assert phantom.hounsfield.dtype == np.int16
    middle = phantom.hounsfield[2].astype(float)
    assert middle[0, 0] < -900  # air outside the body
    assert (middle < -700).mean() > 0.2  # air plus lungs
    assert (middle > 400).any()  # spine
    if label == "normal":
        assert not phantom.masks.any()
    else:
        assert phantom.masks[2].any()
        lesion_mean = middle[phantom.masks[2]].mean()
        assert lesion_mean > -700  # denser than aerated lung


def test_lesion_sizes_follow_the_class():
    volumes = {label: generate_phantom_series(label=label, slices=21, size=96, slice_spacing=2.0,
                                              seed=3).lesion_volume_ml
               for label in PHANTOM_LABELS}
    assert volumes["normal"] == 0
    assert volumes["large_cell_carcinoma"] > volumes["squamous_cell_carcinoma"]
    assert volumes["large_cell_carcinoma"] > volumes["adenocarcinoma"]


def test_dicom_series_round_trip(tmp_path):
    phantom = generate_phantom_series(label="large_cell_carcinoma", slices=4, size=48,
                                      slice_spacing=3.0, seed=2)
    paths = write_dicom_series(phantom, tmp_path, patient_id="PH-1", patient_name="Phantom^One",
                               study_uid="1.2.826.0.1.3680043.8.498.1")
    assert [path.name for path in paths] == ["0001.dcm", "0002.dcm", "0003.dcm", "0004.dcm"]
    datasets = [pydicom.dcmread(path) for path in paths]
    first = datasets[0]
    assert first.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert first.SOPClassUID == pydicom.uid.CTImageStorage
    assert first.file_meta.MediaStorageSOPInstanceUID == first.SOPInstanceUID
    assert first.PixelRepresentation == 1 and first.BitsAllocated == 16
    assert first.StudyInstanceUID == "1.2.826.0.1.3680043.8.498.1"
    assert len({dataset.SOPInstanceUID for dataset in datasets}) == 4
    assert len({dataset.SeriesInstanceUID for dataset in datasets}) == 1
    for dataset, hounsfield in zip(datasets, phantom.hounsfield, strict=True):
        np.testing.assert_array_equal(hounsfield_from_dicom(dataset), hounsfield)
    z_values = [float(dataset.ImagePositionPatient[2]) for dataset in datasets]
    assert np.diff(z_values) == pytest.approx([3.0, 3.0, 3.0])
    assert [float(value) for value in first.PixelSpacing] == pytest.approx(phantom.pixel_spacing)

    # Measurements from the files' own geometry agree with the phantom's exact volume.
    measured = measure_lesions(
        phantom.masks,
        pixel_spacing=[float(value) for value in first.PixelSpacing],
        image_positions=[[float(value) for value in d.ImagePositionPatient] for d in datasets],
        image_orientation=[float(value) for value in first.ImageOrientationPatient],
    )
    assert measured.volume_ml == pytest.approx(phantom.lesion_volume_ml, rel=1e-4)


def test_classification_dataset_has_the_public_layout(tmp_path):
    write_classification_dataset(tmp_path, images_per_split={"train": 2, "test": 1}, size=32)
    train_folders = sorted(path.name for path in (tmp_path / "train").iterdir())
    test_folders = sorted(path.name for path in (tmp_path / "test").iterdir())
    assert "adenocarcinoma_left.lower.lobe_T2_N0_M0_Ib" in train_folders
    assert "large.cell.carcinoma" in test_folders
    assert sorted(class_name_from_folder(name) for name in train_folders) == sorted(CLASS_NAMES)
    assert sorted(class_name_from_folder(name) for name in test_folders) == sorted(CLASS_NAMES)
    image = grey_from_image(next((tmp_path / "train" / "normal").glob("*.png")))
    assert image.shape == (32, 32) and image.dtype == np.uint8


def test_segmentation_dataset_has_the_lgg_layout(tmp_path):
    write_segmentation_dataset(tmp_path, patients=2, slices_per_patient=3, size=32)
    patients = sorted(tmp_path.iterdir())
    assert len(patients) == 2
    names = sorted(path.name for path in patients[0].iterdir())
    assert names[:2] == [f"{patients[0].name}_1.tif", f"{patients[0].name}_1_mask.tif"]
    masks = [grey_from_image(path) for path in tmp_path.rglob("*_mask.tif")]
    assert set(np.unique(np.concatenate([mask.ravel() for mask in masks]))) <= {0, 255}
    assert any(mask.any() for mask in masks)


def test_unknown_label_is_refused():
    with pytest.raises(ValueError):
        generate_phantom_series(label="melanoma", slices=1, size=16)
