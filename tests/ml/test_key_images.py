"""Key images: distinct slices, each chosen for what it shows about the lesion."""

from ml.key_images import (
    HIGHEST_PROBABILITY,
    LARGEST_AREA,
    LARGEST_DIAMETER,
    LOWER_EXTENT,
    UPPER_EXTENT,
    choose_key_slices,
)


def measurements(areas, *, largest_area, largest_diameter):
    return {
        "area_per_slice": areas,
        "largest_area_slice_index": largest_area,
        "largest_diameter_slice_index": largest_diameter,
    }


def test_a_lesion_over_several_slices_shows_area_diameter_and_both_extents_once_each():
    chosen = choose_key_slices(
        measurements=measurements([0, 10, 40, 55, 30, 5, 0, 0], largest_area=3, largest_diameter=2),
        tumour_probabilities=[0.1, 0.5, 0.9, 0.95, 0.8, 0.4, 0.1, 0.1],
        slice_locations=[-10.0 + 2.5 * index for index in range(8)],
    )
    assert chosen == [(3, LARGEST_AREA), (2, LARGEST_DIAMETER), (5, UPPER_EXTENT), (1, LOWER_EXTENT)]


def test_a_slice_that_answers_several_questions_is_shown_once():
    chosen = choose_key_slices(
        measurements=measurements([0, 30, 0, 0], largest_area=1, largest_diameter=1),
        tumour_probabilities=[0.2, 0.9, 0.7, 0.1],
    )
    assert chosen == [(1, LARGEST_AREA), (2, HIGHEST_PROBABILITY)]
    assert len({index for index, _ in chosen}) == len(chosen)


def test_extents_follow_the_slice_locations_not_the_file_order():
    chosen = choose_key_slices(
        measurements=measurements([5, 20, 8], largest_area=1, largest_diameter=1),
        tumour_probabilities=[0.5, 0.9, 0.5],
        slice_locations=[30.0, 20.0, 10.0],
    )
    assert (0, UPPER_EXTENT) in chosen and (2, LOWER_EXTENT) in chosen


def test_without_a_lesion_the_two_most_suspicious_distinct_slices_are_shown():
    chosen = choose_key_slices(
        measurements=measurements([0, 0, 0, 0], largest_area=None, largest_diameter=None),
        tumour_probabilities=[0.3, 0.3, 0.6, 0.1],
    )
    assert chosen == [(2, HIGHEST_PROBABILITY), (0, HIGHEST_PROBABILITY)]


def test_a_single_slice_series_gets_one_image():
    chosen = choose_key_slices(
        measurements=measurements([12.0], largest_area=0, largest_diameter=0), tumour_probabilities=[0.7]
    )
    assert chosen == [(0, LARGEST_AREA)]
