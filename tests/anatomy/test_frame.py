"""The canonical anatomical view: orientation, slice mapping and pooling."""

from __future__ import annotations

import numpy as np
import pytest

from habitus.anatomy.frame import AnatomicalFrame
from habitus.errors import GeometryRefused
from habitus.volume import Geometry

AXIAL_HEAD_WARD = ((0.0, 0.0, 1.0), (0.0, 1.0, 0.0), (1.0, 0.0, 0.0))


def _marked_volume() -> np.ndarray:
    """A (k, j, i) array whose value encodes its indices: 100k + 10j + i."""
    k, j, i = np.meshgrid(np.arange(4), np.arange(3), np.arange(5), indexing="ij")
    return 100 * k + 10 * j + i


def test_standard_axial_series_is_already_canonical() -> None:
    geometry = Geometry(spacing=(2.0, 0.8, 0.8), origin=(0.0, 0.0, -50.0))
    frame = AnatomicalFrame.from_geometry(geometry, (4, 3, 5))
    data = _marked_volume()
    assert frame.head_ward
    assert np.array_equal(frame.canonical(data), data)
    assert np.allclose(frame.z_mm, [-50.0, -48.0, -46.0, -44.0])
    assert frame.k_of(0) == 0


def test_foot_ward_slices_are_reversed_and_mapped_back() -> None:
    direction = ((0.0, 0.0, 1.0), (0.0, 1.0, 0.0), (-1.0, 0.0, 0.0))  # k runs toward the feet
    geometry = Geometry(spacing=(2.0, 1.0, 1.0), origin=(0.0, 0.0, 100.0), direction=direction)
    frame = AnatomicalFrame.from_geometry(geometry, (4, 3, 5))
    canonical = frame.canonical(_marked_volume())
    assert not frame.head_ward
    assert np.allclose(frame.z_mm, [94.0, 96.0, 98.0, 100.0])  # ascending, foot to head
    assert canonical[0, 0, 0] == 300  # the lowest slice is input slice k = 3
    assert frame.k_of(0) == 3 and frame.k_of(3) == 0
    assert frame.k_of_position(0.5) == 2.5


def test_nifti_like_axes_are_flipped_to_posterior_and_left() -> None:
    # RAS-stored data read as (k, j, i): j runs anterior (-y), i runs right (-x)
    direction = ((0.0, 0.0, -1.0), (0.0, -1.0, 0.0), (1.0, 0.0, 0.0))
    geometry = Geometry(spacing=(3.0, 3.0, 3.0), origin=(0.0, 0.0, 0.0), direction=direction)
    frame = AnatomicalFrame.from_geometry(geometry, (4, 3, 5))
    canonical = frame.canonical(_marked_volume())
    assert frame.axes.flipped == (False, True, True)  # k already runs head-ward
    assert canonical[0, 0, 0] == 10 * 2 + 4  # most anterior row, rightmost column
    assert canonical[0, 2, 4] == 0


def test_transposed_in_plane_axes() -> None:
    # rows run along x (left), columns along y (posterior)
    direction = ((0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (1.0, 0.0, 0.0))
    geometry = Geometry(spacing=(1.0, 0.5, 0.7), origin=(0.0, 0.0, 0.0), direction=direction)
    frame = AnatomicalFrame.from_geometry(geometry, (4, 3, 5))
    canonical = frame.canonical(_marked_volume())
    assert frame.axes.source_axes == (0, 2, 1)  # y from i, x from j
    assert canonical.shape == (4, 5, 3)
    assert frame.pixel_mm == (0.7, 0.5)
    assert canonical[1, 4, 2] == 100 + 10 * 2 + 4


def test_sagittal_slices_are_refused() -> None:
    direction = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))  # k runs left-right
    geometry = Geometry(spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0), direction=direction)
    with pytest.raises(GeometryRefused, match="axial slices"):
        AnatomicalFrame.from_geometry(geometry, (4, 3, 5))


def test_any_pooling_keeps_thin_structures_and_unpools_to_full_size() -> None:
    geometry = Geometry(spacing=(2.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0))
    frame = AnatomicalFrame.from_geometry(geometry, (1, 7, 8))
    assert frame.pool == (3, 3) and frame.pooled_mm == (3.0, 3.0)
    mask = np.zeros((1, 7, 8), dtype=bool)
    mask[0, 6, 7] = True  # a single pixel in the padded corner block
    pooled = frame.pooled(mask)
    assert pooled.shape == (1, 3, 3)
    assert pooled[0, 2, 2] and pooled.sum() == 1
    full = frame.unpooled_slice(pooled[0], (7, 8))
    assert full.shape == (7, 8)
    assert full[6, 7] and full[6:, 6:].all() and full.sum() == 1 * 2
