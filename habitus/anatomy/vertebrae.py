"""Naming the vertebral bodies from independent cues that must agree.

Cues (each independent of the others):

- **the sacrum** (lumbosacral junction): the highest vertebral segment below the iliac crest
  whose bone articulates with both ilia (its alae reach, or come within a few mm of, both
  iliac bones at the sacroiliac joints) is S1; counting up from it gives L5, L4, L3, ...
  Width alone is no cue: L5's transverse processes are as wide as the alae (80-95 mm) at the
  level of its pedicles, but end well short of the ilia. A segment above S1 that meets one
  ilium only, or comes close to both without meeting them, gives no sacral count.
- **the last rib**: each rib's head is placed on the spine (``habitus.anatomy.ribs``). The
  vertebra holding the lowest rib head is T12 (T12 carries the last rib pair); counting down
  from it gives L1, L2, L3, ... Where the lowest head lies above the highest body found, on
  the vertebra next above it with no room for a missed body between (T12's low-density
  marrow left out of the bone in thick slices), that highest body is L1.
- **the count between them**: with both anchors in one unbroken run of bodies, exactly five
  lumbar bodies lie between T12 and S1. Four or six (a transitional vertebra, four or six
  lumbar vertebrae, eleven or thirteen rib-bearing vertebrae) is a disagreement.
- **the iliac crest**: its highest point lies between the lower end plate of L5 and the middle
  of L3 (usually at L4 or the L4-L5 disc). This only catches gross errors: it cannot tell one
  level from the next.

A count passes from one body to the next only across a plausible disc: a gap longer than
``MAX_DISC_MM`` means a body was missed, and the count stops there. Nor does it pass through
a fragment, a body much shorter than its neighbour (``_fragments``): a body split at a false
disc, or beside two bodies joined across a missed one.

Policy (why a single count is not enough): L3 is named only when the sacral count and the
last-rib count both reach it and agree, and the iliac crest, where in the scan, is consistent.
A sacral count alone cannot see a lumbosacral transitional vertebra or a sixth lumbar vertebra
(together about one person in ten), and a consistent crest does not help, because the crest
sits at L4 or L4-L5 in either reading. A last-rib count alone cannot see eleven or thirteen
rib pairs. So with one count only (a scan starting below T12 or stopping above the sacrum),
the vertebrae are still named from that count, marked unconfirmed with the single cue that
named them, and L3 is absent with the reason. When the cues disagree, no vertebra is named:
each carries the readings of the cues, the disagreement becomes a finding (which sets
``review_required``), and L3 is absent.

Which rule was shaped on which data: the sacroiliac contact on the synthetic phantoms
(habitus/phantoms/landmark_phantom.py, and the generator's, whose L5 lies 36-43 mm short of
the ilia); the rib-head rise on habitus/phantoms/landmark_phantom.py; the T12 count on
ts-upper-abdomen (T11-L2, 3 mm) and ts-petct-dicom (T11-T12); L1 below a head above the
highest body on ts-upper-abdomen with 5 mm slices as the rule-based segmenter labels it; the
fragment rule on ts-upper-abdomen as the rule-based segmenter labels it and on the phantom
with a body's marrow cut out; the crest window and the five-lumbar rule from anatomy texts,
not from a scan (no shared scan holds the pelvis).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi

from habitus.anatomy.discs import MAX_DISC_MM, SHORT_BODY_RATIO
from habitus.anatomy.frame import AnatomicalFrame
from habitus.anatomy.ribs import RibHead, ordinal
from habitus.anatomy.skeleton import Skeleton
from habitus.anatomy.spine import SpineTrack, VertebralSegment

# The sacroiliac joint is a cleft of 2-4 mm, wider with age and disease and wider again once
# partial volume thins the cortex on both sides at 2-3 mm voxels: bone within
# SI_JOINT_GAP_MM of an ilium (edge to edge, one pooled pixel of slack) meets it, over at
# least SI_CONTACT_MIN_MM of height. L5's transverse processes end well short of the ilia
# (iliolumbar ligaments span them); bone within ILIUM_NEAR_MM of both without meeting them
# is neither reading.
SI_JOINT_GAP_MM = 6.0
SI_CONTACT_MIN_MM = 6.0
ILIUM_NEAR_MM = 15.0
SACRUM_BELOW_CREST_MM = 10.0
LUMBAR_HEIGHT_MM = (15.0, 45.0)
MAX_BODY_MM = 45.0  # no single vertebral body is taller: a fused block, or bodies joined
# bottom up, from the sacrum: S1, L5..L1, T12..T1. Cervical bodies are not named: no cue
# here reaches them reliably.
LADDER = ("S1", "L5", "L4", "L3", "L2", "L1", *(f"T{n}" for n in range(12, 0, -1)))
T12_RUNG = LADDER.index("T12")  # bodies from S1 up to T12: five lumbar between them
CONFIDENCE_AGREE = 0.9
CONFIDENCE_DOUBTFUL = 0.4
SACRAL_CUE = "sacral count"
RIB_CUE = "last-rib count"
CREST_CUE = "iliac crest"


@dataclass(frozen=True)
class Count:
    """One counting cue: the segment it anchors on and that anchor's rung in ``LADDER``."""

    cue: str
    anchor: int | None  # segment index of the anchor (S1 or T12)
    rung: int
    how: str  # how the anchor was found
    problem: str | None = None  # why there is no anchor


