"""PET over CT for the preview: the fused colours of an axial slice and the colour bar.

SUVbw is shown on a fixed scale, 0 to ``SUV_MAX`` g/ml, so that previews of different
patients and visits compare at a glance; higher uptake saturates at the scale's top. The
colour map is the usual 'hot' (black, red, yellow, white); below ``SUV_FLOOR`` the PET is
transparent and above it its opacity rises with the SUV, so background uptake leaves the
anatomy readable and hot tissue stands out.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from PIL import ImageDraw

from habitus.outputs.preview_text import Box, draw_fitted, font

RGB = tuple[int, int, int]

SUV_MAX = 5.0  # g/ml: the top of the fixed scale
SUV_FLOOR = 0.5  # g/ml: the PET is transparent below this
ALPHA_LOW, ALPHA_HIGH = 0.35, 0.9  # opacity at the floor and at the scale's top
TICKS = (0, 1, 2, 3, 4, 5)
HEADING = "PET SUVbw (g/ml)"

BAR_PX = 14  # height of the colour bar
TICK_LABEL_PX = 16  # room for the tick labels under the bar
ROW_PX = 17  # one row of text (the series description, the note)
HEAD_PX = 22
COLORBAR_HEIGHT_PX = HEAD_PX + ROW_PX + BAR_PX + 4 + TICK_LABEL_PX + ROW_PX
HEADING_SIZE, LABEL_SIZE, MIN_SIZE = 14, 12, 9


def hot(fraction: NDArray[np.floating]) -> NDArray[np.float32]:
    """The 'hot' colour map at ``fraction`` (0 to 1): red rises first, then green, then
    blue; RGB in 0-255, shape ``fraction.shape + (3,)``."""
    t = np.clip(np.asarray(fraction, dtype=np.float32), 0.0, 1.0)
    red = np.clip(t / 0.365, 0.0, 1.0)
    green = np.clip((t - 0.365) / 0.381, 0.0, 1.0)
    blue = np.clip((t - 0.746) / 0.254, 0.0, 1.0)
    return np.stack([red, green, blue], axis=-1) * np.float32(255.0)


def opacity(suv: NDArray[np.floating]) -> NDArray[np.float32]:
    """How much of the PET colour covers the CT: none below the floor (or outside the PET,
    NaN), then rising linearly to ``ALPHA_HIGH`` at the scale's top."""
    values = np.nan_to_num(np.asarray(suv, dtype=np.float32), nan=0.0)
    rise = np.clip((values - SUV_FLOOR) / (SUV_MAX - SUV_FLOOR), 0.0, 1.0)
    alpha = ALPHA_LOW + (ALPHA_HIGH - ALPHA_LOW) * rise
    return np.where(values >= SUV_FLOOR, alpha, 0.0).astype(np.float32)


def fuse(grey: NDArray[np.floating], suv: NDArray[np.floating]) -> NDArray[np.uint8]:
    """The windowed CT ``grey`` (0-255) with the SUV blended over it, as RGB."""
    colour = hot(np.nan_to_num(np.asarray(suv, dtype=np.float32), nan=0.0) / SUV_MAX)
    alpha = opacity(suv)[..., np.newaxis]
    base = np.asarray(grey, dtype=np.float32)[..., np.newaxis]
    return (base * (1.0 - alpha) + colour * alpha).round().astype(np.uint8)


def draw_colorbar(
    draw: ImageDraw.ImageDraw, origin: tuple[int, int], width: int, description: str
) -> int:
    """The heading, the PET's series description, the bar with its ticks and a note on the
    floor, from ``origin`` down within ``width``; returns the height used."""
    x, y = origin
    text: RGB = (235, 235, 235)
    muted: RGB = (150, 150, 160)
    draw_fitted(draw, HEADING, Box(x, y, width, HEAD_PX), text, HEADING_SIZE, MIN_SIZE)
    y += HEAD_PX
    draw_fitted(draw, description or "PET", Box(x, y, width, ROW_PX), muted, LABEL_SIZE, MIN_SIZE)
    y += ROW_PX
    # Inset by half a label so that the end labels stay inside the column.
    inset = 10
    left, bar_w = x + inset, width - 2 * inset
    colours = hot(np.linspace(0.0, 1.0, bar_w)).round().astype(np.uint8)
    for offset, colour in enumerate(colours):
        rgb = (int(colour[0]), int(colour[1]), int(colour[2]))
        draw.line((left + offset, y, left + offset, y + BAR_PX - 1), fill=rgb)
    draw.rectangle((left - 1, y - 1, left + bar_w, y + BAR_PX), outline=muted)
    y += BAR_PX + 4
    face = font(LABEL_SIZE)
    for tick in TICKS:
        at = left + (bar_w - 1) * tick / SUV_MAX
        draw.line((at, y - 4, at, y - 2), fill=muted)
        label = f"{tick}+" if tick == TICKS[-1] else f"{tick}"
        draw.text((at, y), label, fill=text, font=face, anchor="mt")
    y += TICK_LABEL_PX
    note = f"clear below {SUV_FLOOR:g}, {SUV_MAX:g} and above saturate"
    draw_fitted(draw, note, Box(x, y, width, ROW_PX), muted, LABEL_SIZE, MIN_SIZE)
    return COLORBAR_HEIGHT_PX
