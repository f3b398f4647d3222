"""The settings modules: importing one writes nothing, and the test settings change only what costs time."""

import importlib
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from portal.apps import embedded_service_folders

REPO_ROOT = Path(__file__).resolve().parents[2]

STARTUP_SCRIPT = """
import os, pathlib
var = pathlib.Path(os.environ["RADASSIST_VAR_DIR"])
import portal.settings.local
assert not var.exists(), "importing the settings wrote to disk"
import django
django.setup()
print(sorted(path.relative_to(var).as_posix() for path in var.rglob("*")))
"""


def test_importing_settings_writes_nothing_and_startup_creates_the_embedded_services_folders(tmp_path):
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DATABASE_", "CELERY_", "MLFLOW_", "RADASSIST_", "EMAIL_"))
    }
    environment.update(DJANGO_SETTINGS_MODULE="portal.settings.local", RADASSIST_VAR_DIR=str(tmp_path / "var"))

    result = subprocess.run([sys.executable, "-c", STARTUP_SCRIPT], cwd=REPO_ROOT, env=environment,
                            capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == str(["broker", "broker/control", "broker/processed", "broker/queue",
                                                  "mlflow"])


def test_external_services_need_no_folders():
    production = SimpleNamespace(
        DATABASES={"default": {"ENGINE": "django.db.backends.postgresql", "NAME": "radassist"}},
        CELERY_BROKER_URL="redis://redis:6379/0",
        CELERY_BROKER_TRANSPORT_OPTIONS={"visibility_timeout": 10800},
        MLFLOW_TRACKING_URI="http://mlflow:5000",
    )

    assert embedded_service_folders(production) == []


def test_test_settings_differ_from_local_only_in_what_costs_time():
    local, test = importlib.import_module("portal.settings.local"), importlib.import_module("portal.settings.test")
    names = {name for name in dir(local) + dir(test) if name.isupper()}
    differences = {name for name in names if getattr(local, name, None) != getattr(test, name, None)}

    # DEBUG and the key differ too; Django's test runner turns DEBUG off whatever the module says.
    assert differences - {"DEBUG", "SECRET_KEY"} == {
        "PASSWORD_HASHERS", "EMAIL_BACKEND", "SESSION_ENGINE", "SESSION_CACHE_ALIAS", "CACHES"
    }
    assert test.CACHES["default"] == local.CACHES["default"]


def test_local_settings_honour_django_debug(monkeypatch):
    local = importlib.import_module("portal.settings.local")

    monkeypatch.setenv("DJANGO_DEBUG", "False")
    assert importlib.reload(local).DEBUG is False

    monkeypatch.delenv("DJANGO_DEBUG")
    assert importlib.reload(local).DEBUG is True
