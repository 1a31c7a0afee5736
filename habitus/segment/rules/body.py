"""Where the trunk, arms and legs are: the one place that tells them apart, for the
segmentation (from the CT) and for the measurements (from a label map).

Segmentation, :func:`body_masks`: the body outline, everything of the patient without the
table, cushions or air around it. Voxels above -300 HU (fat and denser; air, foam and the
lighter table pads fall below) are opened slice by slice so that the thin shells of the table
and the sheets on it come apart from the body. Of the 3D pieces left, the largest is the
trunk and any other piece thick enough to hold muscle and bone is a limb lying apart (arms
beside the body); thin pieces (the table top, cables, blankets) are dropped. An arm that
touches the trunk in a slice is cut off at the narrow neck between them, and followed into
the slices next to it where it lies broadly against the trunk. Holes are filled per slice, so
the lungs, airways and bowel gas are inside the body here; later steps take the lungs out.
The choice of pieces is made on the coarse grid; the outline itself is the full-resolution
threshold, so the skin surface keeps its detail.

Measurement, :func:`find_body_parts`, on the pooled canonical masks of a label map:

- body: every labelled voxel, with the cavities of each slice (lungs, airways, bowel gas)
  filled; specks under 1 cm2 are dropped;
- arms: body components separate from the trunk in the slice, and arms that touch it only
  through a thin bridge (an opening of ``ARM_SEPARATION_MM`` cuts them off). An arm lying
  broadly against the flank is moved out of the trunk where its bone is known
  (:func:`arm_bones_apart`, :func:`cut_arms_at_bones`);
- legs: from the bottom of the scan upward, slices where the body is two large components
  of similar size side by side. The trunk ends where they join (the leg split).

Both work slice by slice on canonical (superior, posterior, left) arrays.
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
    IN_PLANE_8,
    Mask,
    PixelSpacing,
    disk,
    drop_small_components,
    erode_2d,
    fill_holes_2d,
    largest_per_slice,
    per_slice,
)

# The segmentation's outline and its pieces, on the coarse grid.
BODY_HU = -300.0  # above air, foam and the denser table pads (to about -400), below fat
TABLE_OPENING_MM = 3.0  # opens away table shells and sheets thinner than ~6 mm
MIN_LIMB_HALF_THICKNESS_MM = 10.0  # a limb is at least ~2 cm thick somewhere; a table top is not
MIN_LIMB_FRACTION = 0.002  # of the trunk's volume: drops cables, ECG leads, small debris
TWO_LEGS_AREA_RATIO = 0.67  # a second blob this large in a slice: two legs, no trunk
ARM_CORE_LEVELS_MM = (8.0, 14.0, 22.0)  # depths tried to cut an arm off at its neck
MIN_ARM_CORE_MM2 = 60.0
MIN_FILLED_HOLE_MM2 = 1000.0  # cavities (lungs) are larger than arm-to-trunk gaps

SPREAD_STEPS = 4

# The measurements' parts, on the pooled masks of a label map.
ARM_SEPARATION_MM = 6.0  # bridges thinner than twice this between arm and trunk are cut
MIN_BODY_PART_CM2 = 1.0
LEG_MIN_AREA_CM2 = 40.0
LEG_MIN_RATIO = 0.5  # smaller leg / larger leg
LEG_MAX_THIRD_RATIO = 0.3  # a third component this large (an arm, the head) means not legs
LEG_MIN_SEPARATION_MM = 60.0
ARM_MIN_LATERAL_MM = 120.0  # an arm bone stays at least this far to the side of the spine
ARM_JUNCTION_SEARCH_MM = 80.0  # how far inward from an arm bone to look for the skin fold

_TRUNK, _LIMB = 1, 2


@dataclass(frozen=True)
class BodyMasks:
    body: Mask  # the whole patient, holes filled per slice
    trunk: Mask  # head, neck and trunk; the part the anatomy rules apply to
    limbs: Mask  # arms and legs lying apart from the trunk in a slice


@dataclass(frozen=True)
class BodyParts:
    body: Mask  # pooled (z, y, x)
    trunk: Mask  # the trunk part of each slice; empty where the legs are
    arms: Mask
    legs: Mask
    leg_split: int | None  # lowest canonical slice of the undivided trunk, None if no legs


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
    trunk = np.zeros_like(dense)
    if near_kept.any():
        rows = np.nonzero(near_kept.any(axis=(0, 2)))[0]
        cols = np.nonzero(near_kept.any(axis=(0, 1)))[0]
        box = (slice(None), slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        body[box] = fill_holes_2d(dense[box] & near_kept[box])
        trunk[box] = body[box] & (grid.expand(nearest)[box] == _TRUNK)
    return BodyMasks(body=body, trunk=trunk, limbs=body & ~trunk)


def _coarse_parts(dense: Mask, bone: Mask, pixel: PixelSpacing) -> tuple[Mask, NDArray[np.uint8]]:
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


def _fill_large_holes(mask: Mask, pixel: PixelSpacing) -> Mask:
    """Fill the lungs and other large cavities, but not the small gaps where an arm meets
    the trunk at two points: filling those would widen the neck the arm is cut at."""
    holes = fill_holes_2d(mask) & ~mask
    return mask | drop_small_components(
        holes, MIN_FILLED_HOLE_MM2 / (pixel[0] * pixel[1]), IN_PLANE
    )


def _trunk_of_slice(piece: Mask, bone: Mask, pixel: PixelSpacing) -> Mask:
    """The trunk's part of one slice of the trunk piece, arms and legs cut away."""
    labels, count = ndimage.label(piece)
    sizes = np.bincount(labels.ravel())[1:]
    order = np.argsort(sizes)[::-1]
    if count > 1 and sizes[order[1]] >= TWO_LEGS_AREA_RATIO * sizes[order[0]]:
        return np.zeros_like(piece)  # two legs side by side: no trunk in this slice
    blob = labels == order[0] + 1
    return _cut_touching_arms(blob, bone, pixel)


