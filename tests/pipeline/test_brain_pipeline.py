"""A generated brain MRI study from ingest to analysis: the FLAIR series runs the brain pair on MR scaling,
the T1 series of the same study is held with its reason and runs nothing."""

from unittest import mock

import pytest

from ml import services
from ml.brain_phantoms import generate_brain_phantom, write_brain_mr_study
from ml.models import Analysis, AnalysisStatus
from ml.tasks import analyse_series
from reports.tasks import create_draft_report
from scans.ingest import ingest_files, open_batch
from scans.models import FileOutcome, Series, SeriesStatus, UploadBatch

pytestmark = pytest.mark.django_db(transaction=True)


def test_brain_flair_study_is_ingested_routed_and_analysed(north, pipeline_settings, tmp_path):
    phantom = generate_brain_phantom(slices=6, size=32, seed=2)
    written = write_brain_mr_study(phantom, tmp_path / "study", patient_id=north.patient.mrn,
                                   patient_name="Phantom^Brain", sequences=("FLAIR", "T1"))
    batch = open_batch(hospital=north.hospital, uploaded_by=north.doctor, source=UploadBatch.Source.WEB)
    paths = written["FLAIR"] + written["T1"]
    handles = [path.open("rb") for path in paths]
    results = ingest_files(batch=batch, files=[(path.name, handle) for path, handle in zip(paths, handles,
                                                                                              strict=True)])
    for handle in handles:
        handle.close()
    assert [result.outcome for (result,) in results] == [FileOutcome.STORED] * 12, [r.reason for (r,) in results]

    flair = Series.objects.get(description="AX T2 FLAIR")
    t1 = Series.objects.get(description="AX T1 PRE")
    assert (flair.modality, flair.body_part, flair.scanning_sequence, flair.inversion_time) == (
        "MR", "BRAIN", "SE\\IR", 2500.0)
    with (mock.patch.object(analyse_series, "delay") as analysis_delay,
          mock.patch.object(create_draft_report, "delay") as report_drafts):
        analysis = services.queue_analysis(series_id=flair.pk)
        assert services.queue_analysis(series_id=t1.pk) is None
        for call in analysis_delay.call_args_list:
            analyse_series.apply(kwargs=call.kwargs)

    assert (analysis.catalogue_entry, analysis.classifier_name, analysis.segmenter_name) == (
        "brain-mr-flair", "radassist-brain-classifier", "radassist-brain-segmenter")
    analysis.refresh_from_db()
    # The brain models were registered with MR configurations, which refuse CT input: success
    # means the slices were read as MR and scaled per volume.
    assert analysis.status == AnalysisStatus.SUCCEEDED, analysis.failure_reason
    assert analysis.measurements["area_unit"] == "mm2" and analysis.measurements["has_physical_scale"]
    assert len(analysis.measurements["area_per_slice"]) == 6
    assert analysis.key_images.count() >= 2
    report_drafts.assert_called_once_with(analysis_id=analysis.pk)

    t1.refresh_from_db()
    assert t1.status == SeriesStatus.NO_MODEL
    assert "No model for this kind of series (MR, body part BRAIN, sequence T1)" in t1.status_reason
    assert not Analysis.objects.filter(series=t1).exists()
