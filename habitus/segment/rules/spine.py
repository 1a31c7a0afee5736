"""The vertebral column, slice by slice: the landmarks the trunk rules are measured from.

In each slice the spine is the largest bone section near the middle of the back half of the
trunk, pieces a few millimetres apart counting as one (the body and the arch are often apart
in a slice). Its midline is the axis about which the section is most symmetric. The front
of the vertebral body is the most anterior bone within 8 mm of that midline. Slices without
a spine section (a disc, a gap) take their values from the slices around them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from habitus.segment.rules.morphology import Mask, dilate_2d

MAX_OFF_MIDLINE_MM = 50.0
MIN_SECTION_MM2 = 150.0
BODY_HALF_WIDTH_MM = 8.0
GROUPING_MM = 4.0
SEARCH_MARGIN_MM = 40.0


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
        col = _midline(section, pixel)
        band = section[:, max(col - half_width, 0) : col + half_width + 1]
        rows = np.nonzero(band.any(axis=1))[0]
        midline[k], front[k], back[k] = col, rows.min(), rows.max()
    return Spine(
        midline_col=_interpolate(midline),
        front_row=_interpolate(front),
        back_row=_interpolate(back),
    )


def _midline(section: Mask, pixel: tuple[float, float]) -> int:
    """The column about which the section is most nearly its own mirror image.

    A vertebra is left-right symmetric; what joins it asymmetrically (a calcified aorta in
    front, a rib head on one side) shifts its extremes but hardly its symmetry axis.
    """
    rows, cols = np.nonzero(section)
    box = section[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].astype(np.float64)
    width = box.shape[1]
    # Self-convolution of every row: index i sums box[r, x] * box[r, i - x], the overlap of
    # the section with its mirror image about x = i / 2.
    spectrum = np.fft.rfft(box, n=2 * width, axis=1)
    overlap = np.fft.irfft(spectrum * spectrum, n=2 * width, axis=1).sum(axis=0)
    return int(cols.min() + int(np.argmax(overlap[: 2 * width - 1])) // 2)


def _spine_section(
    bone: Mask, torso: Mask, pixel: tuple[float, float], min_pixels: float
) -> Mask | None:
    if not bone.any():
        return None
    rows, cols = np.nonzero(torso)
    centre_col = cols.mean()
    top, bottom = rows.min(), rows.max()
    # Only the back half of the trunk, about its middle, can hold the spine.
    half_width = int((MAX_OFF_MIDLINE_MM + SEARCH_MARGIN_MM) / pixel[1])
    window = (
        slice(int(top + 0.3 * (bottom - top)), bottom + 1),
        slice(max(int(centre_col) - half_width, 0), int(centre_col) + half_width + 1),
    )
    near = bone[window]
    if not near.any():
        return None
    grouped, count = ndimage.label(dilate_2d(near[np.newaxis], GROUPING_MM, pixel)[0])
    sections = np.zeros(bone.shape, dtype=grouped.dtype)
    sections[window] = np.where(near, grouped, 0)
    index = np.arange(1, count + 1)
    sizes = np.bincount(sections.ravel(), minlength=count + 1)[1:]
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
