"""Skeletal muscle inside the body wall: the psoas, the crura and the back muscles.

Soft tissue inside the wall is organs and vessels, except the muscles that lie against the
spine. They occupy a zone that starts just in front of the vertebral body and reaches
``PARAVERTEBRAL_REACH_MM`` to either side of the spine's midline, and further out
(``POSTERIOR_REACH_MM``) behind the level of the canal. Organs reach into that
zone too (the kidneys, the liver's bare area, the spleen's tip): soft tissue is split into
pieces where thin strands join them, and a piece lying mostly outside the part beside the
spine is an organ wherever it lies, unless it leans on the body wall at the back.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from habitus.segment.rules.morphology import Mask, dilate_2d, open_2d
from habitus.segment.rules.spine import Spine

BESIDE, BEHIND = 1, 2

PARAVERTEBRAL_REACH_MM = 45.0
POSTERIOR_REACH_MM = 90.0  # behind the canal: the back muscles and quadratus lumborum
FRONT_MARGIN_MM = 5.0
STRAND_MM = 2.0  # strands thinner than about twice this are cut between pieces
MIN_INSIDE_FRACTION = 0.5
ORGAN_REACH_MM = 60.0  # how far around the zone a piece is followed to judge it


def paravertebral_zone(
    shape: tuple[int, int, int], spine: Spine, pixel: tuple[float, float]
) -> NDArray[np.uint8]:
    """Where the muscles against the spine lie: 1 beside the spine, 2 further out behind it."""
    zone = np.zeros(shape, dtype=np.uint8)
    rows = np.arange(shape[1])[:, np.newaxis]
    cols = np.arange(shape[2])[np.newaxis, :]
    for k in range(shape[0]):
        if not spine.found(k):
            continue
        off_midline = np.abs(cols - spine.midline_col[k]) * pixel[1]
        behind_front = rows >= spine.front_row[k] - FRONT_MARGIN_MM / pixel[0]
        behind_canal = rows >= (spine.front_row[k] + spine.back_row[k]) / 2.0
        zone[k][behind_canal & (off_midline <= POSTERIOR_REACH_MM)] = BEHIND
        zone[k][behind_front & (off_midline <= PARAVERTEBRAL_REACH_MM)] = BESIDE
    return zone


def paravertebral_muscle(
    soft: Mask, zone: NDArray[np.uint8], wall: Mask, pixel: tuple[float, float]
) -> Mask:
    """The soft tissue of the zone that does not belong to an organ reaching into it.

    A piece is muscle if it lies mostly beside the spine (the psoas, the crura), or mostly in
    the zone and against the body wall (the quadratus lumborum); a kidney lying far back is
    neither.
    """
    out = np.zeros_like(soft)
    margin = (int(ORGAN_REACH_MM / pixel[0]), int(ORGAN_REACH_MM / pixel[1]))
    for k in np.nonzero(zone.any(axis=(1, 2)))[0]:
        rows = np.nonzero(zone[k].any(axis=1))[0]
        cols = np.nonzero(zone[k].any(axis=0))[0]
        box = (
            slice(max(rows[0] - margin[0], 0), rows[-1] + margin[0] + 1),
            slice(max(cols[0] - margin[1], 0), cols[-1] + margin[1] + 1),
        )
        here, in_zone = soft[k][box], zone[k][box] > 0
        if not (here & in_zone).any():
            continue
        cores = open_2d(here[np.newaxis], STRAND_MM, pixel)[0]
        pieces, count = ndimage.label(cores)
        if count == 0:
            out[k][box] = here & (zone[k][box] == BESIDE)
            continue
        total = np.bincount(pieces.ravel(), minlength=count + 1)
        inside = np.bincount(pieces[in_zone], minlength=count + 1)
        beside = np.bincount(pieces[zone[k][box] == BESIDE], minlength=count + 1)
        on_wall = np.bincount(pieces[ndimage.binary_dilation(wall[k][box])], minlength=count + 1)
        muscle = (beside >= MIN_INSIDE_FRACTION * total) | (
            (inside >= MIN_INSIDE_FRACTION * total) & (on_wall > 0)
        )
        organ = ~muscle
        organ[0] = False
        organs = dilate_2d(organ[pieces][np.newaxis], STRAND_MM, pixel)[0] & here
        out[k][box] = here & in_zone & ~organs
    return out
