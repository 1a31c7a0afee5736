"""The zone of the muscles against the spine where a slice cuts one part of a vertebra alone.

Between two vertebrae a 3 mm slice may hold the arch alone (at a disc: its front lies a
body's depth behind the bodies') or the body alone (its section ends at the body's back, an
arch's depth in front of the spinous processes). The zone is measured from the bodies' front
and the arches' back of the slices around, not from such a slice's own section: the psoas
beside a disc lay in front of a zone drawn from the arch (the phantoms' psoas at L1,
0.82 -> 0.92-0.94 on seeds 1-2), and a zone drawn from the body alone put the canal inside the
body, so that a kidney beside it counted as lying behind the canal, where the quadratus
lumborum lies (a whole slice of a kidney labelled muscle on phantom seed 1 at L3, 0.051 of
its voxels at that level; the right kidney of ts-upper-abdomen, 101 voxels).
"""

from __future__ import annotations

import numpy as np

from habitus.segment.rules.organs import BEHIND, BESIDE, paravertebral_zone
from habitus.segment.rules.spine import Spine

SPACING = (3.0, 1.0, 1.0)
SHAPE = (9, 200, 200)
FRONT, BACK, MIDLINE = 50.0, 120.0, 100.0  # rows and column of a lumbar vertebra, 1 mm pixels
LONE = 4  # the slice that cuts one part alone


def _spine(front: float = FRONT, back: float = BACK) -> Spine:
    """A straight spine whose slice ``LONE`` has the given front and back."""
    fronts = np.full(SHAPE[0], FRONT)
    backs = np.full(SHAPE[0], BACK)
    fronts[LONE], backs[LONE] = front, back
    return Spine(midline_col=np.full(SHAPE[0], MIDLINE), front_row=fronts, back_row=backs)


def _first_row(zone: np.ndarray, value: int) -> int:
    """The foremost row of the slice where ``zone`` holds ``value`` at the midline's side."""
    column = zone[:, int(MIDLINE) + 20]
    return int(np.nonzero(column == value)[0][0])


def test_zone_beside_a_disc_starts_at_the_bodies_front() -> None:
    """The slice through a disc shows the arch alone, 30 mm behind the bodies' front."""
    zone = paravertebral_zone(SHAPE, _spine(front=FRONT + 30.0), SPACING)
    assert _first_row(zone[LONE], BESIDE) == _first_row(zone[LONE - 1], BESIDE)
    assert _first_row(zone[LONE], BESIDE) <= FRONT


def test_zone_behind_the_canal_where_the_slice_shows_the_body_alone() -> None:
    """The slice's section ends at the body's back (30 mm deep); the canal lies behind it."""
    zone = paravertebral_zone(SHAPE, _spine(back=FRONT + 30.0), SPACING)
    behind = zone[LONE][:, int(MIDLINE) + 60]  # beyond the 45 mm beside the spine
    assert int(np.nonzero(behind == BEHIND)[0][0]) == (FRONT + BACK) // 2
    assert np.array_equal(zone[LONE], zone[LONE - 1])


def test_a_deeper_front_or_back_of_a_whole_vertebra_is_kept() -> None:
    """A slice whose front or back differs by less than a body's depth is its own."""
    spine = _spine(front=FRONT + 6.0, back=BACK - 6.0)
    zone = paravertebral_zone(SHAPE, spine, SPACING)
    assert _first_row(zone[LONE], BESIDE) == FRONT + 6.0 - 5.0
    behind = zone[LONE][:, int(MIDLINE) + 60]
    assert int(np.nonzero(behind == BEHIND)[0][0]) == (FRONT + BACK) // 2
