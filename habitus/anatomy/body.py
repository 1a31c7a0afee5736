"""The body in each slice: trunk, arms and legs, on pooled canonical (z, y, x) masks.

- Body: every labelled voxel, with the cavities of each slice (lungs, airways, bowel gas)
  filled; specks under 1 cm2 are dropped.
- Arms: body components separate from the trunk in the slice, and arms that touch it only
  through a thin bridge (a morphological opening of ``ARM_SEPARATION_MM`` cuts them off).
  Arms lying broadly against the flank cannot be told apart and stay in the trunk; the
  quality checks report arms beside the torso.
- Legs: from the bottom of the scan upward, slices where the body is two large components
  of similar size side by side. The trunk ends where they join (the leg split).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi

from habitus.anatomy.frame import AnatomicalFrame

ARM_SEPARATION_MM = 6.0  # bridges thinner than twice this between arm and trunk are cut
MIN_BODY_PART_CM2 = 1.0
LEG_MIN_AREA_CM2 = 40.0
LEG_MIN_RATIO = 0.5  # smaller leg / larger leg
LEG_MAX_THIRD_RATIO = 0.3  # a third component this large (an arm, the head) means not legs
LEG_MIN_SEPARATION_MM = 60.0

# In-plane connectivity only: labelling and hole filling act slice by slice on 3D arrays.
IN_PLANE = np.zeros((3, 3, 3), dtype=bool)
IN_PLANE[1] = ndi.generate_binary_structure(2, 2)


@dataclass(frozen=True)
class BodyParts:
    body: NDArray[np.bool_]  # pooled (z, y, x)
    trunk: NDArray[np.bool_]  # the torso part of each slice; empty where the legs are
    arms: NDArray[np.bool_]
    legs: NDArray[np.bool_]
    leg_split: int | None  # lowest canonical slice of the undivided trunk, None if no legs


def find_body_parts(labelled: NDArray[np.bool_], frame: AnatomicalFrame) -> BodyParts:
    """Split the pooled body mask (labels > 0) into trunk, arms and legs."""
    pixel_cm2 = _pixel_cm2(frame)
    body = ndi.binary_fill_holes(labelled, structure=IN_PLANE)
    body = _drop_small_parts(body, MIN_BODY_PART_CM2 / pixel_cm2)
    trunk = _largest_part_after_opening(body, frame)
    legs_from = _leg_rows(body, frame)
    legs = np.zeros_like(body)
    leg_split: int | None = None
    if legs_from is not None:
        legs[: legs_from + 1] = body[: legs_from + 1]
        trunk[: legs_from + 1] = False
        leg_split = legs_from + 1 if legs_from + 1 < body.shape[0] else None
    arms = body & ~trunk & ~legs
    return BodyParts(body=body, trunk=trunk, arms=arms, legs=legs, leg_split=leg_split)


def _pixel_cm2(frame: AnatomicalFrame) -> float:
    return frame.pooled_mm[0] * frame.pooled_mm[1] / 100.0


def _disk(radius_px: int) -> NDArray[np.bool_]:
    r = np.arange(-radius_px, radius_px + 1)
    disk = (r[:, None] ** 2 + r[None, :] ** 2) <= radius_px**2
    structure = np.zeros((1, *disk.shape), dtype=bool)
    structure[0] = disk
    return structure


def _drop_small_parts(mask: NDArray[np.bool_], min_pixels: float) -> NDArray[np.bool_]:
    labels, n = ndi.label(mask, structure=IN_PLANE)
    if n == 0:
        return mask
    sizes = np.bincount(labels.ravel())
    keep = sizes >= min_pixels
    keep[0] = False
    return np.asarray(keep[labels])


def _largest_per_slice(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """The largest in-plane component of each slice."""
    labels, n = ndi.label(mask, structure=IN_PLANE)
    if n == 0:
        return np.zeros_like(mask)
    slice_of = np.array([obj[0].start for obj in ndi.find_objects(labels)])
    sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    order = np.lexsort((sizes, slice_of))  # by slice, then by size ascending
    ordered_slices = slice_of[order]
    last_of_slice = np.r_[ordered_slices[1:] != ordered_slices[:-1], True]
    keep = np.zeros(n + 1, dtype=bool)
    keep[order[last_of_slice] + 1] = True
    return np.asarray(keep[labels])


def _largest_part_after_opening(
    body: NDArray[np.bool_], frame: AnatomicalFrame
) -> NDArray[np.bool_]:
    radius = max(1, round(ARM_SEPARATION_MM / min(frame.pooled_mm)))
    disk = _disk(radius)
    core = _largest_per_slice(ndi.binary_erosion(body, structure=disk))
    trunk = body & ndi.binary_dilation(core, structure=_disk(radius + 1))
    # where erosion removed everything (a thin slice of skin), keep the largest part as is
    empty = ~core.any(axis=(1, 2))
    if empty.any():
        trunk[empty] = _largest_per_slice(body[empty])
    return np.asarray(trunk)


def _leg_rows(body: NDArray[np.bool_], frame: AnatomicalFrame) -> int | None:
    """Highest canonical slice of the run of two-leg slices that starts at the scan's bottom."""
    legs_like = _two_legs_per_slice(body, frame)
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


def _two_legs_per_slice(body: NDArray[np.bool_], frame: AnatomicalFrame) -> NDArray[np.bool_]:
    """Slices where the body is two large parts of similar size side by side, and little else."""
    labels, n = ndi.label(body, structure=IN_PLANE)
    result = np.zeros(body.shape[0], dtype=bool)
    if n < 2:
        return result
    pixel_cm2 = _pixel_cm2(frame)
    areas = np.bincount(labels.ravel(), minlength=n + 1)[1:] * pixel_cm2
    x_sums = np.bincount(
        labels.ravel(),
        weights=np.broadcast_to(np.arange(body.shape[2]), body.shape).ravel(),
        minlength=n + 1,
    )[1:]
    centre_x = x_sums / np.maximum(areas / pixel_cm2, 1)
    slice_of = np.array([obj[0].start for obj in ndi.find_objects(labels)])
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
        separation = abs(centre_x[order[0]] - centre_x[order[1]]) * frame.pooled_mm[1]
        result[z] = separation >= LEG_MIN_SEPARATION_MM
    return result


ARM_JUNCTION_SEARCH_MM = 80.0  # how far inward from an arm bone to look for the skin fold


def cut_arms_at_bones(
    parts: BodyParts, arm_bone: NDArray[np.bool_], frame: AnatomicalFrame
) -> BodyParts:
    """Move an arm that lies against the trunk out of it, in slices where its bone is seen.

    The cut runs along the column of pixels, between the arm bone's inner edge and
    ``ARM_JUNCTION_SEARCH_MM`` further in, where the body is thinnest front to back: the skin
    fold between arm and flank.
    """
    trunk = parts.trunk.copy()
    arms = parts.arms.copy()
    reach = max(1, round(ARM_JUNCTION_SEARCH_MM / frame.pooled_mm[1]))
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
