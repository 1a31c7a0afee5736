"""Bone: cortex and marrow, ribs, and the costal cartilages.

Voxels above 250 HU seed the skeleton. Partial volume makes thin cortex (ribs, a vertebral
body's rim on thick slices) read lower, so the seeds grow by up to 4 mm in the slice into
voxels above 150 HU; dense contrast in a vessel is reached only where it touches bone.
Small dense pieces inside the body wall are calcifications, not bone.

Cancellous bone can read as low as 80 HU: within two centimetres of bone it is taken down to
that level where it is grainy (trabeculae), which blood in an enhanced aorta beside the spine
is not. On the bone's outline the walk keeps only voxels that read above half way between the
bone inside and the tissue outside: below that, a voxel is mostly soft tissue that partial
volume and the nearby cortex have lifted over the threshold. With intravenous contrast the
blood and the organs read as dense as bone: the pools found by ``enhanced.enhanced_pools``
(thick, smooth regions not ringed by cortex) are kept out of every bone step, and the
thresholds stay where they are, so that a contrast scan keeps the bone an unenhanced one has.

Holes left inside bone in a slice are marrow and filled, except those that may hold
something else: a hole of soft-tissue density inside the trunk (the spinal canal, the cranial
cavity, fatty marrow) is left open for the nervous-system step to decide, a hole that is
mostly enhanced pool is blood inside a calcified vessel wall, and a hole larger than any
marrow cavity (the pelvic ring, a closed rib cage) is never filled.

Costal cartilage reads as dense soft tissue (about 100-130 HU against 30-60 HU for muscle);
it is taken where such tissue forms sizeable pieces in or against the chest wall that
continue a rib or the sternum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from habitus.labels import BONE_HU_MIN
from habitus.segment.rules.morphology import (
    IN_PLANE,
    Mask,
    dilate_2d,
    fill_holes_2d,
    local_mean_and_spread,
    mean_2d,
    odd_window,
    open_2d,
)

UNENHANCED_SOFT_HU = 40.0
CORTEX_HU = 150.0
GROW_MM = 4.0
CANCELLOUS_HU = 80.0
CANCELLOUS_REACH_MM = 20.0
MARROW_MIN_SPREAD_HU = 20.0  # trabecular bone is grainy; enhanced blood is smooth
SPREAD_WINDOW_MM = 5.0
MAX_MARROW_MM2 = 3000.0
OPEN_HOLE_MIN_MM2 = 40.0  # smaller soft holes are marrow whatever they read
OPEN_HOLE_MAX_HU = 100.0
MAX_CALCIFICATION_MM3 = 1000.0
EDGE_WINDOW_MM = 7.0  # the neighbourhood that sets the bone and soft levels at an outline
CARTILAGE_HU = 75.0
NOISE_WINDOW_MM = 2.0
CARTILAGE_OPENING_MM = 1.0
CARTILAGE_MAX_HU = BONE_HU_MIN
MIN_CARTILAGE_MM3 = 1000.0
ORGAN_EDGE_SHARE = 0.25


@dataclass(frozen=True)
class BoneMasks:
    bone: Mask  # cortex and marrow
    open_holes: Mask  # soft holes inside trunk bone (canal, cranial cavity, fatty marrow, pelvis)


def enhancement_offset(hu: NDArray[np.int16], torso: Mask) -> float:
    """How far contrast lifts the soft tissue (HU above an unenhanced ~40 HU median).

    Measured on the tissue outside the enhanced pools (muscle, mostly), it lifts the
    cancellous threshold: enhanced muscle lifts the voxels it shares with bone.
    """
    soft = torso & (hu >= 0) & (hu <= 200)
    if not soft.any():
        return 0.0
    return max(0.0, float(np.median(hu[soft])) - UNENHANCED_SOFT_HU)


def seed_bone(
    hu: NDArray[np.int16], body: Mask, spacing: tuple[float, float, float], pools: Mask
) -> Mask:
    """Voxels above 250 HU and their partial-volume rim above the cortex threshold, outside
    the enhanced blood and organs."""
    bone = body & (hu > BONE_HU_MIN) & ~pools
    cortex_like = body & (hu > CORTEX_HU) & ~pools
    return dilate_2d(bone, GROW_MM, (spacing[1], spacing[2]), within=cortex_like)


def drop_calcifications(bone: Mask, cavity: Mask, spacing: tuple[float, float, float]) -> Mask:
    """Remove small dense pieces lying inside the body wall: vessel wall plaques, stones.

    Ribs, sternum and cartilage lie in the wall; the vertebrae inside it are large pieces.
    """
    pieces, count = ndimage.label(bone, structure=np.ones((3, 3, 3), dtype=bool))
    if count == 0:
        return bone
    volume = np.bincount(pieces.ravel()) * float(np.prod(spacing))
    inside = np.bincount(pieces[cavity], minlength=count + 1)
    total = np.bincount(pieces.ravel(), minlength=count + 1)
    drop = (volume < MAX_CALCIFICATION_MM3) & (inside >= 0.9 * total)
    drop[0] = False
    return np.asarray(bone & ~drop[pieces])


def complete_bone(
    hu: NDArray[np.int16],
    bone: Mask,
    body: Mask,
    torso: Mask,
    spacing: tuple[float, float, float],
    pools: Mask,
) -> BoneMasks:
    """Add cancellous bone and fill the marrow, never into the enhanced pools."""
    pixel = (spacing[1], spacing[2])
    grainy = local_mean_and_spread(hu, SPREAD_WINDOW_MM, pixel)[1] > MARROW_MIN_SPREAD_HU
    # Soft tissue that enhances (muscle) lifts the voxels it shares with bone; the enhanced
    # blood and organs, which seldom border bone, do not count.
    lift = enhancement_offset(hu, torso & ~pools)
    cancellous = _cancellous(hu, bone, grainy & ~pools, pixel, CANCELLOUS_HU + lift) & ~bone
    rim = bone & (hu <= BONE_HU_MIN)
    weak = below_half_way(hu, bone | cancellous, pixel, among=cancellous | rim)
    bone = (bone | cancellous) & ~weak & body
    return _fill_marrow(hu, bone, torso, grainy, pools, pixel)


def below_half_way(
    hu: NDArray[np.int16], bone: Mask, pixel: tuple[float, float], among: Mask | None = None
) -> Mask:
    """Outline voxels of ``bone`` that read below half way between it and the tissue beside.

    A voxel on the outline holds bone and soft tissue in some share (partial volume); it is
    bone when bone is the larger share, that is when it reads above the midpoint of the bone
    inside and the tissue outside, each averaged over a few millimetres around it. Only the
    voxels of ``among`` (all of ``bone`` by default) are judged.
    """
    among = bone if among is None else among & bone
    out = np.zeros_like(bone)
    if not among.any():
        return out
    size = odd_window(EDGE_WINDOW_MM, pixel, minimum=3)
    # Work in the box around the voxels judged: the filters cost what the box holds.
    box = _box_around(among, (size[0] // 2, size[1] // 2))
    inside = bone[box].astype(np.float32)
    values = hu[box].astype(np.float32)
    share = mean_2d(inside, size)
    judged = among[box] & (share < 1.0 - 1e-6)
    bone_sum = mean_2d(values * inside, size)[judged]
    all_sum = mean_2d(values, size)[judged]
    share_here = share[judged]
    bone_level = bone_sum / share_here
    soft_level = (all_sum - bone_sum) / (1.0 - share_here)
    below = values[judged] < 0.5 * (bone_level + soft_level)
    region = out[box]
    region[judged] = below
    return out


def _box_around(mask: Mask, margin: tuple[int, int]) -> tuple[slice, slice, slice]:
    """Bounding box of a non-empty mask, widened in the slice plane by ``margin`` voxels."""
    ks = np.nonzero(mask.any(axis=(1, 2)))[0]
    rows = np.nonzero(mask.any(axis=(0, 2)))[0]
    cols = np.nonzero(mask.any(axis=(0, 1)))[0]
    return (
        slice(int(ks[0]), int(ks[-1]) + 1),
        slice(max(int(rows[0]) - margin[0], 0), int(rows[-1]) + margin[0] + 1),
        slice(max(int(cols[0]) - margin[1], 0), int(cols[-1]) + margin[1] + 1),
    )


def _cancellous(
    hu: NDArray[np.int16],
    bone: Mask,
    grainy: Mask,
    pixel: tuple[float, float],
    threshold: float,
) -> Mask:
    """Cancellous bone: voxels above ``threshold`` reached from bone within a short walk.

    The walk stays in the slice and in voxels above the threshold, so it fills a vertebral
    body whose rim thick slices have broken up, but stops at the muscle and fat around it.
    """
    return dilate_2d(bone, CANCELLOUS_REACH_MM, pixel, within=(hu > threshold) & grainy)


def _fill_marrow(
    hu: NDArray[np.int16],
    bone: Mask,
    torso: Mask,
    grainy: Mask,
    pools: Mask,
    pixel: tuple[float, float],
) -> BoneMasks:
    holes = fill_holes_2d(bone) & ~bone
    labels, count = ndimage.label(holes, structure=IN_PLANE)
    if count == 0:
        return BoneMasks(bone=bone, open_holes=np.zeros_like(bone))
    # Measure each hole over its own voxels only: holes are a small part of the volume.
    which = labels[holes]
    voxels = np.bincount(which, minlength=count + 1)
    area = voxels * pixel[0] * pixel[1]
    mean_hu = np.bincount(which, weights=hu[holes], minlength=count + 1) / np.maximum(voxels, 1)
    in_torso = np.bincount(which, weights=torso[holes], minlength=count + 1) > 0
    grain = np.bincount(which, weights=grainy[holes], minlength=count + 1) / np.maximum(voxels, 1)
    is_open = in_torso & (area >= OPEN_HOLE_MIN_MM2) & (mean_hu < OPEN_HOLE_MAX_HU)
    # A hole that is mostly enhanced pool is blood inside a calcified vessel wall; a smooth
    # marrow (thick slices) is no pool, being ringed by cortex or bounded by marrow.
    pooled = np.bincount(which, weights=pools[holes], minlength=count + 1) / np.maximum(voxels, 1)
    is_vessel = (area >= OPEN_HOLE_MIN_MM2) & (pooled >= 0.5) & (grain < 0.5)
    is_marrow = (area <= MAX_MARROW_MM2) & ~is_open & ~is_vessel
    is_open[0] = is_marrow[0] = False
    return BoneMasks(bone=bone | is_marrow[labels], open_holes=is_open[labels])


def costal_cartilage(
    hu: NDArray[np.int16],
    chest_wall: Mask,
    bone: Mask,
    spacing: tuple[float, float, float],
    pools: Mask,
) -> Mask:
    """Dense soft tissue in the chest wall (the ring, not the cavity) continuing a bone; an
    enhanced organ against the wall (spleen, liver) is as dense but far thicker."""
    pixel = (spacing[1], spacing[2])
    smooth = mean_2d(hu.astype(np.float32), odd_window(NOISE_WINDOW_MM, pixel))
    candidate = chest_wall & ~bone & ~pools & (smooth > CARTILAGE_HU) & (smooth < CARTILAGE_MAX_HU)
    # Thin strands (vessels, fascia) come off on fine grids; coarse voxels are left as they are.
    candidate = open_2d(candidate, CARTILAGE_OPENING_MM, pixel, at_least_one=False)
    pieces, count = ndimage.label(candidate)
    if count == 0:
        return candidate
    volume = np.bincount(pieces.ravel()) * float(np.prod(spacing))
    on_bone = np.bincount(pieces[ndimage.binary_dilation(bone) & candidate], minlength=count + 1)
    # The edge of an enhanced organ left outside its pool (the tip of the spleen) lies along
    # the organ with much of itself, more than against a bone; a cartilage continues its rib
    # and meets an organ (the liver) with one face only.
    on_pool = np.bincount(pieces[ndimage.binary_dilation(pools) & candidate], minlength=count + 1)
    size = np.bincount(pieces.ravel(), minlength=count + 1)
    organ_edge = (on_pool > on_bone) & (on_pool >= ORGAN_EDGE_SHARE * size)
    keep = (volume >= MIN_CARTILAGE_MM3) & (on_bone > 0) & ~organ_edge
    keep[0] = False
    return np.asarray(fill_holes_2d(keep[pieces]) & chest_wall)


def fatty_marrow(holes: Mask, pixel: tuple[float, float]) -> Mask:
    """Open holes in bone that are not nervous system and small enough to be marrow."""
    labels, count = ndimage.label(holes, structure=IN_PLANE)
    if count == 0:
        return holes
    area = np.bincount(labels.ravel()) * pixel[0] * pixel[1]
    small = area <= MAX_MARROW_MM2
    small[0] = False
    return np.asarray(small[labels])
