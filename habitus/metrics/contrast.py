"""Intravenous contrast: the phase a CT was acquired in, read from its aorta and liver.

The phase changes what the figures mean: enhanced blood and organs raise the attenuation of
the "internal organs" class, and muscle enhances by 5 to 20 HU, so muscle HU (myosteatosis)
is no longer comparable with unenhanced norms. The verdict comes with its evidence: each
structure looked at, its median HU and where it was measured, or why it was not found.

Typical attenuations (HU) in multiphase CT, which the rules below separate:

| phase | aorta | liver |
|---|---|---|
| unenhanced | 30-55 (blood) | 45-65 |
| arterial | 250-400 | 60-80 |
| portal venous | 150-200 | 100-130 |
| delayed (3-5 min) | 100-140, within about 50 of the liver | 85-105 |

The portal vein, spleen and kidneys are not measured yet.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, Field

from habitus.anatomy import Anatomy
from habitus.metrics.contrast_structures import Found, find_aorta, find_liver
from habitus.volume import CTVolume


class ContrastPhase(StrEnum):
    """The contrast phase of a CT, as read from the attenuation of its vessels and organs."""

    NONE = "none"  # unenhanced
    ARTERIAL = "arterial"  # aorta bright, portal vein and liver barely enhanced
    PORTAL_VENOUS = "portal_venous"  # portal vein, liver, spleen and kidneys enhanced
    DELAYED = "delayed"  # vessels fading towards the organs; contrast excreted into urine


UNKNOWN: Literal["unknown"] = "unknown"

# Aorta (blood) above this is enhanced: unenhanced blood is 30-55 HU, up to about 70 with a
# high haematocrit.
UNENHANCED_MAX_AORTA_HU = 75.0
# Arterial: the aorta far brighter than any portal-venous aorta (150-200 HU), or well above
# the liver while the liver has barely enhanced.
ARTERIAL_MIN_AORTA_HU = 220.0
ARTERIAL_MIN_AORTA_OVER_LIVER_HU = 110.0
# Delayed: the aorta has faded below its portal-venous level and towards the liver.
DELAYED_MAX_AORTA_HU = 150.0
DELAYED_MAX_AORTA_OVER_LIVER_HU = 60.0
# Without an aorta, the liver alone: unenhanced below, enhanced above.
UNENHANCED_MAX_LIVER_HU = 75.0
ENHANCED_MIN_LIVER_HU = 90.0

Structure = Literal["aorta", "liver"]


class ContrastEvidence(BaseModel):
    """One structure looked at for the phase: its attenuation and where, or why not found."""

    structure: Structure
    found: bool
    median_hu: float | None = None
    slices: tuple[int, int] | None = None  # (lowest k, highest k) of the slices measured
    z_mm: tuple[float, float] | None = None  # (inferior z, superior z)
    measured_slices: int = 0
    levels: str | None = None  # named vertebrae beside the slices measured, e.g. "T11-L1"
    detail: str  # how it was measured, or why it was not found


class ContrastAssessment(BaseModel):
    """The contrast phase with the rule that decided it and the evidence it rests on."""

    phase: ContrastPhase | Literal["unknown"]
    enhanced: bool | None  # intravenous contrast present; None when that is unknown too
    reason: str  # the rule applied, with the figures
    evidence: list[ContrastEvidence] = Field(default_factory=list)

    def median_hu(self, structure: Structure) -> float | None:
        return next((e.median_hu for e in self.evidence if e.structure == structure), None)


def assess_contrast(
    labels: NDArray[np.uint8], volume: CTVolume, anatomy: Anatomy
) -> ContrastAssessment:
    """The contrast phase of the scan from its aorta and liver (habitus.labels on its grid)."""
    aorta = find_aorta(labels, volume, anatomy)
    liver = find_liver(labels, volume, anatomy)
    phase, enhanced, reason = decide_phase(aorta.median_hu, liver.median_hu)
    if phase == UNKNOWN:
        missing = [
            f"{name}: {f.detail}" for name, f in (("aorta", aorta), ("liver", liver)) if not f.found
        ]
        reason += " (" + "; ".join(missing) + ")"
    return ContrastAssessment(
        phase=phase,
        enhanced=enhanced,
        reason=reason,
        evidence=[_evidence("aorta", aorta, anatomy), _evidence("liver", liver, anatomy)],
    )


def decide_phase(
    aorta_hu: float | None, liver_hu: float | None
) -> tuple[ContrastPhase | Literal["unknown"], bool | None, str]:
    """(phase, enhanced, the rule in words) from the aorta's and the liver's median HU."""
    if aorta_hu is None:
        return _liver_only(liver_hu)
    a = f"aorta {aorta_hu:.0f} HU"
    if aorta_hu < UNENHANCED_MAX_AORTA_HU:
        return (
            ContrastPhase.NONE,
            False,
            f"{a}: unenhanced blood (below {UNENHANCED_MAX_AORTA_HU:g})",
        )
    if aorta_hu >= ARTERIAL_MIN_AORTA_HU:
        return (
            ContrastPhase.ARTERIAL,
            True,
            f"{a}: arterial enhancement (from {ARTERIAL_MIN_AORTA_HU:g})"
            + ("" if liver_hu is None else f", liver {liver_hu:.0f} HU"),
        )
    if liver_hu is None:
        if aorta_hu >= DELAYED_MAX_AORTA_HU:
            return (
                ContrastPhase.PORTAL_VENOUS,
                True,
                f"{a}: portal-venous level ({DELAYED_MAX_AORTA_HU:g} to "
                f"{ARTERIAL_MIN_AORTA_HU:g}); no liver to compare with",
            )
        return (
            UNKNOWN,
            True,
            f"{a}: enhanced, but without the liver portal-venous and delayed phases "
            "cannot be told apart",
        )
    gap = aorta_hu - liver_hu
    pair = f"{a}, liver {liver_hu:.0f} HU"
    if gap >= ARTERIAL_MIN_AORTA_OVER_LIVER_HU:
        return (
            ContrastPhase.ARTERIAL,
            True,
            f"{pair}: the aorta {gap:.0f} HU above the barely enhanced liver (arterial from "
            f"{ARTERIAL_MIN_AORTA_OVER_LIVER_HU:g})",
        )
    if aorta_hu < DELAYED_MAX_AORTA_HU and gap < DELAYED_MAX_AORTA_OVER_LIVER_HU:
        return (
            ContrastPhase.DELAYED,
            True,
            f"{pair}: the aorta below {DELAYED_MAX_AORTA_HU:g} HU and within "
            f"{DELAYED_MAX_AORTA_OVER_LIVER_HU:g} HU of the liver (contrast washing out)",
        )
    return (
        ContrastPhase.PORTAL_VENOUS,
        True,
        f"{pair}: aorta and liver both enhanced, the aorta {gap:.0f} HU above the liver",
    )


def _liver_only(
    liver_hu: float | None,
) -> tuple[ContrastPhase | Literal["unknown"], bool | None, str]:
    """No aorta found beside the spine. An enhanced aorta stands out from everything around it,
    so with the liver in the scan (and so the aorta's level) an unenhanced liver means no
    contrast; an enhanced liver means contrast, phase unknown."""
    if liver_hu is None:
        return UNKNOWN, None, "neither the aorta nor the liver was found"
    li = f"no aorta found, liver {liver_hu:.0f} HU"
    if liver_hu < UNENHANCED_MAX_LIVER_HU:
        return (
            ContrastPhase.NONE,
            False,
            f"{li}: unenhanced liver (below {UNENHANCED_MAX_LIVER_HU:g}) and no bright lumen "
            "beside the spine",
        )
    if liver_hu >= ENHANCED_MIN_LIVER_HU:
        return (
            UNKNOWN,
            True,
            f"{li}: enhanced liver (from {ENHANCED_MIN_LIVER_HU:g}), phase unknown",
        )
    return UNKNOWN, None, f"{li}: between unenhanced and enhanced"


def _evidence(structure: Structure, found: Found, anatomy: Anatomy) -> ContrastEvidence:
    if not found.found or not found.slices:
        return ContrastEvidence(structure=structure, found=False, detail=found.detail)
    frame = anatomy.frame
    ks = sorted(frame.k_of(c) for c in found.slices)
    z = sorted(float(frame.z_mm[c]) for c in found.slices)
    return ContrastEvidence(
        structure=structure,
        found=True,
        median_hu=found.median_hu,
        slices=(ks[0], ks[-1]),
        z_mm=(round(z[0], 1), round(z[-1], 1)),
        measured_slices=len(found.slices),
        levels=_levels(ks, anatomy),
        detail=found.detail,
    )


def _levels(ks: list[int], anatomy: Anatomy) -> str | None:
    """The named vertebrae whose bodies overlap the slices measured: "T11-L1", or None."""
    named = [
        v.name
        for v in anatomy.landmarks.vertebrae  # inferior to superior
        if v.name and any(v.extent_slices[0] <= k <= v.extent_slices[1] for k in ks)
    ]
    if not named:
        return None
    return named[0] if len(named) == 1 else f"{named[-1]}-{named[0]}"
