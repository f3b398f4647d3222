"""Tiny untrained models registered as champions in a throw-away MLflow store, in seconds.

The pipeline tests check plumbing (queueing, storing, progress, faults), not model quality, so the
networks are the real architectures at the smallest sizes they accept, with random weights.
"""

from ml.preprocessing import PreprocessingConfig


def register_tiny_models(tracking_uri, *, seed=0, entry=None):
    """Tiny champions of one catalogue entry's two models (the lung CT pair by default)."""
    import keras
    import mlflow

    from ml.catalogue import LUNG_CT
    from ml.networks import build_classifier, build_segmenter
    from ml.registry import (
        ensure_experiment,
        promote_version,
        register_keras_model,
        using_tracking_store,
    )

    entry = entry or LUNG_CT

    def config_for(input_size):
        if entry.pixel_source == "mr":
            return PreprocessingConfig.for_mr(input_size=input_size, channels=3)
        return PreprocessingConfig(input_size=input_size)

    keras.utils.set_random_seed(seed)
    specifications = (
        (entry.classifier_name, build_classifier(input_size=32), config_for(32), "accuracy"),
        (entry.segmenter_name, build_segmenter(input_size=16, depth=1, base_filters=4), config_for(16), "dice"),
    )
    versions = []
    for name, model, config, metric in specifications:
        experiment_id = ensure_experiment(name, tracking_uri=tracking_uri)
        with using_tracking_store(tracking_uri), mlflow.start_run(experiment_id=experiment_id):
            registered = register_keras_model(
                model=model, model_name=name, preprocessing_config=config, validation_metric=metric,
                validation_score=0.5, tracking_uri=tracking_uri, is_demo=True,
            )
        promote_version(model_name=name, version=registered.version, tracking_uri=tracking_uri,
                        approved_by="test suite", reason="tiny model for plumbing tests")
        versions.append(registered)
    return versions
