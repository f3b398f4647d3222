"""RadAssist's results as standard DICOM objects, made with highdicom and stored in the study they describe.

After an analysis succeeds (``make_analysis_result_objects``):
- a binary Segmentation (SEG) with one segment "Neoplasm" (SNOMED CT), one frame per source slice, made
  from the analysis's stored masks and referencing every source instance;
- a Comprehensive 3D SR following TID 1500 (Measurement Report): the lesion's volume (mL), largest
  diameter (mm) and largest area (mm²), referencing the SEG segment; the AI class with its
  probability; the algorithms (model names and versions) and the demo-model status as the device
  observer context. It stays PRELIMINARY and UNVERIFIED: no doctor has checked it.
When a report version is signed (``make_signed_report_object``): an Encapsulated PDF of the signed
version; an amendment's PDF names the one it replaces in its Predecessor Documents Sequence.

The objects are stored through ``scans.result_objects`` (new series in the same study, Manufacturer
"RadAssist") so DICOMweb finds them, recorded as ``DicomResultObject`` rows, then queued for the
hospital's destinations (``reports.outbox``). A reanalysis or an amendment makes new objects and marks
the earlier ones superseded. Making them again for the same analysis or version changes nothing.

SEG and SR are made for DICOM series with physical scale only: PNG/JPG uploads have no DICOM source
instances to reference and no millimetres to report.
"""

import io
import logging

import highdicom
import numpy as np
import pydicom
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from pydicom.errors import InvalidDicomError
from pydicom.sr.codedict import codes
from pydicom.uid import EncapsulatedPDFStorage, generate_uid

from ml.models import Analysis, AnalysisStatus
from reports.models import DicomResultObject, ReportVersion, ResultKind, class_label
from scans.models import Instance, Series, SeriesStatus
from scans.result_objects import store_result_object

logger = logging.getLogger(__name__)

MANUFACTURER = "RadAssist"
DEMO_MODEL_NOTE = "demo model, not for clinical use"
#: SNOMED CT concepts of the classifier's classes (ml.labels.CLASS_NAMES).
CLASS_CODES = {
    "adenocarcinoma": codes.SCT.Adenocarcinoma,
    "large_cell_carcinoma": codes.SCT.LargeCellCarcinoma,
    "squamous_cell_carcinoma": codes.SCT.SquamousCellCarcinoma,
    "normal": codes.SCT.Normal,
}
MILLILITRE = highdicom.sr.CodedConcept(value="mL", scheme_designator="UCUM", meaning="milliliter")
CT_CHEST = highdicom.sr.CodedConcept(value="24627-2", scheme_designator="LN", meaning="CT Chest")
DIAGNOSTIC_IMAGING_REPORT = highdicom.sr.CodedConcept(
    value="18748-4", scheme_designator="LN", meaning="Diagnostic imaging report"
)
#: Patient and study attributes that are type 2 in SEG and SR; highdicom copies them from the source images.
_TYPE_2_STUDY_ATTRIBUTES = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyID", "StudyDate",
    "StudyTime", "ReferringPhysicianName",
)


def _text(value, length=64):
    """A DICOM LO value: at most 64 characters."""
    return value if len(value) <= length else value[: length - 3] + "..."


# After an analysis: SEG and SR ------------------------------------------------------------------


def make_analysis_result_objects(*, analysis):
    """Make, store and queue the SEG and SR of a succeeded analysis; returns the DicomResultObjects.

    Nothing is made for an analysis that is not (or no longer) the current succeeded one of its series,
    nor for a series without DICOM geometry. Idempotent: the objects of an analysis are made once.
    """
    from reports.outbox import queue_for_destinations

    with transaction.atomic():
        analysis = Analysis.objects.select_for_update().select_related("series__study").get(pk=analysis.pk)
        existing = list(analysis.dicom_result_objects.order_by("kind"))
        if existing or analysis.status != AnalysisStatus.SUCCEEDED or analysis.is_superseded:
            return existing
        instances = list(Instance.objects.filter(series=analysis.series).in_slice_order())
        if not analysis.series.has_physical_scale or any(
            instance.file_format != Instance.Format.DICOM for instance in instances
        ):
            logger.info("no DICOM result objects for a series without DICOM geometry",
                        extra={"analysis_id": analysis.pk})
            return []
        sources = [_source_dataset(instance) for instance in instances]
        masks = _stored_masks(analysis)
        if masks.shape[0] != len(sources):
            raise ValueError(f"analysis {analysis.pk} has {masks.shape[0]} masks for {len(sources)} instances")
        series_number = _next_series_number(analysis.series.study)
        segmentation = build_segmentation(analysis=analysis, sources=sources, masks=masks, series_number=series_number)
        report = build_measurement_report(
            analysis=analysis, sources=sources, segmentation=segmentation, series_number=series_number + 1
        )
        made = _store_all(
            analysis.series.study,
            [(segmentation, {"kind": ResultKind.SEGMENTATION, "analysis": analysis}),
             (report, {"kind": ResultKind.MEASUREMENT_REPORT, "analysis": analysis})],
        )
        DicomResultObject.objects.filter(analysis__series=analysis.series, superseded_at__isnull=True).exclude(
            analysis=analysis
        ).update(superseded_at=timezone.now())
        queue_for_destinations(result_objects=made)
    return made