@dataclass(frozen=True)
class SacroiliacContact:
    """Height (mm) over which a segment's bone meets both ilia, or one only; and whether it
    comes within ``ILIUM_NEAR_MM`` of both somewhere without meeting either."""

    both_mm: float
    one_side_mm: float
    near_both: bool


@dataclass(frozen=True)
class VertebraNames:
    names: dict[int, str]  # segment index -> name; empty where the cues disagree
    cues: dict[int, list[str]]  # segment index -> the cues behind its name (or their readings)
    confirmed: bool  # two independent counts agree and the crest does not contradict them
    l3: int | None  # segment index of L3, only when confirmed and complete
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
    heads: dict[int, RibHead],
) -> VertebraNames:
    """Names of the vertebral bodies from the cues that agree (module docstring); ``heads``
    are the rib heads placed on the spine (``habitus.anatomy.ribs.rib_heads``)."""
    segments = spine.segments
    if not segments:
        return VertebraNames(
            {}, {}, False, None, "", 0.0, "no vertebral bodies found along the spine"
        )
    run = _linked_runs(segments, frame)
    sacral = _sacral_anchor(segments, spine, skeleton, bone, frame, crest_slice)
    costal = _t12_anchor(segments, spine, skeleton, frame, heads)
    readings = {c.cue: _read(c, run) for c in (sacral, costal) if c.anchor is not None}
    findings: list[str] = []

    if sacral.anchor is not None and costal.anchor is not None:
        if run[sacral.anchor] != run[costal.anchor]:
            names, cues = _merged(readings, sacral, costal, segments)
            reason = (
                "the sacral and last-rib counts are separated by a gap where a vertebral body "
                "was missed, so they cannot confirm each other"
            )
            return _unconfirmed(names, cues, reason, findings)
        # the costal count may anchor on L1 (T12 itself not found): count from T12's place
        between = costal.anchor + (T12_RUNG - costal.rung) - sacral.anchor - 1
        if between != T12_RUNG - 1:
            return _disagreement(readings, sacral, costal, between, segments, frame)
        names, cues = _merged(readings, sacral, costal, segments)
        method = (
            f"two counts agree: up from the sacrum ({sacral.how}) and down from T12 "
            f"({costal.how}), with five lumbar bodies between them"
        )
        confirmed = True
    elif sacral.anchor is not None or costal.anchor is not None:
        one, other = (sacral, costal) if sacral.anchor is not None else (costal, sacral)
        names, cues = _merged(readings, sacral, costal, segments)
        reason = (
            f"only the {one.cue} names the vertebrae ({other.problem}); one count alone "
            + (
                "cannot see a transitional or sixth lumbar vertebra"
                if one is sacral
                else "cannot see eleven or thirteen rib pairs"
            )
            + ", so L3 is not named"
        )
        l3_guess = _index_of(names, "L3")
        if l3_guess is not None:
            seg = segments[l3_guess]
            reason += (
                f" (the {one.cue} alone puts it at z {frame.z_mm[seg.lo]:.0f} to "
                f"{frame.z_mm[seg.hi]:.0f} mm)"
            )
        crest_note = _crest_check(names, segments, frame, crest_slice, cues)
        if crest_note is not None:
            findings.append(crest_note)
        return _unconfirmed(names, cues, reason, findings)
    else:
        reason = "; ".join(p for p in (sacral.problem, costal.problem) if p)
        return VertebraNames({}, {}, False, None, "", 0.0, reason or "L3 not found")

    crest_note = _crest_check(names, segments, frame, crest_slice, cues)
    if crest_note is not None:
        findings.append(crest_note)
        return _unconfirmed(names, cues, f"{crest_note}, so L3 is not named", findings)
    if crest_slice is not None and "L3" in names.values():
        method += f"; {CREST_CUE} consistent"
    l3 = _index_of(names, "L3")
    if l3 is None:
        return VertebraNames(names, cues, confirmed, None, method, 0.0, "L3 not found", findings)
    seg = segments[l3]
    if not seg.complete:
        return VertebraNames(
            names,
            cues,
            confirmed,
            None,
            method,
            0.0,
            "L3 is cut by the edge of the scan",
            findings,
        )
    confidence, note = CONFIDENCE_AGREE, None
    height = seg.height_mm(frame)
    if not LUMBAR_HEIGHT_MM[0] <= height <= LUMBAR_HEIGHT_MM[1]:
        note = f"L3: body height {height:.0f} mm is outside the expected {LUMBAR_HEIGHT_MM} mm"
        findings.append(note)
        confidence = CONFIDENCE_DOUBTFUL
    return VertebraNames(names, cues, confirmed, l3, method, confidence, note, findings)


