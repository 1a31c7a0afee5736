"""The body outline: everything of the patient, without the table, cushions or air around it.

Voxels above -300 HU (fat and denser; air, foam and the lighter table pads fall below) are
opened slice by slice so that the thin shells of the table and the sheets on it come apart
from the body. Of the 3D pieces left, the largest is the trunk and any other piece thick
enough to hold muscle and bone is a limb lying apart (arms beside the body); thin pieces
(the table top, cables, blankets) are dropped. An arm that touches the trunk in a slice is
cut off at the narrow neck between them, and followed into the slices next to it where it
lies broadly against the trunk. Holes are filled per slice, so the lungs, airways and bowel
gas are inside the body here; later steps take the lungs out.

The choice of pieces is made on the coarse grid; the outline itself is the full-resolution
threshold, so the skin surface keeps its detail.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from skimage.segmentation import watershed

from habitus.labels import BONE_HU_MIN
from habitus.segment.rules.coarse import CoarseGrid
from habitus.segment.rules.morphology import (
    IN_PLANE,
    Mask,
    disk,
    erode_2d,
    fill_holes_2d,
    per_slice,
)

BODY_HU = -300.0  # above air, foam and the denser table pads (to about -400), below fat
TABLE_OPENING_MM = 3.0  # opens away table shells and sheets thinner than ~6 mm
MIN_LIMB_HALF_THICKNESS_MM = 10.0  # a limb is at least ~2 cm thick somewhere; a table top is not
MIN_LIMB_FRACTION = 0.002  # of the trunk's volume: drops cables, ECG leads, small debris
TWO_LEGS_AREA_RATIO = 0.67  # a second blob this large in a slice: two legs, no trunk
ARM_CORE_LEVELS_MM = (8.0, 14.0, 22.0)  # depths tried to cut an arm off at its neck
MIN_ARM_CORE_MM2 = 60.0
MIN_FILLED_HOLE_MM2 = 1000.0  # cavities (lungs) are larger than arm-to-trunk gaps

SPREAD_STEPS = 4

_TRUNK, _LIMB = 1, 2


@dataclass(frozen=True)
class BodyMasks:
    body: Mask  # the whole patient, holes filled per slice
    torso: Mask  # the trunk (head and neck included); the part the anatomy rules apply to
    limbs: Mask  # arms and legs lying apart from the trunk in a slice


def body_masks(hu: NDArray[np.int16], spacing: tuple[float, float, float]) -> BodyMasks:
    """Body, trunk and limbs of a canonical (superior, posterior, left) HU volume."""
    dense = hu > BODY_HU
    grid = CoarseGrid.for_spacing(spacing, dense.shape)
    coarse_spacing = grid.spacing(spacing)
    pixel = (coarse_spacing[1], coarse_spacing[2])
    kept, nearest = _coarse_parts(grid.majority(dense), grid.any(hu > BONE_HU_MIN), pixel)

    # Full resolution: the thresholded outline near the kept pieces, holes filled; only the
    # box around them is worked on.
    near_kept = grid.expand(ndimage.binary_dilation(kept, IN_PLANE, iterations=2)).astype(bool)
    body = np.zeros_like(dense)
    torso = np.zeros_like(dense)
    if near_kept.any():
        rows = np.nonzero(near_kept.any(axis=(0, 2)))[0]
        cols = np.nonzero(near_kept.any(axis=(0, 1)))[0]
        box = (slice(None), slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        body[box] = fill_holes_2d(dense[box] & near_kept[box])
        torso[box] = body[box] & (grid.expand(nearest)[box] == _TRUNK)
    return BodyMasks(body=body, torso=torso, limbs=body & ~torso)


def _coarse_parts(
    dense: Mask, bone: Mask, pixel: tuple[float, float]
) -> tuple[Mask, NDArray[np.uint8]]:
    """The kept pieces, and the part each pixel near them belongs to: 1 trunk, 2 limb."""
    opening = disk(TABLE_OPENING_MM, pixel)
    opened = per_slice(dense, lambda s: ndimage.binary_opening(s, opening))
    pieces, count = ndimage.label(opened)
    if count == 0:
        return np.zeros_like(dense), np.zeros(dense.shape, dtype=np.uint8)
    sizes = np.bincount(pieces.ravel())
    sizes[0] = 0
    trunk = int(np.argmax(sizes))
    thick = erode_2d(opened, MIN_LIMB_HALF_THICKNESS_MM, pixel)
    is_thick = np.zeros(count + 1, dtype=bool)
    is_thick[np.unique(pieces[thick])] = True
    keep = (sizes >= MIN_LIMB_FRACTION * sizes[trunk]) & is_thick
    keep[0] = False
    kept = keep[pieces]

    # Decide trunk or limb on the opened pieces, where necks are narrowest.
    parts = np.where(kept, _LIMB, 0).astype(np.uint8)
    trunk_piece = _fill_large_holes(pieces == trunk, pixel)
    for k in range(parts.shape[0]):
        if trunk_piece[k].any():
            parts[k][_trunk_of_slice(trunk_piece[k], bone[k], pixel)] = _TRUNK
    _follow_arms(parts, pixel)
    regrown = per_slice(kept, lambda s: ndimage.binary_dilation(s, opening)) & dense
    return fill_holes_2d(regrown | kept), _spread_parts(parts)


def _fill_large_holes(mask: Mask, pixel: tuple[float, float]) -> Mask:
    """Fill the lungs and other large cavities, but not the small gaps where an arm meets
    the trunk at two points: filling those would widen the neck the arm is cut at."""
    holes = fill_holes_2d(mask) & ~mask
    labels, _ = ndimage.label(holes, structure=IN_PLANE)
    areas = np.bincount(labels.ravel()) * pixel[0] * pixel[1]
    areas[0] = 0
    return np.asarray(mask | (areas >= MIN_FILLED_HOLE_MM2)[labels])


def _trunk_of_slice(piece: Mask, bone: Mask, pixel: tuple[float, float]) -> Mask:
    """The trunk's part of one slice of the trunk piece, arms and legs cut away."""
    labels, count = ndimage.label(piece)
    sizes = np.bincount(labels.ravel())[1:]
    order = np.argsort(sizes)[::-1]
    if count > 1 and sizes[order[1]] >= TWO_LEGS_AREA_RATIO * sizes[order[0]]:
        return np.zeros_like(piece)  # two legs side by side: no trunk in this slice
    blob = labels == order[0] + 1
    return _cut_touching_arms(blob, bone, pixel)