def _source_dataset(instance):
    """The header of a source instance, with its empty type 2 patient and study attributes present."""
    with instance.file.open("rb") as stored:
        dataset = pydicom.dcmread(stored, stop_before_pixels=True)
    for keyword in _TYPE_2_STUDY_ATTRIBUTES:
        if keyword not in dataset:
            setattr(dataset, keyword, "")
    return dataset


def _stored_masks(analysis):
    with analysis.masks_file.open("rb") as stored:
        return np.load(io.BytesIO(stored.read()))["masks"].astype(bool)


def _next_series_number(study):
    highest = Series.objects.filter(study=study).aggregate(highest=Max("series_number"))["highest"]
    return max(highest or 0, 0) + 1


def _algorithm_label(analysis):
    demo = f" ({DEMO_MODEL_NOTE})" if analysis.is_demo_model else ""
    classifier = f"{analysis.classifier_name} {analysis.classifier_version}"
    return f"{classifier}, {analysis.segmenter_name} {analysis.segmenter_version}{demo}"


def build_segmentation(*, analysis, sources, masks, series_number):
    """The binary SEG of the lesion masks: one segment; it references every source slice, and holds frames
    only for the slices with lesion pixels (all frames when there are none at all), as highdicom does by default.
    """
    algorithm = highdicom.AlgorithmIdentificationSequence(
        name=analysis.segmenter_name, family=codes.cid7162.ArtificialIntelligence,
        version=analysis.segmenter_version,
    )
    segment = highdicom.seg.SegmentDescription(
        segment_number=1,
        segment_label="Neoplasm",
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Neoplasm,
        algorithm_type=highdicom.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algorithm,
        tracking_uid=highdicom.UID(),
        tracking_id="Lesion 1",
        anatomic_regions=[codes.SCT.Lung],
    )
    demo = " (DEMO)" if analysis.is_demo_model else ""
    return highdicom.seg.Segmentation(
        source_images=sources,
        pixel_array=masks,
        segmentation_type=highdicom.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[segment],
        series_instance_uid=highdicom.UID(),
        series_number=series_number,
        sop_instance_uid=highdicom.UID(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name=_text(analysis.segmenter_name),
        software_versions=_text(analysis.segmenter_version),
        device_serial_number=f"analysis-{analysis.pk}",
        series_description=_text(f"AI lesion segmentation{demo}, {analysis.segmenter_name} "
                                 f"v{analysis.segmenter_version}"),
        content_label="NEOPLASM",
        content_description=_text(f"AI segmentation, not checked by a doctor{demo}"),
    )


def _device_observer(analysis):
    """The algorithms as the SR's device observer; the same models always get the same observer UID."""
    models = [analysis.classifier_name, analysis.classifier_version, analysis.segmenter_name,
              analysis.segmenter_version]
    return highdicom.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=highdicom.sr.DeviceObserverIdentifyingAttributes(
            uid=generate_uid(entropy_srcs=["radassist-device-observer", *models]),
            name=_text("RadAssist AI" + (f" ({DEMO_MODEL_NOTE})" if analysis.is_demo_model else "")),
            manufacturer_name=MANUFACTURER,
            model_name=_text(_algorithm_label(analysis)),
        ),
    )


def _lesion_measurements(analysis, algorithm):
    measured = analysis.measurements or {}
    found = []
    if measured.get("volume_ml") is not None:
        found.append(highdicom.sr.Measurement(
            name=codes.SCT.Volume, value=float(measured["volume_ml"]), unit=MILLILITRE, algorithm_id=algorithm,
        ))
    if measured.get("largest_diameter") is not None:
        found.append(highdicom.sr.Measurement(
            name=codes.SCT.Diameter, value=float(measured["largest_diameter"]), unit=codes.UCUM.Millimeter,
            derivation=codes.SCT.Maximum, algorithm_id=algorithm,
        ))
    if measured.get("largest_area"):
        found.append(highdicom.sr.Measurement(
            name=codes.SCT.Area, value=float(measured["largest_area"]), unit=codes.UCUM.SquareMillimeter,
            derivation=codes.SCT.Maximum, algorithm_id=algorithm,
        ))
    return found


