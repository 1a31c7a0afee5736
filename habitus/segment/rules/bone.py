"""Bone: cortex and marrow, ribs, and the costal cartilages.

Voxels above 250 HU seed the skeleton. Partial volume makes thin cortex (ribs, a vertebral
body's rim on thick slices) read lower, so the seeds grow by up to two steps of about 2 mm
into voxels above 150 HU; dense contrast in a vessel is reached only where it touches bone.
Cancellous bone can read as low as 100 HU: inside the outline of each large bone section
(its convex hull, close to bone) it is taken down to that level. Holes left inside bone in a
slice are marrow and filled, except the ones that may hold something else: a hole of soft
tissue density inside the trunk (the spinal canal, the cranial cavity, fatty marrow) is left
open for the nervous-system step to decide, and a hole larger than any marrow cavity (the
pelvic ring, a closed rib cage) is never filled.

Costal cartilage reads as dense soft tissue (about 100-130 HU against 30-60 HU for muscle);
it is taken where such tissue forms sizeable pieces within the chest wall that continue a rib
or the sternum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from skimage.morphology import convex_hull_image

from habitus.labels import BONE_HU_MIN
from habitus.segment.rules.morphology import IN_PLANE, Mask, ball, disk, fill_holes_2d, per_slice

CORTEX_HU = 150.0
GROW_STEPS = 2
GROW_STEP_MM = 2.0
CANCELLOUS_HU = 100.0
CANCELLOUS_REACH_MM = 15.0
MIN_HULL_SECTION_MM2 = 150.0  # vertebral bodies, sternum, pelvis, long bones; not rib slices
CLOSING_MM = 2.0
MAX_MARROW_MM2 = 3000.0
OPEN_HOLE_MIN_MM2 = 40.0  # smaller soft holes are marrow whatever they read
OPEN_HOLE_MAX_HU = 100.0
CARTILAGE_HU = 80.0
CARTILAGE_MAX_HU = BONE_HU_MIN
MIN_CARTILAGE_MM3 = 300.0


@dataclass(frozen=True)
class BoneMasks:
    bone: Mask  # cortex and marrow
    open_holes: Mask  # soft holes inside trunk bone (canal, cranial cavity, fatty marrow, pelvis)


def bone_mask(
    hu: NDArray[np.int16], body: Mask, torso: Mask, spacing: tuple[float, float, float]
) -> BoneMasks:
    """Bone of a canonical (superior, posterior, left) volume, before costal cartilage."""
    pixel = (spacing[1], spacing[2])
    bone = body & (hu > BONE_HU_MIN)
    step = ball(GROW_STEP_MM, spacing)
    cortex_like = body & (hu > CORTEX_HU)
    for _ in range(GROW_STEPS):
        bone = bone | (ndimage.binary_dilation(bone, step) & cortex_like)
    bone = bone | _cancellous(hu, bone, pixel)
    bone = per_slice(bone, lambda s: ndimage.binary_closing(s, disk(CLOSING_MM, pixel)))
    bone &= body
    return _fill_marrow(hu, bone, torso, pixel)


def _cancellous(hu: NDArray[np.int16], bone: Mask, pixel: tuple[float, float]) -> Mask:
    """Cancellous bone above ``CANCELLOUS_HU`` inside the hull of each large bone section."""
    out = np.zeros_like(bone)
    min_pixels = MIN_HULL_SECTION_MM2 / (pixel[0] * pixel[1])
    for k in range(bone.shape[0]):
        if not bone[k].any():
            continue
        sections, count = ndimage.label(bone[k])
        sizes = np.bincount(sections.ravel())
        large = [n for n in range(1, count + 1) if sizes[n] >= min_pixels]
        if not large:
            continue
        hull = np.zeros_like(bone[k])
        for n in large:
            hull |= _hull(sections == n)
        near = ndimage.distance_transform_edt(~bone[k], sampling=pixel) <= CANCELLOUS_REACH_MM
        out[k] = hull & near & (hu[k] > CANCELLOUS_HU)
    return out


def _hull(section: Mask) -> Mask:
    """Convex hull of one section, computed on its bounding box only."""
    rows, cols = np.nonzero(section)
    r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    out = np.zeros_like(section)
    out[r0:r1, c0:c1] = convex_hull_image(section[r0:r1, c0:c1])
    return out


def _fill_marrow(
    hu: NDArray[np.int16], bone: Mask, torso: Mask, pixel: tuple[float, float]
) -> BoneMasks:
    holes = fill_holes_2d(bone) & ~bone
    labels, count = ndimage.label(holes, structure=IN_PLANE)
    if count == 0:
        return BoneMasks(bone=bone, open_holes=np.zeros_like(bone))
    index = np.arange(1, count + 1)
    area = np.bincount(labels.ravel())[1:] * pixel[0] * pixel[1]
    mean_hu = np.asarray(ndimage.mean(hu, labels, index))
    in_torso = np.asarray(ndimage.maximum(torso, labels, index)) > 0
    is_open = in_torso & (area >= OPEN_HOLE_MIN_MM2) & (mean_hu < OPEN_HOLE_MAX_HU)
    is_marrow = (area <= MAX_MARROW_MM2) & ~is_open
    fill = np.concatenate([[False], is_marrow])
    keep_open = np.concatenate([[False], is_open])
    return BoneMasks(bone=bone | fill[labels], open_holes=keep_open[labels])


def costal_cartilage(
    hu: NDArray[np.int16], chest_wall: Mask, bone: Mask, spacing: tuple[float, float, float]
) -> Mask:
    """Dense soft tissue in the chest wall (the ring, not the cavity) continuing a bone."""
    smooth = ndimage.uniform_filter(hu.astype(np.float32), size=(1, 3, 3))
    candidate = chest_wall & ~bone & (smooth > CARTILAGE_HU) & (smooth < CARTILAGE_MAX_HU)
    candidate = per_slice(candidate, ndimage.binary_opening)
    pieces, count = ndimage.label(candidate)
    if count == 0:
        return candidate
    volume = np.bincount(pieces.ravel()) * float(np.prod(spacing))
    touches_bone = np.zeros(count + 1, dtype=bool)
    touches_bone[np.unique(pieces[ndimage.binary_dilation(bone) & candidate])] = True
    keep = (volume >= MIN_CARTILAGE_MM3) & touches_bone
    keep[0] = False
    return np.asarray(fill_holes_2d(keep[pieces]) & chest_wall)
