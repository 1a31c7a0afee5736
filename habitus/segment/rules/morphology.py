"""Shared mask operations, with sizes given in millimetres rather than voxels."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

Mask = NDArray[np.bool_]
PixelSpacing = tuple[float, float]  # (row, column) mm

IN_PLANE = np.zeros((3, 3, 3), dtype=bool)
IN_PLANE[1] = ndimage.generate_binary_structure(2, 1)
"""Face connectivity within a slice only: labels every slice of a volume separately."""

IN_PLANE_8 = np.zeros((3, 3, 3), dtype=bool)
IN_PLANE_8[1] = True
"""Face and corner (8-) connectivity within a slice only."""


def disk(radius_mm: float, spacing: PixelSpacing, at_least_one: bool = True) -> Mask:
    """An elliptical in-plane structuring element of the given radius in mm."""
    ry = radius_mm / spacing[0]
    rx = radius_mm / spacing[1]
    if at_least_one:
        ry, rx = max(ry, 1.0), max(rx, 1.0)
    ny, nx = int(np.floor(ry)), int(np.floor(rx))
    y, x = np.ogrid[-ny : ny + 1, -nx : nx + 1]
    return np.asarray((y / max(ry, 1e-6)) ** 2 + (x / max(rx, 1e-6)) ** 2 <= 1.0)


def ball(radius_mm: float, spacing: tuple[float, float, float]) -> Mask:
    """An ellipsoidal 3D structuring element, at least one voxel across in-plane."""
    radii = [radius_mm / s for s in spacing]
    radii[1], radii[2] = max(radii[1], 1.0), max(radii[2], 1.0)
    half = [int(np.floor(r)) for r in radii]
    z, y, x = np.ogrid[-half[0] : half[0] + 1, -half[1] : half[1] + 1, -half[2] : half[2] + 1]
    r0 = max(radii[0], 1e-6)
    return np.asarray((z / r0) ** 2 + (y / radii[1]) ** 2 + (x / radii[2]) ** 2 <= 1.0)


def per_slice(mask: Mask, operation: Callable[[Mask], Mask]) -> Mask:
    """Apply a 2D operation to every axial slice (axis 0) of a 3D mask."""
    out = np.zeros_like(mask)
    for k in range(mask.shape[0]):
        if mask[k].any():
            out[k] = operation(mask[k])
    return out


def largest_component(mask: Mask) -> Mask:
    """The largest face-connected component of a mask (empty in, empty out)."""
    labels, count = ndimage.label(mask)
    if count == 0:
        return np.zeros_like(mask)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return np.asarray(labels == int(np.argmax(sizes)))


def largest_per_slice(mask: Mask) -> Mask:
    """The largest (8-connected) component of each slice of a 3D mask."""
    labels, count = ndimage.label(mask, structure=IN_PLANE_8)
    if count == 0:
        return np.zeros_like(mask)
    slice_of = np.array([box[0].start for box in ndimage.find_objects(labels)])
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    order = np.lexsort((sizes, slice_of))  # by slice, then by size ascending
    ordered_slices = slice_of[order]
    last_of_slice = np.r_[ordered_slices[1:] != ordered_slices[:-1], True]
    keep = np.zeros(count + 1, dtype=bool)
    keep[order[last_of_slice] + 1] = True
    return np.asarray(keep[labels])


def drop_small_components(mask: Mask, min_voxels: float, connectivity: Mask | None = None) -> Mask:
    """Remove the components smaller than ``min_voxels``: face-connected in 3D, or
    connected by ``connectivity`` (:data:`IN_PLANE_8`: each slice on its own)."""
    labels, count = ndimage.label(mask, structure=connectivity)
    if count == 0:
        return mask.copy()
    sizes = np.bincount(labels.ravel())
    keep = sizes >= min_voxels
    keep[0] = False
    return np.asarray(keep[labels])


def odd_window(size_mm: float, pixel: PixelSpacing, minimum: int = 1) -> tuple[int, int]:
    """Voxels (rows, columns) of an in-slice window about ``size_mm`` across: odd, so that it
    centres on its voxel, and at least ``minimum`` (odd)."""
    rows, cols = (max(minimum, int(round(size_mm / p)) | 1) for p in pixel)
    return rows, cols


def mean_2d(values: NDArray[np.float32], window: tuple[int, int]) -> NDArray[np.float32]:
    """Mean over a ``window`` (rows, columns) of voxels around each voxel, in its slice.

    Two one-dimensional passes: scipy's n-dimensional uniform filter costs about three
    times as much for the same result on large volumes.
    """
    rows = ndimage.uniform_filter1d(values, window[0], axis=1)
    return np.asarray(ndimage.uniform_filter1d(rows, window[1], axis=2))


def local_mean_and_spread(
    hu: NDArray[np.integer], size_mm: float, pixel: PixelSpacing
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Mean and standard deviation of HU over a window about ``size_mm`` across (at least
    three voxels), around each voxel in its slice."""
    size = odd_window(size_mm, pixel, minimum=3)
    values = hu.astype(np.float32)
    mean = mean_2d(values, size)
    spread = np.sqrt(np.maximum(mean_2d(values * values, size) - mean * mean, 0.0))
    return mean, spread


