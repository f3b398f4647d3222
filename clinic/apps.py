from django.apps import AppConfig


class ClinicConfig(AppConfig):
    name = "clinic"
    verbose_name = "Clinic pages and pipeline"

    def ready(self):
        # Connects each stage's "done" signal to the next stage's task (see clinic/pipeline.py).
        from clinic import pipeline  # noqa: F401
