"""Calibrated probabilities and an honest series result (pure numpy and SciPy).

Public interface:
    fit_temperature(y_true, probabilities) -> float
    apply_temperature(probabilities, temperature) -> ndarray
    UNCERTAIN_TUMOUR_BAND
    indeterminate_reason(*, tumour_probability, lesion_found) -> str  ("" when the result is determinate)

Temperature scaling (Guo et al. 2017): the classifier's probabilities become
``softmax(log(p) / T)``; ``T`` is fitted on the validation split by minimising the negative
log-likelihood, stored with the model version, and applied at inference. ``T > 1`` softens an
over-confident model; the class order (argmax) never changes, only how sure the numbers say it is.

A series result is indeterminate, and said so in the report, when the two networks disagree (the
classifier calls a tumour where the segmenter marks no lesion, or "normal" where it marks one) or
when the calibrated probability of a tumour lies in ``UNCERTAIN_TUMOUR_BAND``.
"""

from __future__ import annotations

import numpy as np

#: Calibrated probabilities of "tumour present" (1 - P(normal)) too close to a coin toss to report.
UNCERTAIN_TUMOUR_BAND = (0.35, 0.65)
TEMPERATURE_BOUNDS = (0.05, 20.0)
_SMALLEST = 1e-12


def apply_temperature(probabilities, temperature: float) -> np.ndarray:
    logits = np.log(np.clip(np.asarray(probabilities, dtype=np.float64), _SMALLEST, 1.0)) / temperature
    logits -= logits.max(axis=-1, keepdims=True)
    scaled = np.exp(logits)
    return scaled / scaled.sum(axis=-1, keepdims=True)


def fit_temperature(y_true, probabilities) -> float:
    """The temperature that minimises the validation negative log-likelihood (1.0 without data)."""
    from scipy.optimize import minimize_scalar

    y_true = np.asarray(y_true, dtype=int)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if not len(y_true) or not np.isfinite(probabilities).all():
        return 1.0

    def negative_log_likelihood(temperature):
        scaled = apply_temperature(probabilities, temperature)
        return -np.log(np.clip(scaled[np.arange(len(y_true)), y_true], _SMALLEST, 1.0)).mean()

    fitted = minimize_scalar(negative_log_likelihood, bounds=TEMPERATURE_BOUNDS, method="bounded")
    return float(fitted.x)


def indeterminate_reason(*, tumour_probability: float, lesion_found: bool) -> str:
    low, high = UNCERTAIN_TUMOUR_BAND
    if low <= tumour_probability <= high:
        return (
            f"The AI result is indeterminate: its calibrated probability of a tumour ({tumour_probability:.0%}) "
            f"lies between {low:.0%} and {high:.0%}, too close to call."
        )
    if tumour_probability > high and not lesion_found:
        return (
            "The AI result is indeterminate: the classifier suggests a tumour "
            f"({tumour_probability:.0%}) but the segmenter outlined no lesion."
        )
    if tumour_probability < low and lesion_found:
        return (
            "The AI result is indeterminate: the segmenter outlined a possible lesion but the classifier "
            f"suggests a normal scan ({1 - tumour_probability:.0%})."
        )
    return ""
