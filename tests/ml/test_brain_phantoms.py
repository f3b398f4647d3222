"""Brain phantoms: an exact tumour mask, FLAIR contrast, and MR DICOM series the catalogue routes to the brain pair."""

import numpy as np
import pydicom
import pytest

from ml.brain_phantoms import generate_brain_phantom, write_brain_mr_study
from ml.catalogue import BRAIN_MR_FLAIR, SeriesKind, route_series


def test_phantom_has_an_exact_tumour_with_flair_contrast():
    phantom = generate_brain_phantom(slices=12, size=64, seed=3)
    flair, t1, t1_post = (phantom.images[name].astype(float) for name in ("FLAIR", "T1", "T1_POST"))
    assert flair.shape == phantom.tumour_masks.shape == (12, 64, 64)
    assert phantom.has_tumour and 1.0 < phantom.tumour_volume_ml < 20.0
    voxel_ml = phantom.pixel_spacing[0] * phantom.pixel_spacing[1] * phantom.slice_spacing / 1000
    assert phantom.tumour_volume_ml == pytest.approx(phantom.tumour_masks.sum() * voxel_ml)
    tumour = phantom.tumour_masks
    brain = flair[~tumour & (flair > 0.3 * np.percentile(flair, 99))]
    assert flair[tumour].mean() > 1.5 * brain.mean()  # bright on FLAIR
    assert t1_post[tumour].mean() > 2 * t1[tumour].mean()  # enhances after contrast
    assert not generate_brain_phantom(slices=4, size=32, with_tumour=False).has_tumour


def test_studies_differ_in_gain_so_only_per_volume_scales_compare():
    first, second = (generate_brain_phantom(slices=2, size=32, seed=seed).images["FLAIR"] for seed in (0, 1))
    assert abs(np.log(np.percentile(first, 99) / np.percentile(second, 99))) > 0.05


def test_written_study_has_real_geometry_and_routes_flair_to_the_brain_pair(tmp_path):
    phantom = generate_brain_phantom(slices=4, size=32, seed=1)
    written = write_brain_mr_study(phantom, tmp_path, patient_id="MRN-BRAIN-1", patient_name="Phantom^Brain")
    assert set(written) == {"FLAIR", "T1", "T1_POST"} and all(len(paths) == 4 for paths in written.values())
    routed = {}
    for name, paths in written.items():
        datasets = [pydicom.dcmread(path) for path in paths]
        first = datasets[0]
        assert first.Modality == "MR" and first.BodyPartExamined == "BRAIN"
        assert np.array_equal(first.pixel_array, phantom.images[name][0])
        z = [float(dataset.ImagePositionPatient[2]) for dataset in datasets]
        assert np.allclose(np.diff(z), phantom.slice_spacing)
        assert [float(value) for value in first.PixelSpacing] == pytest.approx(phantom.pixel_spacing)
        kind = SeriesKind(modality=first.Modality, body_part=first.BodyPartExamined,
                          description=first.SeriesDescription,
                          scanning_sequence="\\".join(first.ScanningSequence),
                          inversion_time=float(first.InversionTime) if "InversionTime" in first else None)
        routed[name] = route_series(kind).entry
    assert routed == {"FLAIR": BRAIN_MR_FLAIR, "T1": None, "T1_POST": None}
