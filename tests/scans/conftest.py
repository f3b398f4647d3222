"""Fixtures for ingest tests: private storage in a temporary folder, recorded analysis queueing, real CT files."""

import shutil
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

PYDICOM_TEST_FILES = Path(get_testdata_file("CT_small.dcm")).parent


def pydicom_file(name):
    """A file shipped in pydicom's wheel (never fetched from the network)."""
    path = PYDICOM_TEST_FILES / name
    assert path.exists(), f"{name} is not shipped with the installed pydicom"
    return path


@pytest.fixture(autouse=True)
def private_storage(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media"), "base_url": None},
        },
    }
    return tmp_path / "media"


@pytest.fixture(autouse=True)
def queued_analyses(monkeypatch):
    """Series ids the pipeline queued for analysis when ingest completed them, in order."""
    from ml.tasks import queue_series_analysis

    queued = []
    monkeypatch.setattr(queue_series_analysis, "delay", lambda *, series_id: queued.append(series_id))
    return queued


@pytest.fixture(autouse=True)
def quiet_checks(monkeypatch):
    """Series ids for which a quiet-period check was scheduled (instead of a Celery message)."""
    from scans.ingest import completion

    scheduled = []
    monkeypatch.setattr(
        completion, "schedule_quiet_check", lambda series_id, *, countdown: scheduled.append(series_id)
    )
    return scheduled


@pytest.fixture
def write_ct_series(tmp_path):
    """Write a small phantom CT series as real DICOM files; returns their paths in slice order."""
    from ml.phantoms import generate_phantom_series, write_dicom_series

    counter = iter(range(1000))

    def write(*, patient_id="MRN-CT-1", patient_name="Doe^Jane", slices=3, size=16, **kwargs):
        phantom = generate_phantom_series(label="normal", slices=slices, size=size)
        directory = tmp_path / f"series-{next(counter)}"
        return write_dicom_series(phantom, directory, patient_id=patient_id, patient_name=patient_name, **kwargs)

    return write


@pytest.fixture
def copy_of(tmp_path):
    def copy(path, name=None):
        target = tmp_path / "copies" / (name or Path(path).name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        return target

    return copy
