"""Promotion on one frozen evaluation set: the rules, and the whole path through the registry."""

import numpy as np
import pytest

from ml.evaluation import EvaluationResult
from ml.promotion import decide_promotion

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def result(per_case, *, has_nan=False):
    per_case = np.asarray(per_case, dtype=float)
    return EvaluationResult(metric="dice", score=float(per_case.mean()), per_case=per_case, metrics={},
                            interval=(0.0, 1.0), has_nan=has_nan)


def decide(challenger, champion, *, challenger_is_demo=False, champion_is_demo=False, margin=0.02):
    return decide_promotion(challenger=challenger, champion=champion, challenger_is_demo=challenger_is_demo,
                            champion_is_demo=champion_is_demo, margin=margin, manifest_hash="h", resamples=500)


CHAMPION = [0.70, 0.80, 0.75, 0.65, 0.90, 0.85, 0.60, 0.78]


def test_better_challenger_is_accepted_with_its_interval():
    decision = decide(result(np.add(CHAMPION, 0.05)), result(CHAMPION))
    assert decision.accepted
    assert decision.evidence["difference"] == pytest.approx(0.05)
    assert decision.evidence["difference_interval_95"] == pytest.approx([0.05, 0.05])


def test_worse_or_merely_equal_challenger_is_refused():
    worse = decide(result(np.subtract(CHAMPION, 0.1)), result(CHAMPION))
    assert not worse.accepted and len(worse.reasons) == 2
    assert "non-inferior" in worse.reasons[0] and "not better overall" in worse.reasons[1]
    equal = decide(result(CHAMPION), result(CHAMPION))
    assert not equal.accepted and equal.reasons == [equal.reasons[0]] and "better overall" in equal.reasons[0]


def test_better_on_average_but_not_shown_non_inferior_is_refused():
    # Much better on most cases, far worse on one: the interval's lower end goes below the margin.
    challenger = np.add(CHAMPION, 0.02)
    challenger[0] = 0.0
    decision = decide(result(challenger), result(CHAMPION))
    assert not decision.accepted and "non-inferior" in decision.reasons[0]


def test_nan_challenger_is_refused_even_without_a_champion():
    assert not decide(result([0.9, np.nan], has_nan=True), None).accepted
    assert not decide(result([0.9, 0.9], has_nan=True), result(CHAMPION[:2])).accepted


def test_demo_champion_never_blocks_a_real_model():
    demo_champion = result(CHAMPION)
    weaker_real = result(np.subtract(CHAMPION, 0.2))
    assert decide(weaker_real, demo_champion, champion_is_demo=True).accepted
    assert not decide(weaker_real, demo_champion, champion_is_demo=True, challenger_is_demo=True).accepted


def tiny_segmenter(*, bias):
    """A U-Net whose output is sigmoid(bias) everywhere: +20 marks every pixel, -20 none; NaN breaks it."""
    import keras

    from ml.networks import build_segmenter

    keras.utils.set_random_seed(0)
    model = build_segmenter(input_size=16, depth=1, base_filters=4)
    output = model.get_layer("lesion_probability")
    output.kernel.assign(np.zeros(output.kernel.shape, dtype=np.float32))
    output.bias.assign(np.full(output.bias.shape, bias, dtype=np.float32))
    return model


def register(tracking_uri, model, *, is_demo):
    import mlflow

    from ml.preprocessing import PreprocessingConfig
    from ml.registry import SEGMENTER_MODEL_NAME, ensure_experiment, register_keras_model, using_tracking_store

    experiment_id = ensure_experiment(SEGMENTER_MODEL_NAME, tracking_uri=tracking_uri)
    with using_tracking_store(tracking_uri), mlflow.start_run(experiment_id=experiment_id):
        return register_keras_model(model=model, model_name=SEGMENTER_MODEL_NAME,
                                    preprocessing_config=PreprocessingConfig(input_size=16),
                                    validation_metric="dice", validation_score=0.5, tracking_uri=tracking_uri,
                                    is_demo=is_demo).version


def test_promotion_through_the_registry_on_a_frozen_set(tmp_path):
    import mlflow

    from ml.evaluation import manifest_hash
    from ml.phantoms import write_segmentation_dataset
    from ml.promotion import PromotionRefused, promote_with_approval
    from ml.registry import SEGMENTER_MODEL_NAME, champion_version, promote_version

    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    evaluation_dir = write_segmentation_dataset(tmp_path / "frozen", patients=3, slices_per_patient=2, size=32)
    everything, nothing, broken = tiny_segmenter(bias=20.0), tiny_segmenter(bias=-20.0), tiny_segmenter(bias=np.nan)
    demo = register(tracking_uri, everything, is_demo=True)
    promote_version(model_name=SEGMENTER_MODEL_NAME, version=demo, tracking_uri=tracking_uri,
                    approved_by="installer", reason="demo")

    def promote(version, **overrides):
        arguments = {"model_name": SEGMENTER_MODEL_NAME, "version": version, "evaluation_dir": evaluation_dir,
                     "tracking_uri": tracking_uri, "approved_by": "dr.lead@north.test",
                     "reason": "validated on the frozen set", **overrides}
        return promote_with_approval(**arguments)

    def champion():
        return champion_version(SEGMENTER_MODEL_NAME, tracking_uri=tracking_uri).version

    # A real model that marks nothing (Dice 0) replaces the demo champion that marks everything.
    real_nothing = register(tracking_uri, nothing, is_demo=False)
    assert "demo" in promote(real_nothing).reasons[0]
    assert champion() == real_nothing

    with pytest.raises(PromotionRefused, match="NaN"):
        promote(register(tracking_uri, broken, is_demo=False))
    with pytest.raises(PromotionRefused, match="approving"):
        promote(register(tracking_uri, everything, is_demo=False), reason=" ")
    assert champion() == real_nothing

    real_everything = register(tracking_uri, everything, is_demo=False)
    decision = promote(real_everything)
    assert decision.accepted and champion() == real_everything
    worse = register(tracking_uri, nothing, is_demo=False)
    with pytest.raises(PromotionRefused, match="not better overall"):
        promote(worse)
    assert champion() == real_everything

    client = mlflow.MlflowClient(tracking_uri, registry_uri=tracking_uri)
    tags = client.get_model_version(SEGMENTER_MODEL_NAME, str(real_everything)).tags
    assert tags["promoted_by"] == "dr.lead@north.test" and tags["promotion_reason"] == "validated on the frozen set"
    digest = manifest_hash(evaluation_dir)
    assert f'"evaluation_set_hash": "{digest}"' in tags["promotion_evidence"]
    evaluations = client.search_runs(
        [client.get_experiment_by_name(f"{SEGMENTER_MODEL_NAME}-evaluation").experiment_id],
        filter_string=f"tags.model_version = '{real_everything}'")
    assert evaluations and evaluations[0].inputs.dataset_inputs[0].dataset.digest == digest[:32]
