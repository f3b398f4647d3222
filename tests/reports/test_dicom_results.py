"""AI results and signed reports as DICOM objects: SEG, TID 1500 SR and Encapsulated PDF, checked with highdicom and
dciodvfy, stored in their study (found by QIDO-RS), never analysed, superseded by reanalyses and amendments."""

import io
import shutil
import subprocess

import highdicom
import numpy as np
import pydicom
import pytest
from django.test import Client
from django.utils import timezone

from reports.dicom_results import make_analysis_result_objects, make_signed_report_object
from reports.models import DicomResultObject, ResultKind
from scans.models import Series, SeriesStatus
from tests.reports.results_fixtures import analysed_phantom_series


def stored_dataset(result_object):
    with result_object.instance.file.open("rb") as stored:
        return pydicom.dcmread(io.BytesIO(stored.read()))


def dciodvfy_errors(dataset, tmp_path):
    """The error lines dciodvfy (dicom3tools) reports for a dataset; warnings are allowed."""
    path = tmp_path / f"{dataset.SOPInstanceUID}.dcm"
    dataset.save_as(path, enforce_file_format=True)
    checked = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (checked.stdout + checked.stderr).splitlines() if line.startswith("Error")]


needs_dciodvfy = pytest.mark.skipif(shutil.which("dciodvfy") is None,
                                    reason="dciodvfy is not installed (apt-get install dicom3tools)")


def content_items(dataset):
    """Every SR content item, depth first, as (concept meaning, item)."""
    for item in dataset.get("ContentSequence", []):
        yield item.ConceptNameCodeSequence[0].CodeMeaning, item
        yield from content_items(item)


@pytest.fixture
def analysed(north):
    return analysed_phantom_series(world=north)


def by_kind(result_objects):
    return {result_object.kind: result_object for result_object in result_objects}


@needs_dciodvfy
def test_seg_and_sr_describe_the_analysis_and_pass_dciodvfy(analysed, tmp_path):
    analysis, masks = analysed
    made = by_kind(make_analysis_result_objects(analysis=analysis))
    assert set(made) == {ResultKind.SEGMENTATION, ResultKind.MEASUREMENT_REPORT}
    sources = list(analysis.series.instances.in_slice_order())

    segmentation = stored_dataset(made[ResultKind.SEGMENTATION])
    assert dciodvfy_errors(segmentation, tmp_path) == []
    assert (segmentation.Modality, segmentation.Manufacturer) == ("SEG", "RadAssist")
    assert segmentation.StudyInstanceUID == analysis.series.study.study_instance_uid
    assert segmentation.SeriesInstanceUID != analysis.series.series_instance_uid
    assert "segmentation" in segmentation.SeriesDescription and "DEMO" in segmentation.SeriesDescription
    segment = segmentation.SegmentSequence[0]
    assert segment.SegmentLabel == "Neoplasm"
    assert segment.SegmentedPropertyTypeCodeSequence[0].CodeValue == "108369006"  # SNOMED CT Neoplasm
    assert segment.SegmentedPropertyCategoryCodeSequence[0].CodeValue == "49755003"
    assert (segment.SegmentAlgorithmName, segment.SegmentationAlgorithmIdentificationSequence[0].AlgorithmVersion) \
        == (analysis.segmenter_name, analysis.segmenter_version)
    referenced = {item.ReferencedSOPInstanceUID
                  for series in segmentation.ReferencedSeriesSequence for item in series.ReferencedInstanceSequence}
    assert referenced == {instance.sop_instance_uid for instance in sources}
    read_back = highdicom.seg.Segmentation.from_dataset(segmentation).get_pixels_by_source_instance(
        source_sop_instance_uids=[instance.sop_instance_uid for instance in sources], segment_numbers=[1],
        assert_missing_frames_are_empty=True,
    )
    assert np.array_equal(read_back[..., 0].astype(bool), masks)

    report = stored_dataset(made[ResultKind.MEASUREMENT_REPORT])
    assert dciodvfy_errors(report, tmp_path) == []
    assert (report.Modality, report.Manufacturer) == ("SR", "RadAssist")
    assert report.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR
    assert report.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    assert report.VerificationFlag == "UNVERIFIED"
    items = list(content_items(report))
    numbers = {meaning: float(item.MeasuredValueSequence[0].NumericValue)
               for meaning, item in items if item.ValueType == "NUM"}
    measured = analysis.measurements
    assert numbers["Volume"] == pytest.approx(measured["volume_ml"], rel=1e-3)
    assert numbers["Diameter"] == pytest.approx(measured["largest_diameter"], rel=1e-3)
    assert numbers["Area"] == pytest.approx(measured["largest_area"], rel=1e-3)
    assert numbers["Probability"] == pytest.approx(analysis.class_probabilities["adenocarcinoma"], abs=1e-4)
    units = {meaning: item.MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0].CodeValue
             for meaning, item in items if item.ValueType == "NUM"}
    assert (units["Volume"], units["Diameter"], units["Area"]) == ("mL", "mm", "mm2")
    findings = [item.ConceptCodeSequence[0].CodeMeaning for meaning, item in items
                if meaning == "Finding" and item.ValueType == "CODE"]
    assert set(findings) == {"Neoplasm", "Adenocarcinoma"}
    texts = {meaning: item.TextValue for meaning, item in items if item.ValueType == "TEXT"}
    assert "demo model" in texts["Device Observer Name"]
    assert analysis.classifier_name in texts["Device Observer Model Name"]
    assert texts["Algorithm Name"] in {analysis.classifier_name, analysis.segmenter_name}
    segment_reference = next(item for meaning, item in items if meaning == "Referenced Segment")
    assert segment_reference.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == segmentation.SOPInstanceUID
    evidence = {item.ReferencedSOPInstanceUID for study in report.CurrentRequestedProcedureEvidenceSequence
                for series in study.ReferencedSeriesSequence for item in series.ReferencedSOPSequence}
    assert evidence == {instance.sop_instance_uid for instance in sources} | {segmentation.SOPInstanceUID}