def _unconfirmed(
    names: dict[int, str], cues: dict[int, list[str]], reason: str, findings: list[str]
) -> VertebraNames:
    return VertebraNames(names, cues, False, None, "", 0.0, reason, findings)


def _index_of(names: dict[int, str], name: str) -> int | None:
    return next((i for i, n in names.items() if n == name), None)


def _linked_runs(segments: list[VertebralSegment], frame: AnatomicalFrame) -> list[int]:
    """Run number of each segment: neighbours share a run when the gap between them is a
    plausible disc and neither is a fragment (``_fragments``)."""
    fragment = _fragments(segments, frame)
    run = [0]
    for index, (lower, upper) in enumerate(zip(segments, segments[1:], strict=False)):
        gap = float(frame.z_mm[upper.lo] - frame.z_mm[lower.hi]) - frame.slice_interval_mm
        broken = gap > MAX_DISC_MM or fragment[index] or fragment[index + 1]
        run.append(run[-1] + (1 if broken else 0))
    return run


def _fragments(segments: list[VertebralSegment], frame: AnatomicalFrame) -> list[bool]:
    """Segments too short to be a vertebral body beside their neighbours: complete, and
    shorter than ``SHORT_BODY_RATIO`` of a neighbour's height (an open segment's height is a
    lower bound of its body's; a segment taller than ``MAX_BODY_MM``, a fused block such as
    the sacrum, is no measure).

    Neighbouring vertebral bodies differ in height far less. Such a short segment is a piece
    of a body split at a false disc (marrow the label map left out: its profile drops as at a
    disc), or its neighbour is two bodies joined across a missed disc; either way a count
    through it would be off by one, so a count neither passes through a fragment nor reaches
    beyond it (a fragment holding an anchor is still named: it lies within its vertebra).

    The disc choice (``habitus.anatomy.discs``) already joins such pieces where a body of
    plausible height results; a fragment here is one it could not mend (in ts-upper-abdomen
    resampled to 1 mm and 5 mm slices, as the rule-based segmenter labels it). Shaped on
    ts-upper-abdomen as that segmenter labels it at 3 mm (L1 split at mid-height into a
    12 mm piece below a 42 mm segment joining L1's upper half to T12) and on the phantom with
    the middle of one body's marrow removed (tests/anatomy/test_vertebral_naming.py)."""
    heights = [s.height_mm(frame) for s in segments]
    out: list[bool] = []
    for index, seg in enumerate(segments):
        neighbours = [heights[j] for j in (index - 1, index + 1) if 0 <= j < len(segments)]
        measures = [h for h in neighbours if h <= MAX_BODY_MM]
        out.append(seg.complete and any(heights[index] < SHORT_BODY_RATIO * h for h in measures))
    return out


