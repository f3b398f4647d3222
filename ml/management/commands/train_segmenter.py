from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ml.management.commands.bootstrap_models import artifact_location
from ml.management.commands.train_classifier import report_registered


class Command(BaseCommand):
    help = (
        "Train the U-Net segmenter on DIR/<patient>/<slice>.tif with <slice>_mask.tif beside it (split by patient), "
        "log the run to MLflow and register the model. Promote it with promote_model (scored against the champion "
        "on a frozen set)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--data", required=True, type=Path, help="Folder of patient folders.")
        parser.add_argument("--epochs", type=int, default=30)
        parser.add_argument("--input-size", type=int, default=128)
        parser.add_argument("--depth", type=int, default=4, help="Number of poolings.")
        parser.add_argument("--base-filters", type=int, default=32)
        parser.add_argument("--batch-size", type=int, default=16)
        parser.add_argument("--seed", type=int, default=0,
                            help="Drives initialisation, augmentation, shuffling and the patient split.")

    def handle(self, *args, data, epochs, input_size, depth, base_filters, batch_size, seed, **options):
        from ml.training import TrainingDataError, TrainingFailed, train_segmenter

        try:
            registered = train_segmenter(
                data_dir=data, tracking_uri=settings.MLFLOW_TRACKING_URI, input_size=input_size, depth=depth,
                base_filters=base_filters, epochs=epochs, batch_size=batch_size, seed=seed,
                artifact_location=artifact_location(),
            )
        except (TrainingDataError, TrainingFailed, FileNotFoundError, ValueError) as error:
            raise CommandError(str(error)) from error
        report_registered(self, registered, metric_label="validation Dice")
