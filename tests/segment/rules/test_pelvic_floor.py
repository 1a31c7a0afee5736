"""The pelvic floor bounds the body's cavity from below (pelvis.py: pelvic_bounds).

A hand-built pelvis: the sacrum and the coccyx on the midline at the back, down to the
coccyx's tip; each hip bone an iliac wing (a plate) above and a block (the acetabulum and
the ischium) below; the pubic symphysis far in front, reaching lower than the coccyx, and
the ischiopubic rami behind it. Below
the line from the symphysis's lower border to the coccyx's tip lies the perineum, where no
cavity is traced: its muscles (the levator ani, the sphincters, the roots of the thighs)
are muscle. Before the floor was drawn, the slices below the hip bones were not bounded at
all and the wall rule traced a cavity through the perineum's muscle (0.10-0.13 of the
phantoms' muscle below S1, labelled organ).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from habitus.segment.rules.pelvis import _coccyx_tip, pelvic_bounds
from habitus.segment.rules.spine import Spine

from .shapes import PIXEL_MM, SPACING, grid

SLICES = 30
ROWS, COLS = 160, 220
TIP = 12  # lowest slice of the coccyx
SYMPHYSIS = 6  # lowest slice of the pubic symphysis
COLUMN_FRONT_MM = 40.0
PUBIS_BACK_MM = -60.0

Mask = NDArray[np.bool_]


def _row(y_mm: float) -> float:
    return y_mm / PIXEL_MM + ROWS / 2


def _pelvis() -> Mask:
    """The bone of the pelvis (slices, rows, cols), slice 0 the lowest."""
    y, x = grid(ROWS, COLS)
    ax = np.abs(x)
    column = (ax < 15) & (y >= COLUMN_FRONT_MM) & (y < 60)
    wing = (ax >= 70) & (ax < 82) & (y >= -40) & (y < 40)
    block = (ax >= 60) & (ax < 100) & (y >= -10) & (y < 20)
    pubis = (ax < 60) & (y >= -70) & (y < PUBIS_BACK_MM)
    rami = (ax >= 46) & (ax < 58) & (y >= -70) & (y < 20)  # the rami, apart from the blocks
    bone = np.zeros((SLICES, ROWS, COLS), dtype=bool)
    bone[TIP:] |= column
    bone[20:] |= wing
    bone[8:20] |= block
    bone[SYMPHYSIS:16] |= pubis
    bone[SYMPHYSIS:8] |= rami
    return bone


def _spine(front_mm: float = COLUMN_FRONT_MM) -> Spine:
    """The spine's landmarks as spine.py gives them: carried on below the coccyx."""
    return Spine(
        midline_col=np.full(SLICES, COLS / 2),
        front_row=np.full(SLICES, _row(front_mm)),
        back_row=np.full(SLICES, _row(60.0)),
    )


def test_no_cavity_below_the_symphysis_and_the_coccyx() -> None:
    allowed = pelvic_bounds(_pelvis(), _spine(), SPACING)
    assert not allowed[:SYMPHYSIS].any()


def test_the_floor_runs_from_the_symphysis_up_to_the_coccyx() -> None:
    """Between the two, the cavity lies in front of the line joining them: behind the pubis
    (the prostate) in its lower slices, in front of the coccyx (the rectum) in its upper."""
    allowed = pelvic_bounds(_pelvis(), _spine(), SPACING)
    middle = COLS // 2
    behind_pubis = int(_row(PUBIS_BACK_MM)) + 3
    before_coccyx = int(_row(COLUMN_FRONT_MM)) - 3
    halfway = (behind_pubis + before_coccyx) // 2
    assert allowed[SYMPHYSIS + 1, behind_pubis, middle]
    assert not allowed[SYMPHYSIS + 1, before_coccyx, middle]
    assert allowed[TIP - 1, halfway, middle]
    assert not allowed[TIP - 1, before_coccyx, middle]
    assert allowed[TIP + 2, before_coccyx, middle]


def test_no_floor_without_the_symphysis() -> None:
    """A scan that stops above the symphysis shows no floor: nothing below the hip bones is
    cut (the phantoms' and the real scans' pelvis above it)."""
    bone = _pelvis()
    bone[:16] &= ~np.asarray(np.abs(grid(ROWS, COLS)[0]) > 55.0)[np.newaxis]  # no pubis
    allowed = pelvic_bounds(bone, _spine(), SPACING)
    assert allowed[:SYMPHYSIS].all()


def test_the_cavity_above_the_floor_lies_within_the_pubis_and_the_ischia() -> None:
    """Below the hip bones' blocks the ring is the pubis and the rami, found apart from the
    wings or not: the roots of the thighs beside them are not cavity."""
    allowed = pelvic_bounds(_pelvis(), _spine(), SPACING)
    _, x = grid(ROWS, COLS)
    beside = np.broadcast_to(np.abs(x) > 70, (ROWS, COLS))
    assert not (allowed[SYMPHYSIS : SYMPHYSIS + 2] & beside).any()


def test_the_coccyx_ends_where_the_column_does_in_a_shallow_pelvis() -> None:
    """A pubis less than 40 mm in front of the coccyx, below its tip, is not the column:
    the column is followed down in its own rows."""
    bone = _pelvis()
    y, x = grid(ROWS, COLS)
    bone[2:TIP] |= (np.abs(x) < 30) & (y >= 10) & (y < 20)  # 20-30 mm in front of the column
    tip = _coccyx_tip(bone, _spine(), SPACING)
    assert tip is not None
    assert tip[0] == TIP
    assert abs(tip[1] - _row(COLUMN_FRONT_MM)) <= 1