def _read(count: Count, run: list[int]) -> dict[int, str]:
    """Names the count gives to the bodies of its anchor's run (from S1 up)."""
    assert count.anchor is not None
    out: dict[int, str] = {}
    for index, r in enumerate(run):
        rung = count.rung + index - count.anchor
        if r == run[count.anchor] and 0 <= rung < len(LADDER):
            out[index] = LADDER[rung]
    return out


def _cue_text(count: Count, index: int) -> str:
    assert count.anchor is not None
    steps = index - count.anchor
    anchor = LADDER[count.rung]
    if steps == 0:
        return f"{anchor}: {count.how} ({count.cue})"
    where = "above" if steps > 0 else "below"
    return f"{ordinal(abs(steps))} body {where} {anchor} ({count.cue})"


def _merged(
    readings: dict[str, dict[int, str]],
    sacral: Count,
    costal: Count,
    segments: list[VertebralSegment],
) -> tuple[dict[int, str], dict[int, list[str]]]:
    """Names of the counts that do not contradict one another, with their cues. Called only
    when the counts agree or cannot be compared; a name given twice is dropped."""
    names: dict[int, str] = {}
    cues: dict[int, list[str]] = {}
    for count in (sacral, costal):
        for index, name in readings.get(count.cue, {}).items():
            names[index] = name
            cues.setdefault(index, []).append(_cue_text(count, index))
    seen = [n for n in names.values()]
    clash = {n for n in seen if seen.count(n) > 1}
    order = [LADDER.index(names[i]) for i in sorted(names)]
    if clash or order != sorted(order):
        names = {}
    return names, cues


def _disagreement(
    readings: dict[str, dict[int, str]],
    sacral: Count,
    costal: Count,
    between: int,
    segments: list[VertebralSegment],
    frame: AnatomicalFrame,
) -> VertebraNames:
    """No names: each body carries what each count would call it."""
    cues: dict[int, list[str]] = {}
    for count in (sacral, costal):
        for index, name in readings[count.cue].items():
            cues.setdefault(index, []).append(f"{name} by the {count.cue}")
    note = (
        f"vertebral levels: the sacral count and the last-rib count disagree, with {between} "
        "lumbar-type bodies between T12 (lowest rib head) and S1 instead of 5 (a transitional "
        "vertebra, "
        + (
            "six lumbar vertebrae or eleven rib pairs"
            if between > 5
            else "four lumbar vertebrae or thirteen rib pairs"
        )
        + "?); no vertebra is named"
    )
    return VertebraNames({}, cues, False, None, "", 0.0, f"{note}, so no L3", [note])


