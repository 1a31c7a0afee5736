"""Slice ranges the metrics are taken over: waist, torso and the L3 slice, from the landmarks.

Ranges are kept in canonical slice order (foot to head) for the computation and turned into
input slice indices (k) for the report, with, for DICOM input, the source instance of each end
slice: a viewer shows InstanceNumber, not k.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import floor
from typing import Any

import numpy as np

from habitus.anatomy import Anatomy, Landmark
from habitus.anatomy.frame import AnatomicalFrame
from habitus.metrics.schema import Regions, SliceRange, SourceInstance
from habitus.volume import SourceSeries


@dataclass(frozen=True)
class CanonicalRange:
    lo: int  # lowest canonical slice (most inferior)
    hi: int  # highest canonical slice (most superior), inclusive

    @property
    def slices(self) -> range:
        return range(self.lo, self.hi + 1)


@dataclass(frozen=True)
class MeasuredRegions:
    waist: CanonicalRange | None
    waist_reason: str | None
    torso: CanonicalRange | None
    torso_complete: bool
    torso_top_limit: str
    torso_bottom_limit: str
    l3_slice: int | None
    l3_reason: str | None
    torso_reasons: list[str] = field(default_factory=list)

    def all_slices(self) -> set[int]:
        out: set[int] = set()
        for r in (self.waist, self.torso):
            if r is not None:
                out.update(r.slices)
        if self.l3_slice is not None:
            out.add(self.l3_slice)
        return out


def measured_regions(anatomy: Anatomy) -> MeasuredRegions:
    marks = anatomy.landmarks
    waist, waist_reason = _waist(anatomy)
    torso, complete, top_limit, bottom_limit, torso_reasons = _torso(anatomy)
    l3_slice: int | None = None
    if marks.l3.present and marks.l3.slice_index is not None:
        position = anatomy.frame.k_of_position(marks.l3.slice_index)
        l3_slice = floor(position + 0.5)
    l3_reason = None if l3_slice is not None else f"L3 not found: {marks.l3.reason}"
    return MeasuredRegions(
        waist=waist,
        waist_reason=waist_reason,
        torso=torso,
        torso_complete=complete,
        torso_top_limit=top_limit,
        torso_bottom_limit=bottom_limit,
        l3_slice=l3_slice,
        l3_reason=l3_reason,
        torso_reasons=torso_reasons,
    )


def slice_range(
    r: CanonicalRange, frame: AnatomicalFrame, source: SourceSeries | None = None
) -> SliceRange:
    (first, z_first), (last, z_last) = sorted(
        (frame.k_of(c), round(float(frame.z_mm[c]), 2)) for c in (r.lo, r.hi)
    )
    return SliceRange(
        first_slice=first,
        last_slice=last,
        slices=r.hi - r.lo + 1,
        z_mm=(round(float(frame.z_mm[r.lo]), 2), round(float(frame.z_mm[r.hi]), 2)),
        first_instance=source_instance(source, first, z_first),
        last_instance=source_instance(source, last, z_last),
    )


def source_instance(source: SourceSeries | None, k: int, z_mm: float) -> SourceInstance | None:
    """The DICOM instance slice k was read from; None for NIfTI input."""
    if source is None or not 0 <= k < len(source.headers):
        return None
    header: Any = source.headers[k]
    return SourceInstance(
        instance_number=_integer(header.get("InstanceNumber")),
        sop_instance_uid=str(header.get("SOPInstanceUID", "") or ""),
        z_mm=round(z_mm, 2),
    )


def _integer(value: object) -> int | None:
    try:
        return None if value in (None, "") else int(str(value))
    except ValueError:
        return None


def report_regions(
    regions: MeasuredRegions, anatomy: Anatomy, source: SourceSeries | None = None
) -> Regions:
    frame = anatomy.frame
    marks = anatomy.landmarks

    def k(mark: Landmark) -> int | None:
        return int(mark.slice_index) if mark.present and mark.slice_index is not None else None

    return Regions(
        waist=slice_range(regions.waist, frame, source) if regions.waist else None,
        l3_slice=frame.k_of(regions.l3_slice) if regions.l3_slice is not None else None,
        torso=slice_range(regions.torso, frame, source) if regions.torso else None,
        last_rib_slice=k(marks.last_rib),
        iliac_crest_slice=k(marks.iliac_crest),
    )


def _canonical(mark: Landmark, anatomy: Anatomy) -> int:
    assert mark.slice_index is not None
    return anatomy.frame.k_of(int(mark.slice_index))


def _waist(anatomy: Anatomy) -> tuple[CanonicalRange | None, str | None]:
    rib = anatomy.landmarks.last_rib
    crest = anatomy.landmarks.iliac_crest
    missing = [
        f"{what} is not available ({mark.reason})"
        for what, mark in (("the last rib's lower margin", rib), ("the iliac crest", crest))
        if not mark.present
    ]
    if missing:
        return None, "waist not covered: " + "; ".join(missing)
    top, bottom = _canonical(rib, anatomy), _canonical(crest, anatomy)
    if bottom >= top:
        return None, (
            f"no waist: the iliac crest (z {crest.z_mm} mm) is not below the lowest rib "
            f"(z {rib.z_mm} mm)"
        )
    return CanonicalRange(bottom, top), None


def _torso(anatomy: Anatomy) -> tuple[CanonicalRange | None, bool, str, str, list[str]]:
    marks = anatomy.landmarks
    trunk_slices = np.flatnonzero(anatomy.parts.trunk.any(axis=(1, 2)))
    if trunk_slices.size == 0:
        return None, False, "", "", ["no trunk found in the scan"]
    reasons: list[str] = []
    if marks.torso_top.present:
        hi = _canonical(marks.torso_top, anatomy)
        top_limit = f"torso top landmark: {marks.torso_top.method} (z {marks.torso_top.z_mm} mm)"
    else:
        hi = int(trunk_slices.max())
        top_limit = "top of the scanned trunk"
        reasons.append(f"torso top not in the scan ({marks.torso_top.reason})")
    if marks.torso_bottom.present:
        lo = _canonical(marks.torso_bottom, anatomy)
        bottom_limit = (
            f"torso bottom landmark: {marks.torso_bottom.method} (z {marks.torso_bottom.z_mm} mm)"
        )
    else:
        lo = int(trunk_slices.min())
        bottom_limit = "bottom of the scanned trunk"
        reasons.append(f"torso bottom not in the scan ({marks.torso_bottom.reason})")
    if lo > hi:
        return (
            None,
            False,
            top_limit,
            bottom_limit,
            [*reasons, "the torso's bottom limit lies above its top limit"],
        )
    complete = marks.torso_top.present and marks.torso_bottom.present
    return CanonicalRange(lo, hi), complete, top_limit, bottom_limit, reasons