def fill_holes_2d(mask: Mask, background_connectivity: Mask = IN_PLANE) -> Mask:
    """Fill the holes of every axial slice: background not reaching the slice's border.

    With :data:`IN_PLANE_8`, background touching at a corner is one piece, so a gap that
    reaches the border diagonally is not a hole."""
    background, _ = ndimage.label(~mask, structure=background_connectivity)
    edges = np.concatenate(
        [
            background[:, 0, :].ravel(),
            background[:, -1, :].ravel(),
            background[:, :, 0].ravel(),
            background[:, :, -1].ravel(),
        ]
    )
    outside = np.zeros(int(background.max()) + 1, dtype=bool)
    outside[edges] = True
    outside[0] = False
    return np.asarray(mask | ~outside[background])


def steps_for(radius_mm: float, pixel: PixelSpacing, at_least_one: bool = True) -> int:
    """Number of one-pixel steps that cover ``radius_mm`` in the slice plane."""
    n = int(round(radius_mm / min(pixel)))
    return max(n, 1) if at_least_one else max(n, 0)


def dilate_2d(
    mask: Mask,
    radius_mm: float,
    pixel: PixelSpacing,
    within: Mask | None = None,
    at_least_one: bool = True,
) -> Mask:
    """Grow every slice by about ``radius_mm``, optionally only into ``within``.

    Alternating square and cross steps give an octagon, close to a disk, and scipy's
    iterated morphology only revisits pixels next to the last change, which makes many
    small steps much cheaper than one large structuring element.
    """
    n = steps_for(radius_mm, pixel, at_least_one)
    out = mask
    if n // 2:
        out = ndimage.binary_dilation(out, IN_PLANE_8, iterations=n // 2, mask=within)
    if n - n // 2:
        out = ndimage.binary_dilation(out, IN_PLANE, iterations=n - n // 2, mask=within)
    return np.asarray(out)


def erode_2d(
    mask: Mask,
    radius_mm: float,
    pixel: PixelSpacing,
    border_value: int = 0,
    at_least_one: bool = True,
) -> Mask:
    """Shrink every slice by about ``radius_mm`` (the counterpart of :func:`dilate_2d`)."""
    n = steps_for(radius_mm, pixel, at_least_one)
    out = mask
    if n // 2:
        out = ndimage.binary_erosion(out, IN_PLANE_8, iterations=n // 2, border_value=border_value)
    if n - n // 2:
        out = ndimage.binary_erosion(
            out, IN_PLANE, iterations=n - n // 2, border_value=border_value
        )
    return np.asarray(out)


def open_2d(mask: Mask, radius_mm: float, pixel: PixelSpacing, at_least_one: bool = True) -> Mask:
    """Remove the parts of every slice thinner than about twice ``radius_mm``."""
    eroded = erode_2d(mask, radius_mm, pixel, at_least_one=at_least_one)
    return dilate_2d(eroded, radius_mm, pixel, at_least_one=at_least_one) & mask


def close_2d(mask: Mask, radius_mm: float, pixel: PixelSpacing) -> Mask:
    """Bridge gaps narrower than about twice ``radius_mm`` in every slice."""
    grown = dilate_2d(mask, radius_mm, pixel)
    return erode_2d(grown, radius_mm, pixel, border_value=1) | mask


def bridge_slices(mask: Mask, allowed: Mask, max_gap_mm: float, slice_mm: float) -> Mask:
    """``mask`` with the slices it skips filled in where ``allowed``.

    A voxel of ``allowed`` joins the mask when the mask holds at the same row and column
    in a slice above and in a slice below it, both within ``max_gap_mm``: a structure that
    runs along the body (a muscle) does not vanish for a slice or two, so a slice where a
    per-slice rule lost it takes it back from its neighbours.
    """
    reach = int(np.floor(max_gap_mm / slice_mm))
    if reach < 1 or mask.shape[0] < 3:
        return mask.copy()
    above = np.zeros_like(mask)  # the mask holds within ``reach`` slices before k
    below = np.zeros_like(mask)  # ... and after k
    for step in range(1, min(reach, mask.shape[0] - 1) + 1):
        above[step:] |= mask[:-step]
        below[:-step] |= mask[step:]
    return mask | (above & below & allowed)
