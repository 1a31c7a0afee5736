"""Skeletal muscle inside the body wall: the psoas, the crura and the back muscles.

Soft tissue inside the wall is organs and vessels, except the muscles that lie against the
spine. They occupy a zone that starts just in front of the vertebral body and reaches
``PARAVERTEBRAL_REACH_MM`` to either side of the spine's midline. Organs reach into that
zone too (the kidneys, the liver's bare area, the spleen's tip): soft tissue is split into
pieces where thin strands join them, and a piece lying mostly outside the zone is an organ
wherever it lies.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from habitus.segment.rules.morphology import Mask, disk
from habitus.segment.rules.spine import Spine

PARAVERTEBRAL_REACH_MM = 45.0
FRONT_MARGIN_MM = 5.0
STRAND_MM = 2.0  # strands thinner than about twice this are cut between pieces
MIN_INSIDE_FRACTION = 0.5


def paravertebral_zone(
    shape: tuple[int, int, int], spine: Spine, pixel: tuple[float, float]
) -> Mask:
    """Where the muscles against the spine lie, slice by slice."""
    zone = np.zeros(shape, dtype=bool)
    rows = np.arange(shape[1])[:, np.newaxis]
    cols = np.arange(shape[2])[np.newaxis, :]
    for k in range(shape[0]):
        if not spine.found(k):
            continue
        behind_front = rows >= spine.front_row[k] - FRONT_MARGIN_MM / pixel[0]
        beside = np.abs(cols - spine.midline_col[k]) * pixel[1] <= PARAVERTEBRAL_REACH_MM
        zone[k] = behind_front & beside
    return zone


def paravertebral_muscle(soft: Mask, zone: Mask, pixel: tuple[float, float]) -> Mask:
    """The soft tissue of the zone that does not belong to an organ reaching into it."""
    strand = disk(STRAND_MM, pixel)
    out = np.zeros_like(soft)
    for k in np.nonzero(zone.any(axis=(1, 2)))[0]:
        here = soft[k]
        if not (here & zone[k]).any():
            continue
        cores = ndimage.binary_opening(here, strand)
        pieces, count = ndimage.label(cores)
        if count == 0:
            out[k] = here & zone[k]
            continue
        inside = np.bincount(pieces[zone[k]], minlength=count + 1)
        total = np.bincount(pieces.ravel(), minlength=count + 1)
        organ = inside < MIN_INSIDE_FRACTION * total
        organ[0] = False
        organs = ndimage.binary_dilation(organ[pieces], strand) & here
        out[k] = here & zone[k] & ~organs
    return out
