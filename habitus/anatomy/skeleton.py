"""Bone beside the spine: ribs, pelvis and arm bones, told apart by shape and position.

Bone within ``COLUMN_HALF_WIDTH_MM`` of the spine's centre, from just in front of the
vertebral bodies backward, is the vertebral column (with the rib heads and transverse
processes). What remains in the trunk falls into 3D connected components, each described by
its z range, volume, thickness and how its distance from the spine changes from its top to
its bottom:

- a rib starts at the spine and runs down and outward: near the spine at its top, far at its
  bottom (vote "rib");
- an iliac wing has its crest, its highest part, far out to the side and meets the sacrum
  lower down: far at its top, nearer at its bottom (vote "pelvis");
- a bone thicker than any rib (the body of the ilium, the femoral head) votes "pelvis";
- an arm bone runs down beside the trunk far from the spine over its whole length.

The pelvis starts at the highest pelvis-voting component that is not above the ribs (its top
at most ``RIB_PELVIS_OVERLAP_MM`` above the lowest rib tip); the pelvic group is that
component and every non-rib component lower down. Everything else belongs to the thoracic
cage and shoulder girdle.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi

from habitus.anatomy.frame import AnatomicalFrame
from habitus.anatomy.spine import SpineTrack
from habitus.segment.rules.body import ARM_MIN_LATERAL_MM

COLUMN_HALF_WIDTH_MM = 60.0  # rib heads, transverse processes, sacral alae near the midline
COLUMN_FRONT_MARGIN_MM = 10.0
MIN_COMPONENT_CM3 = 0.5
MIN_PELVIC_CM3 = 5.0
THICK_RADIUS_MM = 12.0  # no rib is this thick: a larger inscribed ball means another bone
ARM_MIN_RADIUS_MM = 8.0  # humerus, radius and ulna are round; a rib is flat
VOTE_MIN_EXTENT_MM = 9.0
VOTE_MIN_DIFFERENCE_MM = 10.0
RIB_PELVIS_OVERLAP_MM = 30.0
ARM_MIN_EXTENT_MM = 30.0

Vote = Literal["rib", "pelvis"] | None


class BoneGroup(StrEnum):
    THORACIC = "thoracic"  # ribs, costal cartilages, sternum, clavicles, scapulae
    PELVIC = "pelvic"  # hip bones, sacral alae, proximal femurs
    ARM = "arm"


@dataclass(frozen=True)
class BoneComponent:
    label: int
    lo: int  # lowest canonical slice
    hi: int  # highest canonical slice
    volume_cm3: float
    radius_mm: float  # radius of the largest ball inside the component
    vote: Vote
    min_lateral_mm: float  # smallest |x - spine x| over the component
    touches_scan_bottom: bool
    touches_trunk_bottom: bool  # reaches the leg split
    group: BoneGroup = BoneGroup.THORACIC

    @property
    def thick(self) -> bool:
        return self.radius_mm >= THICK_RADIUS_MM

    @property
    def is_rib(self) -> bool:
        return self.group == BoneGroup.THORACIC and self.vote == "rib" and not self.thick

    @property
    def is_pelvic_bone(self) -> bool:
        """A substantial bone of the pelvic group (hip bone, femur, sacral ala)."""
        return self.group == BoneGroup.PELVIC and self.volume_cm3 >= MIN_PELVIC_CM3

    @property
    def is_iliac(self) -> bool:
        """A pelvic-group bone shaped like a hip bone: pelvis-voting or thick. Thin upright
        bones of the group (a forearm lying against the hip) cannot carry the crest."""
        return self.is_pelvic_bone and (self.vote == "pelvis" or self.thick)


@dataclass(frozen=True)
class Skeleton:
    components: list[BoneComponent]
    labels: NDArray[np.int32]  # pooled (z, y, x) component labels of the lateral bone

    def of_group(self, group: BoneGroup) -> list[BoneComponent]:
        return [c for c in self.components if c.group == group]

    @property
    def ribs(self) -> list[BoneComponent]:
        return [c for c in self.components if c.is_rib]

    @property
    def pelvic_bones(self) -> list[BoneComponent]:
        return [c for c in self.components if c.is_pelvic_bone]

    @property
    def iliac_bones(self) -> list[BoneComponent]:
        return [c for c in self.components if c.is_iliac]


def column_mask(
    shape: tuple[int, int, int], spine: SpineTrack, frame: AnatomicalFrame
) -> NDArray[np.bool_]:
    """The vertebral column region of each slice where the spine was tracked."""
    py, px = frame.pooled_mm
    mask = np.zeros(shape, dtype=bool)
    rows = np.arange(shape[1])[:, None]
    cols = np.arange(shape[2])[None, :]
    for c in np.flatnonzero(spine.valid):
        lateral = np.abs(cols - spine.x[c]) * px <= COLUMN_HALF_WIDTH_MM
        behind_front = rows >= spine.front[c] - COLUMN_FRONT_MARGIN_MM / py
        mask[c] = lateral & behind_front
    return mask


def find_skeleton(
    bone: NDArray[np.bool_],
    trunk: NDArray[np.bool_],
    spine: SpineTrack,
    frame: AnatomicalFrame,
    leg_split: int | None,
) -> Skeleton:
    """Label and classify the bone of the trunk outside the vertebral column."""
    lateral = bone & trunk & ~column_mask(bone.shape, spine, frame)
    labels, n = ndi.label(lateral, structure=np.ones((3, 3, 3), dtype=bool))
    voxel_cm3 = frame.pooled_mm[0] * frame.pooled_mm[1] * (frame.slice_interval_mm or 1.0) / 1000
    centre_rows, centre_cols = body_centres(spine, trunk)
    components: list[BoneComponent] = []
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    for label, box in enumerate(ndi.find_objects(labels), start=1):
        if box is None or sizes[label] * voxel_cm3 < MIN_COMPONENT_CM3:
            continue
        components.append(
            _describe(
                label,
                labels[box] == label,
                box,
                sizes[label] * voxel_cm3,
                centre_rows,
                centre_cols,
                frame,
                leg_split,
            )
        )
    return Skeleton(components=_group(components, frame), labels=labels)


def body_centres(
    spine: SpineTrack, trunk: NDArray[np.bool_]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Row and column of the body's centre in each slice: the spine's, else the trunk's."""
    rows, cols = spine.filled_centres()
    if not np.isfinite(cols).all():
        rows, cols = _trunk_centres(trunk)
    return rows, cols


