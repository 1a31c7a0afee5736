"""Naming the vertebral bodies: count up from the sacrum, or down from the last rib-bearing one.

- From the sacrum: the sacrum is the highest vertebral segment below the iliac crest that is
  much wider than a lumbar body at the level of the bodies (its alae reach out to the
  sacroiliac joints). The segments above it are L5, L4, L3.
- From T12: each rib meets the vertebral column where it leaves the column region; the rib's
  head lies about ``RIB_HEAD_RISE_MM`` above that point, since the lower ribs run down and
  outward from their heads. The lowest rib head marks T12; the segments below are L1, L2, L3.

The sacral count is preferred when the two disagree (a lumbosacral transitional vertebra or
a missing 12th rib makes them differ); the disagreement is reported. The count only passes
from one segment to the next across a plausible disc: a gap longer than ``MAX_DISC_MM``
means a vertebral body was missed, and the count stops there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from habitus.anatomy.frame import AnatomicalFrame
from habitus.anatomy.skeleton import COLUMN_HALF_WIDTH_MM, Skeleton
from habitus.anatomy.spine import SpineTrack, VertebralSegment

RIB_HEAD_RISE_MM = 15.0
SACRUM_MIN_WIDTH_MM = 75.0
SACRUM_BELOW_CREST_MM = 10.0
MAX_DISC_MM = 20.0
LUMBAR_HEIGHT_MM = (15.0, 45.0)
LUMBAR = ("L1", "L2", "L3", "L4", "L5")
CONFIDENCE_AGREE = 0.9
CONFIDENCE_ONE_COUNT = 0.7
CONFIDENCE_DISAGREE = 0.4


@dataclass(frozen=True)
class Count:
    """Names of segments (by index into the spine's segments) from one counting method."""

    names: dict[int, str]
    method: str
    problem: str | None = None  # why this count could not reach L3

    def index_of(self, name: str) -> int | None:
        return next((i for i, n in self.names.items() if n == name), None)

    @property
    def l3(self) -> int | None:
        """Segment index of L3, only when the count reached it whole."""
        return self.index_of("L3") if self.problem is None else None


@dataclass(frozen=True)
class VertebraNames:
    names: dict[int, str]  # segment index -> name, from the chosen count
    l3: int | None  # segment index of L3, when found and complete
    method: str
    confidence: float
    reason: str | None  # why L3 is absent, or what lowers the confidence
    findings: list[str] = field(default_factory=list)


def name_vertebrae(
    spine: SpineTrack,
    skeleton: Skeleton,
    bone: NDArray[np.bool_],
    frame: AnatomicalFrame,
    crest_slice: int | None,
) -> VertebraNames:
    segments = spine.segments
    if not segments:
        return VertebraNames({}, None, "", 0.0, "no vertebral bodies found along the spine")
    from_sacrum = _count_from_sacrum(segments, spine, bone, frame, crest_slice)
    from_t12 = _count_from_t12(segments, spine, skeleton, frame)
    l3_sacral = from_sacrum.l3
    l3_costal = from_t12.l3
    findings: list[str] = []
    if l3_sacral is not None and l3_costal is not None:
        if l3_sacral == l3_costal:
            method = f"{from_sacrum.method}; agrees with {from_t12.method}"
            chosen = Count({**from_t12.names, **from_sacrum.names}, method)
            confidence, note = CONFIDENCE_AGREE, None
        else:
            chosen, confidence = from_sacrum, CONFIDENCE_DISAGREE
            note = (
                "counting up from the sacrum and down from the last rib-bearing vertebra "
                "disagree by one level or more (transitional vertebra or missing 12th rib?)"
            )
            findings.append(f"L3: {note}")
            method = from_sacrum.method
    elif l3_sacral is not None:
        chosen, confidence, note, method = (
            from_sacrum,
            CONFIDENCE_ONE_COUNT,
            from_t12.problem,
            from_sacrum.method,
        )
    elif l3_costal is not None:
        chosen, confidence, note, method = (
            from_t12,
            CONFIDENCE_ONE_COUNT,
            from_sacrum.problem,
            from_t12.method,
        )
    else:
        names = from_sacrum.names or from_t12.names
        reasons = "; ".join(p for p in (from_sacrum.problem, from_t12.problem) if p)
        return VertebraNames(names, None, "", 0.0, reasons or "L3 not found", findings)
    l3 = chosen.index_of("L3")
    assert l3 is not None
    height = segments[l3].height_mm(frame)
    if not LUMBAR_HEIGHT_MM[0] <= height <= LUMBAR_HEIGHT_MM[1]:
        findings.append(
            f"L3: body height {height:.0f} mm is outside the expected {LUMBAR_HEIGHT_MM} mm"
        )
        confidence = min(confidence, CONFIDENCE_DISAGREE)
    return VertebraNames(chosen.names, l3, method, confidence, note, findings)


def _count(
    segments: list[VertebralSegment],
    start: int,
    step: int,
    names: tuple[str, ...],
    frame: AnatomicalFrame,
    method: str,
    start_name: str,
) -> Count:
    """Name segments from ``start`` on, one per step, while discs look plausible."""
    named = {start: start_name}
    index = start
    for name in names:
        nxt = index + step
        if nxt < 0 or nxt >= len(segments):
            return Count(
                named,
                method,
                f"{named[index]} is the last vertebra in the scan "
                f"({'below' if step < 0 else 'above'} it lies outside the scan)",
            )
        upper, lower = (
            (segments[index], segments[nxt]) if step < 0 else (segments[nxt], segments[index])
        )
        gap = float(frame.z_mm[upper.lo] - frame.z_mm[lower.hi]) - frame.slice_interval_mm
        if gap > MAX_DISC_MM:
            return Count(
                named,
                method,
                f"a {gap:.0f} mm gap after {named[index]} suggests a "
                "vertebral body was missed; the count stops there",
            )
        named[nxt] = name
        index = nxt
    last = segments[index]
    if not last.complete:
        return Count(named, method, f"{named[index]} is cut by the edge of the scan")
    return Count(named, method)


def _count_from_sacrum(
    segments: list[VertebralSegment],
    spine: SpineTrack,
    bone: NDArray[np.bool_],
    frame: AnatomicalFrame,
    crest_slice: int | None,
) -> Count:
    method = "counted up from the sacrum"
    if crest_slice is None:
        return Count({}, method, "no iliac crest in the scan, so no sacrum to count from")
    limit = frame.z_mm[crest_slice] + SACRUM_BELOW_CREST_MM
    for index in range(len(segments) - 1, -1, -1):
        seg = segments[index]
        if frame.z_mm[seg.hi] > limit or seg.top_open:
            continue
        if _is_sacral(seg, spine, bone, frame):
            return _count(segments, index, +1, ("L5", "L4", "L3"), frame, method, "S1")
    return Count({}, method, "no sacrum found below the iliac crest")


def _is_sacral(
    seg: VertebralSegment, spine: SpineTrack, bone: NDArray[np.bool_], frame: AnatomicalFrame
) -> bool:
    """Whether bone spreads sideways from the vertebral body far beyond a lumbar body's width
    (the sacral alae) in at least half of the segment's slices."""
    widths = [_body_level_width(c, spine, bone, frame) for c in range(seg.lo, seg.hi + 1)]
    wide = sum(w >= SACRUM_MIN_WIDTH_MM for w in widths)
    return wide * 2 >= len(widths)


def _body_level_width(
    c: int, spine: SpineTrack, bone: NDArray[np.bool_], frame: AnatomicalFrame
) -> float:
    if not spine.valid[c]:
        return 0.0
    top = int(round(spine.front[c] + 0.2 * spine.depth_px))
    bottom = int(round(spine.front[c] + spine.depth_px))
    band = np.asarray(bone[c, max(top, 0) : max(bottom, top + 1)].any(axis=0), dtype=bool)
    centre = int(round(spine.x[c]))
    if not 0 <= centre < band.size or not band[centre]:
        return 0.0
    left = centre
    while left - 1 >= 0 and band[left - 1]:
        left -= 1
    right = centre
    while right + 1 < band.size and band[right + 1]:
        right += 1
    return (right - left + 1) * frame.pooled_mm[1]


def _count_from_t12(
    segments: list[VertebralSegment],
    spine: SpineTrack,
    skeleton: Skeleton,
    frame: AnatomicalFrame,
) -> Count:
    method = "counted down from T12, the lowest rib-bearing vertebra"
    ribs = skeleton.ribs
    if not ribs:
        return Count({}, method, "no ribs in the scan, so no T12 to count from")
    if any(r.touches_scan_bottom for r in ribs):
        return Count({}, method, "the ribs reach the bottom of the scan, so T12 may lie below it")
    heads = [z for r in ribs if (z := _rib_head_z(r.label, skeleton, spine, frame)) is not None]
    if not heads:
        return Count({}, method, "no rib meets the vertebral column inside the scan")
    t12 = _segment_at(segments, min(heads), frame)
    if t12 is None:
        return Count({}, method, "the lowest rib head lies outside the tracked spine")
    return _count(segments, t12, -1, ("L1", "L2", "L3"), frame, method, "T12")


def _rib_head_z(
    label: int, skeleton: Skeleton, spine: SpineTrack, frame: AnatomicalFrame
) -> float | None:
    """z of a rib's head: the highest slice where the rib leaves the column region, raised
    by the typical descent of a lower rib over that distance."""
    py, px = frame.pooled_mm
    edge = COLUMN_HALF_WIDTH_MM + 1.5 * px
    highest: int | None = None
    zs = np.flatnonzero((skeleton.labels == label).any(axis=(1, 2)))
    for c in zs:
        if not spine.valid[c]:
            continue
        rows, cols = np.nonzero(skeleton.labels[c] == label)
        near = (np.abs(cols - spine.x[c]) * px <= edge) & (rows >= spine.front[c] - 10.0 / py)
        if near.any():
            highest = int(c) if highest is None else max(highest, int(c))
    if highest is None:
        return None
    return float(frame.z_mm[highest]) + RIB_HEAD_RISE_MM


def _segment_at(segments: list[VertebralSegment], z: float, frame: AnatomicalFrame) -> int | None:
    """The segment whose body, or the disc just below it, lies at z."""
    for index, seg in enumerate(segments):
        below = segments[index - 1] if index > 0 else None
        floor = frame.z_mm[below.hi] if below is not None else frame.z_mm[seg.lo]
        if floor < z <= frame.z_mm[seg.hi] + frame.slice_interval_mm / 2 or (
            below is None and frame.z_mm[seg.lo] <= z <= frame.z_mm[seg.hi]
        ):
            return index
    return None
