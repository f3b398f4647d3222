"""The MLflow model registry: registering, promoting and loading RadAssist models.

Public interface:
    CLASSIFIER_MODEL_NAME, SEGMENTER_MODEL_NAME, CHAMPION_ALIAS
    RegisteredModelVersion (name, version, run_id, validation_metric, validation_score, is_demo,
                            is_champion, test_metrics)
    LoadedModel (keras_model, name, version, preprocessing_config, is_demo, temperature)
    ModelNotRegistered (exception)
    default_artifact_location(tracking_uri) -> str | None
    ensure_experiment(name, *, tracking_uri, artifact_location=None) -> str  (experiment id)
    register_keras_model(*, model, model_name, preprocessing_config, validation_metric,
                         validation_score, tracking_uri, is_demo=False, tags=None)
                         -> RegisteredModelVersion          (inside an active MLflow run)
    champion_version(model_name, *, tracking_uri) -> RegisteredModelVersion | None
    store_exists(tracking_uri) -> bool
    version_info(model_name, version, *, tracking_uri) -> RegisteredModelVersion
    promote_version(*, model_name, version, tracking_uri, approved_by, reason, evidence=None)
    load_champion(model_name, *, tracking_uri) -> LoadedModel
    load_version(model_name, version, *, tracking_uri) -> LoadedModel
    log_reference_batch(*, model_name, preprocessing_config, reference_inputs=None) -> dict
    load_reference_batch(model_name, version, *, tracking_uri) -> ReferenceBatch | None

Models are logged with the ``mlflow.tensorflow`` flavour, which for Keras 3 stores the native
``.keras`` file (``data/model.keras``) with the input/output tensor signature, and registered as a
model version. Each version carries tags: ``preprocessing_config`` (JSON of
``PreprocessingConfig``, applied at inference), ``validation_metric`` and ``validation_score``
(for information: promotion compares versions on a shared evaluation set, ``ml.promotion``),
``demo`` ("true" for models trained on phantoms) and, once promoted, who approved it and why.

Everything works offline: with a SQLite tracking URI the experiment's artifacts live in an
``artifacts`` folder beside the database file, and loading reads the ``.keras`` file straight from
the artifact store with ``compile=False`` (inference needs no optimiser or loss).

Reference batches: each version registered from now on also carries the tag ``reference_batch``,
the run artifact holding a few preprocessed inputs (``.npz``: ``inputs`` and their ``source``,
"validation" or "phantoms") on which ``ml.precision``'s agreement gate compares a reduced-precision
copy of the version with its float32 outputs before the engine runs it in reduced precision.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from ml.preprocessing import PreprocessingConfig

CLASSIFIER_MODEL_NAME = "radassist-classifier"
SEGMENTER_MODEL_NAME = "radassist-segmenter"
CHAMPION_ALIAS = "champion"
PREPROCESSING_TAG = "preprocessing_config"
VALIDATION_METRIC_TAG = "validation_metric"
VALIDATION_SCORE_TAG = "validation_score"
DEMO_TAG = "demo"
#: Temperature fitted on validation (``ml.calibration``); applied to the classifier's outputs.
TEMPERATURE_TAG = "temperature"
PROMOTED_BY_TAG = "promoted_by"
PROMOTION_REASON_TAG = "promotion_reason"
PROMOTED_AT_TAG = "promoted_at"
PROMOTION_EVIDENCE_TAG = "promotion_evidence"
#: ``promoted_by`` of the one promotion no person approves: a demo model on a fresh installation.
AUTOMATIC_APPROVAL = "automatic (first demo model)"
REFERENCE_BATCH_TAG = "reference_batch"


class ModelNotRegistered(Exception):
    """The registry has no such model, version or champion (run ``bootstrap_models`` first)."""


@dataclass(frozen=True)
class RegisteredModelVersion:
    name: str
    version: int
    run_id: str | None
    validation_metric: str | None
    validation_score: float | None
    is_demo: bool
    is_champion: bool
    test_metrics: dict = field(default_factory=dict)  # filled only by the training functions


@dataclass(frozen=True)
class LoadedModel:
    keras_model: object  # keras.Model; typed loosely so this module imports without TensorFlow
    name: str
    version: int
    preprocessing_config: PreprocessingConfig
    is_demo: bool
    temperature: float = 1.0  # 1.0 (no change) for versions registered without one


@dataclass(frozen=True)
class ReferenceBatch:
    inputs: object  # float32 numpy array (slices, size, size, channels), prepared as for inference
    source: str  # "validation" (from the training data) or "phantoms" (ml.precision)


def default_artifact_location(tracking_uri: str) -> str | None:
    """Where a new experiment stores artifacts: beside a SQLite database, else the store's choice.

    MLflow's own default for database stores is ``./mlruns`` relative to the working directory,
    which moves with whoever happens to start the process; beside the database it stays put.
    """
    parsed = urlparse(tracking_uri)
    if parsed.scheme == "sqlite":
        database_path = Path(tracking_uri.removeprefix("sqlite:///"))
        return (database_path.parent / "artifacts").resolve().as_uri()
    return None


def store_exists(tracking_uri: str) -> bool:
    """False only for a SQLite store whose database file has not been made yet."""
    if urlparse(tracking_uri).scheme == "sqlite":
        return Path(tracking_uri.removeprefix("sqlite:///")).exists()
    return True


def _client(tracking_uri: str):
    """A client bound to ``tracking_uri``; reads use it so they never touch MLflow's globals."""
    import mlflow

    return mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


