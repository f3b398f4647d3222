"""Report fixtures: a study of North's patient with an analysed series and four key images, in a temporary storage."""

import pytest
from django.core.files.storage import FileSystemStorage


@pytest.fixture(autouse=True)
def private_storage(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media"), "base_url": None},
        },
    }
    return FileSystemStorage(location=str(tmp_path / "media"))


@pytest.fixture(autouse=True)
def eager_celery():
    """Tasks queued on commit run in the test process (only where a test executes the on-commit callbacks)."""
    from celery_app import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture
def analysis(north):
    from tests.factories import AnalysisFactory, InstanceFactory, KeyImageFactory, SeriesFactory, StudyFactory

    study = StudyFactory(hospital=north.hospital, patient=north.patient, accession_number="ACC-NORTH-0042")
    series = SeriesFactory(study=study, description="Chest low dose")
    for position in range(4):
        InstanceFactory(series=series, slice_location=-115.0 + 1.25 * position, columns=512, pixel_spacing=[0.7, 0.7])
    analysis = AnalysisFactory(series=series)
    for index, reason in enumerate(["largest_lesion", "largest_lesion", "highest_probability", "highest_probability"]):
        KeyImageFactory(analysis=analysis, slice_index=index, reason=reason)
    return analysis


@pytest.fixture
def draft(analysis):
    """Version 1 of the study's report as the pipeline's task leaves it, without its PDF (not rendered)."""
    from reports.services import create_draft_report

    return create_draft_report(analysis=analysis).versions.get()


@pytest.fixture
def signed(draft, north, django_capture_on_commit_callbacks):
    """Version 1 written and signed by North's doctor, with its PDF rendered and the patient emailed."""
    from reports.services import AGREES_WITH_AI, override_ai_class, sign_report, update_draft
    from tests.factories import DEFAULT_PASSWORD

    with django_capture_on_commit_callbacks(execute=True):
        update_draft(
            version=draft,
            doctor=north.doctor,
            impression="Spiculated right upper lobe mass, suspicious for adenocarcinoma.",
            recommendation="Refer to the thoracic oncology board; PET-CT.",
        )
        override_ai_class(version=draft, doctor=north.doctor, conclusion_class=AGREES_WITH_AI, reason="")
        version = sign_report(version=draft, doctor=north.doctor, password=DEFAULT_PASSWORD)
    version.refresh_from_db()
    return version
