"""Network shapes, FLOP counts, the loss, and the mapping of the public image set's folders."""

import numpy as np
import pytest

from ml.labels import CLASS_NAMES, class_name_from_folder


def test_folder_names_map_onto_classes():
    assert class_name_from_folder("adenocarcinoma_left.lower.lobe_T2_N0_M0_Ib") == "adenocarcinoma"
    assert class_name_from_folder("large.cell.carcinoma_left.hilum_T2_N2_M0_IIIa") == (
        "large_cell_carcinoma"
    )
    assert class_name_from_folder("squamous.cell.carcinoma") == "squamous_cell_carcinoma"
    assert class_name_from_folder("normal") == "normal"
    with pytest.raises(ValueError):
        class_name_from_folder("benign")


def test_classifier_shape_and_fine_tuned_block():
    from ml.networks import FINE_TUNED_BLOCK_PREFIX, VGG16_BASE_NAME, build_classifier

    model = build_classifier(input_size=32)
    probabilities = model(np.zeros((2, 32, 32, 3), dtype=np.float32), training=False).numpy()
    assert probabilities.shape == (2, len(CLASS_NAMES))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    base_layers = [layer.name for layer in model.get_layer(VGG16_BASE_NAME).layers]
    assert sum(name.startswith(FINE_TUNED_BLOCK_PREFIX) for name in base_layers) == 4
    with pytest.raises(ValueError):
        build_classifier(input_size=16)


def test_classifier_loads_base_weights_from_a_local_file(tmp_path):
    from ml.networks import VGG16_BASE_NAME, build_classifier

    source = build_classifier(input_size=32).get_layer(VGG16_BASE_NAME)
    path = tmp_path / "vgg16_base.weights.h5"
    source.save_weights(path)
    loaded = build_classifier(input_size=32, base_weights_path=path).get_layer(VGG16_BASE_NAME)
    for expected, actual in zip(source.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(expected, actual)


def test_segmenter_shape_and_input_size_check():
    from ml.networks import build_segmenter

    model = build_segmenter(input_size=32, depth=2, base_filters=4)
    output = model(np.zeros((1, 32, 32, 3), dtype=np.float32), training=False).numpy()
    assert output.shape == (1, 32, 32, 1)
    assert 0.0 <= output.min() and output.max() <= 1.0
    with pytest.raises(ValueError):
        build_segmenter(input_size=36, depth=3)


def test_forward_flops_match_the_vgg16_literature_figure():
    from ml.networks import build_classifier, forward_flops

    # VGG16's convolutional base is about 15.3 G multiply-adds at 224 x 224.
    flops = forward_flops(build_classifier(input_size=224))
    assert flops / 2 == pytest.approx(15.35e9, rel=0.01)


def test_dice_bce_loss_is_small_for_a_perfect_mask_and_large_for_its_inverse():
    from ml.networks import dice_bce_loss

    truth = np.zeros((1, 8, 8, 1), dtype=np.float32)
    truth[0, 2:6, 2:6] = 1.0
    perfect = float(dice_bce_loss(truth, np.clip(truth, 1e-6, 1 - 1e-6)))
    inverse = float(dice_bce_loss(truth, np.clip(1 - truth, 1e-6, 1 - 1e-6)))
    assert perfect < 0.01
    assert inverse > 1.0
