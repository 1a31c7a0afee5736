"""A kidney whose fat reaches the subcutaneous fat behind it is no part of the body wall.

Walking in from the skin, the wall starts at the first run of soft tissue: where the
perirenal fat runs straight into the subcutaneous fat (no muscle behind the kidney, as on
the phantoms of habitus.phantoms), that tissue is the kidney itself, and up to 0.24 of a
phantom kidney per vertebral level was labelled muscle (bar: 0.05 of any organ).
"""

import numpy as np

from habitus.segment.rules.wall import wall_regions

from .shapes import SPACING, ellipse, grid

SLICES = 3


def _trunk_with_kidney_against_the_fat() -> tuple[np.ndarray, ...]:
    y, x = grid()
    torso = ellipse(0, 0, 90, 130)
    hu = np.where(torso, -100.0, -1000.0)  # subcutaneous and visceral fat
    band = ellipse(0, 0, 80, 120) & ~ellipse(0, 0, 70, 110)
    behind_kidney = (y > 10) & (x > 40) & (x < 115)  # the wall missing behind the kidney
    hu[band & ~behind_kidney] = 40.0
    spine = ellipse(55, 0, 14, 14)
    hu[spine] = 700.0
    hu[ellipse(60, 0, 22, 30) & ~spine] = 40.0  # back muscles round the spine, in the band
    hu[ellipse(-10, -20, 45, 60)] = 40.0  # liver and bowel in the middle
    kidney = ellipse(38, 78, 26, 30)
    hu[kidney] = 35.0
    skin = torso & ~ellipse(0, 0, 88, 128)
    stack = [np.repeat(a[np.newaxis], SLICES, axis=0) for a in (hu, torso, skin, spine, kidney)]
    stack[0] = stack[0].astype(np.int16)
    return tuple(stack)


def test_a_kidney_in_its_fat_lies_inside_the_wall() -> None:
    hu, torso, skin, bone, kidney = _trunk_with_kidney_against_the_fat()
    regions = wall_regions(hu, torso, skin, bone, SPACING)
    assert (regions.ring & kidney).sum() <= 0.05 * kidney.sum()
    assert (regions.cavity & kidney).sum() >= 0.9 * kidney.sum()


def test_the_wall_muscle_stays_wall() -> None:
    hu, torso, skin, bone, _ = _trunk_with_kidney_against_the_fat()
    regions = wall_regions(hu, torso, skin, bone, SPACING)
    front = ellipse(0, 0, 80, 120) & ~ellipse(0, 0, 70, 110) & (grid()[0] < -20)
    front3d = np.repeat(front[np.newaxis], SLICES, axis=0)
    assert (regions.ring & front3d).sum() >= 0.9 * front3d.sum()
