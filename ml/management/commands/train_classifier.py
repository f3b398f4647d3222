from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ml.management.commands.bootstrap_models import artifact_location


class Command(BaseCommand):
    help = (
        "Train the VGG16 classifier on DIR/train, DIR/valid (and DIR/test) with one folder per class, log the run "
        "to MLflow and register the model. Promote it with promote_model (scored against the champion on a frozen set)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--data", required=True, type=Path, help="Folder with train/, valid/ and test/.")
        parser.add_argument("--epochs", type=int, default=20, help="Epochs with the base frozen (head only).")
        parser.add_argument("--fine-tune-epochs", type=int, default=10, help="Epochs fine-tuning block5.")
        parser.add_argument("--input-size", type=int, default=224)
        parser.add_argument("--batch-size", type=int, default=16)
        parser.add_argument("--base-weights", type=Path, default=None,
                            help="VGG16 weights file (e.g. Keras' ..._notop.h5); random initialisation without.")
        parser.add_argument("--seed", type=int, default=0,
                            help="Drives initialisation, augmentation, shuffling and the patient split.")

    def handle(self, *args, data, epochs, fine_tune_epochs, input_size, batch_size, base_weights, seed,
               **options):
        from ml.training import TrainingDataError, TrainingFailed, train_classifier

        if base_weights is not None and not base_weights.is_file():
            raise CommandError(f"--base-weights {base_weights} is not a file")
        try:
            registered = train_classifier(
                data_dir=data, tracking_uri=settings.MLFLOW_TRACKING_URI, input_size=input_size, epochs=epochs,
                fine_tune_epochs=fine_tune_epochs, batch_size=batch_size, base_weights_path=base_weights,
                seed=seed, artifact_location=artifact_location(),
            )
        except (TrainingDataError, TrainingFailed, FileNotFoundError) as error:
            raise CommandError(str(error)) from error
        report_registered(self, registered, metric_label="validation accuracy")


def report_registered(command, registered, *, metric_label):
    command.stdout.write(
        f"Registered {registered.name} version {registered.version} "
        f"({metric_label} {registered.validation_score:.3f}); "
        + ("it is now the champion." if registered.is_champion else (
            "the champion is unchanged. To promote it: python manage.py promote_model "
            f"--name {registered.name} --version {registered.version} --evaluation-data DIR --reason '...'"
        ))
    )