def _crest_check(
    names: dict[int, str],
    segments: list[VertebralSegment],
    frame: AnatomicalFrame,
    crest_slice: int | None,
    cues: dict[int, list[str]],
) -> str | None:
    """A finding when the iliac crest lies outside its usual span (L5's lower end plate to
    the middle of L3); otherwise the crest is added to the cues of L3, L4 and L5."""
    l3, l5 = _index_of(names, "L3"), _index_of(names, "L5")
    if crest_slice is None or l3 is None or l5 is None:
        return None
    crest = float(frame.z_mm[crest_slice])
    low = float(frame.z_mm[segments[l5].lo]) - frame.slice_interval_mm
    high = frame.z_at(segments[l3].middle)
    if not low <= crest <= high:
        return (
            f"vertebral levels: the iliac crest (z {crest:.0f} mm) lies "
            + ("below L5" if crest < low else "above the middle of L3")
            + f", outside its usual span (z {low:.0f} to {high:.0f} mm)"
        )
    for name in ("L3", "L4", "L5"):
        index = _index_of(names, name)
        if index is not None:
            cues.setdefault(index, []).append(
                f"{CREST_CUE} (z {crest:.0f} mm) between L5 and mid-L3, as usual"
            )
    return None


def _sacral_anchor(
    segments: list[VertebralSegment],
    spine: SpineTrack,
    skeleton: Skeleton,
    bone: NDArray[np.bool_],
    frame: AnatomicalFrame,
    crest_slice: int | None,
) -> Count:
    """S1: the highest segment below the iliac crest whose bone articulates with both ilia.
    A segment above it that meets one ilium only, or comes close to both without meeting
    them, is a transitional vertebra or a sacroiliac joint the scan cannot resolve: no count."""
    how = "the highest segment below the iliac crest articulating with both ilia"
    if crest_slice is None:
        return Count(SACRAL_CUE, None, 0, how, "no iliac crest in the scan, so no sacrum")
    iliac = np.isin(skeleton.labels, [b.label for b in skeleton.iliac_bones])
    limit = frame.z_mm[crest_slice] + SACRUM_BELOW_CREST_MM
    for index in range(len(segments) - 1, -1, -1):
        seg = segments[index]
        if frame.z_mm[seg.hi] > limit or seg.top_open:
            continue
        contact = _sacroiliac_contact(seg, spine, bone, frame, iliac)
        if contact.both_mm >= SI_CONTACT_MIN_MM:
            return Count(SACRAL_CUE, index, 0, how)
        if contact.one_side_mm >= SI_CONTACT_MIN_MM or contact.near_both:
            where = f"z {frame.z_mm[seg.lo]:.0f} to {frame.z_mm[seg.hi]:.0f} mm"
            problem = (
                f"the segment at {where} "
                + (
                    "meets one ilium only"
                    if contact.one_side_mm >= SI_CONTACT_MIN_MM
                    else f"comes within {ILIUM_NEAR_MM:.0f} mm of both ilia without meeting them"
                )
                + " (a transitional vertebra?), so the sacrum is not counted"
            )
            return Count(SACRAL_CUE, None, 0, how, problem)
    return Count(SACRAL_CUE, None, 0, how, "no sacrum found below the iliac crest")


def _t12_anchor(
    segments: list[VertebralSegment],
    spine: SpineTrack,
    skeleton: Skeleton,
    frame: AnatomicalFrame,
    heads: dict[int, RibHead],
) -> Count:
    how = "the vertebra holding the lowest rib head"

    def none(problem: str) -> Count:
        return Count(RIB_CUE, None, T12_RUNG, how, problem)

    ribs = skeleton.ribs
    if not ribs:
        return none("no ribs in the scan, so no T12")
    if any(r.touches_scan_bottom for r in ribs):
        return none("the ribs reach the bottom of the scan, so T12 may lie below it")
    if not heads:
        return none("no rib meets the vertebral column inside the scan")
    head = min(h.lowest_z_mm for h in heads.values())
    t12 = segment_at(segments, head, frame)
    if t12 is not None:
        return Count(RIB_CUE, t12, T12_RUNG, how)
    if _next_above_highest(segments, spine, frame, head):
        how = (
            "the body below the lowest rib head, which lies on the vertebra next above the "
            "highest body found"
        )
        return Count(RIB_CUE, len(segments) - 1, T12_RUNG - 1, how)
    return none("the lowest rib head lies outside the tracked spine")


