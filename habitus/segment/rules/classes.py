"""One class per body voxel, from its attenuation and the anatomical region it lies in.

Soft tissue (above -30 HU) is skeletal muscle outside the body wall and in it, internal
organs inside it, except the muscles against the spine. Fat (-30 HU and below) is
subcutaneous outside the wall and within it (intermuscular fat counts as subcutaneous),
visceral inside the wall below the diaphragm, and subcutaneous inside the thorax
(intrathoracic fat, with the pieces of fat lying mostly in it: lungs.py). Inside the wall,
gas and the stool around it belong to the bowel. Bone, nervous system, lungs (background)
and skin are laid over that in this order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from habitus.labels import FAT_HU, Tissue
from habitus.segment.rules.body import BodyMasks
from habitus.segment.rules.lungs import AIR_HU, with_enclosed_fat
from habitus.segment.rules.morphology import Mask
from habitus.segment.rules.wall import WallRegions

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


def box_around(mask: Mask) -> Box:
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
    visceral = cavity & ~with_enclosed_fat(masks.thorax, fat & cavity & (hu >= FAT_HU[0]))

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