def _cut_touching_arms(blob: Mask, bone: Mask, pixel: tuple[float, float]) -> Mask:
    """Split off an arm lying against the trunk at the narrow neck between them.

    The blob's depth map (distance to its outline) is cut at rising levels; an arm shows up
    as a separate core holding bone, lying beside the trunk's core, once the level passes the
    depth of the neck. The watershed of the depth from those cores draws the cut.
    """
    trunk = blob
    depth = ndimage.distance_transform_edt(trunk, sampling=pixel)
    for level in ARM_CORE_LEVELS_MM:
        cores, count = ndimage.label(depth >= level)
        if count < 2:
            continue
        arm_cores = _arm_cores(cores, count, bone, pixel)
        if not arm_cores:
            continue
        markers = np.zeros(trunk.shape, dtype=np.int32)
        areas = np.bincount(cores.ravel())
        areas[0] = 0
        markers[cores == int(np.argmax(areas))] = _TRUNK
        markers[np.isin(cores, arm_cores)] = _LIMB
        trunk = np.asarray(watershed(-depth, markers, mask=trunk) == _TRUNK)
        depth = ndimage.distance_transform_edt(trunk, sampling=pixel)
    return trunk


def _arm_cores(
    cores: NDArray[np.int32], count: int, bone: Mask, pixel: tuple[float, float]
) -> list[int]:
    """Labels of the cores that hold bone and lie wholly beside the largest core."""
    areas = np.bincount(cores.ravel(), minlength=count + 1) * pixel[0] * pixel[1]
    areas[0] = 0
    trunk = int(np.argmax(areas))
    has_bone = np.bincount(cores[bone], minlength=count + 1) > 0
    columns = np.nonzero((cores == trunk).any(axis=0))[0]
    left_edge, right_edge = columns.min(), columns.max()
    found = []
    for label in range(1, count + 1):
        if label == trunk or not has_bone[label] or areas[label] < MIN_ARM_CORE_MM2:
            continue
        its_columns = np.nonzero((cores == label).any(axis=0))[0]
        if its_columns.min() > right_edge or its_columns.max() < left_edge:
            found.append(label)
    return found