def _next_above_highest(
    segments: list[VertebralSegment], spine: SpineTrack, frame: AnatomicalFrame, z: float
) -> bool:
    """Whether z lies on the vertebra next above the highest body found, a body whose bone
    the label map left too thin to be found (low-density marrow left out of a thick slice).

    By ``segment_at``'s rule a point in the disc above a body belongs to the next body up,
    so it does here when the spine is tracked from the highest body's top up to z, a disc
    was seen above that body (its top is not open), and z lies below the top of any body
    that could have been missed in between: one at least ``SHORT_BODY_RATIO`` of the
    highest body's height (neighbouring bodies differ far less), above a disc of at least
    one slice."""
    top = segments[-1]
    dz = frame.slice_interval_mm
    top_z = float(frame.z_mm[top.hi])
    if top.top_open or not top_z + dz / 2 < z <= float(frame.z_mm[-1]):
        return False
    up_to = int(np.searchsorted(frame.z_mm, z))
    if not spine.valid[top.hi : up_to + 1].all():
        return False
    return z < top_z + dz + SHORT_BODY_RATIO * top.height_mm(frame)


def _sacroiliac_contact(
    seg: VertebralSegment,
    spine: SpineTrack,
    bone: NDArray[np.bool_],
    frame: AnatomicalFrame,
    iliac: NDArray[np.bool_],
) -> SacroiliacContact:
    """How the segment's bone meets the ilia: per slice, the gap from the bone joined to the
    vertebral body (body, arch, processes or alae) to the iliac bone on each side."""
    both = one = near = 0
    for c in range(seg.lo, seg.hi + 1):
        right, left = _gaps_to_ilia(c, spine, bone, frame, iliac)
        touching = (right <= SI_JOINT_GAP_MM, left <= SI_JOINT_GAP_MM)
        both += all(touching)
        one += any(touching) and not all(touching)
        near += not any(touching) and max(right, left) <= ILIUM_NEAR_MM
    return SacroiliacContact(
        both * frame.slice_interval_mm, one * frame.slice_interval_mm, near > 0
    )


def _gaps_to_ilia(
    c: int,
    spine: SpineTrack,
    bone: NDArray[np.bool_],
    frame: AnatomicalFrame,
    iliac: NDArray[np.bool_],
) -> tuple[float, float]:
    """Gaps (mm; inf where none) from the bone joined in slice c to the vertebral body to the
    iliac bone right and left of the spine."""
    if not spine.valid[c] or not iliac[c].any():
        return np.inf, np.inf
    pieces, _ = ndi.label(bone[c] & ~iliac[c])
    top = max(int(round(spine.front[c])), 0)
    centre = int(round(spine.x[c]))
    if not 0 <= centre < bone.shape[2]:
        return np.inf, np.inf
    ids = np.unique(pieces[top : top + int(round(spine.depth_px)) + 1, centre])
    vertebra = np.isin(pieces, ids[ids > 0])
    if not vertebra.any():
        return np.inf, np.inf
    distance = ndi.distance_transform_edt(~vertebra, sampling=frame.pooled_mm)
    cols = np.arange(bone.shape[2])[None, :]
    gaps = []
    for side in (cols < centre, cols > centre):
        ilium = iliac[c] & side
        edge = float(distance[ilium].min()) - max(frame.pooled_mm) if ilium.any() else np.inf
        gaps.append(max(edge, 0.0))
    return gaps[0], gaps[1]


def segment_at(segments: list[VertebralSegment], z: float, frame: AnatomicalFrame) -> int | None:
    """The segment whose body, or the disc just below it, lies at z."""
    for index, seg in enumerate(segments):
        below = segments[index - 1] if index > 0 else None
        floor = frame.z_mm[below.hi] if below is not None else frame.z_mm[seg.lo]
        if floor < z <= frame.z_mm[seg.hi] + frame.slice_interval_mm / 2 or (
            below is None and frame.z_mm[seg.lo] <= z <= frame.z_mm[seg.hi]
        ):
            return index
    return None
