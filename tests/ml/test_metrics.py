"""Metrics against values worked out by hand, and against scikit-learn's on random data (ties, empty masks)."""

import math

import numpy as np
import pytest
from sklearn import metrics as reference

from ml.metrics import (
    auc_roc,
    bootstrap_interval,
    classification_metrics,
    confusion_matrix,
    dice_per_case,
    expected_calibration_error,
    iou_per_case,
    paired_bootstrap_difference,
    plot_confusion_matrix,
    plot_roc_curves,
    roc_curve,
    segmentation_metrics,
)

CLASSES = ("a", "b", "c")
# true:      a  a  a  b  b  c
# predicted: a  a  b  b  c  c
Y_TRUE = [0, 0, 0, 1, 1, 2]
PROBABILITIES = [
    [0.8, 0.1, 0.1],
    [0.6, 0.3, 0.1],
    [0.3, 0.6, 0.1],
    [0.2, 0.7, 0.1],
    [0.1, 0.3, 0.6],
    [0.1, 0.2, 0.7],
]


def test_confusion_matrix_counts_rows_true_columns_predicted():
    matrix = confusion_matrix(Y_TRUE, [0, 0, 1, 1, 2, 2], num_classes=3)
    assert matrix.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]


def test_classification_metrics_by_hand():
    metrics = classification_metrics(Y_TRUE, PROBABILITIES, class_names=CLASSES)
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    a, b, c = (metrics["per_class"][name] for name in CLASSES)
    # a: TP 2, FP 0, FN 1, TN 3
    assert a["precision"] == pytest.approx(1.0)
    assert a["recall"] == a["sensitivity"] == pytest.approx(2 / 3)
    assert a["specificity"] == pytest.approx(1.0)
    assert a["f1"] == pytest.approx(0.8)
    # b: TP 1, FP 1, FN 1, TN 3
    assert b["precision"] == pytest.approx(0.5)
    assert b["recall"] == pytest.approx(0.5)
    assert b["specificity"] == pytest.approx(0.75)
    assert b["f1"] == pytest.approx(0.5)
    # c: TP 1, FP 1, FN 0, TN 4
    assert c["precision"] == pytest.approx(0.5)
    assert c["recall"] == pytest.approx(1.0)
    assert c["specificity"] == pytest.approx(0.8)
    assert c["support"] == 1
    # One-vs-rest AUCs: a ranks its 3 positives above all 3 negatives except 0.3 vs 0.2/0.1/0.1
    # -> positives (0.8, 0.6, 0.3) vs negatives (0.2, 0.1, 0.1): all 9 pairs right -> 1.0.
    # b: positives (0.7, 0.3) vs negatives (0.1, 0.3, 0.6, 0.2): 0.7 wins 4, 0.3 wins 2 and ties
    # 1 (half a pair): 6.5 of 8.
    # c: positive 0.7 vs negatives (0.1, 0.1, 0.1, 0.1, 0.6): 5 of 5.
    assert a["auc_roc"] == pytest.approx(1.0)
    assert b["auc_roc"] == pytest.approx(6.5 / 8)
    assert c["auc_roc"] == pytest.approx(1.0)
    assert metrics["macro_auc_roc"] == pytest.approx((1.0 + 6.5 / 8 + 1.0) / 3)


def random_scores(seed):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, 200).astype(bool)
    return truth, np.round(rng.random(200) + truth * 0.3, 2)  # rounding makes ties


def test_auc_matches_scikit_learn_on_random_scores():
    truth, scores = random_scores(0)
    assert auc_roc(truth, scores) == pytest.approx(reference.roc_auc_score(truth, scores))


def test_roc_curve_matches_scikit_learn_with_every_threshold():
    truth, scores = random_scores(1)
    false_positive_rates, true_positive_rates = roc_curve(truth, scores)
    expected_false, expected_true, _ = reference.roc_curve(truth, scores, drop_intermediate=False)
    np.testing.assert_allclose(false_positive_rates, expected_false)
    np.testing.assert_allclose(true_positive_rates, expected_true)


def random_probabilities(seed, *, samples=300, classes=4, never_predicted=None):
    """Class probabilities that lean towards the true class; ``never_predicted`` is a class that never wins."""
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, classes, samples)
    weights = np.exp(rng.normal(size=(samples, classes)) + 1.5 * np.eye(classes)[y_true])
    if never_predicted is not None:
        weights[:, never_predicted] = weights.min(axis=1) / 2
    return y_true, weights / weights.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("never_predicted", [None, 2], ids=["every-class-predicted", "a-class-never-predicted"])
def test_classification_metrics_match_scikit_learn(never_predicted):
    y_true, probabilities = random_probabilities(2, never_predicted=never_predicted)
    y_pred = probabilities.argmax(axis=1)
    labels = list(range(probabilities.shape[1]))
    names = [f"class{label}" for label in labels]

    metrics = classification_metrics(y_true, probabilities, class_names=names)

    assert metrics["confusion_matrix"] == reference.confusion_matrix(y_true, y_pred, labels=labels).tolist()
    assert metrics["accuracy"] == pytest.approx(reference.accuracy_score(y_true, y_pred))
    precision, recall, f1, support = reference.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    for label, name in enumerate(names):
        per_class = metrics["per_class"][name]
        assert per_class["precision"] == pytest.approx(precision[label])
        assert per_class["recall"] == per_class["sensitivity"] == pytest.approx(recall[label])
        assert per_class["f1"] == pytest.approx(f1[label])
        assert per_class["support"] == support[label]
        # Specificity is the recall of "not this class".
        assert per_class["specificity"] == pytest.approx(reference.recall_score(y_true != label, y_pred != label))
        assert per_class["auc_roc"] == pytest.approx(reference.roc_auc_score(y_true == label, probabilities[:, label]))
    assert metrics["macro_auc_roc"] == pytest.approx(
        reference.roc_auc_score(y_true, probabilities, multi_class="ovr", average="macro")
    )


