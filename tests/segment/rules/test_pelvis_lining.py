"""The muscles lining the hip bones below the iliac wings (pelvis.py: iliacus_muscle).

A hand-built pelvis: each hip bone an iliac wing (a plate) in the upper slices that runs
on, one piece in 3D, into a block (the acetabulum and the ischium) in the lower slices.
Against the inner face of each block lies a band of muscle (the obturator internus); in
the middle an organ (the bladder) in its fat. Before the lining rule took every hip bone,
only the wings were lined and the band below them was organ.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from habitus.segment.rules.pelvis import iliacus_muscle
from habitus.segment.rules.spine import Spine

from .shapes import SPACING, grid

SLICES = 24
WING_SLICES = slice(12, SLICES)
BLOCK_SLICES = slice(0, 12)
ROWS, COLS = 160, 220


Mask = NDArray[np.bool_]


def _pelvis() -> tuple[NDArray[np.int16], Mask, Mask, Mask]:
    """HU, hip bone, the lining bands and the organ (slices, rows, cols)."""
    y, x = grid(ROWS, COLS)
    ax = np.abs(x)
    wing = (ax >= 70) & (ax < 82) & (y >= -60) & (y < 40)  # 100 mm long, 12 mm thick
    block = (ax >= 60) & (ax < 100) & (y >= -10) & (y < 20)
    band = (ax >= 48) & (ax < 60) & (y >= -10) & (y < 20)  # 12 mm against the block
    organ = (y - 5) ** 2 / 20**2 + x**2 / 30**2 <= 1.0
    inside = (y / 75) ** 2 + (x / 115) ** 2 <= 1.0
    hu = np.full((SLICES, ROWS, COLS), -1000, dtype=np.int16)
    bone = np.zeros(hu.shape, dtype=bool)
    bands = np.zeros(hu.shape, dtype=bool)
    organs = np.zeros(hu.shape, dtype=bool)
    hu[:, inside] = -100  # the pelvis's fat
    hu[WING_SLICES][:, wing] = 700
    bone[WING_SLICES] = wing
    hu[BLOCK_SLICES][:, block] = 700
    bone[BLOCK_SLICES] = block
    hu[BLOCK_SLICES][:, band] = 45
    bands[BLOCK_SLICES] = band
    hu[:, organ] = 30
    organs[:] = organ
    return hu, bone, bands, organs


def test_the_band_lining_the_hip_bone_below_the_wing_is_muscle() -> None:
    hu, bone, bands, organs = _pelvis()
    soft = (hu > -30) & ~bone
    # The column lies behind the pelvis, off this slab: only its midline is used.
    spine = Spine(
        midline_col=np.full(SLICES, COLS / 2),
        front_row=np.full(SLICES, 140.0),
        back_row=np.full(SLICES, 155.0),
    )
    muscle = iliacus_muscle(soft, hu, bone, spine, SPACING)
    assert muscle[bands].mean() >= 0.9
    assert muscle[organs].mean() <= 0.05
