"""Text for the preview that fits where it is drawn.

Every string the preview draws goes into a box: it is measured with the font's bounding box,
drawn smaller when it does not fit, and cut with an ellipsis when even the smallest size does
not. Paragraphs wrap at spaces (long words at characters). Labels beside a view stack without
overlapping and stay within their column, thinned out when there are more than it can hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from PIL import ImageDraw, ImageFont

Font = ImageFont.ImageFont | ImageFont.FreeTypeFont
RGB = tuple[int, int, int]

ELLIPSIS = "…"
CONTINUATION = "   "  # indent of a wrapped paragraph's later rows


@dataclass(frozen=True)
class Box:
    """Where a text may be drawn: left, top, width and height in pixels."""

    x: float
    y: float
    width: float
    height: float


@lru_cache(maxsize=32)
def font(size: int) -> Font:
    return ImageFont.load_default(size=size)


def text_size(text: str, face: Font) -> tuple[float, float]:
    """Width and height of ``text`` drawn at the top-left anchor, from the top of the box
    (the font's bounding box: its right and bottom edges)."""
    if not text:
        return 0.0, 0.0
    _, _, right, bottom = face.getbbox(text)
    return float(right), float(bottom)


def fits(text: str, face: Font, width: float, height: float) -> bool:
    w, h = text_size(text, face)
    return w <= width and h <= height


def ellipsize(text: str, face: Font, width: float) -> str:
    """The longest start of ``text`` that fits ``width`` with an ellipsis; ``text`` itself
    when it fits; "" when not even the ellipsis does."""
    if text_size(text, face)[0] <= width:
        return text
    low, high = 0, len(text)  # the answer's length lies in [low, high)
    while high - low > 1:
        middle = (low + high) // 2
        if text_size(text[:middle].rstrip() + ELLIPSIS, face)[0] <= width:
            low = middle
        else:
            high = middle
    candidate = text[:low].rstrip() + ELLIPSIS
    return candidate if text_size(candidate, face)[0] <= width else ""


def fit(text: str, box: Box, size: int, min_size: int) -> tuple[str, Font]:
    """``text`` at the largest size from ``size`` down to ``min_size`` that fits ``box``,
    else ellipsized at ``min_size``."""
    for candidate in range(size, min_size - 1, -1):
        if fits(text, font(candidate), box.width, box.height):
            return text, font(candidate)
    smallest = font(min_size)
    return ellipsize(text, smallest, box.width), smallest


def draw_fitted(
    draw: ImageDraw.ImageDraw, text: str, box: Box, fill: RGB, size: int, min_size: int
) -> None:
    """Draw ``text`` at the top left of ``box``, fitted to it (see :func:`fit`)."""
    shown, face = fit(text, box, size, min_size)
    if shown:
        draw.text((box.x, box.y), shown, fill=fill, font=face)


def wrap(text: str, face: Font, width: float) -> list[str]:
    """Rows no wider than ``width``: breaks at spaces, later rows indented; a word too long
    for a row is broken between characters."""
    rows: list[str] = []
    row = ""
    for word in text.split(" "):
        candidate = f"{row} {word}" if row.strip() else row + word
        if text_size(candidate, face)[0] <= width:
            row = candidate
            continue
        if row.strip():
            rows.append(row)
            row = CONTINUATION
        row = row + word
        while text_size(row, face)[0] > width:  # a word longer than a row: break it
            cut = _longest_start(row, face, width)
            rows.append(row[:cut])
            row = CONTINUATION + row[cut:]
    return [*rows, row] if row.strip() or not rows else rows


def _longest_start(text: str, face: Font, width: float) -> int:
    """How many characters of ``text`` fit ``width`` beyond any indent (at least one more, so
    that wrapping always advances)."""
    indent = len(text) - len(text.lstrip(" "))
    count = indent + 1
    while count < len(text) and text_size(text[: count + 1], face)[0] <= width:
        count += 1
    return count


def spread(targets: Sequence[float], height: float, low: float, high: float) -> list[float | None]:
    """Centres for labels of ``height`` that want to sit at ``targets``: none overlap, all lie
    within ``low``..``high``, each as near its target as the others allow (overlapping labels
    stack around the mean of their targets). Labels beyond what the range holds are dropped
    (None), the first ones in ``targets`` kept."""
    capacity = max(0, int((high - low) // height))
    kept = sorted(range(min(len(targets), capacity)), key=lambda i: targets[i])
    clusters: list[list[int]] = [[i] for i in kept]

    def start(cluster: list[int]) -> float:
        """Top of a stacked cluster centred on its targets' mean, kept inside the range."""
        size = len(cluster) * height
        centre = sum(targets[i] for i in cluster) / len(cluster)
        return min(max(centre - size / 2, low), high - size)

    merged = True
    while merged:
        merged = False
        for index in range(len(clusters) - 1):
            upper, lower = clusters[index], clusters[index + 1]
            if start(upper) + len(upper) * height > start(lower):
                clusters[index : index + 2] = [upper + lower]
                merged = True
                break
    centres: list[float | None] = [None] * len(targets)
    for cluster in clusters:
        top = start(cluster)
        for position, i in enumerate(cluster):
            centres[i] = top + (position + 0.5) * height
    return centres