def build_measurement_report(*, analysis, sources, segmentation, series_number):
    """The TID 1500 Measurement Report: the lesion group (referencing the SEG) and the series class."""
    segmenter = highdicom.sr.AlgorithmIdentification(name=analysis.segmenter_name, version=analysis.segmenter_version)
    classifier = highdicom.sr.AlgorithmIdentification(
        name=analysis.classifier_name, version=analysis.classifier_version
    )
    segment = segmentation.SegmentSequence[0]
    lesion = highdicom.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=highdicom.sr.TrackingIdentifier(uid=segment.TrackingUID, identifier=segment.TrackingID),
        referenced_segment=highdicom.sr.ReferencedSegment(
            sop_class_uid=segmentation.SOPClassUID,
            sop_instance_uid=segmentation.SOPInstanceUID,
            segment_number=1,
            source_series=highdicom.sr.SourceSeriesForSegmentation(sources[0].SeriesInstanceUID),
        ),
        finding_type=codes.SCT.Neoplasm,
        algorithm_id=segmenter,
        finding_sites=[highdicom.sr.FindingSite(codes.SCT.Lung)],
        measurements=_lesion_measurements(analysis, segmenter) or None,
    )
    probability = float((analysis.class_probabilities or {}).get(analysis.predicted_class, 0.0))
    classification = highdicom.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=highdicom.sr.TrackingIdentifier(
            uid=highdicom.UID(), identifier=_text(f"AI class: {class_label(analysis.predicted_class)}")
        ),
        algorithm_id=classifier,
        finding_sites=[highdicom.sr.FindingSite(codes.SCT.Lung)],
        qualitative_evaluations=[
            highdicom.sr.QualitativeEvaluation(name=codes.DCM.Finding, value=CLASS_CODES[analysis.predicted_class])
        ],
        measurements=[highdicom.sr.Measurement(
            name=codes.DCM.Probability, value=round(probability, 4), unit=codes.UCUM.NoUnits, algorithm_id=classifier,
        )],
    )
    content = highdicom.sr.MeasurementReport(
        observation_context=highdicom.sr.ObservationContext(observer_device_context=_device_observer(analysis)),
        procedure_reported=CT_CHEST,
        imaging_measurements=[lesion, classification],
    )
    demo = " (DEMO)" if analysis.is_demo_model else ""
    return highdicom.sr.Comprehensive3DSR(
        evidence=[*sources, segmentation],
        content=content,
        series_instance_uid=highdicom.UID(),
        series_number=series_number,
        sop_instance_uid=highdicom.UID(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        is_complete=True,
        series_description=_text(f"AI measurements and class{demo}, TID 1500"),
    )


# After signing: the Encapsulated PDF --------------------------------------------------------------


def make_signed_report_object(*, version):
    """Make, store and queue the Encapsulated PDF of a signed version (its PDF is rendered first if need be).

    Returns the DicomResultObject, or None for a version that is not signed. Idempotent.
    """
    from reports.outbox import queue_for_destinations
    from reports.services import store_report_pdf

    version = ReportVersion.objects.get(pk=version.pk)
    if not version.is_signed:
        return None
    store_report_pdf(version=version)
    with transaction.atomic():
        version = ReportVersion.objects.select_for_update().select_related("report__study__patient").get(
            pk=version.pk
        )
        existing = version.dicom_result_objects.first()
        if existing is not None:
            return existing
        earlier = (
            DicomResultObject.objects.filter(report_version__report=version.report,
                                             report_version__number__lt=version.number)
            .select_related("instance__series")
            .order_by("-report_version__number")
            .first()
        )
        with version.pdf.open("rb") as stored:
            pdf_bytes = stored.read()
        document = build_encapsulated_pdf(version=version, pdf_bytes=pdf_bytes, predecessor=earlier)
        (made,) = _store_all(
            version.report.study, [(document, {"kind": ResultKind.SIGNED_REPORT_PDF, "report_version": version})]
        )
        if earlier is not None:
            DicomResultObject.objects.filter(pk=earlier.pk, superseded_at__isnull=True).update(
                superseded_at=timezone.now()
            )
        queue_for_destinations(result_objects=[made])
    return made


def _study_attributes(study):
    """Patient and study attributes as the PACS knows them: from a received instance where one can be read,
    else from the patient record (PNG/JPG uploads have no DICOM header to copy).
    """
    source = Instance.objects.filter(
        series__study=study, file_format=Instance.Format.DICOM
    ).exclude(series__status=SeriesStatus.RESULT).first()
    if source is not None:
        try:
            header = _source_dataset(source)
        except (OSError, InvalidDicomError):
            logger.warning("patient attributes taken from the record: the study's instance could not be read",
                           extra={"instance_id": source.pk})
        else:
            return {
                "patient_id": header.PatientID, "patient_name": header.PatientName,
                "patient_birth_date": header.PatientBirthDate or None, "patient_sex": header.PatientSex or None,
                "accession_number": header.AccessionNumber, "study_id": header.StudyID,
                "study_date": header.StudyDate or None, "study_time": header.StudyTime or None,
                "referring_physician_name": header.ReferringPhysicianName,
            }
    patient = study.patient
    return {
        "patient_id": patient.mrn, "patient_name": _person_name(patient.full_name),
        "patient_birth_date": patient.birth_date, "patient_sex": patient.sex or None,
        "accession_number": study.accession_number, "study_id": "",
        "study_date": study.study_date, "study_time": study.study_time,
        "referring_physician_name": study.referring_physician,
    }


def _person_name(full_name):
    """The record's name as a DICOM PN: a name without components is all family name (trailing caret)."""
    return full_name if "^" in full_name or not full_name else f"{full_name}^"


def build_encapsulated_pdf(*, version, pdf_bytes, predecessor):
    """An Encapsulated PDF (modality DOC) of a signed version; an amendment joins its predecessor's series."""
    study = version.report.study
    signed_at = timezone.localtime(version.signed_at)
    if predecessor is not None:
        series_uid, series_number = (predecessor.instance.series.series_instance_uid,
                                     predecessor.instance.series.series_number)
    else:
        series_uid, series_number = highdicom.UID(), _next_series_number(study)
    document = highdicom.base.SOPClass(
        study_instance_uid=study.study_instance_uid,
        series_instance_uid=series_uid,
        series_number=series_number,
        sop_instance_uid=highdicom.UID(),
        sop_class_uid=EncapsulatedPDFStorage,
        instance_number=version.number,
        modality="DOC",
        manufacturer=MANUFACTURER,
        manufacturer_model_name="RadAssist report",
        series_description="Signed report (PDF)",
        content_date=signed_at.date(),
        content_time=signed_at.time().replace(microsecond=0),
        **_study_attributes(study),
    )
    document.ConversionType = "WSD"
    document.BurnedInAnnotation = "YES"
    document.DocumentTitle = _text(f"Report version {version.number} ({version.get_status_display().lower()})")
    document.ConceptNameCodeSequence = [DIAGNOSTIC_IMAGING_REPORT]
    document.AcquisitionDateTime = signed_at.strftime("%Y%m%d%H%M%S")
    document.MIMETypeOfEncapsulatedDocument = "application/pdf"
    if predecessor is not None:
        document.PredecessorDocumentsSequence = [_reference(study, predecessor)]
    padded = pdf_bytes + b"\0" * (len(pdf_bytes) % 2)
    document.EncapsulatedDocument = padded
    document.EncapsulatedDocumentLength = len(pdf_bytes)
    return document


def _reference(study, result_object):
    """A Hierarchical SOP Instance Reference to an earlier object of the same study."""
    instance = pydicom.Dataset()
    instance.ReferencedSOPClassUID = result_object.instance.sop_class_uid
    instance.ReferencedSOPInstanceUID = result_object.sop_instance_uid
    series = pydicom.Dataset()
    series.SeriesInstanceUID = result_object.instance.series.series_instance_uid
    series.ReferencedSOPSequence = [instance]
    reference = pydicom.Dataset()
    reference.StudyInstanceUID = study.study_instance_uid
    reference.ReferencedSeriesSequence = [series]
    return reference


# Storing ------------------------------------------------------------------------------------------


def _store_all(study, datasets_and_fields):
    """Store each dataset as an instance of the study and record it.

    Runs inside the caller's transaction: should anything fail, the rows roll back with it and the
    files stored so far are deleted here, so nothing half-written remains.
    """
    stored, made = [], []
    try:
        for dataset, fields in datasets_and_fields:
            instance = store_result_object(study=study, dataset=dataset)
            stored.append(instance)
            made.append(DicomResultObject.objects.create(
                hospital_id=study.hospital_id, sop_instance_uid=dataset.SOPInstanceUID, instance=instance, **fields
            ))
    except BaseException:
        for instance in stored:
            instance.file.storage.delete(instance.file.name)
        raise
    return made


__all__ = [
    "build_encapsulated_pdf",
    "build_measurement_report",
    "build_segmentation",
    "make_analysis_result_objects",
    "make_signed_report_object",
]
