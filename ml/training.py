"""Training and evaluation of both networks, tracked in MLflow and registered in its registry.

Public interface (plain functions; the management commands are thin wrappers around them):
    train_classifier(*, data_dir, tracking_uri, input_size=224, epochs=20, fine_tune_epochs=10,
                     batch_size=16, learning_rate=1e-4, fine_tune_learning_rate=1e-5,
                     base_weights_path=None, promote=False, keep_existing_champion=False,
                     demo=False, patience=5, seed=0, augment=True, artifact_location=None)
                     -> RegisteredModelVersion
    train_segmenter(*, data_dir, tracking_uri, input_size=128, depth=4, base_filters=32,
                    epochs=30, batch_size=16, learning_rate=1e-3, promote=False,
                    keep_existing_champion=False, demo=False, patience=5, seed=0, augment=True,
                    validation_fraction=0.2, test_fraction=0.2, artifact_location=None)
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

Logged per run: parameters, per-epoch training and validation loss and metrics, and on the test
split accuracy, per-class precision/recall/F1/sensitivity/specificity, macro AUC-ROC, the
confusion matrix and ROC curves (PNG artifacts) for the classifier; Dice and IoU, mean and per
patient, for the segmenter. The validation metric that decides promotion is accuracy for the
classifier and Dice for the segmenter. After registering, the new version becomes champion when
it beats the champion (``ml.registry.promote_if_better``), always with ``promote=True``, and never
while another champion exists with ``keep_existing_champion=True`` (demo models).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from imaging.pixels import grey_from_image
from ml.labels import CLASS_NAMES, class_name_from_folder
from ml.metrics import (
    classification_metrics,
    plot_confusion_matrix,
    plot_roc_curves,
    segmentation_metrics,
)
from ml.preprocessing import PreprocessingConfig, prepare_batch, prepare_mask
from ml.registry import (
    CLASSIFIER_MODEL_NAME,
    SEGMENTER_MODEL_NAME,
    RegisteredModelVersion,
    champion_version,
    ensure_experiment,
    promote_if_better,
    register_keras_model,
    using_tracking_store,
)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}
MASK_SUFFIX = "_mask"
MASK_THRESHOLD = 0.5


class TrainingDataError(Exception):
    """The training folder does not have the expected layout."""


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
        label = CLASS_NAMES.index(class_name_from_folder(class_directory.name))
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


def _augmenter(*, seed: int, with_mask: bool):
    """A function for ``tf.data.Dataset.map`` that augments one training batch."""
    import keras
    import tensorflow as tf

    geometry = keras.Sequential(
        [keras.layers.RandomFlip("horizontal", seed=seed),
         keras.layers.RandomRotation(0.015, fill_mode="nearest", seed=seed)]
    )

    def jitter(images):
        batch = tf.shape(images)[0]
        contrast = tf.random.uniform((batch, 1, 1, 1), 0.9, 1.1)
        offset = tf.random.uniform((batch, 1, 1, 1), -0.05, 0.05)
        return images * contrast + offset

    if with_mask:
        def augment(images, masks):
            channels = tf.shape(images)[-1]
            stacked = geometry(tf.concat([images, masks], axis=-1), training=True)
            augmented_masks = tf.cast(stacked[..., channels:] >= MASK_THRESHOLD, tf.float32)
            return jitter(stacked[..., :channels]), augmented_masks
    else:
        def augment(images, labels):
            return jitter(geometry(images, training=True)), labels
    return augment


def _training_dataset(inputs, targets, *, batch_size, seed, augment, with_mask):
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((inputs, targets))
    dataset = dataset.shuffle(len(inputs), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    if augment:
        dataset = dataset.map(_augmenter(seed=seed, with_mask=with_mask),
                              num_parallel_calls=tf.data.AUTOTUNE)
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


def _fit(model, train, validation, *, epochs, patience, step_offset) -> int:
    """Fit with early stopping on validation loss; returns the number of epochs run."""
    import keras

    if epochs <= 0:
        return 0
    history = model.fit(
        train,
        validation_data=validation,
        epochs=epochs,
        shuffle=False,  # the tf.data pipeline already reshuffles every epoch
        verbose=0,
        callbacks=[
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=patience, restore_best_weights=True
            ),
            _mlflow_epoch_logger(step_offset=step_offset),
        ],
    )
    return len(history.history.get("loss", []))


def _set_seed(seed: int) -> None:
    import keras

    keras.utils.set_random_seed(seed)


def _flat_classification_metrics(metrics: dict, *, prefix: str) -> dict[str, float]:
    flat = {f"{prefix}accuracy": metrics["accuracy"],
            f"{prefix}macro_auc_roc": metrics["macro_auc_roc"]}
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
    promote: bool = False,
    keep_existing_champion: bool = False,
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
    model = build_classifier(input_size=input_size, base_weights_path=base_weights_path)
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
        base.trainable = base_weights_path is None
        model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        head_epochs = _fit(model, train, validation, epochs=epochs, patience=patience,
                           step_offset=0)
        if fine_tune_epochs > 0:
            base.trainable = True
            for layer in base.layers:
                layer.trainable = layer.name.startswith(FINE_TUNED_BLOCK_PREFIX)
            model.compile(optimizer=keras.optimizers.Adam(fine_tune_learning_rate),
                          loss="sparse_categorical_crossentropy", metrics=["accuracy"])
            _fit(model, train, validation, epochs=fine_tune_epochs, patience=patience,
                 step_offset=head_epochs)

        validation_metrics = classification_metrics(
            validation[1], model.predict(validation[0], batch_size=batch_size, verbose=0),
            class_names=CLASS_NAMES,
        )
        test_inputs, test_labels = splits["test"]
        test_probabilities = model.predict(test_inputs, batch_size=batch_size, verbose=0)
        test_metrics = classification_metrics(test_labels, test_probabilities,
                                              class_names=CLASS_NAMES)
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
            tracking_uri=tracking_uri, is_demo=demo,
        )
    is_champion = _decide_champion(
        model_name=CLASSIFIER_MODEL_NAME, version=registered.version, tracking_uri=tracking_uri,
        promote=promote, keep_existing_champion=keep_existing_champion,
    )
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
    promote: bool = False,
    keep_existing_champion: bool = False,
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
        mlflow.log_dict({"train": train_names, "validation": validation_names,
                         "test": test_names}, "evaluation/patient_split.json")
        _fit(model, train, validation, epochs=epochs, patience=patience, step_offset=0)

        def predicted_masks(inputs):
            return model.predict(inputs, batch_size=batch_size, verbose=0)[..., 0] >= MASK_THRESHOLD

        validation_dice = segmentation_metrics(
            validation[1][..., 0] > 0, predicted_masks(validation[0]))["dice"]
        true_volumes, predicted_volumes = [], []
        for name in test_names:
            inputs, masks = _stack_pairs(patients[name], config=config, source=source)
            true_volumes.append((masks[..., 0] > 0).ravel())
            predicted_volumes.append(predicted_masks(inputs).ravel())
        # Dice and IoU per case: each test patient's slices scored as one volume.
        test_metrics = {
            "patients": test_names,
            **{name: value for name, value in zip(
                ("dice", "iou", "dice_per_case", "iou_per_case"),
                _per_case_metrics(true_volumes, predicted_volumes), strict=True)},
        }
        mlflow.log_metrics({"validation_dice": validation_dice, "test_dice": test_metrics["dice"],
                            "test_iou": test_metrics["iou"]})
        mlflow.log_dict(test_metrics, "evaluation/test_metrics.json")
        registered = register_keras_model(
            model=model, model_name=SEGMENTER_MODEL_NAME, preprocessing_config=config,
            validation_metric="dice", validation_score=validation_dice,
            tracking_uri=tracking_uri, is_demo=demo,
        )
    is_champion = _decide_champion(
        model_name=SEGMENTER_MODEL_NAME, version=registered.version, tracking_uri=tracking_uri,
        promote=promote, keep_existing_champion=keep_existing_champion,
    )
    return replace(registered, is_champion=is_champion, test_metrics=test_metrics)


def _per_case_metrics(true_volumes, predicted_volumes):
    dice, iou = [], []
    for truth, predicted in zip(true_volumes, predicted_volumes, strict=True):
        metrics = segmentation_metrics(truth[np.newaxis], predicted[np.newaxis])
        dice.append(metrics["dice"])
        iou.append(metrics["iou"])
    return float(np.mean(dice)), float(np.mean(iou)), dice, iou


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
        keep_existing_champion=True, seed=seed, artifact_location=artifact_location,
    )
    segmenter = train_segmenter(
        data_dir=segmentation_dir, tracking_uri=tracking_uri, input_size=64, depth=3,
        base_filters=16, epochs=30, batch_size=8, learning_rate=3e-3, demo=True, patience=8,
        keep_existing_champion=True, seed=seed, artifact_location=artifact_location,
    )
    return classifier, segmenter


def _decide_champion(
    *, model_name: str, version: int, tracking_uri: str, promote: bool,
    keep_existing_champion: bool,
) -> bool:
    """Apply the promotion rule after registering; returns whether ``version`` is champion."""
    if keep_existing_champion:
        current = champion_version(model_name, tracking_uri=tracking_uri)
        if current is not None:
            return current.version == version
    return promote_if_better(model_name=model_name, version=version, tracking_uri=tracking_uri,
                             force=promote)
