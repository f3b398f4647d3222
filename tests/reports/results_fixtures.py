"""A tiny analysed DICOM series (phantom slices, their exact masks as the analysis's stored masks)."""

import io

import numpy as np
import pydicom
from django.core.files.base import ContentFile

from ml.measurements import measure_lesions
from tests.pipeline.builders import store_phantom_series


def analysed_phantom_series(*, world, label="adenocarcinoma", slices=4, size=32, seed=3, generation=1, series=None):
    """An Analysis of a stored phantom series whose masks are the phantom's own (slice order = instance order)."""
    from tests.factories import AnalysisFactory

    if series is None:
        series, phantom = store_phantom_series(
            hospital=world.hospital, patient=world.patient, slices=slices, size=size, label=label, seed=seed
        )
        masks = phantom.masks
        for instance in series.instances.all():  # the builder names rows by its own UIDs; ingest uses the file's
            with instance.file.open("rb") as stored:
                instance.sop_instance_uid = pydicom.dcmread(stored, stop_before_pixels=True).SOPInstanceUID
            instance.save(update_fields=["sop_instance_uid"])
    else:
        masks = np.zeros((series.instances.count(), size, size), dtype=bool)
        masks[1, 10:20, 12:18] = True
    instances = list(series.instances.in_slice_order())
    measurements = measure_lesions(
        masks,
        pixel_spacing=instances[0].pixel_spacing,
        image_positions=[instance.image_position_patient for instance in instances],
        image_orientation=instances[0].image_orientation_patient,
    ).to_dict()
    analysis = AnalysisFactory(series=series, generation=generation, predicted_class=label,
                               measurements=measurements)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, masks=masks)
    analysis.masks_file.save("masks-1.npz", ContentFile(buffer.getvalue()))
    return analysis, masks
