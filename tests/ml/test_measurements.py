"""Lesion measurements against geometry worked out by hand."""

import math

import numpy as np
import pytest

from ml.measurements import measure_lesions, slab_thicknesses

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def disc(size, *, radius_pixels, centre=None):
    centre = centre if centre is not None else ((size - 1) / 2, (size - 1) / 2)
    rows, columns = np.mgrid[:size, :size]
    return (rows - centre[0]) ** 2 + (columns - centre[1]) ** 2 <= radius_pixels**2


def positions(z_values):
    return [(-100.0, -100.0, z) for z in z_values]


def test_cylinder_of_known_radius_gives_known_volume():
    spacing = 0.5  # mm per pixel
    radius_mm = 10.0
    cross_section = disc(64, radius_pixels=radius_mm / spacing)
    masks = np.zeros((12, 64, 64), dtype=bool)
    masks[2:10] = cross_section  # 8 slices, 2.5 mm apart -> 20 mm tall
    result = measure_lesions(masks, pixel_spacing=(spacing, spacing),
                             image_positions=positions(np.arange(12) * 2.5),
                             image_orientation=AXIAL, slice_thickness=5.0)
    pixel_area = cross_section.sum() * spacing**2
    assert result.has_physical_scale
    assert result.slice_spacing_source == "image_position_patient"
    assert result.volume_ml == pytest.approx(pixel_area * 2.5 * 8 / 1000)
    # The discretised disc is within 2 % of pi r^2, so the volume is close to pi r^2 h.
    assert result.volume_ml == pytest.approx(math.pi * radius_mm**2 * 20 / 1000, rel=0.02)
    assert result.area_per_slice[5] == pytest.approx(pixel_area)
    assert result.largest_diameter == pytest.approx(2 * radius_mm, abs=2 * spacing)
    assert result.largest_area_slice_index == 2
    assert result.largest_area_slice_location_mm == pytest.approx(5.0)
    assert result.to_dict()["volume_ml"] == result.volume_ml


def test_uneven_slice_positions_use_half_way_slabs_not_thickness():
    z_values = [0.0, 1.0, 3.0, 6.0]  # gaps 1, 2, 3
    assert slab_thicknesses(positions(z_values), AXIAL).tolist() == pytest.approx(
        [1.0, 1.5, 2.5, 3.0]
    )
    masks = np.ones((4, 10, 10), dtype=bool)  # 100 mm^2 per slice at 1 mm spacing
    result = measure_lesions(masks, pixel_spacing=(1.0, 1.0), image_positions=positions(z_values),
                             image_orientation=AXIAL, slice_thickness=0.5)
    assert result.volume_ml == pytest.approx(100 * (1.0 + 1.5 + 2.5 + 3.0) / 1000)


def test_positions_are_projected_on_the_slice_normal():
    # Slices of a sagittal-ish stack: normal along x; positions also drift in y, which must not count.
    orientation = (0.0, 1.0, 0.0, 0.0, 0.0, 1.0)  # rows along y, columns along z -> normal x
    stack = [(x, 7.0 * index, 0.0) for index, x in enumerate([0.0, 2.0, 4.0])]
    assert slab_thicknesses(stack, orientation).tolist() == pytest.approx([2.0, 2.0, 2.0])


def test_falls_back_to_slice_thickness_and_says_so():
    masks = np.ones((3, 4, 4), dtype=bool)
    result = measure_lesions(masks, pixel_spacing=(0.5, 0.5), slice_thickness=2.0)
    assert result.slice_spacing_source == "slice_thickness"
    assert result.volume_ml == pytest.approx(3 * 16 * 0.25 * 2.0 / 1000)
    assert any("SliceThickness" in note for note in result.notes)


def test_without_pixel_spacing_reports_pixels():
    masks = np.zeros((2, 20, 20), dtype=bool)
    masks[1, 5:8, 2:12] = True  # 3 x 10 rectangle
    result = measure_lesions(masks)
    assert not result.has_physical_scale
    assert result.area_unit == "pixels"
    assert result.volume_ml is None
    assert result.lesion_voxel_count == 30
    assert result.area_per_slice == [0.0, 30.0]
    # Between the centres of the corner pixels: 2 rows and 9 columns apart.
    assert result.largest_diameter == pytest.approx(math.hypot(2, 9))
    assert result.largest_area_slice_index == 1


def test_anisotropic_pixels_scale_each_axis():
    masks = np.zeros((1, 20, 20), dtype=bool)
    masks[0, 10, 2:12] = True  # one row, ten columns
    result = measure_lesions(masks, pixel_spacing=(2.0, 0.5))
    assert result.largest_diameter == pytest.approx(9 * 0.5)
    assert result.area_per_slice == [pytest.approx(10 * 1.0)]


