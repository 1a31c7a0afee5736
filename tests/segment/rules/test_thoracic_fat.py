"""Fat above the diaphragm is intrathoracic (subcutaneous by definition), never visceral.

Two ways the thorax traced under the lungs (lungs.py) once left such fat visceral, seen on
the phantoms (100-750 voxels per phantom in front of the heart and at the lung bases):
pericardial fat cut across by that floor (under the heart, in front of it below the
lungs' anterior margins), and the lung's surface blurred to fat attenuation where it
touches the diaphragm or an organ.
"""

import numpy as np

from habitus.segment.rules.lungs import lung_masks, with_enclosed_fat

from .shapes import SPACING, ellipse


def test_fat_lying_mostly_in_the_thorax_is_thorax_whole() -> None:
    thorax = np.zeros((1, 160, 220), dtype=bool)
    thorax[0, :80] = True  # the floor cuts the slice at row 80
    pericardial = ellipse(-10, 0, 20, 30)[np.newaxis]  # rows 70-90: mostly above the cut
    abdominal = ellipse(50, 0, 15, 40)[np.newaxis]  # apart, below the cut
    skirting = ellipse(5, 80, 15, 10)[np.newaxis]  # across the cut, mostly below it
    fat = pericardial | abdominal | skirting
    found = with_enclosed_fat(thorax, fat)
    assert found[pericardial].all()
    assert not found[abdominal].any()
    assert not found[skirting & ~thorax].any()
    assert found[thorax].all()


def test_the_lung_surface_at_fat_attenuation_is_thorax() -> None:
    """The lung's edge blurred into the soft tissue around it reads -100 HU: not fat."""
    slices = 10
    trunk = np.repeat(ellipse(0, 0, 90, 130)[np.newaxis], slices, axis=0)
    hu = np.where(trunk, 40.0, -1000.0)
    lung_2d = ellipse(20, 60, 35, 40)
    lung = np.zeros_like(trunk)
    lung[4:] = lung_2d
    rng = np.random.default_rng(5)
    hu[lung] = rng.normal(-850, 40, lung.sum())
    edge = np.zeros_like(trunk)
    edge[4:] = ellipse(20, 60, 37, 42) & ~lung_2d  # one pixel of blur round the lung
    hu[edge] = -100.0
    found = lung_masks(np.clip(hu, -1024, 3000).astype(np.int16), trunk, SPACING)
    assert found.thorax[edge].all()
    assert not found.thorax[:2].any()  # below the lung and the diaphragm: abdomen
