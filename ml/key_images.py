"""Which slices of a series become key images (pure numpy, no Django): each slice once, each for a reason.

With a lesion the images answer what a reader asks first: where is it largest (area), where is it widest
(the diameter's slice), and how far does it reach (its upper and lower extent). A slice that answers
several questions is shown once, for the first of them. Fewer than two such slices (a lesion on one slice,
or none) are topped up with the slices the classifier found most suspicious.
"""

import numpy as np

LARGEST_AREA = "largest_lesion"
LARGEST_DIAMETER = "largest_diameter"
UPPER_EXTENT = "upper_extent"
LOWER_EXTENT = "lower_extent"
HIGHEST_PROBABILITY = "highest_probability"

#: Fewest key images a series of two slices or more gets.
MINIMUM_KEY_IMAGES = 2


def choose_key_slices(*, measurements, tumour_probabilities, slice_locations=None):
    """``[(slice index, reason), ...]`` with distinct slice indices, in the order of the reasons above.

    ``measurements`` is ``ml.measurements.LesionMeasurements.to_dict()`` (``area_per_slice`` and the
    largest-area and largest-diameter slice indices). Upper and lower extent are the lesion's slices with
    the highest and lowest location along the slice normal (``slice_locations``, one per slice, in
    millimetres; for the usual axial orientation the normal points to the head); without locations, the last and
    first lesion slice in slice order (``Instance.objects.in_slice_order``, which sorts by location).
    """
    areas = np.asarray(measurements.get("area_per_slice") or [], dtype=np.float64)
    probabilities = np.asarray(tumour_probabilities, dtype=np.float64)
    lesion_slices = np.flatnonzero(areas > 0)
    candidates = []
    if len(lesion_slices):
        candidates.append((measurements.get("largest_area_slice_index"), LARGEST_AREA))
        candidates.append((measurements.get("largest_diameter_slice_index"), LARGEST_DIAMETER))
        bottom_to_top = lesion_slices
        if slice_locations is not None and all(location is not None for location in slice_locations):
            locations = [slice_locations[index] for index in lesion_slices]
            bottom_to_top = lesion_slices[np.argsort(locations, kind="stable")]
        candidates.append((bottom_to_top[-1], UPPER_EXTENT))
        candidates.append((bottom_to_top[0], LOWER_EXTENT))
    chosen, seen = [], set()
    for index, reason in candidates:
        if index is not None and int(index) not in seen:
            chosen.append((int(index), reason))
            seen.add(int(index))
    for index in np.argsort(-probabilities, kind="stable"):
        if len(chosen) >= MINIMUM_KEY_IMAGES:
            break
        if int(index) not in seen:
            chosen.append((int(index), HIGHEST_PROBABILITY))
            seen.add(int(index))
    return chosen
