"""Sliding-window inference over a volume, after nnU-Net: patch grid, Gaussian weights, blend.

A network sees one fixed-size patch at a time. Patches overlap; each patch's prediction is
weighted by a Gaussian centred on the patch (the centre of a patch sees the most context, its
border the least), summed into the volume and divided by the summed weights.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray

from habitus.progress import StepCallback

Shape3 = tuple[int, int, int]
PredictBatch = Callable[[NDArray[np.float32]], NDArray[np.float32]]
"""(B, 1, d, h, w) normalised input -> (B, C, d, h, w) class scores (probabilities or logits)."""


def axis_starts(size: int, patch: int, step_fraction: float) -> list[int]:
    """Start indices along one axis: evenly spread, first at 0, last flush with the end.

    The step between starts is at most ``step_fraction * patch`` and at least one voxel. An
    axis shorter than the patch gets the single start 0 (the caller pads it to the patch).
    """
    if not 0.0 < step_fraction <= 1.0:
        raise ValueError(f"step_fraction must be in (0, 1], found {step_fraction}")
    if patch < 1:
        raise ValueError(f"patch size must be positive, found {patch}")
    if size <= patch:
        return [0]
    target_step = max(patch * step_fraction, 1.0)  # at least one voxel: no repeated starts
    n = math.ceil((size - patch) / target_step) + 1
    step = (size - patch) / (n - 1)
    return [int(round(step * i)) for i in range(n)]


def patch_starts(shape: Sequence[int], patch: Sequence[int], step_fraction: float) -> list[Shape3]:
    """All patch start positions (z, y, x) whose patches together cover ``shape``."""
    if len(shape) != 3 or len(patch) != 3:
        raise ValueError(f"expected 3-D shape and patch, found {tuple(shape)}, {tuple(patch)}")
    per_axis = [axis_starts(s, p, step_fraction) for s, p in zip(shape, patch, strict=True)]
    return [(z, y, x) for z, y, x in itertools.product(*per_axis)]


def gaussian_importance(patch: Sequence[int], sigma_scale: float = 1.0 / 8) -> NDArray[np.float32]:
    """Weights of a patch's voxels: a Gaussian with sigma ``sigma_scale * patch``, max 1.

    Never zero, so that every voxel of the volume gets a positive summed weight.
    """
    weights = np.ones(tuple(patch), dtype=np.float64)
    for axis, size in enumerate(patch):
        sigma = max(size * sigma_scale, 1e-6)
        coords = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
        profile = np.exp(-0.5 * (coords / sigma) ** 2)
        shape = [1, 1, 1]
        shape[axis] = size
        weights = weights * profile.reshape(shape)
    weights /= weights.max()
    out = weights.astype(np.float32)
    tiny = out[out > 0].min() if np.any(out > 0) else np.float32(1.0)
    out[out <= 0] = tiny
    return out


def _pad_to_patch(
    volume: NDArray[np.float32], patch: Shape3, pad_value: float
) -> tuple[NDArray[np.float32], tuple[slice, slice, slice]]:
    """Pad axes shorter than the patch, centring the data; return the data's region too."""
    before_after = []
    for size, p in zip(volume.shape, patch, strict=True):
        missing = max(p - size, 0)
        before_after.append((missing // 2, missing - missing // 2))
    if not any(b or a for b, a in before_after):
        return volume, (slice(None), slice(None), slice(None))
    padded = np.pad(volume, before_after, mode="constant", constant_values=pad_value)
    region = tuple(slice(b, b + s) for (b, _), s in zip(before_after, volume.shape, strict=True))
    return padded, (region[0], region[1], region[2])


def sliding_window_inference(
    volume_norm: NDArray[np.float32],
    predict_batch: PredictBatch,
    patch: Sequence[int],
    overlap: float,
    batch_size: int,
    num_classes: int,
    progress: StepCallback | None = None,
    *,
    pad_value: float = 0.0,
    sigma_scale: float = 1.0 / 8,
) -> NDArray[np.float32]:
    """Class scores (C, D, H, W) of a normalised (D, H, W) volume.

    ``predict_batch`` gets up to ``batch_size`` patches at once, shaped (B, 1, d, h, w), and
    returns (B, num_classes, d, h, w) scores: probabilities, or logits as nnU-Net blends them
    (one softmax of the blend then costs far less than one per patch). Axes shorter than the
    patch are padded with ``pad_value`` (the normalised value of air). The result is the
    Gaussian-weighted mean of the overlapping predictions at each voxel.
    """
    if volume_norm.ndim != 3:
        raise ValueError(f"expected a (D, H, W) volume, found shape {volume_norm.shape}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, found {batch_size}")
    p: Shape3 = (int(patch[0]), int(patch[1]), int(patch[2]))
    padded, region = _pad_to_patch(volume_norm.astype(np.float32, copy=False), p, pad_value)
    starts = patch_starts(padded.shape, p, 1.0 - overlap)
    importance = gaussian_importance(p, sigma_scale)

    accumulated = np.zeros((num_classes, *padded.shape), dtype=np.float32)
    weight_sum = np.zeros(padded.shape, dtype=np.float32)
    batch = np.empty((batch_size, 1, *p), dtype=np.float32)
    weighted = np.empty((num_classes, *p), dtype=np.float32)  # reused: no allocation per patch

    for first in range(0, len(starts), batch_size):
        chunk = starts[first : first + batch_size]
        windows = [
            (slice(z, z + p[0]), slice(y, y + p[1]), slice(x, x + p[2])) for z, y, x in chunk
        ]
        for b, window in enumerate(windows):
            batch[b, 0] = padded[window]
        scores = predict_batch(batch[: len(chunk)])
        expected = (len(chunk), num_classes, *p)
        if scores.shape != expected:
            raise ValueError(f"predict_batch returned shape {scores.shape}, expected {expected}")
        for b, window in enumerate(windows):
            np.multiply(scores[b], importance, out=weighted)
            # In place on views: `array[window] += x` would also copy the sum back onto itself.
            region_scores = accumulated[(slice(None), *window)]
            region_scores += weighted
            region_weights = weight_sum[window]
            region_weights += importance
        if progress is not None:
            progress(min(first + len(chunk), len(starts)) / len(starts))

    accumulated /= weight_sum[np.newaxis]
    return np.ascontiguousarray(accumulated[(slice(None), *region)])
