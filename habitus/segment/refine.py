"""Correct a label map at the scan's native resolution by attenuation.

A model that works on a coarser grid than the scan blurs what is thinner than its voxels: the
skin (about 2 mm), fat between muscle bundles, the edge between muscle and fat. This step
takes the upsampled labels and the native HU and changes labels only where the attenuation
contradicts them next to a class that explains it. All neighbourhoods are in-plane (within
one slice), so the scan's slice thickness does not widen them. In order:

1. A voxel's HU counts as in a range (adipose -190 to -30 HU, muscle -29 to 150 HU) only
   when at least 3 voxels of its 3 x 3 in-plane neighbourhood, itself included, are in it:
   a single noisy voxel does not flip, a one-voxel streak of fat or an edge does.
2. Fat inside or beside muscle: a MUSCLE voxel whose HU lies in the adipose range becomes
   AVF when AVF, and no SF, lies within ``near_mm`` in-plane (a square neighbourhood);
   otherwise it becomes SF, the class of intramuscular fat.
3. Muscle at the edge of fat: an SF or AVF voxel whose HU lies in the muscle range becomes
   MUSCLE when MUSCLE, and no IO, lies within ``near_mm``.
4. Lost surface: a BACKGROUND voxel outside the body (the labelled voxels, with the holes of
   each slice, lungs and airways, filled) that touches it in-plane and whose HU is at least
   -190 (soft tissue or fat, not air) becomes SKIN: the outermost voxels that a coarse grid
   left out. Only this one-voxel ring is added, so a table touching the back grows the body
   by at most one voxel.
5. Skin: every SF or MUSCLE voxel of the body (grown by that ring) closer than ``skin_mm``
   to the body's outer edge in its slice (an elliptical neighbourhood scaled by the pixel
   spacing) becomes SKIN, so that a continuous skin layer of at least ``skin_mm`` survives.
   The edge of the image is not an edge of the body: a body cut by the field of view gets
   no skin there.

Bone, internal organs and CNS are never changed; background only by rule 4.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import label

from habitus.labels import FAT_HU, MUSCLE_HU, Tissue

_MIN_SUPPORT = 3  # voxels of the 3 x 3 neighbourhood, itself included, in a HU range


def _axis_slice(axis: int, start: int | None, stop: int | None) -> tuple[slice, ...]:
    index = [slice(None)] * 3
    index[axis] = slice(start, stop)
    return tuple(index)


def _dilate_axis(mask: NDArray[np.bool_], radius: int, axis: int) -> NDArray[np.bool_]:
    """True within ``radius`` voxels along ``axis`` of a True voxel (False beyond the edges).

    The window grows by doubling, so the cost is logarithmic in the radius.
    """
    if radius <= 0:
        return mask.copy()
    padding = [(0, 0)] * 3
    padding[axis] = (radius, radius)
    out = np.pad(mask, padding)
    width, span = 2 * radius + 1, 1  # out[i] is the OR of the padded mask over [i, i + span)
    while span < width:
        step = min(span, width - span)
        out[_axis_slice(axis, 0, -step)] |= out[_axis_slice(axis, step, None)]
        span += step
    return np.ascontiguousarray(out[_axis_slice(axis, 0, mask.shape[axis])])


def _in_plane_square(mask: NDArray[np.bool_], radius_px: tuple[int, int]) -> NDArray[np.bool_]:
    """True within ``radius_px`` (rows, columns) of a True voxel of the same slice."""
    return _dilate_axis(_dilate_axis(mask, radius_px[0], 1), radius_px[1], 2)


def _in_plane_ellipse_dilation(
    mask: NDArray[np.bool_], radius_px: tuple[float, float]
) -> NDArray[np.bool_]:
    """True within the in-plane ellipse of radii ``radius_px`` (rows, columns) of a True voxel.

    The ellipse is a stack of row segments: each row offset ORs in the mask dilated along the
    row by that segment's half-width.
    """
    ry, rx = max(radius_px[0], 1.0), max(radius_px[1], 1.0)
    out = np.zeros_like(mask)
    by_width: dict[int, NDArray[np.bool_]] = {}
    rows = mask.shape[1]
    for dy in range(-int(np.floor(ry)), int(np.floor(ry)) + 1):
        half_width = int(np.floor(rx * np.sqrt(max(0.0, 1.0 - (dy / ry) ** 2))))
        if half_width not in by_width:
            by_width[half_width] = _dilate_axis(mask, half_width, 2)
        source = by_width[half_width]
        # out[y] |= source[y + dy]
        if dy >= 0:
            out[:, : rows - dy] |= source[:, dy:]
        else:
            out[:, -dy:] |= source[:, : rows + dy]
    return out


def _filled_body(labels: NDArray[np.uint8]) -> NDArray[np.bool_]:
    """Labelled voxels with the holes of each slice (lungs, airways) filled.

    A hole is a background region of a slice that does not reach the slice's border.
    """
    in_plane = np.zeros((3, 3, 3), dtype=bool)
    in_plane[1] = [[0, 1, 0], [1, 1, 1], [0, 1, 0]]
    regions, count = label(labels == Tissue.BACKGROUND, structure=in_plane)
    border = np.concatenate(
        [
            regions[:, 0].ravel(),
            regions[:, -1].ravel(),
            regions[:, :, 0].ravel(),
            regions[:, :, -1].ravel(),
        ]
    )
    outside = np.zeros(count + 1, dtype=bool)
    outside[border] = True
    outside[0] = False  # region 0 is the labelled body itself
    body: NDArray[np.bool_] = ~outside[regions]
    return body


def _in_range(
    hu: NDArray[np.integer] | NDArray[np.floating], bounds: tuple[float, float]
) -> NDArray[np.bool_]:
    """In ``bounds`` with at least 2 in-plane neighbours also in them (rule 1)."""
    inside = (hu >= bounds[0]) & (hu <= bounds[1])
    count = _in_plane_box_sum(inside.view(np.uint8))
    supported: NDArray[np.bool_] = inside & (count >= _MIN_SUPPORT)
    return supported


def _in_plane_box_sum(values: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Sum over each voxel's 3 x 3 in-plane neighbourhood (zero beyond the edges)."""
    rows = values.copy()
    rows[:, 1:] += values[:, :-1]
    rows[:, :-1] += values[:, 1:]
    box = rows.copy()
    box[:, :, 1:] += rows[:, :, :-1]
    box[:, :, :-1] += rows[:, :, 1:]
    return box