def test_result_objects_are_stored_in_the_study_found_by_qido_never_analysed_nor_shown_to_patients(analysed, north):
    analysis, _ = analysed
    made = make_analysis_result_objects(analysis=analysis)
    study = analysis.series.study
    result_series = Series.objects.filter(study=study, status=SeriesStatus.RESULT)
    assert sorted(result_series.values_list("modality", flat=True)) == ["SEG", "SR"]
    assert not any(series.analyses.exists() for series in result_series)
    assert list(Series.objects.filter(study=study).acquired()) == [analysis.series]
    assert not Series.objects.visible_to(north.patient_user).filter(status=SeriesStatus.RESULT).exists()

    client = Client(HTTP_AUTHORIZATION=f"Bearer {north.api_secret}")
    response = client.get(f"/dicomweb/studies/{study.study_instance_uid}/instances")
    assert response.status_code == 200
    found = {entry["00080018"]["Value"][0] for entry in response.json()}
    assert {result_object.sop_instance_uid for result_object in made} <= found


def test_made_once_per_analysis_and_a_reanalysis_supersedes_the_earlier_objects(analysed, north):
    analysis, _ = analysed
    first = make_analysis_result_objects(analysis=analysis)
    assert make_analysis_result_objects(analysis=analysis) == first
    assert DicomResultObject.objects.count() == 2

    analysis.superseded_at = timezone.now()
    analysis.save(update_fields=["superseded_at"])
    assert make_analysis_result_objects(analysis=analysis) == first  # a superseded analysis makes nothing new
    again, _ = analysed_phantom_series(world=north, series=analysis.series, generation=2)
    second = make_analysis_result_objects(analysis=again)
    assert len(second) == 2
    assert not DicomResultObject.objects.filter(pk__in=[result.pk for result in first], superseded_at=None).exists()
    assert DicomResultObject.objects.current().count() == 2


def test_png_series_gets_no_seg_or_sr(north):
    from tests.factories import AnalysisFactory
    from tests.pipeline.builders import store_phantom_series

    series, _ = store_phantom_series(hospital=north.hospital, patient=north.patient, slices=2, size=32, as_png=True)
    assert make_analysis_result_objects(analysis=AnalysisFactory(series=series)) == []


@needs_dciodvfy
def test_signed_versions_become_encapsulated_pdfs_each_amendment_naming_the_previous(
    analysed, north, tmp_path, django_capture_on_commit_callbacks
):
    from reports.services import (
        AGREES_WITH_AI,
        amend_report,
        create_draft_report,
        override_ai_class,
        sign_report,
        update_draft,
    )
    from tests.factories import DEFAULT_PASSWORD

    analysis, _ = analysed
    draft = create_draft_report(analysis=analysis).versions.get()
    update_draft(version=draft, doctor=north.doctor, impression="Solid nodule.", recommendation="CT in 3 months.")
    override_ai_class(version=draft, doctor=north.doctor, conclusion_class=AGREES_WITH_AI, reason="")
    with django_capture_on_commit_callbacks(execute=True):
        signed = sign_report(version=draft, doctor=north.doctor, password=DEFAULT_PASSWORD)
    first = signed.dicom_result_objects.get()  # made by the task queued on commit
    document = stored_dataset(first)
    assert dciodvfy_errors(document, tmp_path) == []
    assert (document.Modality, document.MIMETypeOfEncapsulatedDocument) == ("DOC", "application/pdf")
    assert document.EncapsulatedDocument.startswith(b"%PDF")
    assert document.StudyInstanceUID == analysis.series.study.study_instance_uid
    assert document.PatientID == north.patient.mrn

    amendment = amend_report(report=signed.report, doctor=north.doctor, amendment_note="Size corrected.")
    with django_capture_on_commit_callbacks(execute=True):
        sign_report(version=amendment, doctor=north.doctor, password=DEFAULT_PASSWORD)
    second = make_signed_report_object(version=amendment)
    assert second == amendment.dicom_result_objects.get()
    amended = stored_dataset(second)
    assert dciodvfy_errors(amended, tmp_path) == []
    assert amended.SeriesInstanceUID == document.SeriesInstanceUID and amended.InstanceNumber == 2
    predecessor = amended.PredecessorDocumentsSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert predecessor.ReferencedSOPInstanceUID == document.SOPInstanceUID
    first.refresh_from_db()
    assert first.is_superseded and not second.is_superseded


def test_a_draft_makes_no_pdf_object(analysed):
    from reports.services import create_draft_report

    analysis, _ = analysed
    draft = create_draft_report(analysis=analysis).versions.get()
    assert make_signed_report_object(version=draft) is None


@needs_dciodvfy
def test_a_series_without_lesion_gets_an_empty_segment_and_the_normal_class(north, tmp_path):
    analysis, masks = analysed_phantom_series(world=north, label="normal")
    assert not masks.any()
    made = by_kind(make_analysis_result_objects(analysis=analysis))
    segmentation, report = stored_dataset(made["seg"]), stored_dataset(made["sr"])
    assert dciodvfy_errors(segmentation, tmp_path) == [] and dciodvfy_errors(report, tmp_path) == []
    assert segmentation.NumberOfFrames == len(masks)
    findings = [item.ConceptCodeSequence[0].CodeMeaning for meaning, item in content_items(report)
                if meaning == "Finding" and item.ValueType == "CODE"]
    assert "Normal" in findings
    diameters = [item for meaning, item in content_items(report) if meaning == "Diameter"]
    assert diameters == []
