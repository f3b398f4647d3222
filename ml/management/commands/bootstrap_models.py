import tempfile
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand


def artifact_location():
    """MLFLOW_ARTIFACT_ROOT as MLflow wants it: a URI (s3://..., file:///...) for new experiments."""
    root = settings.MLFLOW_ARTIFACT_ROOT
    if not root:
        return None
    return root if "://" in root else Path(root).resolve().as_uri()


class Command(BaseCommand):
    help = (
        "Make sure both models have a champion: where one is missing, train small demo models on phantoms "
        "(a few minutes on two cores) and register them with demo=true. Does nothing when champions exist."
    )

    def handle(self, *args, **options):
        from ml.registry import CLASSIFIER_MODEL_NAME, SEGMENTER_MODEL_NAME, champion_version

        tracking_uri = settings.MLFLOW_TRACKING_URI
        champions = {name: champion_version(name, tracking_uri=tracking_uri)
                     for name in (CLASSIFIER_MODEL_NAME, SEGMENTER_MODEL_NAME)}
        if all(champions.values()):
            described = ", ".join(
                f"{champion.name} version {champion.version}{' (demo)' if champion.is_demo else ''}"
                for champion in champions.values()
            )
            self.stdout.write(f"Models already installed: {described}. Nothing to do.")
            return
        missing = ", ".join(name for name, champion in champions.items() if champion is None)
        self.stdout.write(f"No champion for {missing}: training demo models on phantoms (a few minutes)...")
        from ml.training import bootstrap_demo_models

        with tempfile.TemporaryDirectory(prefix="radassist-bootstrap-") as work_dir:
            classifier, segmenter = bootstrap_demo_models(
                tracking_uri=tracking_uri, work_dir=work_dir, artifact_location=artifact_location()
            )
        for registered in (classifier, segmenter):
            state = "champion" if registered.is_champion else "registered (an existing champion was kept)"
            self.stdout.write(
                f"{registered.name} version {registered.version}: {state}, "
                f"{registered.validation_metric} {registered.validation_score:.3f} on phantoms. "
                "Demo model, not for clinical use."
            )
