import pytest


@pytest.fixture(scope="session")
def tiny_model_store(tmp_path_factory):
    """An MLflow store with tiny demo champions of both models, made once per test session."""
    from tests.pipeline.tiny_models import register_tiny_models

    directory = tmp_path_factory.mktemp("mlflow")
    tracking_uri = f"sqlite:///{directory / 'mlflow.db'}"
    register_tiny_models(tracking_uri)
    return tracking_uri


@pytest.fixture
def pipeline_settings(settings, tiny_model_store, tmp_path):
    """Tiny champions and private files under tmp."""
    settings.MLFLOW_TRACKING_URI = tiny_model_store
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                    "OPTIONS": {"location": str(tmp_path / "media"), "base_url": None}},
    }
    return settings
