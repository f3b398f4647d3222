from pathlib import Path

from django.apps import AppConfig
from django.conf import settings

BROKER_FOLDER_OPTIONS = ("data_folder_in", "data_folder_out", "processed_folder", "control_folder")


def embedded_service_folders(settings):
    """The folders the configured embedded services need before their first use.

    SQLite does not create the folder of its database file, kombu's file-system transport lists
    its queue folder before anything is sent, and MLflow's SQLite store is opened before a model
    is registered. PostgreSQL, Redis and an MLflow server need none, so production creates nothing.
    """
    folders = []
    for database in settings.DATABASES.values():
        name = str(database.get("NAME") or "")
        if database["ENGINE"] == "django.db.backends.sqlite3" and name and not name.startswith((":memory:", "file:")):
            folders.append(Path(name).parent)
    if settings.CELERY_BROKER_URL.startswith("filesystem"):
        options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
        folders += [Path(options[option]) for option in BROKER_FOLDER_OPTIONS if options.get(option)]
    if settings.MLFLOW_TRACKING_URI.startswith("sqlite:///"):
        folders.append(Path(settings.MLFLOW_TRACKING_URI.removeprefix("sqlite:///")).parent)
    return list(dict.fromkeys(folders))


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self):
        # Here, not in the settings, so that importing settings writes nothing; and here rather than in
        # `make run` because every process (manage.py, gunicorn, the Celery worker, pytest) passes through
        # django.setup() before it opens SQLite or the broker. A few mkdir calls, harmless when they exist.
        for folder in embedded_service_folders(settings):
            folder.mkdir(parents=True, exist_ok=True)
        from portal import checks  # noqa: F401 - registers the deployment checks