def test_empty_masks():
    result = measure_lesions(np.zeros((3, 8, 8), dtype=bool), pixel_spacing=(1, 1),
                             image_positions=positions([0, 1, 2]), image_orientation=AXIAL)
    assert result.volume_ml == 0.0
    assert result.largest_diameter is None
    assert result.largest_area_slice_index is None


def ball(shape, *, centre, radius):
    slices, rows, columns = np.ogrid[: shape[0], : shape[1], : shape[2]]
    return ((slices - centre[0]) ** 2 + (rows - centre[1]) ** 2 + (columns - centre[2]) ** 2) <= radius**2


@pytest.mark.parametrize("radius_mm", [3.0, 6.0, 15.0])
def test_phantom_sphere_diameter_and_volume_within_three_percent(radius_mm):
    spacing = 0.5  # isotropic voxels, so the sphere is a sphere in pixels too
    radius = radius_mm / spacing
    size = int(2 * radius) + 9
    centre = (size // 2, size // 2 + 0.3, size // 2 - 0.2)  # not on the pixel grid
    masks = ball((size, size, size), centre=centre, radius=radius)
    result = measure_lesions(masks, pixel_spacing=(spacing, spacing),
                             image_positions=positions(np.arange(size) * spacing), image_orientation=AXIAL)
    assert result.largest_diameter == pytest.approx(2 * radius_mm, rel=0.03)
    assert result.volume_ml == pytest.approx(4 / 3 * math.pi * radius_mm**3 / 1000, rel=0.03)
    assert result.lesion_count == 1 and result.lesions[0]["largest_diameter"] == result.largest_diameter


def test_slices_given_out_of_order_are_sorted_by_position():
    masks = np.zeros((4, 16, 16), dtype=bool)
    masks[1, 4:8, 4:8] = True
    masks[2, 4:8, 4:8] = True
    z_values = [0.0, 2.0, 4.0, 8.0]  # 8 mm alone at the end
    in_order = measure_lesions(masks, pixel_spacing=(1, 1), image_positions=positions(z_values),
                               image_orientation=AXIAL)
    shuffle = [3, 1, 0, 2]
    shuffled = measure_lesions(masks[shuffle], pixel_spacing=(1, 1),
                               image_positions=positions([z_values[index] for index in shuffle]),
                               image_orientation=AXIAL)
    assert shuffled.volume_ml == pytest.approx(in_order.volume_ml)
    assert shuffled.lesion_count == in_order.lesion_count == 1
    # Indices refer to the caller's order.
    assert shuffled.area_per_slice == [in_order.area_per_slice[index] for index in shuffle]
    assert sorted(shuffled.lesions[0]["slice_indices"]) == [1, 3]


def test_two_slices_at_one_position_are_refused():
    with pytest.raises(ValueError, match="same position"):
        measure_lesions(np.ones((3, 4, 4), dtype=bool), pixel_spacing=(1, 1),
                        image_positions=positions([0.0, 2.0, 2.0]), image_orientation=AXIAL)


def test_each_3d_lesion_is_a_row_of_its_own():
    masks = np.zeros((5, 32, 32), dtype=bool)
    masks[0:3, 2:6, 2:6] = True  # 3 slices x 16 pixels, touching across slices
    masks[3, 3:5, 3:5] = True  # diagonal neighbour in the next slice: same lesion
    masks[1, 20:30, 20:22] = True  # a second, separate lesion on slice 1
    result = measure_lesions(masks, pixel_spacing=(1, 1), image_positions=positions(range(5)),
                             image_orientation=AXIAL)
    assert result.lesion_count == 2
    first, second = result.lesions
    assert (first["voxel_count"], first["slice_indices"]) == (52, [0, 1, 2, 3])
    assert (second["voxel_count"], second["slice_indices"]) == (20, [1])
    assert second["largest_diameter"] == pytest.approx(math.hypot(1, 9))
    assert result.largest_diameter == second["largest_diameter"]
    assert first["volume_ml"] + second["volume_ml"] == pytest.approx(result.volume_ml)


def test_irregular_slice_spacing_is_flagged():
    masks = np.ones((4, 4, 4), dtype=bool)
    regular = measure_lesions(masks, pixel_spacing=(1, 1), image_positions=positions([0, 2, 4, 6]),
                              image_orientation=AXIAL)
    gap = measure_lesions(masks, pixel_spacing=(1, 1), image_positions=positions([0, 2, 4, 10]),
                          image_orientation=AXIAL)
    assert not regular.irregular_slice_spacing
    assert gap.irregular_slice_spacing and any("irregular" in note for note in gap.notes)
