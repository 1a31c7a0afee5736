"""Scan grid <-> model grid: shapes, geometry, interpolation, labels back on the scan grid."""

from __future__ import annotations

import numpy as np
import pytest

from habitus.segment.resample import (
    argmax_labels,
    axis_weights,
    grid_mapping,
    labels_on_native_grid,
    model_geometry,
    resample_axis,
    resample_to_model,
)
from habitus.volume import Geometry

# An oblique, flipped patient orientation so that geometry mistakes show.
_c, _s = np.cos(0.3), np.sin(0.3)
OBLIQUE = Geometry(
    spacing=(2.5, 0.7, 0.9),
    origin=(-120.0, 33.0, 410.0),
    direction=((0.0, _s, _c), (0.0, _c, -_s), (-1.0, 0.0, 0.0)),
)


def _positions(geometry: Geometry, shape: tuple[int, int, int]) -> np.ndarray:
    """LPS position of every voxel centre, shape (3, *shape)."""
    idx = np.indices(shape).reshape(3, -1).astype(np.float64)
    pos = geometry.affine @ np.vstack([idx, np.ones(idx.shape[1])])
    return pos[:3].reshape(3, *shape)


def test_grid_mapping_keeps_the_extent() -> None:
    mapping = grid_mapping((200, 512, 512), (2.0, 0.8, 0.8), (4.0, 1.6, 1.6))
    assert mapping.model_shape == (100, 256, 256)
    assert mapping.model_spacing == pytest.approx((4.0, 1.6, 1.6))
    uneven = grid_mapping((31, 100, 7), (1.0, 0.7, 3.0), (2.0, 2.0, 2.0))
    assert uneven.model_shape == (16, 35, 10)
    for n, s, m, t in zip(
        (31, 100, 7), (1.0, 0.7, 3.0), uneven.model_shape, uneven.model_spacing, strict=True
    ):
        assert m * t == pytest.approx(n * s)  # same physical extent
    assert grid_mapping((3, 4, 5), (1, 1, 1), (10, 10, 10)).model_shape == (1, 1, 1)
    assert grid_mapping((3, 4, 5), (1, 2, 3), (1, 2, 3)).is_identity


def test_axis_weights_align_voxel_edges() -> None:
    up = axis_weights(8, 4)  # output voxel k centred at input index k / 2 - 0.25
    np.testing.assert_array_equal(up.lo, [0, 0, 0, 1, 1, 2, 2, 3])
    np.testing.assert_allclose(up.w, [0, 0.25, 0.75, 0.25, 0.75, 0.25, 0.75, 0])
    down = axis_weights(2, 4)  # model voxel q centred between scan voxels 2q and 2q+1
    np.testing.assert_array_equal(down.lo, [0, 2])
    np.testing.assert_allclose(down.w, [0.5, 0.5])


@pytest.mark.parametrize("target", [(5.0, 1.6, 1.2), (1.0, 0.35, 0.45)])
def test_model_grid_samples_a_linear_field_at_its_own_geometry(
    target: tuple[float, float, float],
) -> None:
    """A field linear in patient space, resampled, equals the field at model-grid positions."""
    shape = (24, 40, 36)
    gradient = np.array([0.7, -1.3, 2.1])
    field = np.tensordot(gradient, _positions(OBLIQUE, shape), axes=1).astype(np.float32)
    mapping = grid_mapping(shape, OBLIQUE.spacing, target)
    resampled = resample_to_model(field, mapping)
    assert resampled.shape == mapping.model_shape
    geometry = model_geometry(OBLIQUE, mapping)
    expected = np.tensordot(gradient, _positions(geometry, mapping.model_shape), axes=1)
    # The edge clamp and the anti-aliasing filter's edge mode bend the field at the border.
    inner = tuple(slice(2, -2) for _ in range(3))
    np.testing.assert_allclose(resampled[inner], expected[inner], rtol=1e-4, atol=1e-2)


def test_round_trip_through_a_model_grid_keeps_shape_and_smooth_content() -> None:
    shape = (30, 64, 50)
    z, y, x = np.meshgrid(*[np.linspace(0, 1, n) for n in shape], indexing="ij")
    field = (100 * np.sin(3 * z) + 50 * y - 80 * x * x).astype(np.float32)
    mapping = grid_mapping(shape, (2.0, 0.8, 0.8), (3.0, 1.5, 1.5))
    coarse = resample_to_model(field, mapping)
    back = coarse
    for axis in range(3):
        back = resample_axis(back, axis, shape[axis])
    assert back.shape == shape
    inner = tuple(slice(3, -3) for _ in range(3))
    assert np.abs(back - field)[inner].max() < 2.0


def test_constant_volume_stays_constant() -> None:
    hu = np.full((10, 33, 21), -120, dtype=np.int16)
    out = resample_to_model(hu, grid_mapping(hu.shape, (1.0, 0.6, 0.6), (2.0, 2.0, 1.0)))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, -120.0, atol=1e-3)


def test_anti_aliasing_averages_noise_instead_of_sampling_it() -> None:
    rng = np.random.default_rng(0)
    hu = rng.normal(0, 100, (8, 128, 128)).astype(np.float32)
    out = resample_to_model(hu, grid_mapping(hu.shape, (1, 1, 1), (1, 4, 4)))
    assert out.std() < 100 / 4 * 1.5  # sampling alone would keep std ~ 100


def test_argmax_labels_matches_numpy_and_breaks_ties_low() -> None:
    p = np.random.default_rng(1).random((8, 5, 6, 7), dtype=np.float32)
    np.testing.assert_array_equal(argmax_labels(p), np.argmax(p, axis=0))
    tie = np.ones((3, 2, 2, 2), np.float32)
    assert np.all(argmax_labels(tie) == 0)


@pytest.mark.parametrize(
    ("native", "model"), [((23, 40, 37), (12, 16, 15)), ((9, 20, 20), (18, 10, 40))]
)
@pytest.mark.parametrize("smooth", [False, True])
def test_native_labels_equal_argmax_of_fully_interpolated_probabilities(
    native: tuple[int, int, int], model: tuple[int, int, int], smooth: bool
) -> None:
    rng = np.random.default_rng(2)
    p = rng.random((8, *model), dtype=np.float32)
    if smooth:  # large uniform regions: most voxels take the shortcut
        p = p.repeat(4, axis=1)[:, : model[0]]
        p[3, :, 2:10, 3:12] += 2.0
    full = np.stack(
        [
            resample_axis(resample_axis(resample_axis(c, 0, native[0]), 1, native[1]), 2, native[2])
            for c in p
        ]
    )
    labels = labels_on_native_grid(p, native, slab=4)
    assert labels.shape == native and labels.dtype == np.uint8
    np.testing.assert_array_equal(labels, argmax_labels(full))


def test_native_labels_on_identical_grids_are_the_model_labels() -> None:
    p = np.random.default_rng(3).random((8, 4, 5, 6), dtype=np.float32)
    np.testing.assert_array_equal(labels_on_native_grid(p, (4, 5, 6)), np.argmax(p, axis=0))
