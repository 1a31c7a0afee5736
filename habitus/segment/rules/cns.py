"""The central nervous system: the spinal canal and the cranial cavity.

Both are soft tissue enclosed by bone in an axial slice, which the bone step leaves open.
The canal is the enclosed hole on the spine's midline between the vertebral body and the
spinous process. Where the arch is open in a slice (between two laminae, at a foramen) the
canal is carried over from the nearest slice that has it, limited to soft tissue there.
The cranial cavity is a large enclosed hole of brain density: its content is neither air
(sinuses) nor largely fat (the pelvis inside its ring).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from habitus.labels import FAT_HU
from habitus.segment.rules.morphology import IN_PLANE, Mask
from habitus.segment.rules.spine import Spine

CANAL_MAX_OFF_MIDLINE_MM = 15.0
CANAL_MIN_MM2 = 40.0
CANAL_MAX_MM2 = 800.0
CANAL_CARRY_MM = 12.0
CANAL_CONTENT_HU = (-30.0, 100.0)  # CSF and cord; epidural fat stays out where it is carried
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
    holes, count = ndimage.label(open_holes, structure=IN_PLANE)
    if count == 0:
        return np.zeros_like(open_holes)
    index = np.arange(1, count + 1)
    area = np.bincount(holes.ravel())[1:] * pixel[0] * pixel[1]
    centres = np.asarray(ndimage.center_of_mass(open_holes, holes, index)).reshape(-1, 3)
    canal = _canal(holes, index, area, centres, spine, pixel)
    canal = _carry_canal(canal, hu, bone, spine, spacing)
    return canal | _cranial_cavity(hu, holes, index, area)


def _canal(
    holes: NDArray[np.int32],
    index: NDArray[np.int64],
    area: NDArray[np.float64],
    centres: NDArray[np.float64],
    spine: Spine,
    pixel: tuple[float, float],
) -> Mask:
    slices = centres[:, 0].round().astype(int)
    midline = spine.midline_col[slices]
    on_midline = np.abs(centres[:, 2] - midline) * pixel[1] <= CANAL_MAX_OFF_MIDLINE_MM
    behind_body = (centres[:, 1] > spine.front_row[slices]) & (
        centres[:, 1] < spine.back_row[slices]
    )
    sized = (area >= CANAL_MIN_MM2) & (area <= CANAL_MAX_MM2)
    chosen = index[on_midline & behind_body & sized]
    return np.isin(holes, chosen)


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
