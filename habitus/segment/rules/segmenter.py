"""The rule-based segmenter: attenuation thresholds placed by anatomy, no trained model.

It is the fallback when no network is available and the teacher of the network's first
training labels. Steps run on a canonical (superior, posterior, left) view of the volume and
the labels are mapped back onto the input grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from habitus.errors import InputRefused
from habitus.labels import FAT_HU, Tissue
from habitus.progress import StepCallback
from habitus.segment.base import ModelInfo
from habitus.segment.rules.body import BodyMasks, body_masks
from habitus.segment.rules.bone import (
    MAX_MARROW_MM2,
    complete_bone,
    costal_cartilage,
    drop_calcifications,
    enhancement_offset,
    seed_bone,
)
from habitus.segment.rules.cns import cns_mask
from habitus.segment.rules.frame import CanonicalFrame
from habitus.segment.rules.lungs import AIR_HU, bowel_content, lung_masks
from habitus.segment.rules.morphology import IN_PLANE, Mask, dilate_2d
from habitus.segment.rules.organs import paravertebral_muscle, paravertebral_zone
from habitus.segment.rules.skin import skin_mask
from habitus.segment.rules.spine import find_spine
from habitus.segment.rules.wall import WallRegions, wall_regions
from habitus.volume import CTVolume

RULES_VERSION = "0.1.0"
CARTILAGE_BEYOND_WALL_MM = 10.0

# Share of the work done after each step, for progress reports.
_PROGRESS = {
    "body": 0.15,
    "lungs": 0.25,
    "bone": 0.35,
    "wall": 0.75,
    "cns": 0.85,
    "labels": 1.0,
}


Box = tuple[slice, slice, slice]
BOX_MARGIN = 2  # voxels kept around the body in each slice


@dataclass(frozen=True)
class TissueMasks:
    """The anatomy every label decision is made from, on the canonical grid.

    The masks cover ``box``, the part of the canonical volume around the body; everything
    outside it is background.
    """

    box: Box
    body: BodyMasks
    skin: Mask
    lungs: Mask
    thorax: Mask
    bone: Mask
    cns: Mask
    wall: WallRegions
    paravertebral: NDArray[np.uint8]  # the zone against the spine inside the wall (organs.py)
    spine_muscle: Mask  # soft tissue of that zone that is muscle, not an organ
    bowel_content: Mask  # next to gas inside the wall: stool and its partial volume


class RuleSegmenter:
    """Segmenter protocol implementation from thresholds and anatomical rules."""

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(
            model_id="habitus-rules",
            version=RULES_VERSION,
            kind="rules",
            description=(
                "Rule-based body composition: HU thresholds (muscle -29..150, fat -190..-30, "
                "bone > 250) placed by body outline, lungs, bone, body wall and spine"
            ),
        )

    def segment(self, volume: CTVolume, progress: StepCallback | None = None) -> NDArray[np.uint8]:
        """Labels (habitus.labels.Tissue values) on the grid of ``volume.hu``."""
        if volume.hu.ndim != 3 or min(volume.hu.shape) < 1:
            raise InputRefused(
                f"expected a 3D HU volume with at least one voxel per axis; found shape "
                f"{volume.hu.shape}"
            )
        frame = CanonicalFrame.of(volume.geometry)
        hu = np.ascontiguousarray(frame.to_canonical(volume.hu))
        masks = find_tissue_masks(hu, frame.spacing, progress)
        labels = assign_labels(hu, masks)
        if progress is not None:
            progress(_PROGRESS["labels"])
        return frame.from_canonical(labels)


def find_tissue_masks(
    hu: NDArray[np.int16],
    spacing: tuple[float, float, float],
    progress: StepCallback | None = None,
) -> TissueMasks:
    """Run the anatomical steps on a canonical volume."""

    def report(step: str) -> None:
        if progress is not None:
            progress(_PROGRESS[step])

    pixel = (spacing[1], spacing[2])
    full_body = body_masks(hu, spacing)
    # The air around the patient takes no further work.
    box = _box_around(full_body.body)
    hu = hu[box]
    body = BodyMasks(
        body=full_body.body[box], torso=full_body.torso[box], limbs=full_body.limbs[box]
    )
    skin = skin_mask(body.body, spacing, hu)
    report("body")
    lungs = lung_masks(hu, body.torso, spacing)
    report("lungs")
    offset = enhancement_offset(hu, body.torso)
    seeds = seed_bone(hu, body.body, spacing, offset)
    report("bone")
    wall = wall_regions(hu, body.torso, skin, seeds, spacing)
    seeds = drop_calcifications(seeds, wall.cavity, spacing)
    bones = complete_bone(hu, seeds, body.body, body.torso, spacing, offset)
    spine = find_spine(bones.bone, body.torso, pixel)
    # Costal cartilage lies in the chest wall and against its inner surface.
    chest_wall = dilate_2d(wall.ring, CARTILAGE_BEYOND_WALL_MM, pixel, within=wall.cavity)
    cartilage = costal_cartilage(hu, chest_wall & ~lungs.lungs, bones.bone, spacing, offset)
    report("wall")
    cns = cns_mask(hu, bones.open_holes, bones.bone, spine, spacing)
    marrow = _fatty_marrow(bones.open_holes & ~cns, pixel)
    report("cns")
    zone = np.where(wall.cavity, paravertebral_zone(hu.shape, spine, pixel), 0).astype(np.uint8)
    all_bone = bones.bone | cartilage | marrow
    soft = body.torso & (hu > FAT_HU[1]) & ~all_bone & ~cns
    return TissueMasks(
        box=box,
        body=body,
        skin=skin,
        lungs=lungs.lungs,
        thorax=lungs.thorax,
        bone=all_bone,
        cns=cns,
        wall=wall,
        paravertebral=zone,
        spine_muscle=paravertebral_muscle(soft & wall.cavity, zone, wall.ring, pixel),
        bowel_content=bowel_content(hu, wall.cavity & ~lungs.lungs, spacing),
    )


def _box_around(mask: Mask) -> Box:
    """In-plane bounding box of a mask over all slices, with a small margin."""
    if not mask.any():
        return (slice(0, mask.shape[0]), slice(0, 1), slice(0, 1))
    rows = np.nonzero(mask.any(axis=(0, 2)))[0]
    cols = np.nonzero(mask.any(axis=(0, 1)))[0]
    return (
        slice(0, mask.shape[0]),
        slice(max(int(rows[0]) - BOX_MARGIN, 0), int(rows[-1]) + BOX_MARGIN + 1),
        slice(max(int(cols[0]) - BOX_MARGIN, 0), int(cols[-1]) + BOX_MARGIN + 1),
    )


def _fatty_marrow(holes: Mask, pixel: tuple[float, float]) -> Mask:
    """Open holes in bone that are not nervous system and small enough to be marrow."""
    labels, count = ndimage.label(holes, structure=IN_PLANE)
    if count == 0:
        return holes
    area = np.bincount(labels.ravel()) * pixel[0] * pixel[1]
    small = area <= MAX_MARROW_MM2
    small[0] = False
    return np.asarray(small[labels])


def assign_labels(hu: NDArray[np.int16], masks: TissueMasks) -> NDArray[np.uint8]:
    """One class per body voxel of the canonical volume, from attenuation and region."""
    full = np.zeros(hu.shape, dtype=np.uint8)
    full[masks.box] = _labels_in_box(hu[masks.box], masks)
    return full


def _labels_in_box(hu: NDArray[np.int16], masks: TissueMasks) -> NDArray[np.uint8]:
    body = masks.body.body
    fat = body & (hu <= FAT_HU[1])  # fat, and the partial-volume rim of air pockets
    air = body & (hu < AIR_HU)
    soft = body & ~fat
    cavity = masks.wall.cavity
    visceral = cavity & ~masks.thorax

    labels = np.zeros(hu.shape, dtype=np.uint8)
    labels[soft] = Tissue.MUSCLE
    labels[fat] = Tissue.SF
    labels[fat & visceral] = Tissue.AVF
    labels[soft & cavity & ~masks.spine_muscle] = Tissue.IO
    labels[fat & cavity & (hu < FAT_HU[0])] = Tissue.IO  # gas and its rim in the viscera
    labels[fat & masks.bowel_content] = Tissue.IO
    labels[air & ~cavity] = Tissue.BACKGROUND  # air caught between skin folds
    labels[masks.bone] = Tissue.BONE
    labels[masks.cns] = Tissue.CNS
    labels[masks.lungs] = Tissue.BACKGROUND
    labels[masks.skin] = Tissue.SKIN
    return labels