def _trunk_centres(trunk: NDArray[np.bool_]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    rows = np.full(trunk.shape[0], np.nan)
    cols = np.full(trunk.shape[0], np.nan)
    for c in range(trunk.shape[0]):
        r, q = np.nonzero(trunk[c])
        if r.size:
            rows[c], cols[c] = r.mean(), q.mean()
    valid = np.isfinite(rows)
    if not valid.any():
        half = (trunk.shape[1] / 2.0, trunk.shape[2] / 2.0)
        return np.full(trunk.shape[0], half[0]), np.full(trunk.shape[0], half[1])
    idx = np.flatnonzero(valid)
    z = np.arange(trunk.shape[0])
    return np.interp(z, idx, rows[idx]), np.interp(z, idx, cols[idx])


def _describe(
    label: int,
    mask: NDArray[np.bool_],
    box: tuple[slice, ...],
    volume_cm3: float,
    centre_rows: NDArray[np.float64],
    centre_cols: NDArray[np.float64],
    frame: AnatomicalFrame,
    leg_split: int | None,
) -> BoneComponent:
    py, px = frame.pooled_mm
    z0, y0, x0 = (s.start for s in box)
    distances: list[float] = []
    laterals: list[float] = []
    for dz in range(mask.shape[0]):
        rows, cols = np.nonzero(mask[dz])
        c = z0 + dz
        dy = (rows + y0 - centre_rows[c]) * py
        dx = (cols + x0 - centre_cols[c]) * px
        distances.append(float(np.sqrt(dx**2 + dy**2).min()) if rows.size else np.nan)
        laterals.append(float(np.abs(dx).min()) if rows.size else np.nan)
    lo, hi = z0, z0 + mask.shape[0] - 1
    inscribed = ndi.distance_transform_edt(
        np.pad(mask, 1), sampling=(frame.slice_interval_mm or 1.0, py, px)
    )
    return BoneComponent(
        label=label,
        lo=lo,
        hi=hi,
        volume_cm3=float(volume_cm3),
        radius_mm=float(inscribed.max()),
        vote=_vote(np.asarray(distances), frame.z_mm[lo], frame.z_mm[hi]),
        min_lateral_mm=float(np.nanmin(laterals)),
        touches_scan_bottom=lo == 0,
        touches_trunk_bottom=leg_split is not None and lo <= leg_split,
    )


def _vote(distances: NDArray[np.float64], z_lo: float, z_hi: float) -> Vote:
    """Rib if the component is nearer the spine at its top than at its bottom; pelvis if
    the other way round; None when too short or too flat to tell."""
    if distances.size < 3 or z_hi - z_lo < VOTE_MIN_EXTENT_MM:
        return None
    third = max(1, distances.size // 3)
    bottom = float(np.nanmedian(distances[:third]))
    top = float(np.nanmedian(distances[-third:]))
    if bottom - top >= VOTE_MIN_DIFFERENCE_MM:
        return "rib"
    if top - bottom >= VOTE_MIN_DIFFERENCE_MM:
        return "pelvis"
    return None


def _group(components: list[BoneComponent], frame: AnatomicalFrame) -> list[BoneComponent]:
    def z_top(c: BoneComponent) -> float:
        return float(frame.z_mm[c.hi])

    def z_bottom(c: BoneComponent) -> float:
        return float(frame.z_mm[c.lo])

    def z_centre(c: BoneComponent) -> float:
        return (z_top(c) + z_bottom(c)) / 2.0

    arms = {c.label for c in components if _is_arm_bone(c, frame)}
    rest = [c for c in components if c.label not in arms]
    rib_votes = [c for c in rest if c.vote == "rib" and not c.thick]
    lowest_rib_tip = min((z_bottom(c) for c in rib_votes), default=None)

    def pelvic_candidate(c: BoneComponent) -> bool:
        votes_pelvis = c.thick or c.vote == "pelvis" or c.touches_trunk_bottom
        if not votes_pelvis or c.volume_cm3 < MIN_PELVIC_CM3:
            return False
        return lowest_rib_tip is None or z_top(c) <= lowest_rib_tip + RIB_PELVIS_OVERLAP_MM

    start = max((c for c in rest if pelvic_candidate(c)), key=z_top, default=None)
    grouped: list[BoneComponent] = []
    for c in components:
        if c.label in arms:
            group = BoneGroup.ARM
        elif start is not None and (
            c.label == start.label or ((c.vote != "rib" or c.thick) and z_centre(c) <= z_top(start))
        ):
            group = BoneGroup.PELVIC
        else:
            group = BoneGroup.THORACIC
        grouped.append(_with_group(c, group))
    return grouped


def _is_arm_bone(c: BoneComponent, frame: AnatomicalFrame) -> bool:
    extent = float(frame.z_mm[c.hi] - frame.z_mm[c.lo])
    return (
        c.min_lateral_mm >= ARM_MIN_LATERAL_MM
        and c.radius_mm >= ARM_MIN_RADIUS_MM
        and extent >= ARM_MIN_EXTENT_MM
        and not c.touches_trunk_bottom
    )


def _with_group(c: BoneComponent, group: BoneGroup) -> BoneComponent:
    return replace(c, group=group)