def _follow_arms(parts: NDArray[np.uint8], pixel: tuple[float, float]) -> None:
    """Carry arms cut off in one slice into the next where they lie broadly against the trunk.

    An arm lying apart from the trunk (or cut at a narrow neck) in slice k is still the arm
    in slice k + 1, even where the contact there is too broad for a neck to show. Only arms
    beside a trunk are followed, so the two legs below the pelvis are not carried upwards.
    """
    n = parts.shape[0]
    for order in (range(1, n), range(n - 2, -1, -1)):
        for k in order:
            previous = k - 1 if order.step > 0 else k + 1
            if not (parts[previous] == _LIMB).any():
                continue
            arm = _lateral_limbs(parts[previous])
            trunk = parts[k] == _TRUNK
            overlap = ndimage.binary_erosion(arm, iterations=2) & trunk
            if overlap.sum() * pixel[0] * pixel[1] < MIN_ARM_CORE_MM2:
                continue
            depth = ndimage.distance_transform_edt(trunk, sampling=pixel)
            markers = np.zeros(trunk.shape, dtype=np.int32)
            markers[
                (depth >= ARM_CORE_LEVELS_MM[0]) & ~ndimage.binary_dilation(arm, iterations=3)
            ] = _TRUNK
            markers[overlap] = _LIMB
            if not (markers == _TRUNK).any():
                continue
            split = watershed(-depth, markers, mask=trunk)
            parts[k][split == _LIMB] = _LIMB


def _lateral_limbs(parts: NDArray[np.uint8]) -> Mask:
    """The limb pixels of a slice that lie wholly to one side of the slice's trunk."""
    trunk_columns = np.nonzero((parts == _TRUNK).any(axis=0))[0]
    if trunk_columns.size == 0:
        return np.zeros(parts.shape, dtype=bool)
    labels, count = ndimage.label(parts == _LIMB)
    out = np.zeros(parts.shape, dtype=bool)
    for label in range(1, count + 1):
        columns = np.nonzero((labels == label).any(axis=0))[0]
        if columns.min() > trunk_columns.max() or columns.max() < trunk_columns.min():
            out |= labels == label
    return out


def _spread_parts(parts: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Let trunk and limb labels spread a few pixels within each slice, the trunk first.

    The body's full-resolution outline lies within two coarse pixels of the labelled
    pieces, so a few steps give every body pixel the label of a piece next to it.
    """
    out = parts.copy()
    cross = ndimage.generate_binary_structure(2, 1)
    for k in np.nonzero((parts == _LIMB).any(axis=(1, 2)))[0]:
        trunk = parts[k] == _TRUNK
        limb = parts[k] == _LIMB
        for _ in range(SPREAD_STEPS):
            free = ~(trunk | limb)
            grown_trunk = ndimage.binary_dilation(trunk, cross) & free
            limb |= ndimage.binary_dilation(limb, cross) & free & ~grown_trunk
            trunk |= grown_trunk
        out[k] = np.where(trunk, _TRUNK, np.where(limb, _LIMB, 0))
    out[~(parts == _LIMB).any(axis=(1, 2))] = _TRUNK  # no limb in the slice: all trunk
    return out
