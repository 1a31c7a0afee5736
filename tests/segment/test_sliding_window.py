"""Patch grid, Gaussian weights and the blended sliding-window prediction."""

from __future__ import annotations

import numpy as np
import pytest

from habitus.segment.sliding_window import (
    axis_starts,
    gaussian_importance,
    patch_starts,
    sliding_window_inference,
)


@pytest.mark.parametrize("size", [1, 15, 16, 17, 31, 32, 33, 100, 257])
@pytest.mark.parametrize("patch", [1, 7, 16])
@pytest.mark.parametrize("step_fraction", [0.25, 0.5, 1.0])
def test_axis_starts_cover_the_axis_evenly(size: int, patch: int, step_fraction: float) -> None:
    starts = axis_starts(size, patch, step_fraction)
    assert starts[0] == 0
    assert starts == sorted(set(starts))
    if size <= patch:
        assert starts == [0]
        return
    assert starts[-1] == size - patch  # last patch flush with the end
    steps = np.diff(starts)
    assert steps.max() <= np.ceil(patch * step_fraction)
    assert steps.max() - steps.min() <= 1  # evenly spread
    covered = np.zeros(size, dtype=bool)
    for s in starts:
        covered[s : s + patch] = True
    assert covered.all()


def test_patch_starts_cover_every_voxel_in_3d() -> None:
    shape, patch = (20, 45, 33), (8, 16, 16)
    starts = patch_starts(shape, patch, 0.5)
    covered = np.zeros(shape, dtype=np.int32)
    for z, y, x in starts:
        covered[z : z + 8, y : y + 16, x : x + 16] += 1
    assert covered.min() >= 1
    assert len(starts) == len(set(starts))
    assert max(s[0] for s in starts) + 8 == 20


def test_invalid_step_fraction_is_refused() -> None:
    with pytest.raises(ValueError, match="step_fraction"):
        axis_starts(10, 4, 0.0)


@pytest.mark.parametrize("patch", [(5, 7, 9), (4, 6, 8), (1, 16, 16)])
def test_gaussian_importance_peaks_at_centre_and_is_symmetric(patch: tuple[int, int, int]) -> None:
    g = gaussian_importance(patch)
    assert g.shape == patch and g.dtype == np.float32
    assert g.max() == pytest.approx(1.0)
    assert g.min() > 0
    for axis in range(3):
        np.testing.assert_allclose(g, np.flip(g, axis), rtol=1e-6)
    centre = tuple(p // 2 for p in patch)
    assert g[centre] == pytest.approx(1.0)
    profile = g[centre[0], centre[1], : centre[2] + 1]  # rising towards the centre
    assert np.all(np.diff(profile) >= 0)


def test_gaussian_sigma_is_the_given_fraction_of_the_patch() -> None:
    g = gaussian_importance((1, 1, 33), sigma_scale=1 / 8)  # sigma = 4.125 voxels
    x = np.arange(33) - 16
    np.testing.assert_allclose(g[0, 0], np.exp(-0.5 * (x / 4.125) ** 2), rtol=1e-5)


def _voxelwise(batch: np.ndarray) -> np.ndarray:
    """Two-class 'network' whose output at a voxel depends only on that voxel's input."""
    x = batch[:, 0]
    return np.stack([x, 1.0 - x], axis=1).astype(np.float32)


@pytest.mark.parametrize("shape", [(20, 37, 29), (5, 6, 7), (16, 16, 16)])
def test_voxelwise_prediction_is_reproduced_whatever_the_tiling(
    shape: tuple[int, int, int],
) -> None:
    volume = np.random.default_rng(0).random(shape, dtype=np.float32)
    out = sliding_window_inference(volume, _voxelwise, (8, 16, 16), 0.5, 3, 2)
    assert out.shape == (2, *shape)
    np.testing.assert_allclose(out[0], volume, atol=1e-5)
    np.testing.assert_allclose(out[1], 1.0 - volume, atol=1e-5)


def test_small_volume_is_padded_with_the_pad_value() -> None:
    seen: list[np.ndarray] = []

    def record(batch: np.ndarray) -> np.ndarray:
        seen.append(batch.copy())
        return _voxelwise(batch)

    volume = np.full((3, 4, 5), 0.25, dtype=np.float32)
    out = sliding_window_inference(volume, record, (8, 8, 8), 0.5, 1, 2, pad_value=-7.0)
    assert len(seen) == 1 and seen[0].shape == (1, 1, 8, 8, 8)
    assert np.count_nonzero(seen[0] == 0.25) == volume.size
    assert np.count_nonzero(seen[0] == -7.0) == 8**3 - volume.size
    np.testing.assert_allclose(out[0], 0.25, atol=1e-6)


def test_overlapping_predictions_are_blended_by_gaussian_weight() -> None:
    calls = iter([1.0, 3.0])

    def constant_per_patch(batch: np.ndarray) -> np.ndarray:
        return np.full((batch.shape[0], 1, *batch.shape[2:]), next(calls), dtype=np.float32)

    out = sliding_window_inference(
        np.zeros((1, 1, 6), np.float32), constant_per_patch, (1, 1, 4), 0.5, 1, 1
    )
    g = gaussian_importance((1, 1, 4))[0, 0]  # patches start at x = 0 and x = 2
    expected = [1, 1, (g[2] + 3 * g[0]) / (g[2] + g[0]), (g[3] + 3 * g[1]) / (g[3] + g[1]), 3, 3]
    np.testing.assert_allclose(out[0, 0, 0], expected, rtol=1e-6)


def test_batches_and_progress() -> None:
    sizes: list[int] = []
    fractions: list[float] = []

    def record(batch: np.ndarray) -> np.ndarray:
        sizes.append(batch.shape[0])
        return _voxelwise(batch)

    shape, patch = (16, 40, 40), (8, 16, 16)
    n_patches = len(patch_starts(shape, patch, 0.5))
    sliding_window_inference(
        np.zeros(shape, np.float32), record, patch, 0.5, 4, 2, fractions.append
    )
    assert sum(sizes) == n_patches
    assert max(sizes) == 4 and len(sizes) == -(-n_patches // 4)
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_wrong_prediction_shape_is_reported() -> None:
    def wrong(batch: np.ndarray) -> np.ndarray:
        return np.zeros((batch.shape[0], 3, 2, 2, 2), np.float32)

    with pytest.raises(ValueError, match="expected"):
        sliding_window_inference(np.zeros((4, 4, 4), np.float32), wrong, (4, 4, 4), 0.5, 1, 2)
