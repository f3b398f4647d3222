"""Training and evaluation of both networks, tracked in MLflow and registered in its registry.

Public interface (plain functions; the management commands are thin wrappers around them):
    train_classifier(*, data_dir, tracking_uri, input_size=224, epochs=20, fine_tune_epochs=10,
                     batch_size=16, learning_rate=1e-4, fine_tune_learning_rate=1e-5,
                     base_weights_path=None, demo=False, patience=5, seed=0, augment=True,
                     artifact_location=None)
                     -> RegisteredModelVersion
    train_segmenter(*, data_dir, tracking_uri, input_size=128, depth=4, base_filters=32,
                    epochs=30, batch_size=16, learning_rate=1e-3, demo=False, patience=5, seed=0,
                    augment=True, validation_fraction=0.2, test_fraction=0.2, artifact_location=None)
                    -> RegisteredModelVersion
    bootstrap_demo_models(*, tracking_uri, work_dir, artifact_location=None, seed=0)
        -> tuple[RegisteredModelVersion, RegisteredModelVersion]
    load_classification_split(split_dir) -> (list of 8-bit grey images, int labels)
    load_segmentation_patients(data_dir) -> dict patient -> list of (grey image, bool mask)
    load_dicom_training_series(data_dir) -> dict series -> DicomTrainingSeries

Data layouts:
- classifier: ``DIR/train``, ``DIR/valid`` and optionally ``DIR/test`` (the validation split
  stands in when absent), each with one folder per class named as in the public chest CT-scan
  image set (see ``ml.networks.class_name_from_folder``).
- segmenter: ``DIR/<patient>/<slice>.tif`` beside ``<slice>_mask.tif`` (the LGG layout). Patients,
  never slices, are split into train, validation and test, so no patient is on both sides.
- both: a folder of DICOM series with masks (``ml.phantoms.write_dicom_training_series``): one
  sub-folder per series with its files and ``lesion_masks.npz``. Series are split like patients.
  The classifier learns from the slices that show the lesion (every slice of a normal series),
  labelled with the series' class; the segmenter from every slice and its mask. Pixels go in as
  Hounsfield units.

Transfer learning for the classifier has two stages: (1) train the head for ``epochs`` with the
VGG16 base frozen, at ``learning_rate``; (2) unfreeze the top block (``block5``) and fine-tune it
with the head for ``fine_tune_epochs`` at the lower ``fine_tune_learning_rate``, so the pretrained
features move only a little. Without base weights (ImageNet weights cannot be downloaded here;
pass the Keras ``vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5`` file for real training) there
is nothing pretrained to protect, so stage one trains the whole network from its He-initialised
start: a frozen random base feeds the head features too poor to learn from (tried on phantoms:
near chance), while training it end to end reaches well above chance within a few epochs.

Augmentation (training batches only): horizontal flips, small rotations (about +-5 degrees) and
intensity jitter (+-10 % contrast, +-0.05 offset); masks get the same flips and rotations as their
images. Early stopping watches the validation loss and restores the best weights.

Reproducibility: ``seed`` seeds Python, NumPy and TensorFlow, turns TensorFlow's op determinism on,
and drives the patient split, the shuffling, the augmentation (stateless random operations keyed by
seeds drawn from it) and the initialisation (every VGG16 layer its own seed derived from it, see
``ml.networks.layer_seed``). Two runs with the same seed and data give the same metrics on CPU.
The library versions are logged with each run.

Guards: a run whose loss becomes NaN or infinite (training stops at once), whose training loss
ends more than ``DIVERGENCE_FACTOR`` times higher than it started, or whose outputs on the
validation or test images contain NaN raises ``TrainingFailed`` and registers nothing (the MLflow
run stays, marked failed, with the reason). A class folder that names no known class is a
``TrainingDataError``.

Calibration: the classifier's temperature (``ml.calibration``) is fitted on the validation split,
stored with the version (``temperature`` tag) and applied before its validation and test metrics.

Evaluation (``ml.evaluation``, the same protocol as promotion): the classifier's accuracy,
per-class precision/recall/F1/sensitivity/specificity, macro AUC-ROC, expected calibration error,
the confusion matrix and ROC curves (PNG artifacts); the segmenter's Dice and IoU per patient volume
at the images' own resolution, with a 95 % bootstrap interval and the false-positive rate on
lesion-free volumes. The validation score (accuracy, Dice) is recorded on the version for
information only.

Promotion is a person's decision, never the training run's: ``ml.promotion`` scores the new
version and the champion on one frozen evaluation set (``manage.py promote_model``). The one
exception is a fresh installation: a demo model becomes champion where no champion exists.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from imaging.pixels import grey_from_image
from ml.calibration import apply_temperature, fit_temperature
from ml.evaluation import (
    CLASSIFICATION,
    KINDS,
    SEGMENTATION,
    EvaluationCase,
    EvaluationSet,
    EvaluationSetError,
    evaluate_model,
    evaluation_set_from_cases,
    manifest_hash,
    score_classification,
)
from ml.labels import CLASS_NAMES, class_name_from_folder
from ml.metrics import plot_confusion_matrix, plot_roc_curves
from ml.preprocessing import PreprocessingConfig, prepare_batch, prepare_mask
from ml.registry import (
    AUTOMATIC_APPROVAL,
    CLASSIFIER_MODEL_NAME,
    SEGMENTER_MODEL_NAME,
    TEMPERATURE_TAG,
    RegisteredModelVersion,
    champion_version,
    ensure_experiment,
    promote_version,
    register_keras_model,
    using_tracking_store,
)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}
MASK_SUFFIX = "_mask"
MASK_THRESHOLD = 0.5


class TrainingDataError(Exception):
    """The training folder does not have the expected layout."""


class TrainingFailed(Exception):
    """The run finished but its model must not be registered (diverged, or outputs not numbers).

    The MLflow run is kept, marked failed, with the reason in its ``not_registered_reason`` tag.
    """


#: A run whose last epoch's training loss exceeds its first epoch's by this factor diverged.
DIVERGENCE_FACTOR = 2.0


@dataclass(frozen=True)
class DicomTrainingSeries:
    label: str
    hounsfield: list[np.ndarray]  # slices in InstanceNumber order
    masks: np.ndarray  # bool (slices, rows, columns)


def is_dicom_training_folder(data_dir: Path) -> bool:
    from ml.phantoms import MASKS_FILE_NAME

    return any((child / MASKS_FILE_NAME).is_file() for child in data_dir.iterdir())


def load_dicom_training_series(data_dir: str | Path) -> dict[str, DicomTrainingSeries]:
    import pydicom

    from imaging.pixels import rescaled_pixels as hounsfield_from_dicom
    from ml.phantoms import MASKS_FILE_NAME

    series = {}
    for series_directory in sorted(Path(data_dir).iterdir()):
        masks_path = series_directory / MASKS_FILE_NAME
        if not masks_path.is_file():
            continue
        datasets = sorted((pydicom.dcmread(path) for path in series_directory.glob("*.dcm")),
                          key=lambda dataset: int(dataset.InstanceNumber))
        with np.load(masks_path) as stored:
            masks, label = stored["masks"].astype(bool), str(stored["label"])
        if len(datasets) != len(masks):
            raise TrainingDataError(f"{series_directory}: {len(datasets)} files, {len(masks)} masks")
        series[series_directory.name] = DicomTrainingSeries(
            label, [hounsfield_from_dicom(dataset) for dataset in datasets], masks)
    if not series:
        raise TrainingDataError(f"no series with {MASKS_FILE_NAME} under {data_dir}")
    return series


def _image_files(directory: Path) -> list[Path]:
    return sorted(
        path for path in directory.iterdir()
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()
    )


def load_classification_split(split_dir: str | Path) -> tuple[list[np.ndarray], np.ndarray]:
    split_dir = Path(split_dir)
    images, labels = [], []
    for class_directory in sorted(path for path in split_dir.iterdir() if path.is_dir()):
        try:
            label = CLASS_NAMES.index(class_name_from_folder(class_directory.name))
        except ValueError as error:
            raise TrainingDataError(
                f"{class_directory}: the folder name does not name a known class. Class folders must be "
                f"named after one of {', '.join(CLASS_NAMES)} (or the public chest CT-scan set's names for "
                "them); rename or remove this folder."
            ) from error
        for path in _image_files(class_directory):
            images.append(grey_from_image(path))
            labels.append(label)
    if not images:
        raise TrainingDataError(f"no images under {split_dir}")
    return images, np.asarray(labels, dtype=np.int32)


def load_segmentation_patients(data_dir: str | Path) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    data_dir = Path(data_dir)
    patients = {}
    for patient_directory in sorted(path for path in data_dir.iterdir() if path.is_dir()):
        pairs = []
        for image_path in _image_files(patient_directory):
            if image_path.stem.endswith(MASK_SUFFIX):
                continue
            mask_path = image_path.with_name(f"{image_path.stem}{MASK_SUFFIX}{image_path.suffix}")
            if not mask_path.exists():
                raise TrainingDataError(f"{image_path} has no mask {mask_path.name}")
            pairs.append((grey_from_image(image_path), grey_from_image(mask_path) > 127))
        if pairs:
            patients[patient_directory.name] = pairs
    if not patients:
        raise TrainingDataError(f"no <patient>/<slice>.tif + <slice>_mask.tif pairs under {data_dir}")
    return patients


def _split_patients(
    names: list[str], *, validation_fraction: float, test_fraction: float, seed: int
) -> tuple[list[str], list[str], list[str]]:
    if len(names) < 3:
        raise TrainingDataError("at least three patients are needed for train/validation/test")
    order = [str(name) for name in np.random.default_rng(seed).permutation(names)]
    test_count = max(1, round(len(order) * test_fraction))
    validation_count = max(1, round(len(order) * validation_fraction))
    test = order[:test_count]
    validation = order[test_count:test_count + validation_count]
    train = order[test_count + validation_count:]
    if not train:
        raise TrainingDataError("too few patients left for training after the split")
    return train, validation, test


def _augmenter(*, with_mask: bool):
    """A function for ``tf.data.Dataset.map`` that augments one training batch.

    Stateless random operations keyed by per-batch seed pairs (drawn from a dataset seeded with the
    run's ``--seed``), so the same seed gives the same augmentation whatever thread runs the map.
    """
    import keras
    import tensorflow as tf

    def rotate(stack, angles):
        """Rotate each image about its centre by ``angles`` (radians), edges repeated."""
        height = tf.cast(tf.shape(stack)[1], tf.float32)
        width = tf.cast(tf.shape(stack)[2], tf.float32)
        cos, sin = tf.cos(angles), tf.sin(angles)
        centre_x, centre_y = (width - 1) / 2, (height - 1) / 2
        zeros = tf.zeros_like(angles)
        transforms = tf.stack([
            cos, -sin, centre_x - cos * centre_x + sin * centre_y,
            sin, cos, centre_y - sin * centre_x - cos * centre_y,
            zeros, zeros,
        ], axis=1)
        return keras.ops.image.affine_transform(stack, transforms, interpolation="bilinear",
                                                fill_mode="nearest")

    def geometry(stack, seeds):
        batch = tf.shape(stack)[0]
        flip = tf.random.stateless_uniform((batch, 1, 1, 1), seed=seeds[0]) < 0.5
        stack = tf.where(flip, tf.reverse(stack, axis=[2]), stack)
        angles = tf.random.stateless_uniform((batch,), seed=seeds[1], minval=-0.0942, maxval=0.0942)
        return rotate(stack, angles)

    def jitter(images, seeds):
        batch = tf.shape(images)[0]
        contrast = tf.random.stateless_uniform((batch, 1, 1, 1), seed=seeds[2], minval=0.9, maxval=1.1)
        offset = tf.random.stateless_uniform((batch, 1, 1, 1), seed=seeds[3], minval=-0.05, maxval=0.05)
        return images * contrast + offset

    if with_mask:
        def augment(batch, seeds):
            images, masks = batch
            channels = tf.shape(images)[-1]
            stacked = geometry(tf.concat([images, masks], axis=-1), seeds)
            augmented_masks = tf.cast(stacked[..., channels:] >= MASK_THRESHOLD, tf.float32)
            return jitter(stacked[..., :channels], seeds), augmented_masks
    else:
        def augment(batch, seeds):
            images, labels = batch
            return jitter(geometry(images, seeds), seeds), labels
    return augment


def _training_dataset(inputs, targets, *, batch_size, seed, augment, with_mask):
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((inputs, targets))
    dataset = dataset.shuffle(len(inputs), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    if augment:
        # Four stateless seed pairs per batch, new each epoch, all following the run's seed.
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(8).map(
            lambda values: tf.reshape(values, (4, 2)))
        dataset = tf.data.Dataset.zip((dataset, seeds)).map(
            _augmenter(with_mask=with_mask), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _mlflow_epoch_logger(*, step_offset: int):
    """A Keras callback that logs every epoch's metrics to the active MLflow run."""
    import keras
    import mlflow

    class MlflowEpochLogger(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            mlflow.log_metrics(
                {name: float(value) for name, value in (logs or {}).items()},
                step=step_offset + epoch,
            )

    return MlflowEpochLogger()


def _fit(model, train, validation, *, epochs, patience, step_offset) -> dict[str, list[float]]:
    """Fit with early stopping on validation loss; returns the per-epoch history (empty if no epochs)."""
    import keras

    if epochs <= 0:
        return {}
    history = model.fit(
        train,
        validation_data=validation,
        epochs=epochs,
        shuffle=False,  # the tf.data pipeline already reshuffles every epoch
        verbose=0,
        callbacks=[
            keras.callbacks.TerminateOnNaN(),
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=patience, restore_best_weights=True
            ),
            _mlflow_epoch_logger(step_offset=step_offset),
        ],
    )
    return {name: [float(value) for value in values] for name, values in history.history.items()}


def _refuse_unsound_run(*, histories: list[dict], outputs_nan: bool) -> None:
    """Raise TrainingFailed (and tag the active run) when the model must not be registered."""
    import mlflow

    reason = None
    losses = [value for history in histories for value in history.get("loss", [])]
    validation_losses = [value for history in histories for value in history.get("val_loss", [])]
    if not np.isfinite(losses + validation_losses).all():
        reason = "the training or validation loss became NaN or infinite"
    elif losses and losses[-1] > DIVERGENCE_FACTOR * losses[0]:
        reason = (f"the training loss diverged (first epoch {losses[0]:.4g}, last {losses[-1]:.4g}, "
                  f"more than {DIVERGENCE_FACTOR:g} times higher)")
    elif outputs_nan:
        reason = "the model's outputs on the validation or test images contain NaN"
    if reason is not None:
        mlflow.set_tag("not_registered_reason", reason)
        raise TrainingFailed(f"The model was not registered: {reason}. Lower the learning rate or check the data.")


def _set_seed(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow from the run's seed and make TensorFlow's ops deterministic."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def _log_environment() -> None:
    """The library versions that produced the model, logged with the run."""
    import platform

    import keras
    import mlflow
    import tensorflow as tf

    mlflow.log_params({"python_version": platform.python_version(), "tensorflow_version": tf.__version__,
                       "keras_version": keras.__version__, "numpy_version": np.__version__})


def _log_evaluation_input(evaluation_set, *, context: str) -> None:
    """Name the set a score was measured on (its content hash) in the active run."""
    import mlflow
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    mlflow.log_input(
        MetaDataset(resolve_dataset_source(evaluation_set.source_uri), name=context,
                    digest=evaluation_set.manifest_hash[:32]),
        context=context,
    )


def _flat_classification_metrics(metrics: dict, *, prefix: str) -> dict[str, float]:
    flat = {f"{prefix}accuracy": metrics["accuracy"],
            f"{prefix}macro_auc_roc": metrics["macro_auc_roc"],
            f"{prefix}expected_calibration_error": metrics["expected_calibration_error"]}
    for class_name, values in metrics["per_class"].items():
        for name, value in values.items():
            flat[f"{prefix}{class_name}_{name}"] = float(value)
    return {name: value for name, value in flat.items() if not np.isnan(value)}


def _classification_splits(data_dir: Path, *, config: PreprocessingConfig, seed: int):
    """Prepared ``{"train"|"valid"|"test": (inputs, labels)}`` and where the test split came from."""
    if is_dicom_training_folder(data_dir):
        series = load_dicom_training_series(data_dir)
        names = _split_patients(sorted(series), validation_fraction=0.2, test_fraction=0.2,
                                seed=seed)
        splits = {}
        for split, split_names in zip(("train", "valid", "test"), names, strict=True):
            slices, labels = [], []
            for name in split_names:
                item = series[name]
                shows_lesion = item.masks.any(axis=(1, 2)) | (item.label == "normal")
                slices += [array for array, keep in zip(item.hounsfield, shows_lesion,
                                                        strict=True) if keep]
                labels += [CLASS_NAMES.index(item.label)] * int(shows_lesion.sum())
            splits[split] = (prepare_batch(slices, config=config, source="hounsfield"),
                             np.asarray(labels, dtype=np.int32))
        return splits, "series"
    for required in ("train", "valid"):
        if not (data_dir / required).is_dir():
            raise TrainingDataError(f"{data_dir} has no {required}/ folder")
    test_dir = data_dir / "test" if (data_dir / "test").is_dir() else data_dir / "valid"
    splits = {}
    for split, directory in (("train", data_dir / "train"), ("valid", data_dir / "valid"),
                             ("test", test_dir)):
        images, labels = load_classification_split(directory)
        splits[split] = (prepare_batch(images, config=config, source="grey8"), labels)
    return splits, test_dir.name


def train_classifier(
    *,
    data_dir: str | Path,
    tracking_uri: str,
    input_size: int = 224,
    epochs: int = 20,
    fine_tune_epochs: int = 10,
    batch_size: int = 16,
    learning_rate: float = 1e-4,
    fine_tune_learning_rate: float = 1e-5,
    base_weights_path: str | Path | None = None,
    demo: bool = False,
    patience: int = 5,
    seed: int = 0,
    augment: bool = True,
    artifact_location: str | None = None,
) -> RegisteredModelVersion:
    import keras
    import mlflow

    from ml.networks import FINE_TUNED_BLOCK_PREFIX, VGG16_BASE_NAME, build_classifier

    config = PreprocessingConfig(
        input_size=input_size,
        normalisation="imagenet_caffe" if base_weights_path else "unit",
    )
    splits, test_split_name = _classification_splits(Path(data_dir), config=config, seed=seed)

    _set_seed(seed)
    model = build_classifier(input_size=input_size, base_weights_path=base_weights_path, seed=seed)
    base = model.get_layer(VGG16_BASE_NAME)
    train = _training_dataset(*splits["train"], batch_size=batch_size, seed=seed,
                              augment=augment, with_mask=False)
    validation = splits["valid"]

    experiment_id = ensure_experiment(
        CLASSIFIER_MODEL_NAME, tracking_uri=tracking_uri, artifact_location=artifact_location
    )
    with using_tracking_store(tracking_uri), mlflow.start_run(experiment_id=experiment_id):
        mlflow.log_params({
            "input_size": input_size, "epochs": epochs, "fine_tune_epochs": fine_tune_epochs,
            "batch_size": batch_size, "learning_rate": learning_rate,
            "fine_tune_learning_rate": fine_tune_learning_rate,
            "base_weights": Path(base_weights_path).name if base_weights_path else "random",
            "augment": augment, "seed": seed, "demo": demo,
            "test_split": test_split_name,
            "train_images": len(splits["train"][1]), "valid_images": len(splits["valid"][1]),
            "test_images": len(splits["test"][1]),
        })
        _log_environment()
        base.trainable = base_weights_path is None
        model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        histories = [_fit(model, train, validation, epochs=epochs, patience=patience, step_offset=0)]
        if fine_tune_epochs > 0 and np.isfinite(histories[0].get("loss", [0.0])).all():
            base.trainable = True
            for layer in base.layers:
                layer.trainable = layer.name.startswith(FINE_TUNED_BLOCK_PREFIX)
            model.compile(optimizer=keras.optimizers.Adam(fine_tune_learning_rate),
                          loss="sparse_categorical_crossentropy", metrics=["accuracy"])
            histories.append(_fit(model, train, validation, epochs=fine_tune_epochs, patience=patience,
                                  step_offset=len(histories[0].get("loss", []))))

        validation_probabilities = model.predict(validation[0], batch_size=batch_size, verbose=0)
        test_inputs, test_labels = splits["test"]
        test_probabilities = model.predict(test_inputs, batch_size=batch_size, verbose=0)
        _refuse_unsound_run(histories=histories, outputs_nan=not (
            np.isfinite(validation_probabilities).all() and np.isfinite(test_probabilities).all()))
        temperature = fit_temperature(validation[1], validation_probabilities)
        validation_probabilities = apply_temperature(validation_probabilities, temperature)
        test_probabilities = apply_temperature(test_probabilities, temperature)
        mlflow.log_metric("temperature", temperature)
        validation_metrics = score_classification(validation[1], validation_probabilities).metrics
        test_metrics = score_classification(test_labels, test_probabilities).metrics
        mlflow.log_metrics(_flat_classification_metrics(validation_metrics, prefix="validation_"))
        mlflow.log_metrics(_flat_classification_metrics(test_metrics, prefix="test_"))
        mlflow.log_dict(test_metrics, "evaluation/test_metrics.json")
        with tempfile.TemporaryDirectory() as directory:
            mlflow.log_artifact(str(plot_confusion_matrix(
                test_metrics["confusion_matrix"], class_names=CLASS_NAMES,
                path=Path(directory) / "confusion_matrix.png")), "evaluation")
            mlflow.log_artifact(str(plot_roc_curves(
                test_labels, test_probabilities, class_names=CLASS_NAMES,
                path=Path(directory) / "roc_curves.png")), "evaluation")

        registered = register_keras_model(
            model=model, model_name=CLASSIFIER_MODEL_NAME, preprocessing_config=config,
            validation_metric="accuracy", validation_score=validation_metrics["accuracy"],
            tracking_uri=tracking_uri, is_demo=demo, reference_inputs=validation[0],
            tags={TEMPERATURE_TAG: repr(temperature)},
        )
    is_champion = _champion_if_first_demo(registered, tracking_uri=tracking_uri)
    return replace(registered, is_champion=is_champion, test_metrics=test_metrics)


def _stack_pairs(pairs, *, config: PreprocessingConfig, source: str = "grey8"):
    images = prepare_batch([image for image, _ in pairs], config=config, source=source)
    masks = np.stack([prepare_mask(mask, input_size=config.input_size) for _, mask in pairs])
    return images, masks


def train_segmenter(
    *,
    data_dir: str | Path,
    tracking_uri: str,
    input_size: int = 128,
    depth: int = 4,
    base_filters: int = 32,
    epochs: int = 30,
    batch_size: int = 16,
    learning_rate: float = 1e-3,
    demo: bool = False,
    patience: int = 5,
    seed: int = 0,
    augment: bool = True,
    validation_fraction: float = 0.2,
    test_fraction: float = 0.2,
    artifact_location: str | None = None,
) -> RegisteredModelVersion:
    import keras
    import mlflow

    from ml.networks import build_segmenter, dice_bce_loss, soft_dice

    if is_dicom_training_folder(Path(data_dir)):
        source = "hounsfield"
        patients = {
            name: list(zip(item.hounsfield, item.masks, strict=True))
            for name, item in load_dicom_training_series(data_dir).items()
        }
    else:
        source = "grey8"
        patients = load_segmentation_patients(data_dir)
    train_names, validation_names, test_names = _split_patients(
        sorted(patients), validation_fraction=validation_fraction,
        test_fraction=test_fraction, seed=seed,
    )
    config = PreprocessingConfig(input_size=input_size)
    train_inputs, train_masks = _stack_pairs(
        [pair for name in train_names for pair in patients[name]], config=config, source=source)
    validation = _stack_pairs(
        [pair for name in validation_names for pair in patients[name]], config=config,
        source=source)

    def volumes(names, context):
        cases = [EvaluationCase(name=name, slices=[image for image, _ in patients[name]], source=source,
                                masks=np.stack([mask for _, mask in patients[name]])) for name in names]
        return evaluation_set_from_cases(SEGMENTATION, cases,
                                         source_uri=f"{Path(data_dir).resolve().as_uri()}#{context}")

    _set_seed(seed)
    model = build_segmenter(input_size=input_size, depth=depth, base_filters=base_filters)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=dice_bce_loss,
                  metrics=[soft_dice])
    train = _training_dataset(train_inputs, train_masks, batch_size=batch_size, seed=seed,
                              augment=augment, with_mask=True)

    experiment_id = ensure_experiment(
        SEGMENTER_MODEL_NAME, tracking_uri=tracking_uri, artifact_location=artifact_location
    )
    with using_tracking_store(tracking_uri), mlflow.start_run(experiment_id=experiment_id):
        mlflow.log_params({
            "input_size": input_size, "depth": depth, "base_filters": base_filters,
            "epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate,
            "augment": augment, "seed": seed, "demo": demo,
            "train_patients": len(train_names), "validation_patients": len(validation_names),
            "test_patients": len(test_names), "train_slices": len(train_inputs),
        })
        _log_environment()
        mlflow.log_dict({"train": train_names, "validation": validation_names,
                         "test": test_names}, "evaluation/patient_split.json")
        history = _fit(model, train, validation, epochs=epochs, patience=patience, step_offset=0)

        # Validation and test are scored alike: per patient volume, at the images' own resolution.
        validation_set, test_set = volumes(validation_names, "validation"), volumes(test_names, "test")
        validation_result = evaluate_model(model, config=config, evaluation_set=validation_set,
                                           batch_size=batch_size)
        test_result = evaluate_model(model, config=config, evaluation_set=test_set, batch_size=batch_size)
        _refuse_unsound_run(histories=[history], outputs_nan=bool(
            np.isnan(validation_result.per_case).any() or np.isnan(test_result.per_case).any()))
        for evaluation_set, context in ((validation_set, "validation"), (test_set, "test")):
            _log_evaluation_input(evaluation_set, context=context)
        test_metrics = {"patients": test_names, **test_result.metrics,
                        "dice_interval_95": list(test_result.interval)}
        mlflow.log_metrics({name: value for name, value in {
            "validation_dice": validation_result.score, "test_dice": test_result.score,
            "test_iou": test_result.metrics["iou"],
            "test_dice_ci95_low": test_result.interval[0], "test_dice_ci95_high": test_result.interval[1],
            "test_false_positive_rate_lesion_free": test_result.metrics["false_positive_rate_lesion_free"],
        }.items() if not np.isnan(value)})
        mlflow.log_dict(test_metrics, "evaluation/test_metrics.json")
        registered = register_keras_model(
            model=model, model_name=SEGMENTER_MODEL_NAME, preprocessing_config=config,
            validation_metric="dice", validation_score=validation_result.score,
            tracking_uri=tracking_uri, is_demo=demo, reference_inputs=validation[0],
        )
    is_champion = _champion_if_first_demo(registered, tracking_uri=tracking_uri)
    return replace(registered, is_champion=is_champion, test_metrics=test_metrics)


def bootstrap_demo_models(
    *, tracking_uri: str, work_dir: str | Path, artifact_location: str | None = None,
    seed: int = 0,
) -> tuple[RegisteredModelVersion, RegisteredModelVersion]:
    """Train small demo models on phantoms and register them with ``demo=true``.

    They become champion only where no champion exists, so a real model is never displaced by a
    demo one. Sized to finish in a couple of minutes on two CPU cores; the results are for
    trying the portal out, not for clinical use.
    """
    from ml.phantoms import write_classification_dataset, write_segmentation_dataset

    work_dir = Path(work_dir)
    classification_dir = write_classification_dataset(
        work_dir / "demo-classification", images_per_split={"train": 40, "valid": 10, "test": 10},
        size=96, seed=seed,
    )
    segmentation_dir = write_segmentation_dataset(
        work_dir / "demo-segmentation", patients=10, slices_per_patient=8, size=96, seed=seed,
    )
    classifier = train_classifier(
        data_dir=classification_dir, tracking_uri=tracking_uri, input_size=32, epochs=12,
        fine_tune_epochs=1, batch_size=16, learning_rate=1e-4, demo=True, patience=4,
        seed=seed, artifact_location=artifact_location,
    )
    segmenter = train_segmenter(
        data_dir=segmentation_dir, tracking_uri=tracking_uri, input_size=64, depth=3,
        base_filters=16, epochs=30, batch_size=8, learning_rate=3e-3, demo=True, patience=8,
        seed=seed, artifact_location=artifact_location,
    )
    return classifier, segmenter


def _champion_if_first_demo(registered: RegisteredModelVersion, *, tracking_uri: str) -> bool:
    """Training never moves an existing champion: promotion is a person's decision (``promote_model``).

    The one exception installs the portal: a demo model becomes champion where none exists, so a
    fresh installation can analyse phantoms at once. A real model is never promoted without approval.
    Returns whether ``registered`` is the champion afterwards.
    """
    current = champion_version(registered.name, tracking_uri=tracking_uri)
    if current is not None:
        return current.version == registered.version
    if not registered.is_demo:
        return False
    promote_version(model_name=registered.name, version=registered.version, tracking_uri=tracking_uri,
                    approved_by=AUTOMATIC_APPROVAL, reason="first demo model of a new installation")
    return True


def load_evaluation_set(directory: str | Path, *, kind: str) -> EvaluationSet:
    """A frozen evaluation set read from a folder in the training layouts, with its manifest hash."""
    directory = Path(directory)
    if not directory.is_dir():
        raise EvaluationSetError(f"{directory} is not a folder")
    if kind not in KINDS:
        raise EvaluationSetError(f"unknown evaluation kind {kind!r}; expected one of {KINDS}")
    try:
        if kind == CLASSIFICATION:
            images, labels = load_classification_split(directory)
            cases = [
                EvaluationCase(name=str(index), slices=[image], source="grey8", label=int(label))
                for index, (image, label) in enumerate(zip(images, labels, strict=True))
            ]
        elif is_dicom_training_folder(directory):
            cases = [
                EvaluationCase(name=name, slices=list(item.hounsfield), source="hounsfield", masks=item.masks)
                for name, item in load_dicom_training_series(directory).items()
            ]
        else:
            cases = [
                EvaluationCase(name=name, slices=[image for image, _ in pairs], source="grey8",
                               masks=np.stack([mask for _, mask in pairs]))
                for name, pairs in load_segmentation_patients(directory).items()
            ]
    except TrainingDataError as error:
        raise EvaluationSetError(str(error)) from error
    return EvaluationSet(kind=kind, cases=cases, manifest_hash=manifest_hash(directory),
                         source_uri=directory.resolve().as_uri())
