"""Series for pipeline tests and benchmarks: phantom slices stored the way ingest stores them."""

import hashlib
import tempfile
from pathlib import Path

import numpy as np
from django.core.files.base import ContentFile
from django.utils import timezone

from imaging.encoding import encode_png
from ml.phantoms import generate_phantom_series, write_dicom_series
from ml.preprocessing import grey_from_hounsfield
from scans.models import Instance, Series, SeriesStatus, Study


def _study(world_hospital, patient, uid_suffix):
    return Study.objects.create(
        hospital=world_hospital,
        patient=patient,
        study_instance_uid=f"2.25.{uid_suffix}",
        accession_number=f"ACC{uid_suffix % 10**8}",
        description="Phantom chest CT",
    )


def store_phantom_series(*, hospital, patient, slices=8, size=64, label="large_cell_carcinoma", seed=0,
                         as_png=False):
    """A received series of phantom slices (DICOM with full geometry, or PNG without scale)."""
    phantom = generate_phantom_series(label=label, slices=slices, size=size, seed=seed)
    uid_suffix = int.from_bytes(hashlib.sha256(f"{label}{seed}{timezone.now()}{np.random.rand()}".encode())
                                .digest()[:8], "big")
    study = _study(hospital, patient, uid_suffix)
    series = Series.objects.create(
        hospital=hospital,
        study=study,
        series_instance_uid=f"2.25.{uid_suffix}.1",
        series_number=1,
        modality="CT",
        description=f"Phantom {label}",
        has_physical_scale=not as_png,
        status=SeriesStatus.RECEIVED,
        completed_at=timezone.now(),
    )
    if as_png:
        for index, hounsfield in enumerate(phantom.hounsfield):
            content = encode_png(grey_from_hounsfield(hounsfield))
            _store_instance(series, content, index=index, rows=size, columns=size,
                            file_format=Instance.Format.IMAGE, uid=f"2.25.{uid_suffix}.2.{index + 1}")
        return series, phantom
    with tempfile.TemporaryDirectory() as directory:
        paths = write_dicom_series(phantom, directory, patient_id=patient.mrn, patient_name="Phantom^Patient",
                                   study_uid=study.study_instance_uid, series_uid=series.series_instance_uid)
        normal = np.cross(phantom.image_orientation[:3], phantom.image_orientation[3:])
        for index, path in enumerate(paths):
            position = [float(value) for value in phantom.slice_positions[index]]
            _store_instance(
                series, Path(path).read_bytes(), index=index, rows=size, columns=size,
                file_format=Instance.Format.DICOM, uid=f"2.25.{uid_suffix}.2.{index + 1}",
                pixel_spacing=list(phantom.pixel_spacing), slice_thickness=phantom.slice_thickness,
                image_position_patient=position, image_orientation_patient=list(phantom.image_orientation),
                slice_location=float(np.dot(position, normal)), rescale_intercept=-1024.0,
            )
    return series, phantom


def _store_instance(series, content, *, index, rows, columns, file_format, uid, **geometry):
    instance = Instance(
        hospital_id=series.hospital_id,
        series=series,
        sop_instance_uid=uid,
        instance_number=index + 1,
        file_format=file_format,
        file_size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        rows=rows,
        columns=columns,
        **geometry,
    )
    instance.file.save(f"{uid}{instance.file_suffix}", ContentFile(content), save=False)
    instance.save()
    return instance


def ingest_phantom_series(*, hospital, uploader, patient, slices=8, size=64, label="large_cell_carcinoma", seed=0):
    """A phantom CT series stored by the real ingest (stored headers, transfer syntax, files).

    The REST API batch is left open, so the series is not completed and no analysis starts.
    """
    from scans.ingest.batches import open_batch
    from scans.ingest.writer import ingest_files
    from scans.models import UploadBatch

    phantom = generate_phantom_series(label=label, slices=slices, size=size, seed=seed)
    batch = open_batch(hospital=hospital, uploaded_by=uploader, source=UploadBatch.Source.API)
    with tempfile.TemporaryDirectory() as directory:
        paths = write_dicom_series(phantom, directory, patient_id=patient.mrn, patient_name="Phantom^Patient")
        files = [(Path(path).name, open(path, "rb")) for path in paths]
        results = ingest_files(batch=batch, files=files)
    instances = [result.instance for per_file in results for result in per_file]
    assert all(instances), [result.reason for per_file in results for result in per_file]
    return instances[0].series