@contextlib.contextmanager
def using_tracking_store(tracking_uri: str):
    """Point the global MLflow client at ``tracking_uri`` for the duration, then restore it.

    Only training runs and logging a model need this (``mlflow.start_run`` and
    ``mlflow.tensorflow.log_model`` work through the globals); everything else uses ``_client``.
    MLflow's setters also write ``MLFLOW_TRACKING_URI`` and ``MLFLOW_REGISTRY_URI`` into the
    process environment, which every process started afterwards inherits (``make run`` trains the
    demo models, then starts the worker): those variables are put back exactly as they were, or
    the worker would read its models from MLflow's default store instead of the configured one.
    """
    import mlflow

    variables = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    previous_environment = {name: os.environ.get(name) for name in variables}
    previous_tracking = mlflow.get_tracking_uri()
    previous_registry = mlflow.get_registry_uri()
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    try:
        yield mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    finally:
        mlflow.set_tracking_uri(previous_tracking)
        mlflow.set_registry_uri(previous_registry)
        for name, value in previous_environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def ensure_experiment(
    name: str, *, tracking_uri: str, artifact_location: str | None = None
) -> str:
    if tracking_uri.startswith("sqlite:///"):
        Path(tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    client = _client(tracking_uri)
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    return client.create_experiment(
        name, artifact_location=artifact_location or default_artifact_location(tracking_uri)
    )


def _signature(model):
    import numpy as np
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Schema, TensorSpec

    def schema(shape, name):
        return Schema([TensorSpec(np.dtype(np.float32), (-1, *shape[1:]), name)])

    return ModelSignature(
        inputs=schema(model.input.shape, "slices"), outputs=schema(model.output.shape, "output")
    )


def _version_from(model_version, *, champion_version: int | None) -> RegisteredModelVersion:
    tags = model_version.tags or {}
    score = tags.get(VALIDATION_SCORE_TAG)
    return RegisteredModelVersion(
        name=model_version.name,
        version=int(model_version.version),
        run_id=model_version.run_id,
        validation_metric=tags.get(VALIDATION_METRIC_TAG),
        validation_score=float(score) if score is not None else None,
        is_demo=tags.get(DEMO_TAG) == "true",
        is_champion=champion_version == int(model_version.version),
    )


def register_keras_model(
    *,
    model,
    model_name: str,
    preprocessing_config: PreprocessingConfig,
    validation_metric: str,
    validation_score: float,
    tracking_uri: str,
    is_demo: bool = False,
    tags: dict[str, str] | None = None,
    reference_inputs=None,
) -> RegisteredModelVersion:
    """Log ``model`` to the active run and register it as a new version of ``model_name``.

    ``reference_inputs`` (prepared inputs, e.g. validation slices) become the version's reference
    batch; without them a phantom batch is stored (``log_reference_batch``).
    """
    import mlflow

    with using_tracking_store(tracking_uri) as client:
        version_tags = {
            PREPROCESSING_TAG: json.dumps(preprocessing_config.to_dict()),
            VALIDATION_METRIC_TAG: validation_metric,
            VALIDATION_SCORE_TAG: repr(float(validation_score)),
            DEMO_TAG: "true" if is_demo else "false",
            **log_reference_batch(model_name=model_name, preprocessing_config=preprocessing_config,
                                  reference_inputs=reference_inputs),
            **(tags or {}),
        }
        mlflow.log_dict(preprocessing_config.to_dict(), "preprocessing_config.json")
        model_info = mlflow.tensorflow.log_model(
            model,
            name="model",
            signature=_signature(model),
            # Explicit requirements: inferring them would re-import the model in a subprocess.
            pip_requirements=["tensorflow-cpu", "keras>=3"],
        )
        model_version = client.create_model_version(
            name=_ensure_registered_model(client, model_name),
            source=model_info.model_uri,
            run_id=mlflow.active_run().info.run_id,
            tags=version_tags,
        )
        return _version_from(
            client.get_model_version(model_name, model_version.version), champion_version=None
        )


def _ensure_registered_model(client, model_name: str) -> str:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(model_name)
    except MlflowException:
        client.create_registered_model(model_name)
    return model_name


def _champion(client, model_name: str):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(model_name, CHAMPION_ALIAS)
    except MlflowException:
        return None


def champion_version(model_name: str, *, tracking_uri: str) -> RegisteredModelVersion | None:
    champion = _champion(_client(tracking_uri), model_name)
    if champion is None:
        return None
    return _version_from(champion, champion_version=int(champion.version))


def promote_version(
    *, model_name: str, version: int, tracking_uri: str, approved_by: str, reason: str,
    evidence: dict | None = None,
) -> None:
    """Make ``version`` the champion and record who approved it, why, when and on what evidence.

    The only function that moves the champion alias. The approval is stored as tags on the version
    (``promoted_by``, ``promotion_reason``, ``promoted_at``, ``promotion_evidence`` as JSON), so
    the registry itself says why each champion is the champion.
    """
    from datetime import UTC, datetime

    client = _client(tracking_uri)
    client.get_model_version(model_name, str(version))  # raises when it does not exist
    for key, value in {
        PROMOTED_BY_TAG: approved_by,
        PROMOTION_REASON_TAG: reason,
        PROMOTED_AT_TAG: datetime.now(UTC).isoformat(timespec="seconds"),
        PROMOTION_EVIDENCE_TAG: json.dumps(evidence or {}, sort_keys=True),
    }.items():
        client.set_model_version_tag(model_name, str(version), key, value)
    client.set_registered_model_alias(model_name, CHAMPION_ALIAS, str(version))


def version_info(model_name: str, version: int, *, tracking_uri: str) -> RegisteredModelVersion:
    """One registered version (raises ModelNotRegistered when there is none)."""
    from mlflow.exceptions import MlflowException

    client = _client(tracking_uri)
    try:
        model_version = client.get_model_version(model_name, str(version))
    except MlflowException as error:
        raise ModelNotRegistered(f"{model_name} version {version} is not registered") from error
    champion = _champion(client, model_name)
    return _version_from(model_version, champion_version=int(champion.version) if champion else None)


def _artifact_location(model_version, *, tracking_uri: str) -> str:
    """Where the version's files are, found through a client bound to ``tracking_uri``.

    MLflow 3 registers a logged model with a ``models:/m-...`` source, which MLflow itself resolves
    through the process-wide tracking URI: in a process that has also used another store (the tests,
    a worker that trained a model), that lookup would search the wrong store.
    """
    source = model_version.source
    if source.startswith("models:/m-"):
        model_id = source.removeprefix("models:/").split("/", 1)[0]
        return _client(tracking_uri).get_logged_model(model_id).artifact_location
    return source


def _load(model_version, *, tracking_uri: str) -> LoadedModel:
    import keras
    import mlflow

    tags = model_version.tags or {}
    if PREPROCESSING_TAG not in tags:
        raise ModelNotRegistered(
            f"{model_version.name} version {model_version.version} has no preprocessing config"
        )
    with tempfile.TemporaryDirectory(prefix="radassist-model-") as directory:
        local = Path(mlflow.artifacts.download_artifacts(
            artifact_uri=_artifact_location(model_version, tracking_uri=tracking_uri), dst_path=directory,
            tracking_uri=tracking_uri, registry_uri=tracking_uri,
        ))
        keras_files = sorted(local.rglob("*.keras"))
        if not keras_files:
            raise ModelNotRegistered(
                f"{model_version.name} version {model_version.version} has no .keras file"
            )
        keras_model = keras.saving.load_model(keras_files[0], compile=False)
    return LoadedModel(
        keras_model=keras_model,
        name=model_version.name,
        version=int(model_version.version),
        preprocessing_config=PreprocessingConfig.from_dict(json.loads(tags[PREPROCESSING_TAG])),
        is_demo=tags.get(DEMO_TAG) == "true",
        temperature=float(tags.get(TEMPERATURE_TAG, 1.0)),
    )


def load_champion(model_name: str, *, tracking_uri: str) -> LoadedModel:
    champion = _champion(_client(tracking_uri), model_name)
    if champion is None:
        raise ModelNotRegistered(f"no {CHAMPION_ALIAS} version of {model_name} is registered")
    return _load(champion, tracking_uri=tracking_uri)


def load_version(model_name: str, version: int, *, tracking_uri: str) -> LoadedModel:
    from mlflow.exceptions import MlflowException

    try:
        model_version = _client(tracking_uri).get_model_version(model_name, str(version))
    except MlflowException as error:
        raise ModelNotRegistered(f"{model_name} version {version} is not registered") from error
    return _load(model_version, tracking_uri=tracking_uri)


def log_reference_batch(
    *, model_name: str, preprocessing_config: PreprocessingConfig, reference_inputs=None
) -> dict[str, str]:
    """Store the version's reference batch as an artifact of the active run; returns its tag.

    Up to ``ml.precision.REFERENCE_BATCH_SLICES`` evenly spaced ``reference_inputs``, or, without
    any, the deterministic phantom batch for ``preprocessing_config``.
    """
    import io

    import mlflow
    import numpy as np

    from ml.precision import phantom_reference_inputs, reference_slices_from

    inputs = reference_slices_from(reference_inputs)
    source = "validation"
    if inputs is None:
        inputs, source = phantom_reference_inputs(preprocessing_config), "phantoms"
    buffer = io.BytesIO()
    np.savez_compressed(buffer, inputs=inputs.astype(np.float32), source=np.array(source))
    artifact_path = f"reference_batch/{model_name}.npz"
    with tempfile.TemporaryDirectory(prefix="radassist-reference-") as directory:
        local = Path(directory) / f"{model_name}.npz"
        local.write_bytes(buffer.getvalue())
        mlflow.log_artifact(str(local), "reference_batch")
    return {REFERENCE_BATCH_TAG: artifact_path}


def load_reference_batch(model_name: str, version: int, *, tracking_uri: str) -> ReferenceBatch | None:
    """The version's stored reference batch, or None for versions registered without one."""
    import numpy as np

    client = _client(tracking_uri)
    model_version = client.get_model_version(model_name, str(version))
    artifact_path = (model_version.tags or {}).get(REFERENCE_BATCH_TAG)
    if not artifact_path or not model_version.run_id:
        return None
    with tempfile.TemporaryDirectory(prefix="radassist-reference-") as directory:
        local = client.download_artifacts(model_version.run_id, artifact_path, directory)
        with np.load(local) as stored:
            return ReferenceBatch(inputs=stored["inputs"], source=str(stored["source"]))
