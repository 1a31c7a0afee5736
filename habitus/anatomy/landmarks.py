"""find_anatomy: from a label map to landmarks, vertebrae, and the trunk mask of each slice.

Only the bone label and the body outline are used, so the landmarks do not depend on how
well the soft tissues were segmented. Definitions (DESIGN.md §2):

- lower margin of the last rib: the lowest slice holding rib bone, any rib, floating ribs
  and thin tip pieces included (``habitus.anatomy.ribs``); the report names the rib;
- upper margin of the iliac crest: the highest slice holding iliac bone, on either side;
- L3: the third lumbar vertebral body, counted (see ``habitus.anatomy.vertebrae``);
- torso: from the top of the thoracic cage and shoulder girdle down to the lowest point of
  the hip bones (the ischial tuberosities), without arms and legs.

A landmark whose structure reaches the edge of the scan is absent: its true position lies
outside the scanned range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from habitus.anatomy.frame import AnatomicalFrame
from habitus.anatomy.ribs import RibHead, TipCT, lowest_rib, rib_description, rib_heads
from habitus.anatomy.schema import Landmark, LandmarkName, Landmarks, Vertebra
from habitus.anatomy.skeleton import (
    BoneComponent,
    BoneGroup,
    Skeleton,
    body_centres,
    find_skeleton,
)
from habitus.anatomy.spine import SpineTrack, track_spine
from habitus.anatomy.vertebrae import VertebraNames, name_vertebrae, segment_at
from habitus.labels import Tissue
from habitus.segment.rules.body import (
    BodyParts,
    arm_bones_apart,
    cut_arms_at_bones,
    find_body_parts,
)
from habitus.volume import Geometry

CONFIDENCE_RIB = 0.85
CONFIDENCE_CREST_BOTH_SIDES = 0.85
CONFIDENCE_CREST_ONE_SIDE = 0.6
CONFIDENCE_TORSO = 0.8
CONFIDENCE_LEG_SPLIT = 0.5
CREST_SIDE_DIFFERENCE_MM = 20.0
CHUNK_SLICES = 64

RIB_METHOD = (
    "lowest slice with rib bone, floating ribs and thin tip pieces included: bone outside "
    "the vertebral column that runs down and outward from the spine"
)
CREST_METHOD = (
    "highest slice with iliac bone: bone beside the spine whose top lies farther from the "
    "spine than its lower part, below the ribs"
)


@dataclass(frozen=True)
class Anatomy:
    """Everything the metrics need from the anatomy, in canonical and input slice terms."""

    frame: AnatomicalFrame
    parts: BodyParts
    spine: SpineTrack
    skeleton: Skeleton
    landmarks: Landmarks

    def trunk_slice(self, c: int, full_yx: tuple[int, int]) -> NDArray[np.bool_]:
        """Trunk mask of canonical slice c at full in-plane resolution (canonical order)."""
        return self.frame.unpooled_slice(self.parts.trunk[c], full_yx)


def find_anatomy(
    labels: NDArray[np.uint8], geometry: Geometry, hu: NDArray[np.generic] | None = None
) -> Anatomy:
    """Landmarks and body parts of a label map (values of habitus.labels.Tissue).

    ``hu``, the CT on the same grid, is optional: with it, a thin rib tip the label map
    missed is followed in the CT (``habitus.anatomy.ribs``)."""
    frame = AnatomicalFrame.from_geometry(
        geometry, (labels.shape[0], labels.shape[1], labels.shape[2])
    )
    canonical = frame.canonical(labels)
    body, bone = _pooled_masks(canonical, frame)
    parts = find_body_parts(body, frame.pooled_mm)
    spine = track_spine(bone, parts.trunk, frame)
    skeleton = find_skeleton(bone, parts.trunk, spine, frame, parts.leg_split)
    arm_labels = [c.label for c in skeleton.of_group(BoneGroup.ARM)]
    _, centre_cols = body_centres(spine, parts.trunk)
    arm_bone = np.isin(skeleton.labels, arm_labels) | arm_bones_apart(
        bone, parts, centre_cols, frame.pooled_mm
    )
    if arm_bone.any():
        parts = cut_arms_at_bones(parts, arm_bone, frame.pooled_mm)

    crest, crest_slice = _iliac_crest(skeleton, spine, frame)
    heads = rib_heads(skeleton, spine, frame)
    names = name_vertebrae(spine, skeleton, bone, frame, crest_slice, heads)
    tip_ct = TipCT(frame.canonical(hu), parts.trunk) if hu is not None else None
    last_rib = _last_rib(skeleton, spine, frame, crest_slice, names, heads, tip_ct)
    l3 = _l3(names, spine, frame)
    landmarks = Landmarks(
        last_rib=last_rib,
        iliac_crest=crest,
        l3=l3,
        torso_top=_torso_top(skeleton, frame),
        torso_bottom=_torso_bottom(skeleton, parts, frame),
        vertebrae=_vertebrae(spine, names, frame),
        leg_split_slice=frame.k_of(parts.leg_split) if parts.leg_split is not None else None,
        findings=[*names.findings, *_consistency(last_rib, crest, l3)],
    )
    return Anatomy(frame=frame, parts=parts, spine=spine, skeleton=skeleton, landmarks=landmarks)


def _pooled_masks(
    canonical: NDArray[np.uint8], frame: AnatomicalFrame
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Pooled body (any label) and bone masks, built a chunk of slices at a time."""
    bodies, bones = [], []
    for start in range(0, canonical.shape[0], CHUNK_SLICES):
        chunk = canonical[start : start + CHUNK_SLICES]
        bodies.append(frame.pooled(chunk > 0))
        bones.append(frame.pooled(chunk == Tissue.BONE))
    return np.concatenate(bodies), np.concatenate(bones)


