"""Landmarks as reported: pydantic models with slice indices of the input volume and LPS z.

Slice indices are those of the analysed volume (k, axis 0), whichever way its slices run;
ranges are given as (lowest k, highest k). z is the LPS craniocaudal coordinate in mm (head
positive); z ranges are (inferior, superior). A landmark outside the scanned range is absent,
with the reason, never extrapolated.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field


class LandmarkName(StrEnum):
    LAST_RIB = "last_rib_lower_margin"  # lowest point of the rib cage
    ILIAC_CREST = "iliac_crest_upper_margin"  # highest point of the iliac wings
    L3 = "l3_vertebra"  # third lumbar vertebral body; slice_index is its middle
    TORSO_TOP = "torso_top"  # top of the thoracic cage and shoulder girdle
    TORSO_BOTTOM = "torso_bottom"  # lowest point of the hip bones (ischial tuberosities)


class Landmark(BaseModel):
    name: LandmarkName
    present: bool
    slice_index: float | None = None  # k of the input volume; fractional for a midpoint
    z_mm: float | None = None
    extent_slices: tuple[int, int] | None = None  # (lowest k, highest k), for extended ones
    extent_z_mm: tuple[float, float] | None = None  # (inferior z, superior z)
    method: str = ""  # how it was found
    confidence: float = Field(default=0.0, ge=0.0, le=1.0)
    reason: str | None = None  # why it is absent, or what lowers the confidence
    structure: str | None = None  # which structure it was taken from, e.g. "left 11th rib"

    @classmethod
    def absent(cls, name: LandmarkName, reason: str, method: str = "") -> Landmark:
        return cls(name=name, present=False, method=method, confidence=0.0, reason=reason)


class Vertebra(BaseModel):
    """A vertebral body found along the spine, named where the cues allowed it.

    ``cues`` says what supports the name (or, when the cues disagree and no name is given,
    what each cue would call it); ``confirmed`` is true only when two independent counts
    agree on it (habitus.anatomy.vertebrae states the policy).
    """

    name: str | None  # "T12", "L3", "S1" (the sacrum's top segment) or None
    cues: list[str] = Field(default_factory=list)
    confirmed: bool = False
    extent_slices: tuple[int, int]  # (lowest k, highest k) of the body
    extent_z_mm: tuple[float, float]  # (inferior z, superior z)
    middle_slice: float  # k at the middle of the body
    complete: bool  # both end plates inside the scan


class Landmarks(BaseModel):
    last_rib: Landmark
    iliac_crest: Landmark
    l3: Landmark
    torso_top: Landmark
    torso_bottom: Landmark
    vertebrae: list[Vertebra] = Field(default_factory=list)  # inferior to superior
    leg_split_slice: int | None = None  # k of the lowest undivided trunk slice, if legs seen
    findings: list[str] = Field(default_factory=list)  # inconsistencies worth a review

    def all(self) -> list[Landmark]:
        return [self.last_rib, self.iliac_crest, self.l3, self.torso_top, self.torso_bottom]
