"""The central nervous system: the spinal canal and the cranial cavity.

The canal is found on the spine's midline behind the vertebral body, whether or not the arch
closes around it in the slice. Where it is not found (a disc, a gap) it is carried over from
the nearest slice that has it, limited to soft tissue there. The cranial cavity is soft
tissue enclosed by bone in an axial slice, which the bone step leaves open:
a large hole of brain density, its content neither air (sinuses) nor largely fat (the
pelvis inside its ring).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from habitus.labels import FAT_HU
from habitus.segment.rules.morphology import IN_PLANE, Mask
from habitus.segment.rules.spine import Spine

CANAL_BAND_MM = 2.0  # half-width of the midline strip searched
BODY_MIN_DEPTH_MM = 12.0  # the canal lies at least this far behind the body's front
CANAL_MIN_AP_MM = 4.0
CANAL_MAX_AP_MM = 20.0
CANAL_MAX_MEAN_HU = 60.0  # cord and fluid; marrow and muscle read higher
CANAL_RADIUS_MM = 10.0
CANAL_CONTENT_HU = (-120.0, 100.0)  # cord, fluid and epidural fat
CANAL_CARRY_MM = 12.0
SKULL_MIN_MM2 = 2000.0
BRAIN_MEAN_HU = (10.0, 70.0)
BRAIN_MAX_FAT_FRACTION = 0.10
BRAIN_MAX_AIR_FRACTION = 0.02


def cns_mask(
    hu: NDArray[np.int16],
    open_holes: Mask,
    bone: Mask,
    spine: Spine,
    spacing: tuple[float, float, float],
) -> Mask:
    pixel = (spacing[1], spacing[2])
    canal = np.zeros_like(bone)
    for k in range(bone.shape[0]):
        if spine.found(k):
            canal[k] = _canal_of_slice(hu[k], bone[k], spine, k, pixel)
    canal = _carry_canal(canal, hu, bone, spine, spacing)
    holes, count = ndimage.label(open_holes, structure=IN_PLANE)
    if count == 0:
        return canal
    index = np.arange(1, count + 1)
    area = np.bincount(holes.ravel())[1:].astype(np.float64) * pixel[0] * pixel[1]
    return canal | _cranial_cavity(hu, holes, index, area)


def _canal_of_slice(
    hu: NDArray[np.int16], bone: Mask, spine: Spine, k: int, pixel: tuple[float, float]
) -> Mask:
    """The canal behind the vertebral body: the widest gap in the bone along the midline.

    Walking back along the midline from just inside the vertebral body, the canal is the
    longest stretch without bone whose content reads as cord and fluid, not as marrow or
    muscle. It is then filled out sideways within a canal's radius of its centre.
    """
    out = np.zeros_like(bone)
    mid = int(round(spine.midline_col[k]))
    half = max(1, int(round(CANAL_BAND_MM / pixel[1])))
    top = int(round(spine.front_row[k] + BODY_MIN_DEPTH_MM / pixel[0]))
    bottom = int(round(spine.back_row[k]))
    columns = slice(max(mid - half, 0), mid + half + 1)
    if bottom <= top + 1:
        return out
    column_bone = np.asarray(bone[top:bottom, columns].any(axis=1))
    column_hu = hu[top:bottom, columns].mean(axis=1)
    max_depth = max(1, int(round(CANAL_MAX_AP_MM / pixel[0])))
    best: tuple[int, int] | None = None
    for start, stop in _runs(~column_bone):
        depth = min(stop - start, max_depth)
        if depth * pixel[0] < CANAL_MIN_AP_MM:
            continue
        if column_hu[start : start + depth].mean() > CANAL_MAX_MEAN_HU:
            continue
        if best is None or depth > best[1]:
            best = (start, depth)
    if best is None:
        return out
    centre = (top + best[0] + best[1] // 2, mid)
    rows, cols = np.ogrid[: bone.shape[0], : bone.shape[1]]
    near = ((rows - centre[0]) * pixel[0]) ** 2 + (
        (cols - centre[1]) * pixel[1]
    ) ** 2 <= CANAL_RADIUS_MM**2
    content = near & ~bone & (hu > CANAL_CONTENT_HU[0]) & (hu < CANAL_CONTENT_HU[1])
    pieces, _ = ndimage.label(content)
    if pieces[centre]:
        out = pieces == pieces[centre]
    return out


def _runs(values: NDArray[np.bool_]) -> list[tuple[int, int]]:
    """(start, stop) of each run of True."""
    padded = np.concatenate([[False], values, [False]]).astype(np.int8)
    edges = np.diff(padded)
    return list(zip(np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0], strict=True))


def _carry_canal(
    canal: Mask,
    hu: NDArray[np.int16],
    bone: Mask,
    spine: Spine,
    spacing: tuple[float, float, float],
) -> Mask:
    """Fill slices with a spine but no closed canal from the nearest slice that has one."""
    have = np.nonzero(canal.any(axis=(1, 2)))[0]
    if have.size == 0:
        return canal
    reach = max(1, int(round(CANAL_CARRY_MM / spacing[0])))
    content = ~bone & (hu > CANAL_CONTENT_HU[0]) & (hu < CANAL_CONTENT_HU[1])
    out = canal.copy()
    for k in range(canal.shape[0]):
        if canal[k].any() or not spine.found(k):
            continue
        nearest = have[np.argmin(np.abs(have - k))]
        if abs(int(nearest) - k) > reach:
            continue
        shift = int(round(spine.midline_col[k] - spine.midline_col[nearest]))
        carried = np.roll(canal[nearest], shift, axis=1)
        out[k] = carried & content[k]
    return out


def _cranial_cavity(
    hu: NDArray[np.int16],
    holes: NDArray[np.int32],
    index: NDArray[np.int64],
    area: NDArray[np.float64],
) -> Mask:
    large = index[area >= SKULL_MIN_MM2]
    if large.size == 0:
        return np.zeros(holes.shape, dtype=bool)
    mean_hu = np.asarray(ndimage.mean(hu, holes, large))
    fat = np.asarray(ndimage.mean((hu >= FAT_HU[0]) & (hu <= FAT_HU[1]), holes, large))
    air = np.asarray(ndimage.mean(hu < FAT_HU[0], holes, large))
    brain = (
        (mean_hu >= BRAIN_MEAN_HU[0])
        & (mean_hu <= BRAIN_MEAN_HU[1])
        & (fat <= BRAIN_MAX_FAT_FRACTION)
        & (air <= BRAIN_MAX_AIR_FRACTION)
    )
    return np.isin(holes, large[brain])
