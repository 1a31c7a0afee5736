"""The vertebral column, slice by slice: the landmarks the trunk rules are measured from.

In each slice the spine is the largest bone section near the middle of the back half of the
trunk. Its midline is the column where the bone is deepest front to back (vertebral body,
canal and spinous process line up there), which rib heads joined to the section do not move.
The front of the vertebral body is the most anterior bone within a centimetre of that
midline. Slices without a spine section (a disc, a gap) take their values from the slices
around them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from habitus.segment.rules.morphology import Mask

MAX_OFF_MIDLINE_MM = 50.0
MIN_SECTION_MM2 = 150.0
BODY_HALF_WIDTH_MM = 10.0


@dataclass(frozen=True)
class Spine:
    """Per slice (NaN where the scan holds no spine at all): pixel coordinates."""

    midline_col: NDArray[np.float64]  # column of the spine's midline
    front_row: NDArray[np.float64]  # row of the anterior surface of the vertebral body
    back_row: NDArray[np.float64]  # row of the posterior end of the section (spinous process)

    def found(self, k: int) -> bool:
        return bool(np.isfinite(self.midline_col[k]))


def find_spine(bone: Mask, torso: Mask, pixel: tuple[float, float]) -> Spine:
    n = bone.shape[0]
    midline = np.full(n, np.nan)
    front = np.full(n, np.nan)
    back = np.full(n, np.nan)
    min_pixels = MIN_SECTION_MM2 / (pixel[0] * pixel[1])
    half_width = max(1, int(round(BODY_HALF_WIDTH_MM / pixel[1])))
    for k in range(n):
        section = _spine_section(bone[k] & torso[k], torso[k], pixel, min_pixels)
        if section is None:
            continue
        depth_per_column = ndimage.uniform_filter1d(
            section.sum(axis=0).astype(np.float64), size=2 * half_width + 1
        )
        col = int(np.argmax(depth_per_column))
        band = section[:, max(col - half_width, 0) : col + half_width + 1]
        rows = np.nonzero(band.any(axis=1))[0]
        midline[k], front[k], back[k] = col, rows.min(), rows.max()
    return Spine(
        midline_col=_interpolate(midline),
        front_row=_interpolate(front),
        back_row=_interpolate(back),
    )


def _spine_section(
    bone: Mask, torso: Mask, pixel: tuple[float, float], min_pixels: float
) -> Mask | None:
    if not bone.any():
        return None
    rows, cols = np.nonzero(torso)
    centre_col = cols.mean()
    top, bottom = rows.min(), rows.max()
    sections, count = ndimage.label(bone)
    index = np.arange(1, count + 1)
    sizes = np.bincount(sections.ravel())[1:]
    centres = np.asarray(ndimage.center_of_mass(bone, sections, index)).reshape(-1, 2)
    near_midline = np.abs(centres[:, 1] - centre_col) * pixel[1] <= MAX_OFF_MIDLINE_MM
    in_back_half = centres[:, 0] >= top + 0.4 * (bottom - top)
    ok = near_midline & in_back_half & (sizes >= min_pixels)
    if not ok.any():
        return None
    best = index[ok][np.argmax(sizes[ok])]
    return np.asarray(sections == best)


def _interpolate(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Fill missing slices linearly between found ones, constant beyond the ends."""
    known = np.isfinite(values)
    if not known.any():
        return values
    k = np.arange(values.size)
    return np.interp(k, k[known], values[known])
