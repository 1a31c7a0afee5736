"""The ribs: their heads on the spine, their lowest point (thin tips included), which rib.

- A rib's head: the highest slice where the rib leaves the column region, raised by
  ``RIB_HEAD_RISE_MM``, the typical descent of a lower rib from its head to that point. A rib
  cut near its head keeps its neck: the small pieces of bone that continue it (``_rib_necks``).
  Where a rib's bone leaves the column in two runs of slices more than ``CONTACT_GAP_MM``
  apart, each run is a rib of its own: a rib broken into pieces all too small to be called
  a rib (the 12th, thin and oblique, at 1 mm as the rule-based segmenter labels
  ts-upper-abdomen resampled) lends its pieces to the nearest rib above, and the lower run
  is its neck; the lowest run gives the lowest head on the spine. A lower run made only of
  bone smaller than any component the skeleton describes (a sliver at the column's edge, as
  on the generator phantoms) is no rib.
- The lowest point of the rib cage is the lowest point of any rib, floating ribs included:
  the 11th often reaches lower than the 12th. At 3 mm voxels and in thick slices a rib's
  thin tip falls apart into small pieces of bone (partial volume); a small piece of bone
  outside the column within ``TIP_GAP_MM`` (15 mm, or three slice intervals if more) of a rib, or
  of a piece already taken, belongs to that rib's tip. Pelvic and arm bones, and anything
  at or below the iliac crest, are never taken.
- Where the CT is given, a tip the label map missed altogether is followed in the CT: from
  the lowest rib bone, through voxels whose in-plane mean is at least ``TIP_MIN_HU`` (bone in
  partial volume; unenhanced soft tissue stays below it), outside the column and other bone,
  for at most ``TIP_CT_MAX_MM``. A connected part reached below the labelled tip that holds
  more than ``TIP_CT_MAX_CM3`` is not a rib tip (enhanced bowel or vessel) and is not added.
- Which rib: the side from the spine's centre line, the pair by the rank of its head among
  the rib heads from the bottom (lowest pair, second-lowest...), and the number from the
  vertebra that holds the head, when the vertebrae are named.

Shaped on: the tip rule on the phantom's tapered ribs (habitus/phantoms/landmark_phantom.py) and on
ts-upper-abdomen with its bone cut at 250 HU (the 11th ribs' tips then break into pieces 13 mm
from the rest, two slices apart, as in a threshold segmentation at 3 mm); the head rise on the
phantom of habitus/phantoms/landmark_phantom.py, whose ribs descend from their heads as real lower
ribs do (on ts-upper-abdomen the lowest rib leaves the column beside the body below the one
its head meets; the generator's ribs run level from the spine to their angle, so there the
rise places the 12th rib head on T11 and the last-rib count is one level high); the neck
pieces on ts-upper-abdomen as the rule-based segmenter labels it at 3 mm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi

from habitus.anatomy.frame import AnatomicalFrame
from habitus.anatomy.skeleton import (
    COLUMN_HALF_WIDTH_MM,
    MIN_COMPONENT_CM3,
    BoneGroup,
    Skeleton,
    column_mask,
)
from habitus.anatomy.spine import SpineTrack

RIB_HEAD_RISE_MM = 15.0
# two ribs meet the column in runs of slices at least this far apart (a rib head and neck
# span 10-15 mm, one vertebra, about 25 mm, below the next); a shorter break in one run is
# partial volume
CONTACT_GAP_MM = 6.0
# a tip broken by partial volume lies this close to the rest of its rib: a thin tip that fades
# below the bone threshold over two or three 3 mm slices leaves a gap of 10 to 15 mm
TIP_GAP_MM = 15.0
TIP_GAP_SLICES = 3.0  # ... or within this many slice intervals, in thicker slices
TIP_MAX_CM3 = 2.0  # a tip piece is small; a larger bone is something else
TIP_SEARCH_BELOW_MM = 40.0
TIP_SEARCH_ABOVE_MM = 80.0
TIP_ROUNDS = 3  # a tip may break into a chain of pieces
TIP_MIN_HU = 150.0  # partial-volume bone: above unenhanced soft tissue, below cortical bone
TIP_CT_MAX_MM = 15.0
TIP_CT_MAX_CM3 = 1.0  # one rib tip below the labelled bone is small; more is something else


@dataclass(frozen=True)
class TipCT:
    """The CT, for rib tips the label map missed."""

    hu: NDArray[np.generic]  # canonical (z, y, x) CT numbers at full resolution
    trunk: NDArray[np.bool_]  # pooled trunk mask


@dataclass(frozen=True)
class RibHead:
    z_mm: float  # estimated z of the head
    single: bool  # the bone meets the column in one run of slices: one rib, not a joined cage
    lowest_z_mm: float  # the head of its lowest run of contacts (z_mm when single)


@dataclass(frozen=True)
class LowestRib:
    slice: int  # canonical slice of the lowest rib bone
    label: int  # the rib component it belongs to (a tip piece counts as its rib's)
    side: str  # "right" or "left" (the patient's)
    from_tip_piece: bool  # the lowest bone is a tip piece apart from the rib's component
    from_ct: bool  # the lowest point was followed in the CT beyond the labelled bone
    head_above_scan: bool  # the rib reaches the top of the scan, its head beyond it


def rib_heads(skeleton: Skeleton, spine: SpineTrack, frame: AnatomicalFrame) -> dict[int, RibHead]:
    """Head of every rib component that meets the vertebral column inside the scan, its
    broken neck included (``_rib_necks``)."""
    out: dict[int, RibHead] = {}
    py, px = frame.pooled_mm
    edge = COLUMN_HALF_WIDTH_MM + 1.5 * px
    owner = _rib_necks(skeleton, frame)
    voxel_cm3 = py * px * (frame.slice_interval_mm or 1.0) / 1000.0
    piece_cm3 = np.bincount(skeleton.labels.ravel()) * voxel_cm3
    gap_mm = max(CONTACT_GAP_MM, 1.5 * frame.slice_interval_mm)
    for rib in skeleton.ribs:
        contacts: list[int] = []
        pieces: list[set[int]] = []  # the bone components meeting the column, per contact
        rib_slices = np.flatnonzero((owner == rib.label).any(axis=(1, 2)))
        for c in range(int(rib_slices[0]), int(rib_slices[-1]) + 1):
            if not spine.valid[c]:
                continue
            rows, cols = np.nonzero(owner[c] == rib.label)
            near = (np.abs(cols - spine.x[c]) * px <= edge) & (rows >= spine.front[c] - 10.0 / py)
            if near.any():
                contacts.append(c)
                pieces.append(set(skeleton.labels[c][rows[near], cols[near]].tolist()))
        if contacts:
            runs = _runs(frame.z_mm[contacts], gap_mm)
            # a lower run is another rib's neck only where bone the size of a described
            # component makes it: a sliver at the column's edge is no rib
            ribs = [
                (lo, hi)
                for index, (lo, hi) in enumerate(runs)
                if index == len(runs) - 1
                or piece_cm3[sorted(set().union(*pieces[lo : hi + 1]))].sum() >= MIN_COMPONENT_CM3
            ]
            top, lowest = (float(frame.z_mm[contacts[hi]]) for _, hi in (ribs[-1], ribs[0]))
            out[rib.label] = RibHead(
                top + RIB_HEAD_RISE_MM, len(runs) == 1, lowest + RIB_HEAD_RISE_MM
            )
    return out


def _runs(z: NDArray[np.float64], gap_mm: float) -> list[tuple[int, int]]:
    """First and last index of each run of ascending ``z``, runs broken where two
    neighbours lie more than ``gap_mm`` apart, lowest run first."""
    breaks = np.flatnonzero(np.diff(z) > gap_mm)
    starts = [0, *(int(b) + 1 for b in breaks)]
    ends = [*(int(b) for b in breaks), z.size - 1]
    return list(zip(starts, ends, strict=True))


def _rib_necks(skeleton: Skeleton, frame: AnatomicalFrame) -> NDArray[np.int32]:
    """Rib labels with the small pieces of bone that continue each rib: the rib's label on
    its own voxels and on the pieces nearest to it, 0 elsewhere.

    A thin rib crossing the slices obliquely (the 11th and 12th near their heads) falls
    apart into pieces at 3 mm voxels and in thick slices, just as its tip does: a slice where
    its partial-volume CT number drops below the bone threshold cuts it. The piece nearest the
    spine then holds the rib's head. So a small piece of thoracic bone within ``TIP_GAP_MM``
    (or ``TIP_GAP_SLICES`` slice intervals) of a rib, or of a piece already taken, belongs to
    the nearest rib. Shaped on ts-upper-abdomen as segmented by the rule-based segmenter at
    3 mm (each 12th rib cut in one slice 6 to 10 cm from the midline, its neck left as a
    piece under 0.5 cm3 that meets the column)."""
    labels = skeleton.labels
    rib_labels = [r.label for r in skeleton.ribs]
    is_rib = np.isin(labels, rib_labels)
    if not rib_labels:
        return np.zeros(labels.shape, dtype=np.int32)
    pieces = _tip_pieces(labels, is_rib, skeleton, frame, None, 0)
    # every other bone competes for the pieces: a piece nearer another rib the classifier did
    # not call a rib, or any other bone, is not taken
    owner = _attach_pieces(labels, pieces, np.where(pieces, 0, labels).astype(np.int32), frame)
    return np.where(np.isin(owner, rib_labels), owner, 0).astype(np.int32)


def _attach_pieces(
    labels: NDArray[np.int32],
    pieces: NDArray[np.bool_],
    owner: NDArray[np.int32],
    frame: AnatomicalFrame,
) -> NDArray[np.int32]:
    """``owner`` (a bone label on the voxels already taken, 0 elsewhere) grown over the
    ``pieces`` (components of ``labels``) that lie within ``TIP_GAP_MM`` (or
    ``TIP_GAP_SLICES`` slice intervals) of a voxel taken, in up to ``TIP_ROUNDS`` rounds (a
    thin rib breaks into a chain of pieces): each new voxel takes the label of the nearest
    voxel already taken."""
    owner = owner.copy()
    taken = owner > 0
    dz = frame.slice_interval_mm or 1.0
    for _ in range(TIP_ROUNDS):
        if not (pieces & ~taken).any():
            break
        distance, nearest = ndi.distance_transform_edt(
            ~taken, sampling=(dz, *frame.pooled_mm), return_indices=True
        )
        near = pieces & ~taken & (distance <= max(TIP_GAP_MM, TIP_GAP_SLICES * dz))
        grown = np.isin(labels, np.unique(labels[near])) & pieces & ~taken
        if not grown.any():
            break
        owner[grown] = owner[tuple(i[grown] for i in nearest)]
        taken |= grown
    return owner


def lowest_rib(
    skeleton: Skeleton,
    spine: SpineTrack,
    frame: AnatomicalFrame,
    crest_slice: int | None,
    ct: TipCT | None = None,
) -> LowestRib | None:
    """The lowest rib bone, thin tip pieces included (and followed in the CT, if given)."""
    ribs = skeleton.ribs
    if not ribs:
        return None
    dz = frame.slice_interval_mm or 1.0
    lowest = min(r.lo for r in ribs)
    z0 = max(0, lowest - int(np.ceil(TIP_SEARCH_BELOW_MM / dz)))
    z1 = min(frame.n_slices, lowest + int(np.ceil(TIP_SEARCH_ABOVE_MM / dz)) + 1)
    labels = skeleton.labels[z0:z1]
    rib_labels = [r.label for r in ribs]
    is_rib = np.isin(labels, rib_labels)
    pieces = _tip_pieces(labels, is_rib, skeleton, frame, crest_slice, z0)
    owner = _attach_pieces(labels, pieces, np.where(is_rib, labels, 0).astype(np.int32), frame)
    taken = owner > 0
    labelled_low = int(np.flatnonzero(taken.any(axis=(1, 2)))[0])
    if ct is not None:
        taken, owner = _follow_in_ct(
            taken, owner, pieces, ct, skeleton, spine, frame, crest_slice, z0
        )
    slices = np.flatnonzero(taken.any(axis=(1, 2)))
    c_local = int(slices[0])
    rows, cols = np.nonzero(taken[c_local])
    labels_here = owner[c_local, rows, cols]
    label = int(labels_here[0])
    _, centre_cols = spine.filled_centres()
    centre = centre_cols[z0 + c_local]
    if not np.isfinite(centre):
        centre = labels.shape[2] / 2.0
    # canonical columns run from the patient's right to left
    side = "left" if float(np.mean(cols[labels_here == label])) > centre else "right"
    from_ct = c_local < labelled_low
    from_piece = not from_ct and not (labels[c_local] == owner[c_local]).any(where=taken[c_local])
    top = next(r.hi for r in ribs if r.label == label) == frame.n_slices - 1
    return LowestRib(z0 + c_local, label, side, bool(from_piece), from_ct, top)


def _follow_in_ct(
    taken: NDArray[np.bool_],
    owner: NDArray[np.int32],
    pieces: NDArray[np.bool_],
    ct: TipCT,
    skeleton: Skeleton,
    spine: SpineTrack,
    frame: AnatomicalFrame,
    crest_slice: int | None,
    z0: int,
) -> tuple[NDArray[np.bool_], NDArray[np.int32]]:
    """``taken`` grown through bone-like CT below and around the lowest labelled rib bone."""
    dz = frame.slice_interval_mm or 1.0
    py, px = frame.pooled_mm
    low = int(np.flatnonzero(taken.any(axis=(1, 2)))[0])
    reach = int(np.ceil(TIP_CT_MAX_MM / dz))
    b0, b1 = max(0, low - reach), min(taken.shape[0], low + reach + 1)
    band = slice(z0 + b0, z0 + b1)
    hu = frame.pooled_mean(ct.hu[band])
    nz, ny, nx = skeleton.labels.shape
    column = column_mask((nz, ny, nx), spine, frame)[band]
    seeds = taken[b0:b1]
    # labelled bone other than the ribs and their possible tip pieces blocks the way
    other_bone = (skeleton.labels[band] > 0) & ~seeds & ~pieces[b0:b1]
    allowed = (hu >= TIP_MIN_HU) & ct.trunk[band] & ~column & ~other_bone
    if crest_slice is not None:
        allowed[: max(0, crest_slice - (z0 + b0) + 1)] = False
    steps = int(np.ceil(TIP_CT_MAX_MM / min(dz, py, px)))
    grown = ndi.binary_dilation(
        seeds, structure=np.ones((3, 3, 3), dtype=bool), iterations=steps, mask=allowed | seeds
    )
    below = grown & ~seeds
    below[low - b0 :] = False
    parts, n = ndi.label(below, structure=np.ones((3, 3, 3), dtype=bool))
    sizes_cm3 = np.bincount(parts.ravel(), minlength=n + 1) * dz * py * px / 1000.0
    below &= (sizes_cm3 <= TIP_CT_MAX_CM3)[parts]
    if not below.any():
        return taken, owner
    # the new voxels belong to the rib of the nearest labelled rib bone
    _, nearest = ndi.distance_transform_edt(~seeds, sampling=(dz, py, px), return_indices=True)
    taken, owner = taken.copy(), owner.copy()
    band_owner = owner[b0:b1]
    band_owner[below] = band_owner[tuple(i[below] for i in nearest)]
    taken[b0:b1] |= below
    return taken, owner


def _tip_pieces(
    labels: NDArray[np.int32],
    taken: NDArray[np.bool_],
    skeleton: Skeleton,
    frame: AnatomicalFrame,
    crest_slice: int | None,
    z0: int,
) -> NDArray[np.bool_]:
    """Lateral bone that may be a broken rib tip: not a rib already, not pelvic or arm bone,
    not a large bone, above the iliac crest."""
    excluded = [
        c.label
        for c in skeleton.components
        if c.group != BoneGroup.THORACIC or (not c.is_rib and c.volume_cm3 > TIP_MAX_CM3)
    ]
    pieces = (labels > 0) & ~taken & ~np.isin(labels, excluded)
    if crest_slice is not None:
        pieces[: max(0, crest_slice - z0 + 1)] = False
    return np.asarray(pieces)


def rib_description(
    lowest: LowestRib,
    heads: dict[int, RibHead],
    head_segment: dict[int, int],
    names: dict[int, str],
    confirmed: bool,
) -> str:
    """Which rib the lowest point was taken from, in words."""
    what = f"{lowest.side} rib"
    if lowest.from_ct:
        what += (
            f" (its thin tip, followed in the CT at {TIP_MIN_HU:.0f} HU or more below the bone "
            "of the label map)"
        )
    elif lowest.from_tip_piece:
        what += " (its thin tip, apart from the rest of the rib at this resolution)"
    head = heads.get(lowest.label)
    segment = head_segment.get(lowest.label)
    if lowest.head_above_scan and segment is None:
        return f"{what}; its head lies above the scan, so it is not numbered" + (
            " (a pair above the lowest rib-bearing vertebra in the scan)" if head_segment else ""
        )
    if head is None or segment is None:
        return f"{what}; its head could not be placed on the spine"
    if not head.single:
        return f"{what}; ribs joined (by costal cartilage?), so not numbered"
    pairs = sorted({s for s in head_segment.values()})
    rank = pairs.index(segment)
    place = ("lowest", "second-lowest", "third-lowest")[rank] if rank < 3 else ordinal(rank + 1)
    text = f"{what} of the {place} rib-bearing vertebra"
    name = names.get(segment)
    if name is not None and name.startswith("T"):
        number = int(name[1:])
        text += f": the {ordinal(number)} rib"
        if not confirmed:
            text += " (vertebral names not confirmed by two counts)"
    return text


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, ... 11th, 12th, 13th, ... 21st."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
