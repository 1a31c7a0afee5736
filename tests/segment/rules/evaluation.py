"""Agreement of a label map with the TotalSegmentator references of a real case.

The references are a silver standard, so the figures are overlaps (Dice) and coverages (the
share of a reference structure given the expected class), never exact equality.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from habitus.labels import MUSCLE_HU, Tissue
from habitus.segment.orientation import CanonicalFrame

from .realdata import Mask, RealCase

BONES = (
    "vertebrae*", "rib*", "costal_cartilages", "sternum", "humerus*", "scapula*",
    "clavicula*", "hip*", "femur*", "sacrum", "skull",
)  # fmt: skip
SOLID_ORGANS_AND_GREAT_VESSELS = (
    "liver", "spleen", "kidney_left", "kidney_right", "pancreas", "adrenal*", "gallbladder",
    "aorta", "inferior_vena_cava", "portal_vein_and_splenic_vein",
)  # fmt: skip
GREAT_VESSELS = (
    "aorta", "inferior_vena_cava", "portal_vein_and_splenic_vein", "heart",
    "atrial_appendage_left", "pulmonary_vein", "superior_vena_cava", "brachiocephalic*",
)  # fmt: skip
"""The heart chambers and great vessels: blood that contrast makes as dense as bone."""
HOLLOW_VISCERA = ("stomach", "duodenum", "small_bowel", "colon", "esophagus")
BACK_MUSCLES = ("autochthon*", "iliopsoas*")


def dice(a: Mask, b: Mask) -> float:
    total = int(a.sum()) + int(b.sum())
    return 2.0 * int((a & b).sum()) / total if total else float("nan")


def precision(predicted: Mask, reference: Mask) -> float:
    n = int(predicted.sum())
    return int((predicted & reference).sum()) / n if n else float("nan")


def coverage(labels: NDArray[np.uint8], reference: Mask, *tissues: Tissue) -> float:
    """Share of the reference voxels that carry one of the given classes."""
    n = int(reference.sum())
    return (
        float(np.isin(labels[reference], [int(t) for t in tissues]).sum() / n)
        if n
        else float("nan")
    )


def above_diaphragm(case: RealCase) -> Mask:
    """Voxels at or above the lowest reference lung voxel of their front-back column."""
    frame = CanonicalFrame.of(case.volume.geometry)
    lungs = frame.to_canonical(case.mask("lung*"))
    n = lungs.shape[0]
    has = lungs.any(axis=0)
    lowest = np.where(has, np.argmax(lungs, axis=0), n)  # axis 0 grows towards the head
    z = np.arange(n)[:, np.newaxis, np.newaxis]
    return frame.from_canonical(np.asarray(z >= lowest[np.newaxis]))


@dataclass(frozen=True)
class Figures:
    """Per-class figures; NaN where the case has no reference for it."""

    bone_dice: float
    bone_precision: float
    bone_dice_without_cartilage: float  # costal cartilage left out on both sides
    muscle_dice: float
    muscle_dice_muscle_hu: float  # reference muscle limited to -29..150 HU (DESIGN.md §2)
    sf_dice: float
    avf_dice: float
    organs_io: float  # solid organs and great vessels labelled IO
    viscera_io: float  # stomach and bowel labelled IO (gas inside them included)
    lungs_background: float
    spinal_cord_cns: float
    back_muscles_muscle: float

    def rows(self) -> list[tuple[str, float]]:
        return [
            ("bone Dice (union of reference bones)", self.bone_dice),
            ("bone precision", self.bone_precision),
            ("bone Dice, costal cartilage left out", self.bone_dice_without_cartilage),
            ("muscle Dice (tissue_types skeletal_muscle)", self.muscle_dice),
            ("muscle Dice, reference within -29..150 HU", self.muscle_dice_muscle_hu),
            ("SF Dice (tissue_types subcutaneous_fat)", self.sf_dice),
            ("AVF Dice (torso_fat below the diaphragm)", self.avf_dice),
            ("solid organs + great vessels labelled IO", self.organs_io),
            ("stomach and bowel labelled IO", self.viscera_io),
            ("lungs labelled background", self.lungs_background),
            ("spinal cord labelled CNS", self.spinal_cord_cns),
            ("autochthon + iliopsoas labelled muscle", self.back_muscles_muscle),
        ]


def figures(case: RealCase, labels: NDArray[np.uint8]) -> Figures:
    tissue = case.tissue_types
    nan = float("nan")
    avf_dice = nan
    if "torso_fat" in tissue:
        reference_avf = tissue["torso_fat"] & ~above_diaphragm(case)
        avf_dice = dice(labels == Tissue.AVF, reference_avf)
    bone, reference_bone = labels == Tissue.BONE, case.mask(*BONES)
    cartilage = case.mask("costal_cartilages")
    muscle = labels == Tissue.MUSCLE
    hu = case.volume.hu
    return Figures(
        bone_dice=dice(bone, reference_bone),
        bone_precision=precision(bone, reference_bone),
        bone_dice_without_cartilage=dice(bone & ~cartilage, reference_bone & ~cartilage),
        muscle_dice=(
            dice(muscle, tissue["skeletal_muscle"]) if "skeletal_muscle" in tissue else nan
        ),
        muscle_dice_muscle_hu=(
            dice(muscle, tissue["skeletal_muscle"] & (hu >= MUSCLE_HU[0]) & (hu <= MUSCLE_HU[1]))
            if "skeletal_muscle" in tissue
            else nan
        ),
        sf_dice=(
            dice(labels == Tissue.SF, tissue["subcutaneous_fat"])
            if "subcutaneous_fat" in tissue
            else nan
        ),
        avf_dice=avf_dice,
        organs_io=coverage(labels, case.mask(*SOLID_ORGANS_AND_GREAT_VESSELS), Tissue.IO),
        viscera_io=coverage(labels, case.mask(*HOLLOW_VISCERA), Tissue.IO),
        lungs_background=coverage(labels, case.mask("lung*", "trachea"), Tissue.BACKGROUND),
        spinal_cord_cns=coverage(labels, case.mask("spinal_cord"), Tissue.CNS),
        back_muscles_muscle=coverage(labels, case.mask(*BACK_MUSCLES), Tissue.MUSCLE),
    )
