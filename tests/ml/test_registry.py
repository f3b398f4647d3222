"""Registry round trip and champion promotion in a throw-away SQLite MLflow store."""

import numpy as np
import pytest

from ml.preprocessing import PreprocessingConfig

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

MODEL_NAME = "radassist-segmenter"
PROMOTED_NAME = "promotion-test"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One store for the module: creating MLflow's database schema takes seconds."""
    return tmp_path_factory.mktemp("mlflow")


@pytest.fixture(scope="module")
def tracking_uri(store):
    return f"sqlite:///{store / 'mlflow.db'}"


def register(tracking_uri, *, score, metric="dice", is_demo=False, seed=0, model_name=MODEL_NAME):
    import keras
    import mlflow

    from ml.networks import build_segmenter
    from ml.registry import ensure_experiment, register_keras_model, using_tracking_store

    keras.utils.set_random_seed(seed)
    model = build_segmenter(input_size=16, depth=1, base_filters=4)
    experiment_id = ensure_experiment(model_name, tracking_uri=tracking_uri)
    with using_tracking_store(tracking_uri), mlflow.start_run(experiment_id=experiment_id):
        registered = register_keras_model(
            model=model, model_name=model_name,
            preprocessing_config=PreprocessingConfig(input_size=16),
            validation_metric=metric, validation_score=score, tracking_uri=tracking_uri,
            is_demo=is_demo,
        )
    return model, registered


def test_register_promote_load_and_predict_the_same(tracking_uri, store):
    from ml.registry import champion_version, load_champion, load_version, promote_version

    model, registered = register(tracking_uri, score=0.7, is_demo=True)
    assert (registered.version, registered.validation_metric, registered.is_demo) == (1, "dice", True)
    assert champion_version(MODEL_NAME, tracking_uri=tracking_uri) is None
    promote_version(model_name=MODEL_NAME, version=1, tracking_uri=tracking_uri, approved_by="test",
                    reason="round trip")

    loaded = load_champion(MODEL_NAME, tracking_uri=tracking_uri)
    assert (loaded.name, loaded.version, loaded.is_demo) == (MODEL_NAME, 1, True)
    assert loaded.preprocessing_config == PreprocessingConfig(input_size=16)
    batch = np.random.default_rng(0).random((2, 16, 16, 3), dtype=np.float32)
    np.testing.assert_allclose(
        loaded.keras_model(batch, training=False).numpy(),
        model(batch, training=False).numpy(), rtol=1e-5, atol=1e-6,
    )
    assert load_version(MODEL_NAME, 1, tracking_uri=tracking_uri).version == 1
    # Artifacts stay beside the database, not in the working directory.
    assert any((store / "artifacts").rglob("model.keras"))


def test_promote_version_records_who_why_and_when(tracking_uri):
    import mlflow

    from ml.registry import ModelNotRegistered, champion_version, promote_version, version_info

    register(tracking_uri, score=0.6, model_name=PROMOTED_NAME)
    register(tracking_uri, score=0.5, model_name=PROMOTED_NAME)
    promote_version(model_name=PROMOTED_NAME, version=2, tracking_uri=tracking_uri, approved_by="dr.lead",
                    reason="better on the frozen set", evidence={"difference": 0.03})
    champion = champion_version(PROMOTED_NAME, tracking_uri=tracking_uri)
    assert (champion.version, champion.is_champion) == (2, True)
    assert version_info(PROMOTED_NAME, 1, tracking_uri=tracking_uri).is_champion is False
    tags = mlflow.MlflowClient(tracking_uri, registry_uri=tracking_uri).get_model_version(PROMOTED_NAME, "2").tags
    assert (tags["promoted_by"], tags["promotion_reason"]) == ("dr.lead", "better on the frozen set")
    assert tags["promoted_at"] and tags["promotion_evidence"] == '{"difference": 0.03}'
    with pytest.raises(ModelNotRegistered):
        version_info(PROMOTED_NAME, 99, tracking_uri=tracking_uri)


def test_loading_without_a_champion_says_so(tracking_uri):
    from ml.registry import ModelNotRegistered, load_champion, load_version

    with pytest.raises(ModelNotRegistered):
        load_champion("never-registered", tracking_uri=tracking_uri)
    with pytest.raises(ModelNotRegistered):
        load_version(MODEL_NAME, 99, tracking_uri=tracking_uri)


def test_a_champion_loads_from_its_own_store_whatever_store_mlflow_last_used(tracking_uri, tmp_path):
    """A worker (or a test run) that trained into another store must still load from the configured one."""
    import mlflow

    from ml.registry import load_champion, promote_version

    _model, registered = register(tracking_uri, score=0.9, model_name="elsewhere-test")
    promote_version(model_name="elsewhere-test", version=registered.version, tracking_uri=tracking_uri,
                    approved_by="test", reason="load from its own store")
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'another.db'}")
    try:
        loaded = load_champion("elsewhere-test", tracking_uri=tracking_uri)
    finally:
        mlflow.set_tracking_uri(previous)
    assert loaded.version == registered.version


def test_training_leaves_no_mlflow_store_in_the_environment_of_later_processes(tracking_uri, monkeypatch):
    """``make run`` trains the demo models, then starts the worker with its own environment: a
    store that MLflow wrote into os.environ during training would become the worker's store."""
    import os

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", "sqlite:////configured/registry.db")
    register(tracking_uri, score=0.5, model_name="environment-test")
    assert "MLFLOW_TRACKING_URI" not in os.environ
    assert os.environ["MLFLOW_REGISTRY_URI"] == "sqlite:////configured/registry.db"