def _at(
    name: LandmarkName,
    c: int,
    frame: AnatomicalFrame,
    method: str,
    confidence: float,
    reason: str | None = None,
) -> Landmark:
    return Landmark(
        name=name,
        present=True,
        slice_index=float(frame.k_of(c)),
        z_mm=round(float(frame.z_mm[c]), 2),
        method=method,
        confidence=confidence,
        reason=reason,
    )


def _last_rib(
    skeleton: Skeleton,
    spine: SpineTrack,
    frame: AnatomicalFrame,
    crest_slice: int | None,
    names: VertebraNames,
    heads: dict[int, RibHead],
    tip_ct: TipCT | None,
) -> Landmark:
    name = LandmarkName.LAST_RIB
    lowest = lowest_rib(skeleton, spine, frame, crest_slice, tip_ct)
    if lowest is None:
        return Landmark.absent(name, "no ribs found in the trunk", RIB_METHOD)
    if lowest.slice == 0:
        return Landmark.absent(
            name,
            "the rib cage reaches the bottom of the scan: its lower margin lies below the "
            "scanned range",
            RIB_METHOD,
        )
    head_segment = {
        label: s
        for label, head in heads.items()
        if (s := segment_at(spine.segments, head.z_mm, frame)) is not None
    }
    mark = _at(name, lowest.slice, frame, RIB_METHOD, CONFIDENCE_RIB)
    structure = rib_description(lowest, heads, head_segment, names.names, names.confirmed)
    return mark.model_copy(update={"structure": structure})


def _iliac_crest(
    skeleton: Skeleton, spine: SpineTrack, frame: AnatomicalFrame
) -> tuple[Landmark, int | None]:
    name = LandmarkName.ILIAC_CREST
    pelvic = skeleton.iliac_bones
    if not pelvic:
        return Landmark.absent(name, "no iliac bone found in the trunk", CREST_METHOD), None
    top = max(p.hi for p in pelvic)
    if top == frame.n_slices - 1:
        reason = (
            "the iliac bones reach the top of the scan: their crest lies above the scanned range"
        )
        return Landmark.absent(name, reason, CREST_METHOD), None
    sides = _crest_per_side(pelvic, skeleton, spine, frame)
    if len(sides) == 2 and abs(sides[0] - sides[1]) <= CREST_SIDE_DIFFERENCE_MM:
        return _at(name, top, frame, CREST_METHOD, CONFIDENCE_CREST_BOTH_SIDES), top
    reason = (
        "only one iliac wing found"
        if len(sides) < 2
        else f"left and right crests differ by {abs(sides[0] - sides[1]):.0f} mm (tilted pelvis?)"
    )
    return _at(name, top, frame, CREST_METHOD, CONFIDENCE_CREST_ONE_SIDE, reason), top


def _crest_per_side(
    pelvic: list[BoneComponent], skeleton: Skeleton, spine: SpineTrack, frame: AnatomicalFrame
) -> list[float]:
    """z of the highest pelvic bone right and left of the spine (those seen)."""
    mask = np.isin(skeleton.labels, [p.label for p in pelvic])
    _, centre_cols = spine.filled_centres()
    if not np.isfinite(centre_cols).all():
        centre_cols = np.full(frame.n_slices, skeleton.labels.shape[2] / 2.0)
    cols = np.arange(mask.shape[2])
    right = (mask & (cols[None, None, :] < centre_cols[:, None, None])).any(axis=(1, 2))
    left = (mask & (cols[None, None, :] > centre_cols[:, None, None])).any(axis=(1, 2))
    return [float(frame.z_mm[np.flatnonzero(s).max()]) for s in (right, left) if s.any()]


