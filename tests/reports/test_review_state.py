"""The review state the worklist sorts on is kept on the study whenever a report version changes."""

from reports.models import Report, ReportVersion, VersionStatus, refresh_review_states
from reports.services import AGREES_WITH_AI, amend_report, create_draft_report, save_draft, sign_report
from scans.models import Study
from tests.factories import DEFAULT_PASSWORD, AnalysisFactory, SeriesFactory, StudyFactory


def state_of(study):
    study = Study.objects.get(pk=study.pk)
    return study.needs_review, study.report_status


def test_a_draft_needs_review_until_signed_and_again_when_amended(north):
    study = StudyFactory(hospital=north.hospital)
    analysis = AnalysisFactory(series=SeriesFactory(study=study))
    assert state_of(study) == (False, "")

    version = create_draft_report(analysis=analysis).versions.get()
    assert state_of(study) == (True, VersionStatus.DRAFT)

    save_draft(version=version, doctor=north.doctor, sections={"impression": "No nodule."}, conclusion=AGREES_WITH_AI)
    sign_report(version=ReportVersion.objects.get(pk=version.pk), doctor=north.doctor, password=DEFAULT_PASSWORD)
    assert state_of(study) == (False, VersionStatus.FINAL)

    amend_report(report=version.report, doctor=north.doctor, amendment_note="Typo in the impression.")
    assert state_of(study) == (True, VersionStatus.DRAFT)


def test_deleting_a_version_and_a_bulk_refresh_keep_the_state(north):
    study = StudyFactory(hospital=north.hospital)
    report = Report.objects.create(hospital=north.hospital, study=study)
    draft = ReportVersion.objects.create(hospital=north.hospital, report=report, number=1)
    assert state_of(study) == (True, VersionStatus.DRAFT)
    draft.delete()
    assert state_of(study) == (False, "")

    ReportVersion.objects.create(hospital=north.hospital, report=report, number=1, status=VersionStatus.FINAL)
    Study.objects.filter(pk=study.pk).update(needs_review=True, report_status="")
    refresh_review_states()
    assert state_of(study) == (False, VersionStatus.FINAL)