def _cut_touching_arms(blob: Mask, bone: Mask, pixel: PixelSpacing) -> Mask:
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


def _arm_cores(cores: NDArray[np.int32], count: int, bone: Mask, pixel: PixelSpacing) -> list[int]:
    """Labels of the cores that hold bone and lie wholly beside the largest core."""
    areas = np.bincount(cores.ravel(), minlength=count + 1) * pixel[0] * pixel[1]
    areas[0] = 0
    trunk = int(np.argmax(areas))
    has_bone = np.bincount(cores[bone], minlength=count + 1) > 0
    trunk_columns = np.nonzero((cores == trunk).any(axis=0))[0]
    return [
        label
        for label in range(1, count + 1)
        if label != trunk
        and has_bone[label]
        and areas[label] >= MIN_ARM_CORE_MM2
        and _wholly_beside(cores == label, trunk_columns)
    ]


def _follow_arms(parts: NDArray[np.uint8], pixel: PixelSpacing) -> None:
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
        if _wholly_beside(labels == label, trunk_columns):
            out |= labels == label
    return out


def _wholly_beside(part: Mask, trunk_columns: NDArray[np.intp]) -> bool:
    """Whether a part of a slice lies wholly to one side of the trunk's columns, as an arm
    beside the trunk does."""
    columns = np.nonzero(part.any(axis=0))[0]
    return bool(columns.min() > trunk_columns.max() or columns.max() < trunk_columns.min())


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


def find_body_parts(labelled: Mask, pixel: PixelSpacing) -> BodyParts:
    """Split a pooled canonical body mask (labels > 0, ``pixel`` mm) into trunk, arms and
    legs."""
    pixel_cm2 = pixel[0] * pixel[1] / 100.0
    body = fill_holes_2d(labelled, background_connectivity=IN_PLANE_8)
    body = drop_small_components(body, MIN_BODY_PART_CM2 / pixel_cm2, IN_PLANE_8)
    trunk = _largest_part_after_opening(body, pixel)
    legs_from = _leg_rows(body, pixel)
    legs = np.zeros_like(body)
    leg_split: int | None = None
    if legs_from is not None:
        legs[: legs_from + 1] = body[: legs_from + 1]
        trunk[: legs_from + 1] = False
        leg_split = legs_from + 1 if legs_from + 1 < body.shape[0] else None
    arms = body & ~trunk & ~legs
    return BodyParts(body=body, trunk=trunk, arms=arms, legs=legs, leg_split=leg_split)


def _largest_part_after_opening(body: Mask, pixel: PixelSpacing) -> Mask:
    radius = max(1, round(ARM_SEPARATION_MM / min(pixel)))
    core = largest_per_slice(ndimage.binary_erosion(body, structure=_disk_of_pixels(radius)))
    trunk = body & ndimage.binary_dilation(core, structure=_disk_of_pixels(radius + 1))
    # where erosion removed everything (a thin slice of skin), keep the largest part as is
    empty = ~core.any(axis=(1, 2))
    if empty.any():
        trunk[empty] = largest_per_slice(body[empty])
    return np.asarray(trunk)


def _disk_of_pixels(radius: int) -> Mask:
    """An in-plane disk of ``radius`` pixels, round in pixels whatever their size in mm."""
    return disk(float(radius), (1.0, 1.0))[np.newaxis]


def _leg_rows(body: Mask, pixel: PixelSpacing) -> int | None:
    """Highest canonical slice of the run of two-leg slices that starts at the scan's bottom."""
    legs_like = _two_legs_per_slice(body, pixel)
    if legs_like.size == 0 or not legs_like[0]:
        return None
    top = 0
    z = 1
    while z < legs_like.size:
        if legs_like[z]:
            top = z
        elif not (z + 1 < legs_like.size and legs_like[z + 1]):
            break  # tolerate one odd slice inside the run, not two
        z += 1
    return top


