"""Evaluation metrics (plain numpy) and the plots logged to MLflow as image artifacts.

Public interface:
    confusion_matrix(y_true, y_pred, *, num_classes) -> ndarray (rows: true, columns: predicted)
    classification_metrics(y_true, probabilities, *, class_names) -> dict
        accuracy, macro_auc_roc, expected_calibration_error, confusion_matrix and per_class {precision, recall, f1,
        sensitivity, specificity, auc_roc, support}
    roc_curve(binary_true, scores) -> (false_positive_rates, true_positive_rates)
    auc_roc(binary_true, scores) -> float   (nan when only one class is present)
    dice_per_case(true_masks, predicted_masks) -> ndarray; iou_per_case(...) -> ndarray
    segmentation_metrics(true_masks, predicted_masks) -> dict (Dice and IoU over lesion cases,
        per case, false-positive rate on lesion-free cases)
    expected_calibration_error(y_true, probabilities, *, bins=10) -> float
    bootstrap_interval(values, *, resamples=2000, seed=0, level=0.95) -> (low, high)
    paired_bootstrap_difference(challenger, champion, *, resamples=2000, seed=0, level=0.95)
        -> (mean difference, low, high)
    plot_confusion_matrix(matrix, *, class_names, path) -> Path
    plot_roc_curves(y_true, probabilities, *, class_names, path) -> Path

Conventions: a class that is never predicted has precision 0, one never present has recall 0.
A segmentation case is a whole volume (a patient's or a series' slices together), never a slice.
Dice and IoU are undefined (nan) for a case without a true lesion and scored only on cases that
have one: counting "nothing predicted where there is nothing" as a perfect 1 would let a model that
never predicts a lesion look half-good. Lesion-free cases are scored by the false-positive rate
instead (the fraction in which the model marks a lesion).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def confusion_matrix(y_true, y_pred, *, num_classes: int) -> np.ndarray:
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)), 1)
    return matrix


def _safe_ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator else 0.0


def roc_curve(binary_true, scores) -> tuple[np.ndarray, np.ndarray]:
    """ROC points from the highest threshold down; tied scores move together."""
    binary_true = np.asarray(binary_true, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores = scores[order]
    sorted_true = binary_true[order]
    threshold_ends = np.r_[np.flatnonzero(np.diff(sorted_scores)), len(scores) - 1]
    true_positives = np.cumsum(sorted_true)[threshold_ends]
    false_positives = (threshold_ends + 1) - true_positives
    positives = max(int(binary_true.sum()), 1)
    negatives = max(int((~binary_true).sum()), 1)
    return (
        np.r_[0.0, false_positives / negatives],
        np.r_[0.0, true_positives / positives],
    )


def auc_roc(binary_true, scores) -> float:
    """Area under the ROC curve; nan when only positives or only negatives are present."""
    binary_true = np.asarray(binary_true, dtype=bool)
    if binary_true.all() or not binary_true.any():
        return float("nan")
    false_positive_rates, true_positive_rates = roc_curve(binary_true, scores)
    return float(np.trapezoid(true_positive_rates, false_positive_rates))


def classification_metrics(
    y_true, probabilities, *, class_names: Sequence[str]
) -> dict:
    """Accuracy, one-vs-rest per-class metrics and macro AUC-ROC from class probabilities."""
    y_true = np.asarray(y_true, dtype=int)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    y_pred = probabilities.argmax(axis=1)
    num_classes = len(class_names)
    matrix = confusion_matrix(y_true, y_pred, num_classes=num_classes)
    total = matrix.sum()
    per_class = {}
    aucs = []
    for index, name in enumerate(class_names):
        true_positive = matrix[index, index]
        false_positive = matrix[:, index].sum() - true_positive
        false_negative = matrix[index, :].sum() - true_positive
        true_negative = total - true_positive - false_positive - false_negative
        precision = _safe_ratio(true_positive, true_positive + false_positive)
        recall = _safe_ratio(true_positive, true_positive + false_negative)
        class_auc = auc_roc(y_true == index, probabilities[:, index])
        if not np.isnan(class_auc):
            aucs.append(class_auc)
        per_class[name] = {
            "precision": precision,
            "recall": recall,
            "f1": _safe_ratio(2 * precision * recall, precision + recall),
            "sensitivity": recall,
            "specificity": _safe_ratio(true_negative, true_negative + false_positive),
            "auc_roc": class_auc,
            "support": int(matrix[index, :].sum()),
        }
    return {
        "accuracy": _safe_ratio(np.trace(matrix), total),
        "macro_auc_roc": float(np.mean(aucs)) if aucs else float("nan"),
        "expected_calibration_error": expected_calibration_error(y_true, probabilities),
        "per_class": per_class,
        "confusion_matrix": matrix.tolist(),
    }


def _flatten_cases(masks) -> np.ndarray:
    masks = np.asarray(masks).astype(bool)
    return masks.reshape(masks.shape[0], -1)


def dice_per_case(true_masks, predicted_masks) -> np.ndarray:
    """Dice per case; nan for a case without a true lesion (see the module's conventions)."""
    truth, predicted = _flatten_cases(true_masks), _flatten_cases(predicted_masks)
    intersection = (truth & predicted).sum(axis=1)
    total = truth.sum(axis=1) + predicted.sum(axis=1)
    return np.where(truth.any(axis=1), 2.0 * intersection / np.maximum(total, 1), np.nan)


def iou_per_case(true_masks, predicted_masks) -> np.ndarray:
    truth, predicted = _flatten_cases(true_masks), _flatten_cases(predicted_masks)
    intersection = (truth & predicted).sum(axis=1)
    union = (truth | predicted).sum(axis=1)
    return np.where(truth.any(axis=1), intersection / np.maximum(union, 1), np.nan)


def _mean_or_nan(values: np.ndarray) -> float:
    values = values[~np.isnan(values)]
    return float(values.mean()) if len(values) else float("nan")


def segmentation_metrics(true_masks, predicted_masks) -> dict:
    """Dice and IoU over the cases with a lesion; each case is one volume."""
    truth, predicted = _flatten_cases(true_masks), _flatten_cases(predicted_masks)
    dice = dice_per_case(truth, predicted)
    iou = iou_per_case(truth, predicted)
    lesion_free = ~truth.any(axis=1)
    return {
        "dice": _mean_or_nan(dice),
        "iou": _mean_or_nan(iou),
        "dice_per_case": dice.tolist(),
        "iou_per_case": iou.tolist(),
        "lesion_cases": int((~lesion_free).sum()),
        "lesion_free_cases": int(lesion_free.sum()),
        "false_positive_rate_lesion_free": (
            float(predicted[lesion_free].any(axis=1).mean()) if lesion_free.any() else float("nan")
        ),
    }


def expected_calibration_error(y_true, probabilities, *, bins: int = 10) -> float:
    """Gap between confidence and accuracy, averaged over equal-width confidence bins.

    Weighted by the share of cases in each bin (Guo et al. 2017); 0 for a perfectly calibrated model.
    """
    y_true = np.asarray(y_true, dtype=int)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == y_true
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    error = 0.0
    for index in range(bins):
        in_bin = which == index
        if in_bin.any():
            error += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(error)


def _bootstrap_means(values: np.ndarray, *, resamples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(values), size=(resamples, len(values)))
    return values[picks].mean(axis=1)


def bootstrap_interval(values, *, resamples: int = 2000, seed: int = 0, level: float = 0.95):
    """Percentile bootstrap interval of the mean of per-case scores; (nan, nan) with a nan score."""
    values = np.asarray(values, dtype=np.float64)
    if not len(values) or np.isnan(values).any():
        return float("nan"), float("nan")
    means = _bootstrap_means(values, resamples=resamples, seed=seed)
    tail = (1.0 - level) / 2 * 100
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def paired_bootstrap_difference(
    challenger, champion, *, resamples: int = 2000, seed: int = 0, level: float = 0.95
):
    """Mean of (challenger - champion) per case and its bootstrap interval, cases resampled in pairs.

    Both must be scored on the same cases in the same order; pairing removes the case-to-case
    variation the two models share, so the interval is about the models, not the cases.
    """
    challenger = np.asarray(challenger, dtype=np.float64)
    champion = np.asarray(champion, dtype=np.float64)
    if challenger.shape != champion.shape:
        raise ValueError("challenger and champion must be scored on the same cases")
    differences = challenger - champion
    low, high = bootstrap_interval(differences, resamples=resamples, seed=seed, level=level)
    mean = float(differences.mean()) if len(differences) else float("nan")
    return mean, low, high


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    return pyplot


def plot_confusion_matrix(matrix, *, class_names: Sequence[str], path: str | Path) -> Path:
    pyplot = _figure()
    matrix = np.asarray(matrix)
    figure, axes = pyplot.subplots(figsize=(6, 5))
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes)
    axes.set_xticks(range(len(class_names)), class_names, rotation=30, ha="right")
    axes.set_yticks(range(len(class_names)), class_names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    for row in range(matrix.shape[0]):
        for column in range(matrix.shape[1]):
            axes.text(column, row, str(matrix[row, column]), ha="center", va="center")
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return path


def plot_roc_curves(y_true, probabilities, *, class_names: Sequence[str], path: str | Path) -> Path:
    pyplot = _figure()
    y_true = np.asarray(y_true, dtype=int)
    probabilities = np.asarray(probabilities)
    figure, axes = pyplot.subplots(figsize=(6, 5))
    for index, name in enumerate(class_names):
        binary_true = y_true == index
        if binary_true.all() or not binary_true.any():
            continue
        false_positive_rates, true_positive_rates = roc_curve(binary_true, probabilities[:, index])
        area = auc_roc(binary_true, probabilities[:, index])
        axes.plot(false_positive_rates, true_positive_rates, label=f"{name} (AUC {area:.2f})")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey")
    axes.set_xlabel("false positive rate (1 - specificity)")
    axes.set_ylabel("true positive rate (sensitivity)")
    axes.legend(loc="lower right", fontsize="small")
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return path
