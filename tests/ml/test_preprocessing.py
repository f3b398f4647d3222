"""The preprocessing path on real DICOM (pydicom's CT test file) and on 8-bit grey images."""

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from imaging.pixels import grey_from_image
from imaging.pixels import rescaled_pixels as hounsfield_from_dicom
from ml.preprocessing import (
    PreprocessingConfig,
    grey_from_hounsfield,
    hounsfield_from_grey,
    prepare_batch,
    prepare_mask,
    prepare_slice,
)


@pytest.fixture(scope="module")
def ct_small():
    return pydicom.dcmread(get_testdata_file("CT_small.dcm"))


def test_hounsfield_from_dicom_applies_rescale(ct_small):
    hounsfield = hounsfield_from_dicom(ct_small)
    slope, intercept = float(ct_small.RescaleSlope), float(ct_small.RescaleIntercept)
    assert intercept != 0  # the rescale must matter for this test to mean anything
    assert hounsfield.dtype == np.float32
    assert hounsfield.shape == (ct_small.Rows, ct_small.Columns)
    np.testing.assert_allclose(hounsfield, ct_small.pixel_array * slope + intercept)
    # Sane CT values: air about -1000 HU at the lowest, nothing beyond dense bone or metal.
    assert -1100 <= hounsfield.min() <= -500
    assert hounsfield.max() <= 4000


def test_prepare_slice_on_dicom(ct_small):
    config = PreprocessingConfig(input_size=32)
    prepared = prepare_slice(hounsfield_from_dicom(ct_small), config=config, source="hounsfield")
    assert prepared.shape == (32, 32, 3)
    assert prepared.dtype == np.float32
    assert 0.0 <= prepared.min() and prepared.max() <= 1.0
    # The lung and mediastinal channels differ: they are different windows.
    assert not np.allclose(prepared[..., 0], prepared[..., 1])


def test_windows_map_hounsfield_to_unit_range():
    config = PreprocessingConfig(input_size=8)
    hounsfield = np.full((8, 8), -600.0, dtype=np.float32)  # lung window centre
    prepared = prepare_slice(hounsfield, config=config, source="hounsfield")
    assert prepared[..., 0] == pytest.approx(0.5)  # lung window: centre -> 0.5
    assert prepared[..., 1] == pytest.approx(0.0)  # mediastinal window: below its low edge


def test_grey_ramp_round_trips_and_feeds_the_same_channels(tmp_path):
    import cv2

    hounsfield = np.linspace(-1100, 500, 256, dtype=np.float32).reshape(16, 16)
    grey = grey_from_hounsfield(hounsfield)
    np.testing.assert_allclose(hounsfield_from_grey(grey), hounsfield, atol=1600 / 255)
    path = tmp_path / "slice.png"
    cv2.imwrite(str(path), grey)
    assert (grey_from_image(path) == grey).all()
    with path.open("rb") as file:
        assert (grey_from_image(file) == grey).all()
    config = PreprocessingConfig(input_size=16)
    from_grey = prepare_slice(grey, config=config, source="grey8")
    from_hounsfield = prepare_slice(hounsfield, config=config, source="hounsfield")
    np.testing.assert_allclose(from_grey, from_hounsfield, atol=0.01)


def test_colour_images_become_grey(tmp_path):
    import cv2

    cv2.imwrite(str(tmp_path / "colour.png"), np.full((5, 6, 3), 200, dtype=np.uint8))
    assert grey_from_image(tmp_path / "colour.png").shape == (5, 6)


def test_imagenet_normalisation_subtracts_channel_means():
    config = PreprocessingConfig(input_size=8, normalisation="imagenet_caffe")
    prepared = prepare_slice(np.full((8, 8), -600.0), config=config, source="hounsfield")
    assert prepared[0, 0, 0] == pytest.approx(0.5 * 255 - 103.939, abs=1e-3)


def test_config_round_trips_through_a_dict():
    config = PreprocessingConfig(input_size=64, normalisation="imagenet_caffe")
    assert PreprocessingConfig.from_dict(config.to_dict()) == config


def test_batch_and_mask_shapes():
    config = PreprocessingConfig(input_size=16)
    batch = prepare_batch([np.zeros((40, 40)), np.zeros((20, 30))], config=config,
                          source="hounsfield")
    assert batch.shape == (2, 16, 16, 3)
    mask = np.zeros((40, 40), dtype=bool)
    mask[10:30, 10:30] = True
    prepared = prepare_mask(mask, input_size=16)
    assert prepared.shape == (16, 16, 1)
    assert set(np.unique(prepared)) == {0.0, 1.0}


def test_rejects_unknown_source_and_non_2d_input():
    config = PreprocessingConfig(input_size=16)
    with pytest.raises(ValueError):
        prepare_slice(np.zeros((4, 4)), config=config, source="rgb")
    with pytest.raises(ValueError):
        prepare_slice(np.zeros((4, 4, 3)), config=config, source="hounsfield")


def test_mr_is_scaled_per_volume_and_never_windowed_like_ct():
    from ml.preprocessing import normalise_mr_volume

    rng = np.random.default_rng(0)
    head = np.zeros((4, 32, 32), dtype=np.float32)
    head[:, 4:28, 4:28] = rng.uniform(200, 600, size=(4, 24, 24))
    head[2, 10:14, 10:14] = 1500.0  # one bright lesion: the volume's scale, not this slice's, decides
    scaled = np.stack(normalise_mr_volume(list(head)))
    assert scaled.min() == 0.0 and scaled.max() == 1.0
    assert scaled[:, 4:28, 4:28].mean() == pytest.approx(0.5, abs=0.1)
    twice_as_bright = np.stack(normalise_mr_volume(list(head * 2.0)))
    np.testing.assert_allclose(twice_as_bright, scaled, atol=1e-5)  # no absolute MR scale

    config = PreprocessingConfig.for_mr(input_size=16, channels=3)
    prepared = prepare_slice(scaled[2], config=config, source="mr")
    assert prepared.shape == (16, 16, 3) and np.array_equal(prepared[..., 0], prepared[..., 2])
    assert PreprocessingConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="CT windows are never applied to MR"):
        prepare_slice(scaled[2], config=PreprocessingConfig(input_size=16), source="mr")
    with pytest.raises(ValueError, match="never applied"):
        prepare_slice(head[2], config=config, source="hounsfield")