def _two_legs_per_slice(body: Mask, pixel: PixelSpacing) -> NDArray[np.bool_]:
    """Slices where the body is two large parts of similar size side by side, and little else."""
    labels, n = ndimage.label(body, structure=IN_PLANE_8)
    result = np.zeros(body.shape[0], dtype=bool)
    if n < 2:
        return result
    pixel_cm2 = pixel[0] * pixel[1] / 100.0
    areas = np.bincount(labels.ravel(), minlength=n + 1)[1:] * pixel_cm2
    x_sums = np.bincount(
        labels.ravel(),
        weights=np.broadcast_to(np.arange(body.shape[2]), body.shape).ravel(),
        minlength=n + 1,
    )[1:]
    centre_x = x_sums / np.maximum(areas / pixel_cm2, 1)
    slice_of = np.array([obj[0].start for obj in ndimage.find_objects(labels)])
    for z in np.unique(slice_of):
        parts = np.flatnonzero(slice_of == z)
        if parts.size < 2:
            continue
        order = parts[np.argsort(areas[parts])[::-1]]
        a1, a2 = areas[order[0]], areas[order[1]]
        if a2 < LEG_MIN_AREA_CM2 or a2 < LEG_MIN_RATIO * a1:
            continue
        if order.size > 2 and areas[order[2]] > LEG_MAX_THIRD_RATIO * a2:
            continue
        separation = abs(centre_x[order[0]] - centre_x[order[1]]) * pixel[1]
        result[z] = separation >= LEG_MIN_SEPARATION_MM
    return result


def arm_bones_apart(
    bone: Mask, parts: BodyParts, centre_cols: NDArray[np.float64], pixel: PixelSpacing
) -> Mask:
    """Arm bones seen apart from the trunk in some slice, where they run on inside it.

    An arm that lies apart from the trunk in a few slices and against the flank in the
    others leaves pieces of its humerus in the trunk too short to pass for an arm bone on
    their own. Followed through the arm's own slices, the bone is one piece: it is an arm
    bone wherever it lies far to the side of the body's centre (``centre_cols``, the spine's
    column of each slice), ``ARM_MIN_LATERAL_MM``, as a rib never does.
    """
    labels, n = ndimage.label(
        bone & (parts.trunk | parts.arms), structure=np.ones((3, 3, 3), dtype=bool)
    )
    if n == 0:
        return np.zeros_like(bone)
    seen_apart = np.zeros(n + 1, dtype=bool)
    seen_apart[np.unique(labels[parts.arms & bone])] = True
    seen_apart[0] = False
    if not seen_apart.any():
        return np.zeros_like(bone)
    cols = np.arange(bone.shape[2])[np.newaxis, np.newaxis, :]
    lateral_mm = np.abs(cols - centre_cols[:, np.newaxis, np.newaxis]) * pixel[1]
    near = np.zeros(n + 1, dtype=bool)
    near[np.unique(labels[(labels > 0) & (lateral_mm < ARM_MIN_LATERAL_MM)])] = True
    return np.asarray((seen_apart & ~near)[labels])


def cut_arms_at_bones(parts: BodyParts, arm_bone: Mask, pixel: PixelSpacing) -> BodyParts:
    """Move an arm that lies against the trunk out of it, in slices where its bone is seen.

    The cut runs along the column of pixels, between the arm bone's inner edge and
    ``ARM_JUNCTION_SEARCH_MM`` further in, where the body is thinnest front to back: the skin
    fold between arm and flank.
    """
    trunk = parts.trunk.copy()
    arms = parts.arms.copy()
    reach = max(1, round(ARM_JUNCTION_SEARCH_MM / pixel[1]))
    # Only where the arm's bone lies in the trunk: an arm already apart needs no cut.
    in_trunk = arm_bone & parts.trunk
    for c in np.flatnonzero(in_trunk.any(axis=(1, 2))):
        rows, cols = np.nonzero(trunk[c])
        if cols.size == 0:
            continue
        middle = float(np.median(cols))
        bone_cols = np.flatnonzero(in_trunk[c].any(axis=0))
        thickness = trunk[c].sum(axis=0)
        for side_cols, inward in (
            (bone_cols[bone_cols < middle], +1),
            (bone_cols[bone_cols > middle], -1),
        ):
            if side_cols.size == 0:
                continue
            inner = int(side_cols.max() if inward > 0 else side_cols.min())
            searched = np.arange(inner, inner + inward * (reach + 1), inward)
            searched = searched[(searched >= 0) & (searched < thickness.size)]
            cut = int(searched[np.argmin(thickness[searched])])  # first minimum from the arm
            arm = np.zeros_like(trunk[c])
            if inward > 0:
                arm[:, : cut + 1] = True
            else:
                arm[:, cut:] = True
            moved = trunk[c] & arm
            trunk[c] &= ~moved
            arms[c] |= moved
    return BodyParts(
        body=parts.body, trunk=trunk, arms=arms, legs=parts.legs, leg_split=parts.leg_split
    )
