"""Refinement by attenuation at native resolution: each rule on a synthetic slab."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import binary_dilation, maximum_filter

from habitus.labels import Tissue
from habitus.segment.refine import (
    _in_plane_ellipse_dilation,
    _in_plane_square,
    refine_by_attenuation,
)

SPACING = (3.0, 0.5, 0.5)
FAT, MUSCLE, SOFT, AIR = -100, 40, 30, -1000


def _slab(width: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """A body filling the whole slab (no outer edge), labelled SF, with HU of fat."""
    labels = np.full((3, width, width), Tissue.SF, dtype=np.uint8)
    hu = np.full(labels.shape, FAT, dtype=np.int16)
    return labels, hu


def test_fat_attenuation_inside_muscle_becomes_subcutaneous_fat() -> None:
    labels, hu = _slab()
    labels[:, 5:35, 5:35] = Tissue.MUSCLE
    hu[:, 5:35, 5:35] = MUSCLE
    hu[:, 15:25, 19:21] = FAT  # a two-voxel streak of intramuscular fat
    out = refine_by_attenuation(labels, hu, SPACING)
    assert np.all(out[:, 15:25, 19:21] == Tissue.SF)
    assert np.all(out[:, 5:15, 5:35] == Tissue.MUSCLE)


def test_fat_attenuation_beside_visceral_fat_becomes_visceral_fat() -> None:
    labels, hu = _slab()
    labels[:, :, :20] = Tissue.AVF
    labels[:, :, 20:] = Tissue.MUSCLE
    hu[:, :, 20:] = MUSCLE
    hu[:, :, 20:22] = FAT  # the muscle label overran the visceral fat by two voxels
    out = refine_by_attenuation(labels, hu, SPACING)
    assert np.all(out[:, :, :22] == Tissue.AVF)
    assert np.all(out[:, :, 22:] == Tissue.MUSCLE)


def test_single_noisy_voxel_does_not_flip() -> None:
    labels, hu = _slab()
    labels[:, 5:35, 5:35] = Tissue.MUSCLE
    hu[:, 5:35, 5:35] = MUSCLE
    hu[1, 20, 20] = -120
    out = refine_by_attenuation(labels, hu, SPACING)
    assert out[1, 20, 20] == Tissue.MUSCLE


def test_muscle_attenuation_at_the_edge_of_fat_becomes_muscle() -> None:
    labels, hu = _slab()
    labels[:, :, 20:] = Tissue.MUSCLE
    hu[:, :, 18:] = MUSCLE  # the fat label overran the muscle by two voxels
    out = refine_by_attenuation(labels, hu, SPACING)
    assert np.all(out[:, :, 18:] == Tissue.MUSCLE)
    assert np.all(out[:, :, :18] == Tissue.SF)


def test_soft_tissue_in_fat_next_to_organs_is_left_alone() -> None:
    labels, hu = _slab()
    labels[:, :, 20:] = Tissue.MUSCLE
    labels[:, 20:, 10:18] = Tissue.IO
    hu[:, :, 18:20] = SOFT
    out = refine_by_attenuation(labels, hu, SPACING)
    assert np.all(out[:, 22:, 18:20] == Tissue.SF)  # within near_mm of IO: ambiguous
    assert np.all(out[:, :14, 18:20] == Tissue.MUSCLE)


def _disc(radius: float, size: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(yy - (size - 1) / 2, xx - (size - 1) / 2)
    labels = np.zeros((2, size, size), dtype=np.uint8)
    hu = np.full(labels.shape, AIR, dtype=np.int16)
    labels[:, r < radius] = Tissue.SF
    hu[:, r < radius] = FAT
    return labels, hu, r


def test_skin_layer_of_the_given_thickness_covers_the_body_surface() -> None:
    labels, hu, r = _disc(25)
    labels[:, r < 15] = Tissue.MUSCLE
    hu[:, r < 15] = MUSCLE
    labels[:, r < 3] = Tissue.BACKGROUND  # a hole inside (lung-like): not a surface
    hu[:, r < 3] = AIR
    out = refine_by_attenuation(labels, hu, SPACING, skin_mm=2.0)
    assert np.all(out[:, (r < 25) & (r >= 22)] == Tissue.SKIN)  # ~1.5 mm from the edge
    assert not np.any(out[:, r < 20] == Tissue.SKIN)  # 2.5 mm in: not skin
    assert np.all(out[:, r >= 25.5] == Tissue.BACKGROUND)
    assert np.all(out[:, r < 3] == Tissue.BACKGROUND)


def test_lost_outer_voxels_with_tissue_attenuation_come_back_as_skin() -> None:
    labels, hu, r = _disc(20)
    hu[:, (r >= 20) & (r < 21)] = SOFT  # body surface missed by the labels
    out = refine_by_attenuation(labels, hu, SPACING)
    assert np.all(out[:, (r >= 20) & (r < 21)] == Tissue.SKIN)
    assert np.all(out[:, r >= 21.5] == Tissue.BACKGROUND)


def test_body_cut_by_the_field_of_view_gets_no_skin_at_the_cut() -> None:
    labels, hu = _slab(30)
    out = refine_by_attenuation(labels, hu, SPACING)
    np.testing.assert_array_equal(out, labels)


@pytest.mark.parametrize("kept", [Tissue.BONE, Tissue.IO, Tissue.CNS])
def test_bone_organs_and_cns_are_never_changed(kept: Tissue) -> None:
    labels, hu, r = _disc(20)
    labels[:, r < 20] = kept
    hu[:, r < 20] = FAT  # attenuation that contradicts the label
    out = refine_by_attenuation(labels, hu, SPACING)
    np.testing.assert_array_equal(out, labels)


def test_shape_mismatch_is_refused() -> None:
    with pytest.raises(ValueError, match="same shape"):
        refine_by_attenuation(np.zeros((2, 3, 4), np.uint8), np.zeros((2, 3, 5)), SPACING)


@pytest.mark.parametrize("radius", [(1, 1), (2, 4), (5, 3)])
def test_square_neighbourhood_matches_a_maximum_filter(radius: tuple[int, int]) -> None:
    mask = np.random.default_rng(0).random((3, 30, 41)) < 0.02
    size = (1, 2 * radius[0] + 1, 2 * radius[1] + 1)
    expected = maximum_filter(mask, size=size, mode="constant", cval=0)
    np.testing.assert_array_equal(_in_plane_square(mask, radius), expected)


@pytest.mark.parametrize("radius", [(1.0, 1.0), (2.5, 2.5), (4.0, 2.2)])
def test_ellipse_neighbourhood_matches_a_binary_dilation(radius: tuple[float, float]) -> None:
    mask = np.random.default_rng(1).random((3, 30, 41)) < 0.02
    ny, nx = int(radius[0]), int(radius[1])
    y, x = np.mgrid[-ny : ny + 1, -nx : nx + 1]
    footprint = ((y / radius[0]) ** 2 + (x / radius[1]) ** 2 <= 1.0)[np.newaxis]
    expected = binary_dilation(mask, structure=footprint)
    np.testing.assert_array_equal(_in_plane_ellipse_dilation(mask, radius), expected)
