"""The limbs the trunk measures leave out, for the preview to show them.

The metrics measure inside the trunk mask of ``habitus.anatomy.find_anatomy`` (arms and legs
removed); this brings that anatomy's arms and legs back to the volume's full (k, j, i) grid so
a reader can check on the preview what was excluded.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from habitus.anatomy import find_anatomy
from habitus.errors import GeometryRefused
from habitus.volume import CTVolume


def excluded_limbs(volume: CTVolume, labels: NDArray[np.integer]) -> NDArray[np.bool_]:
    """Labelled voxels of the arms and legs that the trunk measures exclude, on the grid of
    ``volume``; none when the slices are not axial (the analytics then measure nothing)."""
    try:
        anatomy = find_anatomy(labels.astype(np.uint8, copy=False), volume.geometry)
    except GeometryRefused:
        return np.zeros(labels.shape, dtype=bool)
    frame = anatomy.frame
    pooled = anatomy.parts.arms | anatomy.parts.legs
    limbs = np.zeros(labels.shape, dtype=bool)
    canonical = frame.canonical(limbs)  # a view: writing into it fills ``limbs``
    full_yx = (canonical.shape[1], canonical.shape[2])
    for c in np.flatnonzero(pooled.any(axis=(1, 2))):
        canonical[c] = frame.unpooled_slice(pooled[c], full_yx)
    return limbs & (labels > 0)
