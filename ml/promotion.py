"""Promoting a model version: both versions scored on one frozen evaluation set, then a person's approval.

Public interface:
    DEFAULT_MARGIN
    PromotionRefused (exception; ``reasons`` lists every rule that failed)
    PromotionDecision(accepted, reasons, evidence)
    decide_promotion(*, challenger, champion, challenger_is_demo, champion_is_demo, margin,
                     resamples=2000, seed=0) -> PromotionDecision
    evaluate_version(*, model_name, version, evaluation_set, tracking_uri) -> EvaluationResult
    promote_with_approval(*, model_name, version, evaluation_dir, tracking_uri, approved_by, reason,
                          margin=DEFAULT_MARGIN) -> PromotionDecision

The rules (``decide_promotion``), in order:
1. Nothing that is not a number: a challenger with a NaN output or metric is refused.
2. Demo models never block a real one: with no champion, a demo champion under a real challenger,
   or a champion whose own scores are not numbers, the challenger needs only rule 1.
3. Same data: champion and challenger are scored on the same frozen evaluation set (the same
   manifest hash), case by case.
4. Non-inferior: the lower end of the 95 % paired bootstrap interval of (challenger - champion)
   lies above ``-margin``.
5. Better overall: the challenger's mean score is higher than the champion's.

Each version's score is an MLflow run in the experiment ``<model name>-evaluation``, with the
evaluation set logged as its input (``mlflow.log_input``, digest = the manifest hash), the score,
its interval and the per-case scores. The approval is stored on the promoted version
(``ml.registry.promote_version``): who, why, when, and the evidence above.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ml.evaluation import CLASSIFICATION, SEGMENTATION, EvaluationResult, EvaluationSet
from ml.metrics import paired_bootstrap_difference
from ml.registry import (
    CLASSIFIER_MODEL_NAME,
    champion_version,
    ensure_experiment,
    load_version,
    promote_version,
    using_tracking_store,
    version_info,
)
from ml.training import load_evaluation_set

#: How much worse (in the score's own units: accuracy or Dice) the challenger may be at the lower end
#: of the interval and still count as non-inferior.
DEFAULT_MARGIN = 0.02


class PromotionRefused(Exception):
    def __init__(self, reasons: list[str]):
        super().__init__("; ".join(reasons))
        self.reasons = reasons


@dataclass(frozen=True)
class PromotionDecision:
    accepted: bool
    reasons: list[str]
    evidence: dict = field(default_factory=dict)


def decide_promotion(
    *,
    challenger: EvaluationResult,
    champion: EvaluationResult | None,
    challenger_is_demo: bool,
    champion_is_demo: bool,
    margin: float,
    manifest_hash: str,
    resamples: int = 2000,
    seed: int = 0,
) -> PromotionDecision:
    evidence = {
        "evaluation_set_hash": manifest_hash,
        "metric": challenger.metric,
        "challenger_score": challenger.score,
        "challenger_interval_95": list(challenger.interval),
        "margin": margin,
    }
    if challenger.has_nan:
        return PromotionDecision(False, ["the challenger's outputs or metrics contain NaN"], evidence)
    if champion is None:
        return PromotionDecision(True, ["there is no champion"], evidence)
    evidence.update(champion_score=champion.score, champion_interval_95=list(champion.interval))
    if champion_is_demo and not challenger_is_demo:
        return PromotionDecision(True, ["the champion is a demo model, which never blocks a real one"], evidence)
    if champion.has_nan:
        return PromotionDecision(True, ["the champion's own outputs or metrics contain NaN"], evidence)
    mean, low, high = paired_bootstrap_difference(challenger.per_case, champion.per_case,
                                                  resamples=resamples, seed=seed)
    evidence.update(difference=mean, difference_interval_95=[low, high])
    reasons = []
    if not low > -margin:
        reasons.append(
            f"not shown non-inferior: the 95 % interval of the {challenger.metric} difference reaches "
            f"{low:+.3f}, below -{margin:g}"
        )
    if not mean > 0:
        reasons.append(
            f"not better overall: {challenger.metric} {challenger.score:.3f} against the champion's "
            f"{champion.score:.3f}"
        )
    if reasons:
        return PromotionDecision(False, reasons, evidence)
    return PromotionDecision(True, [
        f"non-inferior within {margin:g} and better overall ({challenger.metric} "
        f"{challenger.score:.3f} vs {champion.score:.3f}, difference {mean:+.3f} [{low:+.3f}, {high:+.3f}])"
    ], evidence)


def _kind(model_name: str) -> str:
    return CLASSIFICATION if model_name == CLASSIFIER_MODEL_NAME else SEGMENTATION


def evaluate_version(
    *, model_name: str, version: int, evaluation_set: EvaluationSet, tracking_uri: str
) -> EvaluationResult:
    """Score one registered version on the set and log the score as an MLflow evaluation run."""
    import mlflow
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    from ml.evaluation import evaluate_model

    loaded = load_version(model_name, version, tracking_uri=tracking_uri)
    result = evaluate_model(loaded.keras_model, config=loaded.preprocessing_config, evaluation_set=evaluation_set,
                            temperature=loaded.temperature)
    experiment_id = ensure_experiment(f"{model_name}-evaluation", tracking_uri=tracking_uri)
    with using_tracking_store(tracking_uri), mlflow.start_run(experiment_id=experiment_id):
        mlflow.set_tags({"model_name": model_name, "model_version": str(version),
                         "evaluation_set_hash": evaluation_set.manifest_hash})
        mlflow.log_input(
            MetaDataset(resolve_dataset_source(evaluation_set.source_uri), name="frozen-evaluation-set",
                        digest=evaluation_set.manifest_hash[:32]),
            context="evaluation",
        )
        scores = {result.metric: result.score, f"{result.metric}_ci95_low": result.interval[0],
                  f"{result.metric}_ci95_high": result.interval[1]}
        mlflow.log_metrics({name: value for name, value in scores.items() if not np.isnan(value)})
        mlflow.log_dict({"metrics": result.metrics, "per_case": result.per_case.tolist(),
                         "has_nan": result.has_nan}, "evaluation/frozen_set_metrics.json")
    return result


def promote_with_approval(
    *,
    model_name: str,
    version: int,
    evaluation_dir: str | Path,
    tracking_uri: str,
    approved_by: str,
    reason: str,
    margin: float = DEFAULT_MARGIN,
) -> PromotionDecision:
    """Score the challenger and the champion on the frozen set, apply the rules, then promote.

    Raises PromotionRefused with every failed rule; nothing changes in the registry then.
    """
    if not approved_by.strip() or not reason.strip():
        raise PromotionRefused(["a promotion needs the name of the person approving it and a reason"])
    challenger_info = version_info(model_name, version, tracking_uri=tracking_uri)
    champion_info = champion_version(model_name, tracking_uri=tracking_uri)
    if champion_info is not None and champion_info.version == challenger_info.version:
        raise PromotionRefused([f"{model_name} version {version} is already the champion"])
    evaluation_set = load_evaluation_set(evaluation_dir, kind=_kind(model_name))
    challenger = evaluate_version(model_name=model_name, version=version, evaluation_set=evaluation_set,
                                  tracking_uri=tracking_uri)
    champion = None
    if champion_info is not None:
        champion = evaluate_version(model_name=model_name, version=champion_info.version,
                                    evaluation_set=evaluation_set, tracking_uri=tracking_uri)
    decision = decide_promotion(
        challenger=challenger, champion=champion, challenger_is_demo=challenger_info.is_demo,
        champion_is_demo=bool(champion_info and champion_info.is_demo), margin=margin,
        manifest_hash=evaluation_set.manifest_hash,
    )
    if champion_info is not None:
        decision.evidence["champion_version"] = champion_info.version
    if not decision.accepted:
        raise PromotionRefused(decision.reasons)
    promote_version(model_name=model_name, version=version, tracking_uri=tracking_uri, approved_by=approved_by,
                    reason=reason, evidence={**decision.evidence, "rule": decision.reasons[0]})
    return decision
