"""Between the scan's grid and the model's grid: HU down (or up), class probabilities back.

The model grid covers exactly the scan's extent. Along each axis the scan has ``n`` voxels of
spacing ``s`` and the model grid ``m = max(1, round(n * s / t))`` voxels for the model's
spacing ``t``, so its actual spacing is ``n * s / m`` (within half a voxel of ``t``). Voxel
edges of the two grids meet at both ends of the scan: model voxel ``q`` is centred at the
scan's continuous index ``(q + 0.5) * n / m - 0.5``, and scan voxel ``k`` at the model's
continuous index ``(k + 0.5) * m / n - 0.5``. Interpolation is separable and linear, with
positions beyond the first and last voxel centres clamped to them.

The label map always comes back on the scan's full native grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import gaussian_filter1d

from habitus.volume import Geometry

Shape3 = tuple[int, int, int]
Spacing3 = tuple[float, float, float]


@dataclass(frozen=True)
class GridMapping:
    """The scan's grid and the model grid laid over the same extent."""

    native_shape: Shape3
    native_spacing: Spacing3
    model_shape: Shape3

    @property
    def model_spacing(self) -> Spacing3:
        s = [
            sp * n / m
            for sp, n, m in zip(
                self.native_spacing, self.native_shape, self.model_shape, strict=True
            )
        ]
        return (s[0], s[1], s[2])

    @property
    def is_identity(self) -> bool:
        return self.native_shape == self.model_shape


def grid_mapping(
    native_shape: Shape3, native_spacing: Spacing3, target_spacing: Spacing3
) -> GridMapping:
    """The model grid of spacing close to ``target_spacing`` over a scan's extent."""
    if min(native_spacing) <= 0 or min(target_spacing) <= 0:
        raise ValueError(
            f"spacings must be positive, found scan {native_spacing}, model {target_spacing}"
        )
    m = [
        max(1, int(round(n * s / t)))
        for n, s, t in zip(native_shape, native_spacing, target_spacing, strict=True)
    ]
    return GridMapping(
        native_shape=(int(native_shape[0]), int(native_shape[1]), int(native_shape[2])),
        native_spacing=(
            float(native_spacing[0]),
            float(native_spacing[1]),
            float(native_spacing[2]),
        ),
        model_shape=(m[0], m[1], m[2]),
    )


def model_geometry(geometry: Geometry, mapping: GridMapping) -> Geometry:
    """The patient-space geometry of the model grid (same directions, its own origin)."""
    offsets = np.array(
        [0.5 * n / m - 0.5 for n, m in zip(mapping.native_shape, mapping.model_shape, strict=True)]
    )
    origin = np.asarray(geometry.origin) + geometry.matrix @ (
        offsets * np.asarray(geometry.spacing)
    )
    o = [float(v) for v in origin]
    return Geometry(
        spacing=mapping.model_spacing, origin=(o[0], o[1], o[2]), direction=geometry.direction
    )


@dataclass(frozen=True)
class AxisWeights:
    """Linear interpolation from an axis of ``n_in`` voxels to one of ``n_out`` voxels."""

    lo: NDArray[np.intp]  # lower neighbour of each output voxel
    hi: NDArray[np.intp]  # upper neighbour (== lo + 1, or lo at the last voxel)
    w: NDArray[np.float32]  # weight of hi


