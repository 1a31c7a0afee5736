"""Intravenous contrast painted into a real CT from its reference structures.

Turns an unenhanced (or already enhanced) scan into an arterial, portal-venous or delayed
version of itself: each enhancing structure of the reference (heart, arteries, veins,
portal vein, liver, spleen, kidneys, pancreas) is shifted so that its median reaches the
attenuation typical of that phase, keeping the scan's own noise and texture. The shift is
blurred by a fraction of a voxel so that edges show partial volume, as a real
reconstruction does. Used by the accuracy tests (the shared scans have no contrast-filled
heart) and by training augmentation.

Typical attenuations (HU) follow published multiphase CT protocols: aorta 250-400 in the
late arterial phase, 150-200 in the portal-venous phase, 100-140 at 3-5 min; liver 100-130
portal-venous; renal cortex 150-200 arterial; spleen heterogeneous in the arterial phase.
The upper systemic veins (superior vena cava, brachiocephalic veins) carry undiluted
contrast from an arm injection in the arterial phase.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi

from habitus.metrics.contrast import ContrastPhase
from habitus.segment.rules.morphology import ball
from habitus.volume import CTVolume

Mask = NDArray[np.bool_]

# TotalSegmentator v2 structure names -> the enhancement group they follow.
GROUPS: dict[str, tuple[str, ...]] = {
    "arteries": (
        "aorta", "brachiocephalic_trunk", "subclavian_artery_left", "subclavian_artery_right",
        "common_carotid_artery_left", "common_carotid_artery_right", "iliac_artery_left",
        "iliac_artery_right",
    ),
    "heart_blood": ("heart", "atrial_appendage_left"),
    "pulmonary_veins": ("pulmonary_vein",),
    "upper_veins": (
        "superior_vena_cava", "brachiocephalic_vein_left", "brachiocephalic_vein_right",
    ),
    "lower_veins": ("inferior_vena_cava", "iliac_vena_left", "iliac_vena_right"),
    "portal_vein": ("portal_vein_and_splenic_vein",),
    "liver": ("liver",),
    "spleen": ("spleen",),
    "kidneys": ("kidney_left", "kidney_right"),
    "pancreas": ("pancreas",),
}  # fmt: skip

# Target median HU per group and phase: (low, high); a painted version draws within it.
TARGET_HU: dict[ContrastPhase, dict[str, tuple[float, float]]] = {
    ContrastPhase.ARTERIAL: {
        "arteries": (250.0, 400.0),
        "heart_blood": (220.0, 380.0),
        "pulmonary_veins": (230.0, 380.0),
        "upper_veins": (300.0, 600.0),
        "lower_veins": (60.0, 110.0),
        "portal_vein": (100.0, 150.0),
        "liver": (60.0, 80.0),
        "spleen": (100.0, 160.0),
        "kidneys": (140.0, 200.0),
        "pancreas": (100.0, 140.0),
    },
    ContrastPhase.PORTAL_VENOUS: {
        "arteries": (150.0, 200.0),
        "heart_blood": (140.0, 190.0),
        "pulmonary_veins": (150.0, 200.0),
        "upper_veins": (140.0, 200.0),
        "lower_veins": (130.0, 180.0),
        "portal_vein": (160.0, 210.0),
        "liver": (100.0, 130.0),
        "spleen": (110.0, 140.0),
        "kidneys": (160.0, 210.0),
        "pancreas": (90.0, 120.0),
    },
    ContrastPhase.DELAYED: {
        "arteries": (100.0, 140.0),
        "heart_blood": (100.0, 135.0),
        "pulmonary_veins": (100.0, 140.0),
        "upper_veins": (100.0, 135.0),
        "lower_veins": (100.0, 135.0),
        "portal_vein": (100.0, 135.0),
        "liver": (85.0, 105.0),
        "spleen": (90.0, 110.0),
        "kidneys": (130.0, 170.0),
        "pancreas": (75.0, 95.0),
    },
}

# The heart label holds the myocardium as well: its outer rim enhances far less than blood.
MYOCARDIUM_MM = 6.0
MYOCARDIUM_HU = {
    ContrastPhase.ARTERIAL: (100.0, 130.0),
    ContrastPhase.PORTAL_VENOUS: (100.0, 130.0),
    ContrastPhase.DELAYED: (90.0, 115.0),
}
EDGE_BLUR_VOXELS = 0.5


@dataclass(frozen=True)
class PaintedContrast:
    """A contrast version of a scan and the median each painted group was given."""

    hu: NDArray[np.int16]
    phase: ContrastPhase
    targets: dict[str, float]  # group -> median HU painted (only groups present in the scan)


def paint_contrast(
    hu: NDArray[np.integer],
    structures: Mapping[str, Mask],
    phase: ContrastPhase,
    spacing: tuple[float, float, float],
    rng: np.random.Generator | None = None,
) -> PaintedContrast:
    """``hu`` with ``phase``'s enhancement painted into the named reference structures.

    ``structures`` maps TotalSegmentator names to masks on ``hu``'s grid; names outside
    ``GROUPS`` are ignored. Without ``rng`` every target is the middle of its range.
    ``ContrastPhase.NONE`` returns the scan unchanged.
    """
    if phase == ContrastPhase.NONE:
        return PaintedContrast(np.asarray(hu, dtype=np.int16).copy(), phase, {})
    values = np.asarray(hu, dtype=np.float32)
    shift = np.zeros(values.shape, dtype=np.float32)
    covered = np.zeros(values.shape, dtype=bool)
    targets: dict[str, float] = {}
    for group, names in GROUPS.items():
        mask = np.zeros(values.shape, dtype=bool)
        for name in names:
            if name in structures:
                mask |= structures[name] & ~covered
        if not mask.any():
            continue
        covered |= mask
        target = _draw(TARGET_HU[phase][group], rng)
        targets[group] = target
        if group == "heart_blood":
            rim = mask & ~ndi.binary_erosion(mask, ball(MYOCARDIUM_MM, spacing))
            _shift_to(shift, values, rim, _draw(MYOCARDIUM_HU[phase], rng))
            mask = mask & ~rim
        _shift_to(shift, values, mask, target)
    sigma = [EDGE_BLUR_VOXELS * min(spacing) / s for s in spacing]
    shift = ndi.gaussian_filter(shift, sigma)
    painted = np.clip(np.rint(values + shift), -1024, 3071).astype(np.int16)
    return PaintedContrast(painted, phase, targets)


def enhanced_volume(
    volume: CTVolume, structures: Mapping[str, Mask], phase: ContrastPhase, seed: int | None = None
) -> CTVolume:
    """``volume`` with ``phase``'s contrast painted into ``structures`` (masks on its grid);
    the geometry and everything else as it was. ``seed`` draws the targets within their
    ranges; without it, each is the middle of its range."""
    rng = None if seed is None else np.random.default_rng(seed)
    painted = paint_contrast(volume.hu, structures, phase, volume.geometry.spacing, rng)
    return replace(volume, hu=painted.hu)


def structure_masks(structures: NDArray[np.integer], names: Mapping[int, str]) -> dict[str, Mask]:
    """Masks of the enhancing structures present in a TotalSegmentator label map."""
    wanted = {name for group in GROUPS.values() for name in group}
    masks = {name: structures == value for value, name in names.items() if name in wanted}
    return {name: mask for name, mask in masks.items() if mask.any()}


def _shift_to(
    shift: NDArray[np.float32], values: NDArray[np.float32], mask: Mask, target: float
) -> None:
    if mask.any():
        shift[mask] = target - float(np.median(values[mask]))


def _draw(bounds: tuple[float, float], rng: np.random.Generator | None) -> float:
    low, high = bounds
    return (low + high) / 2.0 if rng is None else float(rng.uniform(low, high))
