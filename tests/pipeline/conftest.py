import pytest


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
