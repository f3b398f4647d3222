from django.apps import AppConfig


class MlConfig(AppConfig):
    name = "ml"
    verbose_name = "Analyses and models"

    def ready(self):
        from ml import checks  # noqa: F401  (registers the system checks)
