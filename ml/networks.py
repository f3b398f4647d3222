"""Network definitions: a VGG16 transfer-learning classifier and a U-Net segmenter (Keras 3).

Public interface:
    CLASS_NAMES, class_name_from_folder(folder_name) -> str  (from ml.labels, TensorFlow-free)
    build_classifier(*, input_size, base_weights_path=None, num_classes=4, channels=3, seed=0)
        -> keras.Model  (the VGG16 base is the nested model named ``VGG16_BASE_NAME``)
    build_segmenter(*, input_size, depth=4, base_filters=32, channels=3) -> keras.Model
    dice_bce_loss(y_true, y_pred) -> tensor
    soft_dice(y_true, y_pred) -> tensor
    forward_flops(model) -> int  (multiply-adds counted as two operations, per input image)

ImageNet weights cannot be downloaded here, so ``VGG16(weights=None)`` builds the base and weights
come from a local file when one is given (the Keras ``..._notop.h5`` file, or any weights file
saved from a VGG16 base); otherwise the base starts from random initialisation.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from keras import layers, ops

from ml.labels import CLASS_NAMES, class_name_from_folder

__all__ = [
    "CLASS_NAMES", "class_name_from_folder", "build_classifier", "build_segmenter",
    "dice_bce_loss", "soft_dice", "forward_flops",
]

VGG16_BASE_NAME = "vgg16"
FINE_TUNED_BLOCK_PREFIX = "block5"


def build_classifier(
    *,
    input_size: int,
    base_weights_path: str | Path | None = None,
    num_classes: int = len(CLASS_NAMES),
    channels: int = 3,
    seed: int = 0,
) -> keras.Model:
    """VGG16 convolutional base, then flatten, dense 256 with dropout, and a softmax.

    ``seed`` (the training run's) drives the He initialisation of a base without weights file.
    """
    if input_size < 32:
        raise ValueError("VGG16 needs inputs of at least 32 x 32 pixels (five 2x poolings)")
    base = keras.applications.VGG16(
        include_top=False,
        weights=None,
        input_shape=(input_size, input_size, channels),
        name=VGG16_BASE_NAME,
    )
    if base_weights_path is not None:
        base.load_weights(str(base_weights_path))
    else:
        _reinitialise_for_relu(base, seed=seed)
    inputs = keras.Input((input_size, input_size, channels), name="slice")
    features = base(inputs)
    # Flatten rather than global pooling: where a lesion sits (central or peripheral) is part
    # of what tells the classes apart.
    flat = layers.Flatten(name="flatten")(features)
    hidden = layers.Dense(256, activation="relu", name="head_dense")(flat)
    hidden = layers.Dropout(0.3, name="head_dropout")(hidden)
    outputs = layers.Dense(num_classes, activation="softmax", name="class_probabilities")(hidden)
    return keras.Model(inputs, outputs, name="radassist_classifier")


def layer_seed(run_seed: int, layer_index: int) -> int:
    """A seed of its own for each layer, derived from the run's seed.

    One fixed seed for every layer would give layers of the same shape identical starting kernels
    (VGG16 has several), which then learn in lockstep.
    """
    return int(np.random.SeedSequence([run_seed, layer_index]).generate_state(1)[0] >> 1)


def _reinitialise_for_relu(model: keras.Model, *, seed: int) -> None:
    """Give every convolution He-normal kernels instead of Keras' Glorot-uniform default.

    Glorot scaling halves the signal's variance at each ReLU, so through VGG16's thirteen
    convolutions a randomly initialised base passes almost nothing on and learns very slowly;
    He scaling keeps the variance steady (He et al. 2015).
    """
    for index, layer in enumerate(model.layers):
        if isinstance(layer, layers.Conv2D):
            initialiser = keras.initializers.HeNormal(seed=layer_seed(seed, index))
            layer.kernel.assign(initialiser(layer.kernel.shape))


def _convolution_block(tensor, *, filters: int, name: str):
    for index in (1, 2):
        tensor = layers.Conv2D(filters, 3, padding="same", use_bias=False,
                               name=f"{name}_conv{index}")(tensor)
        tensor = layers.BatchNormalization(momentum=0.9, name=f"{name}_norm{index}")(tensor)
        tensor = layers.Activation("relu", name=f"{name}_relu{index}")(tensor)
    return tensor


def build_segmenter(
    *, input_size: int, depth: int = 4, base_filters: int = 32, channels: int = 3
) -> keras.Model:
    """U-Net (Ronneberger et al. 2015) with batch normalisation and a sigmoid lesion map.

    ``depth`` counts the poolings; filters double at each level. Same-padding keeps the output
    at the input size, which must therefore be divisible by ``2 ** depth``.
    """
    if depth < 1 or input_size % (2**depth):
        raise ValueError(f"input_size {input_size} must be divisible by 2 ** depth ({2**depth})")
    inputs = keras.Input((input_size, input_size, channels), name="slice")
    skips = []
    tensor = inputs
    for level in range(depth):
        tensor = _convolution_block(tensor, filters=base_filters * 2**level,
                                    name=f"encoder{level}")
        skips.append(tensor)
        tensor = layers.MaxPooling2D(name=f"encoder{level}_pool")(tensor)
    tensor = _convolution_block(tensor, filters=base_filters * 2**depth, name="bottleneck")
    for level in reversed(range(depth)):
        filters = base_filters * 2**level
        tensor = layers.Conv2DTranspose(filters, 2, strides=2, name=f"decoder{level}_up")(tensor)
        tensor = layers.Concatenate(name=f"decoder{level}_skip")([tensor, skips[level]])
        tensor = _convolution_block(tensor, filters=filters, name=f"decoder{level}")
    outputs = layers.Conv2D(1, 1, activation="sigmoid", name="lesion_probability")(tensor)
    return keras.Model(inputs, outputs, name="radassist_segmenter")


def soft_dice(y_true, y_pred, smooth: float = 1.0):
    """Mean soft Dice coefficient over the batch (each image scored on its own)."""
    y_true = ops.cast(y_true, y_pred.dtype)
    axes = tuple(range(1, len(y_pred.shape)))
    intersection = ops.sum(y_true * y_pred, axis=axes)
    total = ops.sum(y_true, axis=axes) + ops.sum(y_pred, axis=axes)
    return ops.mean((2.0 * intersection + smooth) / (total + smooth))


def dice_bce_loss(y_true, y_pred):
    """Binary cross-entropy plus (1 - soft Dice).

    Cross-entropy alone is dominated by the many background pixels (lesions are a few percent of
    a slice); the Dice term scores the overlap with the lesion directly.
    """
    y_true = ops.cast(y_true, y_pred.dtype)
    cross_entropy = ops.mean(keras.losses.binary_crossentropy(y_true, y_pred))
    return cross_entropy + (1.0 - soft_dice(y_true, y_pred))


def forward_flops(model: keras.Model) -> int:
    """Floating-point operations of one forward pass for one image (a multiply-add is two).

    Counts convolutions, transposed convolutions and dense layers (nested models included), which
    is where all but a fraction of a percent of the work is.
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += forward_flops(layer)
        elif isinstance(layer, layers.Conv2DTranspose):
            _, height, width, in_channels = layer.input.shape
            kernel_height, kernel_width = layer.kernel_size
            total += 2 * height * width * kernel_height * kernel_width * in_channels * layer.filters
        elif isinstance(layer, layers.Conv2D):
            in_channels = layer.input.shape[-1]
            _, height, width, _ = layer.output.shape
            kernel_height, kernel_width = layer.kernel_size
            total += 2 * height * width * kernel_height * kernel_width * in_channels * layer.filters
        elif isinstance(layer, layers.Dense):
            total += 2 * layer.input.shape[-1] * layer.units
    return int(total)
