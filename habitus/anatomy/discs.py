"""Which dips of the vertebral-body profile are intervertebral discs.

The profile (``habitus.anatomy.spine``) drops at each disc, but also where a body's marrow is
of low density (osteoporosis, a marrow void, a Schmorl node, a fracture) and a label map left
it out of the bone; and it barely drops at a thin disc whose end plates' partial volume fills
a thick slice. So the profile's dips are only candidates, and the discs are the candidates
that leave vertebral bodies of a height a vertebral body can have:

- a complete body is between ``BODY_HEIGHT_MM`` high (thoracic bodies about 15-25 mm,
  lumbar 20-35 mm), give or take one slice interval for the end plates' partial volume;
- neighbouring bodies differ little in height: a complete body shorter than
  ``SHORT_BODY_RATIO`` of its neighbour is a piece of a body, not a body.

A gap that leaves two pieces each too short to be a body is not a disc (the pieces are one
body); a run too tall to be one body holds a disc at a dip that leaves bodies of plausible
height. Among the choices that break fewest of these rules, the one that changes the runs
least wins: joining across a gap costs its depth, cutting at a dip what the profile keeps
there, so the runs stand where they break no rule. A gap longer than ``MAX_DISC_MM`` (a body
missed) is always kept.

Shaped on ts-upper-abdomen as the rule-based segmenter labels it at 3 mm (L1's low-density
marrow leaves a 3 mm gap with 12 and 15 mm of L1 either side, and the thin L1-T12 disc keeps
half its profile) and on the phantom with the middle of a body's marrow cut out; the heights
from anatomy texts.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

BODY_HEIGHT_MM = (12.0, 38.0)  # a vertebral body, T1 to L5
SHORT_BODY_RATIO = 0.6  # neighbouring bodies differ far less in height than this
MAX_DISC_MM = 20.0  # a longer gap is a body missed, not a disc
MIN_PIECE_MM = 6.0  # a shorter run of high profile is no body on its own
DIP_FRACTION = 0.75  # a candidate disc inside a run: profile below this share of the local top
REACH_MM = 100.0  # taller than two bodies and a disc: no body joins further
RULE_BROKEN = 4.0  # outweighs the cost of changing the runs around one body


@dataclass(frozen=True)
class _Cut:
    """A candidate disc: slices ``lo``..``hi``; what taking it as a disc costs (a dip
    inside a run: the share of the profile kept there; a gap between runs: nothing) or, for
    a gap between two runs, what joining across it costs (its depth); and whether it must be
    kept (a gap too long to be a disc)."""

    lo: int
    hi: int
    cost: float
    forced: bool
    between_runs: bool = True


def vertebral_bodies(
    runs: list[tuple[int, int]],
    profile: NDArray[np.float64],
    local_top: NDArray[np.float64],
    open_ends: tuple[bool, bool],
    dz: float,
) -> list[tuple[int, int]]:
    """The vertebral bodies (lowest and highest slice) of ``runs``, the runs of slices where
    the profile is high, ordered along z; ``open_ends`` says whether the first run's lower end
    and the last run's upper end may lie beyond the scan or the track (their heights are then
    lower bounds). A run shorter than ``MIN_PIECE_MM`` may be noise within a disc: it may
    join a body or the disc beside it, and stands alone as no body."""
    while runs and (runs[0][1] - runs[0][0] + 1) * dz < MIN_PIECE_MM:
        runs = runs[1:]
    while runs and (runs[-1][1] - runs[-1][0] + 1) * dz < MIN_PIECE_MM:
        runs = runs[:-1]
    if not runs:
        return []
    cuts = _candidate_cuts(runs, profile, local_top, dz)
    chosen = _best_cuts(cuts, runs[0][0], runs[-1][1], open_ends, dz)
    bounds = [runs[0][0] - 1, *(x for c in chosen for x in (c.lo, c.hi)), runs[-1][1] + 1]
    bodies = [(bounds[i] + 1, bounds[i + 1] - 1) for i in range(0, len(bounds), 2)]
    return [(lo, hi) for lo, hi in bodies if (hi - lo + 1) * dz >= MIN_PIECE_MM]


def _candidate_cuts(
    runs: list[tuple[int, int]],
    profile: NDArray[np.float64],
    local_top: NDArray[np.float64],
    dz: float,
) -> list[_Cut]:
    """The gaps between runs (and gaps with pieces too short to be bodies between them, as
    one), and the dips inside each run (away from its ends), ordered along z."""
    relative = profile / np.maximum(np.nan_to_num(local_top), 1e-6)

    def gap(lo: int, hi: int) -> _Cut:
        depth = float(np.clip(1.0 - relative[lo : hi + 1].min(), 0.0, 1.0))
        return _Cut(lo, hi, depth, (hi - lo + 1) * dz > MAX_DISC_MM)

    cuts: list[_Cut] = []
    for index, (lo, hi) in enumerate(runs):
        if index > 0:
            cuts.append(gap(runs[index - 1][1] + 1, lo - 1))
        # the gaps either side of pieces too short to be bodies, as one disc
        after = index + 1
        while after < len(runs) - 1 and (runs[after][1] - runs[after][0] + 1) * dz < MIN_PIECE_MM:
            after += 1
            cuts.append(_Cut(hi + 1, runs[after][0] - 1, 0.0, False, between_runs=False))
        c = lo + 1
        while c < hi:
            if relative[c] < DIP_FRACTION:
                start = c
                while c + 1 < hi and relative[c + 1] < DIP_FRACTION:
                    c += 1
                cost = float(relative[start : c + 1].min())
                cuts.append(_Cut(start, c, cost, False, between_runs=False))
            c += 1
    return sorted(cuts, key=lambda cut: (cut.lo, cut.hi))


def _best_cuts(
    cuts: list[_Cut], first: int, last: int, open_ends: tuple[bool, bool], dz: float
) -> list[_Cut]:
    """The cuts kept: fewest broken rules, then least change (dynamic programming over the
    last two cuts kept, since a rule joins two neighbouring bodies)."""
    n = len(cuts)
    start, end = -1, n  # sentinels: the first run's lower end, the last run's upper end

    def bounds(p: int, q: int) -> tuple[int, int]:
        lo = first if p == start else cuts[p].hi + 1
        hi = last if q == end else cuts[q].lo - 1
        return lo, hi

    def body(p: int, q: int) -> tuple[float, bool]:
        lo, hi = bounds(p, q)
        is_open = (p == start and open_ends[0]) or (q == end and open_ends[1])
        return (hi - lo + 1) * dz, is_open

    forced = [c for c in cuts if c.forced]
    # the gaps between runs are disjoint and ordered: joining costs are prefix sums
    gaps = [c for c in cuts if c.between_runs]
    gap_los = [c.lo for c in gaps]
    gap_his = [c.hi for c in gaps]
    joined_sums = np.concatenate([[0.0], np.cumsum([c.cost for c in gaps])])

    def follows(p: int, q: int) -> bool:
        """Cut q may follow cut p: a body lies between them, and no gap too long to join."""
        lo, hi = bounds(p, q)
        return lo <= hi and not any(lo <= c.lo and c.hi <= hi for c in forced)

    def cost(p: int, q: int) -> float:
        """Of cut q and the body below it: cutting there, and joining across the gaps
        within the body."""
        lo, hi = bounds(p, q)
        first_in, after = bisect_left(gap_los, lo), bisect_right(gap_his, hi)
        joined = float(joined_sums[after] - joined_sums[first_in]) if after > first_in else 0.0
        cut = cuts[q].cost if q < end and not cuts[q].between_runs else 0.0
        return joined + cut

    def followers(p: int) -> list[int]:
        """The cuts that may follow p, up to the first that leaves a body far taller than
        any (joining further only breaks the same rule at a greater cost)."""
        out: list[int] = []
        for q in range(p + 1, n + 1):
            if follows(p, q):
                out.append(q)
                if body(p, q)[0] > REACH_MM:
                    break
        return out

    # best[(p, q)]: least cost of a choice ending with cuts p, q kept, and its path
    best: dict[tuple[int, int], tuple[float, list[int]]] = {}
    for q in followers(start):
        best[(start, q)] = (cost(start, q) + _alone_broken(*body(start, q), dz), [q])
    for q in range(n):
        for p in [p for p in range(start, q) if (p, q) in best]:
            score, path = best[(p, q)]
            below = body(p, q)
            for r in followers(q):
                above = body(q, r)
                total = (
                    score
                    + cost(q, r)
                    + _alone_broken(*above, dz)
                    + _pair_broken(below, above, cuts[q].forced, dz)
                )
                if (q, r) not in best or total < best[(q, r)][0]:
                    best[(q, r)] = (total, [*path, r])
    finals = [v for (_, q), v in best.items() if q == end]
    _, path = min(finals, key=lambda v: v[0])
    return [cuts[i] for i in path if i < end]


def _alone_broken(height: float, is_open: bool, dz: float) -> float:
    low, high = BODY_HEIGHT_MM
    too_tall = height > high + dz
    too_short = not is_open and height < low - dz
    return RULE_BROKEN if too_tall or too_short else 0.0


def _pair_broken(
    below: tuple[float, bool], above: tuple[float, bool], apart: bool, dz: float
) -> float:
    """A complete body much shorter than its neighbour (one of plausible height); bodies
    apart across a missed body are not compared."""
    if apart:
        return 0.0
    high = BODY_HEIGHT_MM[1] + dz
    for (short, short_open), (tall, _) in ((below, above), (above, below)):
        if not short_open and tall <= high and short < SHORT_BODY_RATIO * tall:
            return RULE_BROKEN
    return 0.0
