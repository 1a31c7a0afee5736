"""The rule-based segmenter: attenuation thresholds placed by anatomy, no trained model.

It is the fallback when no network is available and the teacher of the network's first
training labels. Steps run on a canonical (superior, posterior, left) view of the volume and
the labels are mapped back onto the input grid.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from habitus.errors import InputRefused
from habitus.labels import FAT_HU
from habitus.progress import StepCallback
from habitus.segment.base import ModelInfo
from habitus.segment.orientation import CanonicalFrame
from habitus.segment.rules.body import BodyMasks, body_masks
from habitus.segment.rules.bone import (
    complete_bone,
    costal_cartilage,
    drop_calcifications,
    fatty_marrow,
    seed_bone,
)
from habitus.segment.rules.classes import TissueMasks, assign_labels, box_around
from habitus.segment.rules.cns import cns_mask
from habitus.segment.rules.enhanced import enhanced_pools, enhanced_vessels
from habitus.segment.rules.lungs import bowel_content, lung_masks
from habitus.segment.rules.morphology import dilate_2d
from habitus.segment.rules.organs import paravertebral_muscle, paravertebral_zone
from habitus.segment.rules.pelvis import iliacus_muscle, pelvic_bounds
from habitus.segment.rules.skin import skin_mask
from habitus.segment.rules.spine import find_spine
from habitus.segment.rules.vessels import plaque_on_pools, vessel_wall
from habitus.segment.rules.wall import wall_regions
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
    box = box_around(full_body.body)
    hu = hu[box]
    body = BodyMasks(
        body=full_body.body[box], trunk=full_body.trunk[box], limbs=full_body.limbs[box]
    )
    skin = skin_mask(body.body, spacing, hu)
    report("body")
    lungs = lung_masks(hu, body.trunk, spacing)
    report("lungs")
    # Enhanced blood and organs read as dense as bone: they are found first and kept out.
    pools = enhanced_pools(hu, body.trunk, spacing)
    seeds = seed_bone(hu, body.body, spacing, pools)
    report("bone")
    wall = wall_regions(hu, body.trunk, skin, seeds, spacing)
    # Thinner enhanced vessels (iliac) are told from ribs, as thick, by lying inside the wall.
    pools |= enhanced_vessels(hu, wall.cavity & ~lungs.lungs, spacing)
    seeds = drop_calcifications(seeds & ~pools, wall.cavity, spacing)
    bones = complete_bone(hu, seeds, body.body, body.trunk, spacing, pools)
    spine = find_spine(bones.bone, body.trunk, pixel)
    # A calcified aorta joined to the spine is vessel, not bone; without it the spine is
    # found again, since the front of the vertebral bodies is measured from the bone.
    calcified_wall = vessel_wall(bones.bone, spine, pixel)
    calcified_wall |= plaque_on_pools(bones.bone, pools, wall.cavity, pixel)
    if calcified_wall.any():
        bones = replace(bones, bone=bones.bone & ~calcified_wall)
        spine = find_spine(bones.bone, body.trunk, pixel)
    # In the pelvis the cavity lies within the ring of bone: what lies outside it is wall.
    wall = wall.confined_to(pelvic_bounds(bones.bone, spine, spacing))
    # Costal cartilage lies in the chest wall and against its inner surface.
    chest_wall = dilate_2d(wall.ring, CARTILAGE_BEYOND_WALL_MM, pixel, within=wall.cavity)
    cartilage = costal_cartilage(hu, chest_wall & ~lungs.lungs, bones.bone, spacing, pools)
    report("wall")
    cns = cns_mask(hu, bones.open_holes, bones.bone, spine, spacing)
    marrow = fatty_marrow(bones.open_holes & ~cns, pixel)
    report("cns")
    zone = np.where(wall.cavity, paravertebral_zone(hu.shape, spine, spacing), 0).astype(np.uint8)
    all_bone = bones.bone | cartilage | marrow
    soft = body.trunk & (hu > FAT_HU[1]) & ~all_bone & ~cns
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
        spine_muscle=paravertebral_muscle(
            soft & wall.cavity, hu, all_bone, zone, wall.ring, spine, spacing
        )
        | iliacus_muscle(soft & wall.cavity, hu, bones.bone, spine, spacing),
        bowel_content=bowel_content(hu, wall.cavity & ~lungs.lungs, spacing),
    )
