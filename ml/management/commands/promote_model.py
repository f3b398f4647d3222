import getpass
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Promote a registered model version to champion after scoring it and the current champion on the same "
        "frozen evaluation set: it must contain no NaN, be non-inferior within --margin (95 % bootstrap interval) "
        "and better overall; a demo champion never blocks a real model. Records who approved it and why."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        """``--version`` names the model version here, in place of Django's own ``--version`` flag."""
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser):
        from ml.promotion import DEFAULT_MARGIN
        from ml.registry import CLASSIFIER_MODEL_NAME, SEGMENTER_MODEL_NAME

        parser.add_argument("--name", required=True, choices=[CLASSIFIER_MODEL_NAME, SEGMENTER_MODEL_NAME])
        parser.add_argument("--version", required=True, type=int)
        parser.add_argument("--reason", required=True, help="Why this version should serve patients.")
        parser.add_argument("--evaluation-data", required=True, type=Path,
                            help="The frozen evaluation set, in the model's training layout.")
        parser.add_argument("--margin", type=float, default=DEFAULT_MARGIN,
                            help="Non-inferiority margin in the score's units (accuracy or Dice).")
        parser.add_argument("--approved-by", default=None,
                            help="Who approves the promotion (default: the user running the command).")

    def handle(self, *args, name, version, reason, evaluation_data, margin, approved_by, **options):
        from ml.evaluation import EvaluationSetError
        from ml.promotion import PromotionRefused, promote_with_approval
        from ml.registry import ModelNotRegistered

        approved_by = approved_by or getpass.getuser()
        try:
            decision = promote_with_approval(
                model_name=name, version=version, evaluation_dir=evaluation_data,
                tracking_uri=settings.MLFLOW_TRACKING_URI, approved_by=approved_by, reason=reason, margin=margin,
            )
        except PromotionRefused as refused:
            raise CommandError(
                f"{name} version {version} was not promoted: " + "; ".join(refused.reasons)
            ) from refused
        except (EvaluationSetError, ModelNotRegistered) as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            f"{name} version {version} is now the champion, approved by {approved_by}: {decision.reasons[0]}."
        )