def test_auc_undefined_with_one_class():
    assert math.isnan(auc_roc([True, True], [0.1, 0.9]))


def test_dice_and_iou_by_hand():
    truth = np.zeros((3, 4, 4), dtype=bool)
    predicted = np.zeros((3, 4, 4), dtype=bool)
    truth[0, :2, :2] = True  # 4 pixels
    predicted[0, :2, :3] = True  # 6 pixels, 4 shared
    truth[1, 0, 0] = True  # no overlap
    predicted[1, 3, 3] = True
    # case 2: no lesion in truth or prediction: undefined, not a perfect score
    dice = dice_per_case(truth, predicted)
    assert dice[:2].tolist() == pytest.approx([0.8, 0.0]) and np.isnan(dice[2])
    iou = iou_per_case(truth, predicted)
    assert iou[:2].tolist() == pytest.approx([4 / 6, 0.0]) and np.isnan(iou[2])
    summary = segmentation_metrics(truth, predicted)
    assert summary["dice"] == pytest.approx(0.4)
    assert summary["iou"] == pytest.approx(4 / 6 / 2)
    assert (summary["lesion_cases"], summary["lesion_free_cases"]) == (2, 1)
    assert summary["false_positive_rate_lesion_free"] == 0.0


def test_a_model_that_predicts_nothing_scores_zero_not_half():
    # Two volumes of four slices: one with a lesion on one slice, one without any lesion.
    truth = np.zeros((2, 4, 8, 8), dtype=bool)
    truth[0, 1, 2:5, 2:5] = True
    nothing = np.zeros_like(truth)
    volumes = segmentation_metrics(truth.reshape(2, -1), nothing.reshape(2, -1))
    assert volumes["dice"] == 0.0
    # Scored slice by slice with empty = 1, the same model would have looked seven-eighths right.
    assert np.nanmean(np.where(truth.reshape(8, -1).any(axis=1), 0.0, 1.0)) == pytest.approx(7 / 8)


def test_expected_calibration_error_by_hand():
    # Bin 0.6-0.7: two cases at 0.65 confidence, one right -> gap 0.15; bin 0.9-1.0: two at 0.95, both right -> 0.05.
    probabilities = [[0.65, 0.35], [0.65, 0.35], [0.95, 0.05], [0.05, 0.95]]
    assert expected_calibration_error([0, 1, 0, 1], probabilities) == pytest.approx(0.5 * 0.15 + 0.5 * 0.05)
    assert classification_metrics(Y_TRUE, PROBABILITIES, class_names=CLASSES)["expected_calibration_error"] >= 0


def test_bootstrap_intervals_cover_the_mean_and_pair_the_cases():
    rng = np.random.default_rng(3)
    scores = rng.uniform(0.6, 0.9, size=200)
    low, high = bootstrap_interval(scores, seed=1)
    assert low < scores.mean() < high and high - low < 0.05
    assert all(np.isnan(bootstrap_interval([0.5, np.nan])))
    # A challenger exactly 0.01 better on every case: the paired interval is that difference, however noisy the cases.
    mean, low, high = paired_bootstrap_difference(scores + 0.01, scores, seed=1)
    assert (mean, low, high) == pytest.approx((0.01, 0.01, 0.01))
    with pytest.raises(ValueError):
        paired_bootstrap_difference([1.0], [1.0, 0.5])


def test_dice_and_iou_match_scikit_learn_per_case():
    rng = np.random.default_rng(3)
    truth = rng.random((6, 16, 16)) < 0.3
    predicted = truth ^ (rng.random((6, 16, 16)) < 0.1)
    truth[5] = predicted[5] = False  # both empty: no lesion to score (the evaluation protocol's nan, not a free 1)

    cases = [(truth[case].ravel(), predicted[case].ravel()) for case in range(5)]
    expected_dice = [reference.f1_score(true, guess) for true, guess in cases]
    expected_iou = [reference.jaccard_score(true, guess) for true, guess in cases]

    dice, iou = dice_per_case(truth, predicted), iou_per_case(truth, predicted)
    assert dice[:5].tolist() == pytest.approx(expected_dice) and np.isnan(dice[5])
    assert iou[:5].tolist() == pytest.approx(expected_iou)


def test_plots_are_written_as_png(tmp_path):
    matrix_path = plot_confusion_matrix([[2, 1], [0, 3]], class_names=("x", "y"),
                                        path=tmp_path / "matrix.png")
    roc_path = plot_roc_curves(Y_TRUE, PROBABILITIES, class_names=CLASSES, path=tmp_path / "roc.png")
    for path in (matrix_path, roc_path):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
