"""The migration that ends the default conclusion keeps what signed versions said and unsets idle drafts."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("reports", "0003_dicom_result_objects_and_outbox")]
AFTER = [("reports", "0004_structured_report_conclusion_corrections_hold")]


@pytest.mark.django_db(transaction=True)
def test_signed_versions_keep_their_conclusion_and_untouched_drafts_must_choose(north, analysis):
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old_apps = executor.loader.project_state(BEFORE).apps
    Report = old_apps.get_model("reports", "Report")
    Version = old_apps.get_model("reports", "ReportVersion")
    study_id = analysis.series.study_id
    report = Report.objects.create(hospital_id=north.hospital.pk, study_id=study_id)
    rows = {
        "signed_agreeing": dict(number=1, status="final", conclusion_class=""),
        "signed_differing": dict(number=2, status="amended", conclusion_class="normal", override_reason="Scar."),
        "untouched_draft": dict(number=3, status="draft", conclusion_class=""),
    }
    ids = {
        name: Version.objects.create(hospital_id=north.hospital.pk, report=report, **row).pk
        for name, row in rows.items()
    }

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    from reports.models import ReportVersion

    conclusions = {name: ReportVersion.objects.get(pk=pk).conclusion for name, pk in ids.items()}
    assert conclusions == {"signed_agreeing": "agrees", "signed_differing": "differs", "untouched_draft": ""}