def refine_by_attenuation(
    labels: NDArray[np.uint8],
    hu: NDArray[np.integer] | NDArray[np.floating],
    spacing: Sequence[float],
    *,
    skin_mm: float = 2.0,
    near_mm: float = 3.0,
) -> NDArray[np.uint8]:
    """A refined copy of ``labels`` (see the module docstring for the exact rules).

    ``spacing`` is the (slice, row, column) voxel spacing in mm of both arrays.
    """
    if labels.shape != hu.shape:
        raise ValueError(f"labels {labels.shape} and HU {hu.shape} must have the same shape")
    row_mm, col_mm = float(spacing[1]), float(spacing[2])
    near_px = (max(1, round(near_mm / row_mm)), max(1, round(near_mm / col_mm)))
    out = labels.copy()

    def near(tissue: Tissue) -> NDArray[np.bool_]:
        return _in_plane_square(labels == tissue, near_px)

    fat_in_muscle = (labels == Tissue.MUSCLE) & _in_range(hu, FAT_HU)
    if fat_in_muscle.any():
        to_avf = near(Tissue.AVF) & ~near(Tissue.SF)
        out[fat_in_muscle & to_avf] = Tissue.AVF
        out[fat_in_muscle & ~to_avf] = Tissue.SF

    fatty = (labels == Tissue.SF) | (labels == Tissue.AVF)
    muscle_in_fat = fatty & _in_range(hu, MUSCLE_HU)
    if muscle_in_fat.any():
        out[muscle_in_fat & near(Tissue.MUSCLE) & ~near(Tissue.IO)] = Tissue.MUSCLE

    body = _filled_body(out)
    lost_surface = _in_plane_square(body, (1, 1)) & ~body & (hu >= FAT_HU[0])
    out[lost_surface] = Tissue.SKIN
    body |= lost_surface
    # Within skin_mm of a voxel outside the body; beyond the image edge is not outside.
    shell = body & _in_plane_ellipse_dilation(~body, (skin_mm / row_mm, skin_mm / col_mm))
    out[shell & ((out == Tissue.SF) | (out == Tissue.MUSCLE))] = Tissue.SKIN
    return out
