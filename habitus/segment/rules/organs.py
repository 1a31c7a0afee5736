"""Skeletal muscle inside the body wall: the psoas, quadratus and the back muscles.

Soft tissue inside the wall is organs and vessels, except the muscles that lie against the
spine: the psoas beside the vertebral bodies and the muscles behind them. They occupy a zone
that starts at the front of the vertebral body and reaches ``PARAVERTEBRAL_REACH_MM`` to either
side of the spine's midline.
"""

from __future__ import annotations

import numpy as np

from habitus.segment.rules.morphology import Mask
from habitus.segment.rules.spine import Spine

PARAVERTEBRAL_REACH_MM = 45.0
FRONT_MARGIN_MM = 5.0


def paravertebral_zone(
    shape: tuple[int, int, int], spine: Spine, pixel: tuple[float, float]
) -> Mask:
    """Where soft tissue inside the wall is muscle rather than an organ."""
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
