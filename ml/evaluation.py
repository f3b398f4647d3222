"""One evaluation protocol for validation, test and promotion (Django-free; TensorFlow only when predicting).

Evaluation sets are read from folders by ``ml.training.load_evaluation_set``, next to the training loaders.

Public interface:
    EvaluationCase(name, slices, source, label=None, masks=None)
    EvaluationSet(kind, cases, manifest_hash, source_uri)
    manifest_hash(directory) -> str
    evaluation_set_from_cases(kind, cases, *, source_uri) -> EvaluationSet  (hash of the arrays)
    native_resolution_masks(lesion_maps, *, rows, columns) -> bool ndarray
    score_classification(y_true, probabilities) -> EvaluationResult
    score_segmentation(true_volumes, predicted_volumes) -> EvaluationResult
    evaluate_model(keras_model, *, config, evaluation_set, batch_size=16, temperature=1.0) -> EvaluationResult
    EvaluationResult(metric, score, per_case, metrics, interval, has_nan)

The protocol:
- Segmentation is scored per volume (one patient's or one series' slices together) at the images'
  native resolution: the lesion map is resized back to each slice's own size exactly as the
  inference engine does before it is thresholded, and Dice is taken over the whole volume. Dice is
  averaged over volumes that have a lesion (``ml.metrics`` conventions); lesion-free volumes are
  scored by their false-positive rate. The per-case score bootstrapped for promotion is each lesion
  volume's Dice.
- Classification is scored per image: accuracy (the per-case score is 1 when right, 0 when wrong),
  per-class sensitivity and specificity, macro AUC-ROC and expected calibration error.
- Every result carries a 95 % bootstrap interval of its score and says whether any output or
  metric was not a number, which alone refuses a promotion.

An evaluation set is a folder in one of the training layouts (``ml.training``): class folders for
the classifier, ``<patient>/<slice>.tif`` + ``_mask.tif`` or DICOM series with ``lesion_masks.npz``
for the segmenter. Its manifest (every file's relative path and SHA-256) is hashed; that hash names
the frozen set, is logged with every score (``mlflow.log_input``) and must be equal for two scores
to be compared.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ml.calibration import apply_temperature
from ml.labels import CLASS_NAMES
from ml.metrics import bootstrap_interval, classification_metrics, segmentation_metrics
from ml.preprocessing import PreprocessingConfig, prepare_batch

CLASSIFICATION = "classification"
SEGMENTATION = "segmentation"
KINDS = (CLASSIFICATION, SEGMENTATION)
MASK_THRESHOLD = 0.5


class EvaluationSetError(Exception):
    """The evaluation folder cannot be read as an evaluation set of the requested kind."""


@dataclass(frozen=True)
class EvaluationCase:
    name: str
    slices: list  # 2D arrays at native resolution
    source: str  # "hounsfield" or "grey8"
    label: int | None = None  # classification: index in CLASS_NAMES
    masks: np.ndarray | None = None  # segmentation: bool (slices, rows, columns)


@dataclass(frozen=True)
class EvaluationSet:
    kind: str
    cases: list[EvaluationCase]
    manifest_hash: str
    source_uri: str


@dataclass(frozen=True)
class EvaluationResult:
    metric: str  # "accuracy" or "dice"
    score: float
    per_case: np.ndarray  # the per-case score the bootstrap resamples (lesion volumes only for Dice)
    metrics: dict
    interval: tuple[float, float]
    has_nan: bool


def manifest_hash(directory: str | Path) -> str:
    """SHA-256 of the sorted list of (relative path, SHA-256 of contents) of every file below."""
    directory = Path(directory)
    entries = []
    for path in sorted(item for item in directory.rglob("*") if item.is_file()):
        entries.append([path.relative_to(directory).as_posix(), hashlib.sha256(path.read_bytes()).hexdigest()])
    if not entries:
        raise EvaluationSetError(f"{directory} holds no files")
    return hashlib.sha256(json.dumps(entries).encode()).hexdigest()


def evaluation_set_from_cases(kind: str, cases: list[EvaluationCase], *, source_uri: str) -> EvaluationSet:
    """An evaluation set made in memory (a training run's validation or test split), hashed by content."""
    digest = hashlib.sha256()
    for case in cases:
        digest.update(case.name.encode())
        for array in (*case.slices, case.masks if case.masks is not None else np.asarray(case.label)):
            digest.update(np.ascontiguousarray(array).tobytes())
    return EvaluationSet(kind=kind, cases=cases, manifest_hash=digest.hexdigest(), source_uri=source_uri)


def native_resolution_masks(lesion_maps: np.ndarray, *, rows: int, columns: int) -> np.ndarray:
    """Lesion maps at the network's size, resized to the image's own and thresholded (as at inference)."""
    return np.stack([
        cv2.resize(np.asarray(lesion_map, dtype=np.float32), (columns, rows), interpolation=cv2.INTER_LINEAR)
        >= MASK_THRESHOLD
        for lesion_map in lesion_maps
    ])


def _any_nan(values) -> bool:
    if isinstance(values, dict):
        return any(_any_nan(value) for value in values.values())
    if isinstance(values, (list, tuple)):
        return any(_any_nan(value) for value in values)
    return isinstance(values, float) and bool(np.isnan(values))


def score_classification(y_true, probabilities) -> EvaluationResult:
    probabilities = np.asarray(probabilities, dtype=np.float64)
    y_true = np.asarray(y_true, dtype=int)
    outputs_nan = not np.isfinite(probabilities).all()
    metrics = classification_metrics(y_true, np.nan_to_num(probabilities, nan=0.0), class_names=CLASS_NAMES)
    correct = (probabilities.argmax(axis=1) == y_true).astype(np.float64)
    headline = {key: metrics[key] for key in ("accuracy", "macro_auc_roc", "expected_calibration_error")}
    return EvaluationResult(
        metric="accuracy",
        score=float("nan") if outputs_nan else metrics["accuracy"],
        per_case=np.full(len(correct), np.nan) if outputs_nan else correct,
        metrics=metrics,
        interval=bootstrap_interval(correct) if not outputs_nan else (float("nan"), float("nan")),
        has_nan=outputs_nan or _any_nan(headline),
    )


def score_segmentation(true_volumes, predicted_volumes, *, outputs_nan: bool = False) -> EvaluationResult:
    """Per-volume Dice; the volumes may differ in size (each is flattened on its own)."""
    flat_truth = [np.asarray(volume, dtype=bool).ravel() for volume in true_volumes]
    flat_predicted = [np.asarray(volume, dtype=bool).ravel() for volume in predicted_volumes]
    per_volume = [segmentation_metrics(truth[np.newaxis], predicted[np.newaxis])
                  for truth, predicted in zip(flat_truth, flat_predicted, strict=True)]
    dice = np.array([metrics["dice"] for metrics in per_volume])
    iou = np.array([metrics["iou"] for metrics in per_volume])
    with_lesion = np.array([truth.any() for truth in flat_truth], dtype=bool)
    lesion_free_positive = [predicted.any() for truth, predicted in zip(flat_truth, flat_predicted, strict=True)
                            if not truth.any()]
    lesion_dice = dice[with_lesion]
    score = float(lesion_dice.mean()) if len(lesion_dice) and not outputs_nan else float("nan")
    metrics = {
        "dice": score,
        "iou": float(iou[with_lesion].mean()) if with_lesion.any() and not outputs_nan else float("nan"),
        "dice_per_case": dice.tolist(),
        "iou_per_case": iou.tolist(),
        "lesion_cases": int(with_lesion.sum()),
        "lesion_free_cases": int((~with_lesion).sum()),
        "false_positive_rate_lesion_free": (
            float(np.mean(lesion_free_positive)) if lesion_free_positive else float("nan")
        ),
    }
    per_case = np.full(len(lesion_dice), np.nan) if outputs_nan else lesion_dice
    return EvaluationResult(
        metric="dice",
        score=score,
        per_case=per_case,
        metrics=metrics,
        interval=bootstrap_interval(per_case),
        has_nan=outputs_nan or np.isnan(score),
    )


def evaluate_model(keras_model, *, config: PreprocessingConfig, evaluation_set: EvaluationSet,
                   batch_size: int = 16, temperature: float = 1.0) -> EvaluationResult:
    """Score a model on a set; a classifier's probabilities are calibrated with ``temperature`` first."""
    if evaluation_set.kind == CLASSIFICATION:
        grouped: dict[str, list[EvaluationCase]] = {}
        for case in evaluation_set.cases:
            grouped.setdefault(case.source, []).append(case)
        labels, probabilities = [], []
        for source, cases in grouped.items():
            inputs = prepare_batch([case.slices[0] for case in cases], config=config, source=source)
            probabilities.append(apply_temperature(keras_model.predict(inputs, batch_size=batch_size, verbose=0),
                                                   temperature))
            labels += [case.label for case in cases]
        return score_classification(labels, np.concatenate(probabilities))
    truths, predictions, outputs_nan = [], [], False
    for case in evaluation_set.cases:
        inputs = prepare_batch(case.slices, config=config, source=case.source)
        lesion_maps = keras_model.predict(inputs, batch_size=batch_size, verbose=0)[..., 0]
        outputs_nan = outputs_nan or not np.isfinite(lesion_maps).all()
        rows, columns = np.shape(case.slices[0])
        predictions.append(native_resolution_masks(lesion_maps, rows=rows, columns=columns))
        truths.append(case.masks)
    return score_segmentation(truths, predictions, outputs_nan=outputs_nan)