def axis_weights(n_out: int, n_in: int) -> AxisWeights:
    """Edge-aligned linear weights; see the module docstring for the correspondence."""
    pos = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    pos = np.clip(pos, 0.0, n_in - 1)
    lo = np.minimum(np.floor(pos).astype(np.intp), n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    return AxisWeights(lo=lo, hi=hi, w=(pos - lo).astype(np.float32))


def resample_axis(array: NDArray[np.float32], axis: int, n_out: int) -> NDArray[np.float32]:
    """Linearly resample ``array`` along ``axis`` to ``n_out`` voxels (no anti-aliasing)."""
    n_in = array.shape[axis]
    if n_in == n_out:
        return array
    aw = axis_weights(n_out, n_in)
    shape = [1] * array.ndim
    shape[axis] = n_out
    return resample_pair(array, aw.lo, aw.hi, aw.w.reshape(shape), axis=axis)


def resample_pair(
    array: NDArray[np.float32],
    lo: NDArray[np.intp],
    hi: NDArray[np.intp],
    w: NDArray[np.float32],
    axis: int,
) -> NDArray[np.float32]:
    """``(1 - w) * array[lo] + w * array[hi]`` along ``axis``; ``w`` broadcasts on that axis."""
    low = array.take(lo, axis=axis)
    high = array.take(hi, axis=axis)
    high -= low
    high *= w
    low += high
    return low


def resample_to_model(hu: NDArray[np.generic], mapping: GridMapping) -> NDArray[np.float32]:
    """The scan's HU on the model grid, float32.

    Where the model grid is coarser, each axis is first smoothed with a Gaussian of sigma
    ``(factor - 1) / 2`` scan voxels (as scikit-image's anti-aliasing does), so that noise and
    thin bright structures are averaged rather than sampled. Axes that shrink most go first.
    """
    if hu.shape != mapping.native_shape:
        raise ValueError(f"expected a volume of shape {mapping.native_shape}, found {hu.shape}")
    out = hu.astype(np.float32, copy=True)
    factors = [n / m for n, m in zip(mapping.native_shape, mapping.model_shape, strict=True)]
    for axis in sorted(range(3), key=lambda a: -factors[a]):
        if factors[axis] > 1.0:
            sigma = (factors[axis] - 1.0) / 2.0
            out = gaussian_filter1d(out, sigma, axis=axis, mode="nearest", output=np.float32)
        out = resample_axis(out, axis, mapping.model_shape[axis])
    return np.ascontiguousarray(out)


def argmax_labels(probabilities: NDArray[np.float32]) -> NDArray[np.uint8]:
    """Per-voxel index of the largest of (C, ...) probabilities; ties go to the lower class."""
    best = probabilities[0].copy()
    labels = np.zeros(best.shape, dtype=np.uint8)
    for c in range(1, probabilities.shape[0]):
        better = probabilities[c] > best
        labels[better] = c
        np.maximum(best, probabilities[c], out=best)
    return labels


def _uniform_cells(labels: NDArray[np.uint8]) -> NDArray[np.bool_]:
    """True where the 2x2x2 block starting at a voxel (edge-replicated) has a single label."""
    padded = np.pad(labels, ((0, 1), (0, 1), (0, 1)), mode="edge")
    d, h, w = labels.shape
    uniform = np.ones(labels.shape, dtype=bool)
    for dz in (0, 1):
        for dy in (0, 1):
            for dx in (0, 1):
                uniform &= padded[dz : dz + d, dy : dy + h, dx : dx + w] == labels
    return uniform


def labels_on_native_grid(
    probabilities: NDArray[np.float32],
    native_shape: Shape3,
    *,
    model_labels: NDArray[np.uint8] | None = None,
    slab: int = 8,
) -> NDArray[np.uint8]:
    """Argmax of the trilinearly upsampled (C, d, h, w) probabilities on the native grid.

    Exact, without interpolating every class at every native voxel: where the eight model
    voxels around a native voxel share one argmax, every convex combination of them has that
    argmax too, so such voxels take it directly. Elsewhere (near label boundaries) each class
    is interpolated along z and y for a slab of native slices, and along x only at those
    voxels. ``model_labels`` is the argmax on the model grid, if already computed.
    """
    model_shape = probabilities.shape[1:]
    if model_labels is None:
        model_labels = argmax_labels(probabilities)
    if tuple(model_shape) == tuple(native_shape):
        return model_labels
    num_classes = probabilities.shape[0]
    az, ay, ax = (axis_weights(n, m) for n, m in zip(native_shape, model_shape, strict=True))
    uniform = _uniform_cells(model_labels)
    rows_per_slice, row_length = native_shape[1], model_shape[2]

    out = np.empty(native_shape, dtype=np.uint8)
    for z0 in range(0, native_shape[0], slab):
        z1 = min(z0 + slab, native_shape[0])
        labels = model_labels.take(az.lo[z0:z1], 0).take(ay.lo, 1).take(ax.lo, 2)
        certain = uniform.take(az.lo[z0:z1], 0).take(ay.lo, 1).take(ax.lo, 2)
        kz, ky, kx = np.nonzero(~certain)
        if kz.size:
            row_start = (kz * rows_per_slice + ky) * row_length
            x_lo, x_hi, wx = row_start + ax.lo[kx], row_start + ax.hi[kx], ax.w[kx]
            wz = az.w[z0:z1].reshape(-1, 1, 1)
            wy = ay.w.reshape(1, -1, 1)
            best = np.full(kz.size, -np.inf, dtype=np.float32)
            best_class = np.zeros(kz.size, dtype=np.uint8)
            for c in range(num_classes):
                # (z1 - z0, H, w) slab of class c, interpolated along z then y
                zs = resample_pair(probabilities[c], az.lo[z0:z1], az.hi[z0:z1], wz, axis=0)
                zy = resample_pair(zs, ay.lo, ay.hi, wy, axis=1).ravel()
                low = zy.take(x_lo)
                value = low + (zy.take(x_hi) - low) * wx
                better = value > best
                best_class[better] = c
                best[better] = value[better]
            labels[kz, ky, kx] = best_class
        out[z0:z1] = labels
    return out
