"""Labels on the PET grid: erosion by a margin in mm, assignment by fraction, peak spheres."""

import numpy as np
import pytest

from habitus.labels import Tissue
from habitus.pet.tissue import (
    PEAK_RADIUS_MM,
    PetGrid,
    ball,
    erode_labels,
    labels_on_pet_grid,
    peak_map,
    tissue_uptake,
)
from habitus.phantoms.pet import TYPICAL_SUV, pet_image
from habitus.phantoms.trunk import trunk_anatomy
from habitus.phantoms.write_dicom import axial_geometry
from habitus.volume import Geometry

AXIAL = ((0.0, 0.0, 1.0), (0.0, 1.0, 0.0), (1.0, 0.0, 0.0))


def test_peak_sphere_is_one_millilitre() -> None:
    assert 4.0 / 3.0 * np.pi * PEAK_RADIUS_MM**3 == pytest.approx(1000.0)


def test_ball_follows_millimetres_per_axis() -> None:
    shape = ball(4.0, (2.0, 1.0, 4.0)).shape
    assert shape == (5, 9, 3)


def test_erosion_removes_a_margin_in_millimetres() -> None:
    labels = np.zeros((20, 20, 20), dtype=np.uint8)
    labels[2:18, 2:18, 2:18] = Tissue.MUSCLE
    eroded = erode_labels(labels, (1.0, 1.0, 1.0), 3.0)
    # 16 voxels wide, 3 mm off each side leaves 10
    assert np.array_equal(np.unique(np.nonzero(eroded)[0]), np.arange(5, 15))


def test_thin_structures_vanish_rather_than_take_neighbour_uptake() -> None:
    labels = np.full((10, 30, 30), Tissue.IO, dtype=np.uint8)
    labels[:, 10:13, :] = Tissue.SF  # a 3 mm layer of fat between organs
    eroded = erode_labels(labels, (1.0, 1.0, 1.0), 2.0)
    assert not np.any(eroded == Tissue.SF)


def test_fractions_on_a_shifted_coarser_grid() -> None:
    # CT 1 mm voxels over [-0.5, 15.5] mm; PET 4 mm voxels, voxel n covering [4n - 2.5, 4n + 1.5]:
    # PET voxels 1 to 3 lie inside the CT, voxels 0 and 4 only half; muscle fills x < 7.5 mm,
    # so PET column 1 is all muscle and column 2 half.
    labels = np.zeros((16, 16, 16), dtype=np.uint8)
    labels[:, :, :8] = Tissue.MUSCLE
    ct = Geometry((1.0, 1.0, 1.0), (0.0, 0.0, 0.0), AXIAL)
    pet = PetGrid((5, 5, 5), Geometry((4.0, 4.0, 4.0), (-0.5, -0.5, -0.5), AXIAL))
    most = labels_on_pet_grid(labels, ct, pet, erosion_mm=0.0, min_fraction=0.9)
    half = labels_on_pet_grid(labels, ct, pet, erosion_mm=0.0, min_fraction=0.5)
    expected = np.zeros((5, 5, 5), dtype=np.uint8)
    expected[1:4, 1:4, 1] = Tissue.MUSCLE
    assert np.array_equal(most, expected)
    assert np.all(half[1:4, 1:4, 0:3] == Tissue.MUSCLE)  # half covered or half muscle: 0.5
    assert half[0, 1, 1] == Tissue.MUSCLE  # half inside the CT along k
    assert half[0, 0, 0] == 0  # a quarter inside along k and j


def test_a_pet_grid_larger_than_the_ct_gives_the_same_classes() -> None:
    # the grid of the test above, with four more PET voxels on every side
    labels = np.zeros((16, 16, 16), dtype=np.uint8)
    labels[:, :, :8] = Tissue.MUSCLE
    ct = Geometry((1.0, 1.0, 1.0), (0.0, 0.0, 0.0), AXIAL)
    small = PetGrid((5, 5, 5), Geometry((4.0, 4.0, 4.0), (-0.5, -0.5, -0.5), AXIAL))
    large = PetGrid((13, 13, 13), Geometry((4.0, 4.0, 4.0), (-16.5, -16.5, -16.5), AXIAL))
    options = {"erosion_mm": 0.0, "min_fraction": 0.5}
    inner = labels_on_pet_grid(labels, ct, small, **options)
    outer = labels_on_pet_grid(labels, ct, large, **options)
    assert np.array_equal(outer[4:9, 4:9, 4:9], inner)
    assert outer.sum() == inner.sum()


def test_min_fraction_below_one_half_is_refused() -> None:
    labels = np.zeros((4, 4, 4), dtype=np.uint8)
    ct = Geometry((1.0, 1.0, 1.0), (0.0, 0.0, 0.0), AXIAL)
    with pytest.raises(ValueError, match="min_fraction"):
        labels_on_pet_grid(labels, ct, PetGrid((2, 2, 2), ct), min_fraction=0.4)


def test_without_erosion_spill_over_biases_fat() -> None:
    """The reason for the erosion: with it the fats are within 5 % on a blurred PET, without
    it organ uptake spilling into the fat between them biases it far beyond that."""
    shape, spacing = (60, 160, 160), (2.0, 2.5, 2.5)
    geometry = axial_geometry(shape, spacing)
    z0 = geometry.z_of_slice(0)
    _, labels = trunk_anatomy(shape, spacing, z0, z0 + 59.0)
    values, pet_geometry = pet_image(labels, geometry, TYPICAL_SUV, per_unit=1.0)
    grid = PetGrid(values.shape, pet_geometry)
    peaks = peak_map(values, pet_geometry.spacing)
    everywhere = np.ones(values.shape, dtype=bool)

    def fat_bias(**options: float) -> float:
        classes = labels_on_pet_grid(labels, geometry, grid, **options)
        rows = tissue_uptake(values, peaks, classes, everywhere, grid.voxel_ml)
        avf = next(r for r in rows if r.label == Tissue.AVF)
        assert avf.suv_mean is not None
        return avf.suv_mean / TYPICAL_SUV[Tissue.AVF] - 1.0

    assert abs(fat_bias()) < 0.05
    assert fat_bias(erosion_mm=0.0, min_fraction=0.5) > 0.2