def _l3(names: VertebraNames, spine: SpineTrack, frame: AnatomicalFrame) -> Landmark:
    name = LandmarkName.L3
    if names.l3 is None:
        return Landmark.absent(name, names.reason or "L3 not found", names.method)
    seg = spine.segments[names.l3]
    ks = sorted((frame.k_of(seg.lo), frame.k_of(seg.hi)))
    return Landmark(
        name=name,
        present=True,
        slice_index=float(frame.k_of_position(seg.middle)),
        z_mm=round(frame.z_at(seg.middle), 2),
        extent_slices=(ks[0], ks[1]),
        extent_z_mm=(round(float(frame.z_mm[seg.lo]), 2), round(float(frame.z_mm[seg.hi]), 2)),
        method=names.method,
        confidence=names.confidence,
        reason=names.reason,
    )


def _torso_top(skeleton: Skeleton, frame: AnatomicalFrame) -> Landmark:
    name = LandmarkName.TORSO_TOP
    method = "highest slice of the thoracic cage and shoulder girdle"
    thoracic = skeleton.of_group(BoneGroup.THORACIC)
    if not thoracic:
        return Landmark.absent(name, "no thoracic cage in the scan", method)
    top = max(c.hi for c in thoracic)
    if top == frame.n_slices - 1:
        return Landmark.absent(
            name,
            "the thoracic cage reaches the top of the scan: the shoulders lie above it",
            method,
        )
    return _at(name, top, frame, method, CONFIDENCE_TORSO)


def _torso_bottom(skeleton: Skeleton, parts: BodyParts, frame: AnatomicalFrame) -> Landmark:
    name = LandmarkName.TORSO_BOTTOM
    method = "lowest slice of the hip bones (ischial tuberosities)"
    pelvic = skeleton.pelvic_bones
    if any(p.touches_scan_bottom for p in pelvic):
        return Landmark.absent(
            name, "the pelvis reaches the bottom of the scan: its lower end lies below it", method
        )
    hip_bones = [p for p in pelvic if not p.touches_trunk_bottom]
    if hip_bones:
        return _at(name, min(p.lo for p in hip_bones), frame, method, CONFIDENCE_TORSO)
    if parts.leg_split is not None:
        reason = (
            "the hip bones could not be separated from the femurs; the torso ends where the "
            "body divides into the legs"
            if pelvic
            else "no hip bone found; the torso ends where the body divides into the legs"
        )
        return _at(
            name,
            parts.leg_split,
            frame,
            "slice where the body divides into the legs",
            CONFIDENCE_LEG_SPLIT,
            reason,
        )
    return Landmark.absent(name, "no pelvis and no legs in the scan", method)


def _vertebrae(spine: SpineTrack, names: VertebraNames, frame: AnatomicalFrame) -> list[Vertebra]:
    out: list[Vertebra] = []
    for index, seg in enumerate(spine.segments):
        ks = sorted((frame.k_of(seg.lo), frame.k_of(seg.hi)))
        out.append(
            Vertebra(
                name=names.names.get(index),
                cues=names.cues.get(index, []),
                confirmed=names.confirmed and index in names.names,
                extent_slices=(ks[0], ks[1]),
                extent_z_mm=(
                    round(float(frame.z_mm[seg.lo]), 2),
                    round(float(frame.z_mm[seg.hi]), 2),
                ),
                middle_slice=float(frame.k_of_position(seg.middle)),
                complete=seg.complete,
            )
        )
    return out


def _consistency(last_rib: Landmark, crest: Landmark, l3: Landmark) -> list[str]:
    findings: list[str] = []
    if last_rib.present and crest.present:
        assert last_rib.z_mm is not None and crest.z_mm is not None
        if crest.z_mm >= last_rib.z_mm:
            findings.append(
                f"the iliac crest (z {crest.z_mm:.0f} mm) is not below the lowest rib "
                f"(z {last_rib.z_mm:.0f} mm): no waist between them"
            )
        elif l3.present and l3.z_mm is not None and not crest.z_mm <= l3.z_mm <= last_rib.z_mm:
            findings.append(
                f"the middle of L3 (z {l3.z_mm:.0f} mm) lies outside the waist "
                f"({crest.z_mm:.0f} to {last_rib.z_mm:.0f} mm)"
            )
    return findings
