"""Temperature scaling and the indeterminate series result."""

import numpy as np
import pytest

from ml.calibration import apply_temperature, fit_temperature, indeterminate_reason
from ml.metrics import expected_calibration_error


def test_temperature_fitted_on_validation_softens_an_overconfident_model():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, size=400)
    # Right 70 % of the time but always 97 % sure: over-confident.
    predicted = np.where(rng.random(400) < 0.7, labels, (labels + 1) % 4)
    probabilities = np.full((400, 4), 0.01)
    probabilities[np.arange(400), predicted] = 0.97
    temperature = fit_temperature(labels, probabilities)
    calibrated = apply_temperature(probabilities, temperature)
    assert temperature > 1.5
    assert (calibrated.argmax(axis=1) == probabilities.argmax(axis=1)).all(), "the class never changes"
    assert calibrated.max(axis=1).mean() == pytest.approx(0.7, abs=0.03)
    assert expected_calibration_error(labels, calibrated) < expected_calibration_error(labels, probabilities) / 3
    np.testing.assert_allclose(apply_temperature(probabilities, 1.0), probabilities / probabilities.sum(1)[:, None])


@pytest.mark.parametrize(("tumour_probability", "lesion_found", "expected"), [
    (0.9, True, ""),
    (0.1, False, ""),
    (0.5, True, "too close to call"),
    (0.9, False, "segmenter outlined no lesion"),
    (0.1, True, "classifier suggests a normal scan"),
])
def test_series_result_is_indeterminate_when_unsure_or_the_networks_disagree(
    tumour_probability, lesion_found, expected
):
    reason = indeterminate_reason(tumour_probability=tumour_probability, lesion_found=lesion_found)
    assert (expected in reason) if expected else reason == ""
