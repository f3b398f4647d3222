"""Fill the studies' stored review state (``needs_review``, ``report_status``) from their report versions."""

from django.db import migrations
from django.db.models import Exists, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce


def backfill(apps, schema_editor):
    Study = apps.get_model("scans", "Study")
    ReportVersion = apps.get_model("reports", "ReportVersion")
    versions = ReportVersion.objects.filter(report__study=OuterRef("pk"))
    Study.objects.update(
        needs_review=Exists(versions.filter(status="draft")),
        report_status=Coalesce(Subquery(versions.order_by("-number").values("status")[:1]), Value("")),
    )


class Migration(migrations.Migration):

    dependencies = [
        ("reports", "0004_structured_report_conclusion_corrections_hold"),
        ("scans", "0009_study_review_state_and_list_indexes"),
    ]

    operations = [
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
