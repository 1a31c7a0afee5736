"""A one-page PNG to check a segmentation at a glance.

Layout: a title line (model, series, no patient identifiers); a grid of axial slices in the
soft-tissue window with the classes overlaid; a coronal overview through the body centre at
true aspect, head up, with the axial levels ticked and the analytics' marks (lines such as L3,
bands such as the waist); a legend and an optional block of text (numbers from the analytics).
Images follow the radiological convention: patient's right on the viewer's left, anterior up
in axial slices.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from habitus.errors import OutputError
from habitus.labels import COLORS, NUM_LABELS, TISSUE_CLASSES
from habitus.segment.base import ModelInfo
from habitus.volume import CTVolume

RGB = tuple[int, int, int]

SOFT_TISSUE_WINDOW = (40.0, 400.0)  # level, width (HU)
OVERLAY_ALPHA = 0.45
PANEL_PX = 256  # side of one axial panel
CORONAL_BOX_PX = 512  # the coronal view fits in a square of this side (or the grid's height)
SIDE_PX = 300  # legend and text column
MARGIN_PX = 12
TITLE_PX = 34
CAPTION_PX = 18
TICK_PX = 30  # left of the coronal view: numbered ticks at the axial levels
MARK_LABEL_PX = 90  # right of the coronal view: labels of lines and bands

BACKGROUND: RGB = (16, 16, 20)
TEXT: RGB = (235, 235, 235)
MUTED: RGB = (150, 150, 160)
TICK: RGB = (120, 200, 255)


@dataclass(frozen=True)
class Line:
    """A level across the coronal view at slice index ``k`` (e.g. L3); an axial panel at the
    same slice takes the label into its caption."""

    k: int
    label: str
    color: RGB = (255, 255, 0)


@dataclass(frozen=True)
class Band:
    """A craniocaudal range on the coronal view, slices ``k_start`` to ``k_end`` inclusive."""

    k_start: int
    k_end: int
    label: str
    color: RGB = (255, 140, 0)


Mark = Line | Band


@dataclass(frozen=True)
class PreviewOptions:
    """What the analytics add to the preview: the axial levels to show (default: evenly spaced),
    marks on the coronal view and a block of text (numbers, flags)."""

    axial_slices: Sequence[int] | None = None
    marks: Sequence[Mark] = ()
    text_lines: Sequence[str] = ()


def default_axial_slices(volume: CTVolume, count: int = 4) -> list[int]:
    """``count`` slices evenly spaced through the scan, away from its first and last slice."""
    n = volume.shape[0]
    picks = [int(round((i + 1) * (n - 1) / (count + 1))) for i in range(count)]
    return sorted(set(picks))


def render_preview(
    volume: CTVolume,
    labels: NDArray[np.integer],
    *,
    axial_slices: Sequence[int] | None = None,
    marks: Sequence[Mark] = (),
    text_lines: Sequence[str] = (),
    model: ModelInfo | None = None,
) -> Image.Image:
    """The preview image; ``axial_slices`` default to four evenly spaced levels."""
    if labels.shape != volume.shape:
        raise OutputError(
            f"expected a label map of the volume's shape {volume.shape}, found {labels.shape}"
        )
    n_slices = volume.shape[0]
    slices = list(axial_slices) if axial_slices is not None else default_axial_slices(volume)
    for k in (*slices, *_mark_slices(marks)):
        if not 0 <= k < n_slices:
            raise OutputError(f"expected slice indices 0 to {n_slices - 1}, found {k}")
    if not slices:
        raise OutputError("expected at least one axial slice to show, found none")

    font = _font(14)
    small = _font(12)
    columns = 2 if len(slices) <= 4 else 3
    grid_rows = math.ceil(len(slices) / columns)
    grid_w = columns * PANEL_PX
    grid_h = grid_rows * (PANEL_PX + CAPTION_PX)
    box = max(CORONAL_BOX_PX, grid_h)
    width = MARGIN_PX * 4 + grid_w + box + SIDE_PX
    height = TITLE_PX + MARGIN_PX * 2 + max(grid_h, box)
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    draw.text((MARGIN_PX, 8), _title(volume, model), fill=TEXT, font=_font(16))

    top = TITLE_PX + MARGIN_PX
    line_labels = {mark.k: mark.label for mark in marks if isinstance(mark, Line)}
    for index, k in enumerate(slices):
        x = MARGIN_PX + (index % columns) * PANEL_PX
        y = top + (index // columns) * (PANEL_PX + CAPTION_PX)
        panel = _axial_panel(volume, labels, k)
        canvas.paste(panel, (x + (PANEL_PX - panel.width) // 2, y))
        caption = f"#{index + 1}  k={k}  z={volume.geometry.z_of_slice(k):.1f} mm"
        if k in line_labels:
            caption += f"  {line_labels[k]}"
        draw.text((x + 4, y + PANEL_PX + 1), caption, fill=MUTED, font=small)

    coronal_x = MARGIN_PX * 2 + grid_w
    _draw_coronal(canvas, volume, labels, (coronal_x, top, box), slices, marks, small)
    _draw_legend(draw, (coronal_x + box + MARGIN_PX, top), text_lines, font, small)
    return canvas


def save_preview(
    path: Path | str,
    volume: CTVolume,
    labels: NDArray[np.integer],
    *,
    axial_slices: Sequence[int] | None = None,
    marks: Sequence[Mark] = (),
    text_lines: Sequence[str] = (),
    model: ModelInfo | None = None,
) -> Path:
    """Render the preview (see :func:`render_preview`) and save it as a PNG at ``path``."""
    image = render_preview(
        volume,
        labels,
        axial_slices=axial_slices,
        marks=marks,
        text_lines=text_lines,
        model=model,
    )
    target = Path(path)
    image.save(target, format="PNG")
    return target


# --- Building blocks ---------------------------------------------------------------------------


def _title(volume: CTVolume, model: ModelInfo | None) -> str:
    parts = ["Habitus body composition"]
    if model is not None:
        parts.append(f"{model.model_id} {model.version}")
    description = volume.source.description if volume.source else "NIfTI input"
    if description:
        parts.append(description)
    k, j, i = volume.shape
    parts.append(f"{k} slices x {j} x {i}, {volume.geometry.spacing[0]:.1f} mm apart")
    return "  |  ".join(parts)


def _window(hu: NDArray[np.integer]) -> NDArray[np.float32]:
    level, width = SOFT_TISSUE_WINDOW
    low = level - width / 2
    return np.clip((hu.astype(np.float32) - low) / width * 255.0, 0.0, 255.0)


_COLOR_TABLE = np.zeros((NUM_LABELS, 3), np.float32)
for _tissue in TISSUE_CLASSES:
    _COLOR_TABLE[_tissue] = COLORS[_tissue]


def _overlay(hu: NDArray[np.integer], labels: NDArray[np.integer]) -> NDArray[np.uint8]:
    """Grey-scale HU with the class colours blended in where a class is present."""
    grey = _window(hu)[..., np.newaxis].repeat(3, axis=-1)
    colour = _COLOR_TABLE[labels]
    alpha = np.where(labels > 0, OVERLAY_ALPHA, 0.0).astype(np.float32)[..., np.newaxis]
    return (grey * (1.0 - alpha) + colour * alpha).round().astype(np.uint8)


def _axial_panel(volume: CTVolume, labels: NDArray[np.integer], k: int) -> Image.Image:
    rgb = _overlay(volume.hu[k], labels[k])
    matrix = volume.geometry.matrix
    if matrix[1, 1] < 0:  # rows run towards anterior: flip so anterior is up
        rgb = rgb[::-1]
    if matrix[0, 2] < 0:  # columns run towards patient right: flip so right is on the left
        rgb = rgb[:, ::-1]
    _, row_mm, col_mm = volume.geometry.spacing
    return _fit(
        Image.fromarray(rgb), rgb.shape[0] * row_mm, rgb.shape[1] * col_mm, (PANEL_PX, PANEL_PX)
    )


def _fit(
    image: Image.Image, height_mm: float, width_mm: float, box: tuple[int, int]
) -> Image.Image:
    """Resize to square millimetres, as large as fits in ``box`` (width, height). Strong
    enlargements use nearest-neighbour so that thick slices stay visible as such."""
    box_w, box_h = box
    scale = min(box_w / width_mm, box_h / height_mm)
    size = (max(1, round(width_mm * scale)), max(1, round(height_mm * scale)))
    enlargement = max(size[0] / image.width, size[1] / image.height)
    method = Image.Resampling.NEAREST if enlargement > 2 else Image.Resampling.BILINEAR
    return image.resize(size, method)


def _body_centre_row(volume: CTVolume, labels: NDArray[np.integer]) -> int:
    body = labels > 0
    if not body.any():
        body = volume.hu > -500
    rows = np.nonzero(body.any(axis=(0, 2)))[0]
    if rows.size == 0:
        return volume.shape[1] // 2
    weights = body.sum(axis=(0, 2))[rows]
    return int(round(float(np.average(rows, weights=weights))))


def _draw_coronal(
    canvas: Image.Image,
    volume: CTVolume,
    labels: NDArray[np.integer],
    place: tuple[int, int, int],
    slices: Sequence[int],
    marks: Sequence[Mark],
    font: ImageFont.ImageFont | ImageFont.FreeTypeFont,
) -> None:
    """The coronal view in a ``box``-sided square at (x0, y0): caption on top, slice ticks on
    the left, mark labels on the right."""
    x0, y0, box = place
    j = _body_centre_row(volume, labels)
    rgb = _overlay(volume.hu[:, j, :], labels[:, j, :])
    geometry = volume.geometry
    head_up = geometry.z_of_slice(0) < geometry.z_of_slice(volume.shape[0] - 1)
    if head_up:  # slice 0 is the most caudal: put the last slice at the top
        rgb = rgb[::-1]
    if geometry.matrix[0, 2] < 0:
        rgb = rgb[:, ::-1]
    slice_mm, _, col_mm = geometry.spacing
    n_slices = volume.shape[0]
    area = (box - TICK_PX - MARK_LABEL_PX, box - CAPTION_PX)
    image = _fit(Image.fromarray(rgb), n_slices * slice_mm, rgb.shape[1] * col_mm, area)
    left = x0 + TICK_PX + (area[0] - image.width) // 2
    top = y0 + CAPTION_PX + (area[1] - image.height) // 2
    canvas.paste(image, (left, top))
    draw = ImageDraw.Draw(canvas, "RGBA")
    draw.text((x0 + TICK_PX, y0), f"coronal through row {j}, head up", fill=MUTED, font=font)

    def row_of(k: int) -> float:
        index = n_slices - 1 - k if head_up else k
        return top + (index + 0.5) * image.height / n_slices

    right = left + image.width
    placed: list[float] = []
    for mark in marks:
        if isinstance(mark, Band):
            y_a, y_b = sorted((row_of(mark.k_start), row_of(mark.k_end)))
            draw.rectangle((left, y_a, right, y_b), fill=(*mark.color, 60), outline=mark.color)
            y_text = y_a
        else:
            y_text = row_of(mark.k)
            draw.line((left, y_text, right, y_text), fill=mark.color, width=2)
        draw.text(
            (right + 6, _free_row(y_text - 7, placed)), mark.label, fill=mark.color, font=font
        )
    ticks: list[float] = []
    for index, k in enumerate(slices):
        y = row_of(k)
        draw.line((left - 10, y, left - 2, y), fill=TICK, width=2)
        draw.text((left - 26, _free_row(y - 7, ticks, 12.0)), f"{index + 1}", fill=TICK, font=font)


def _free_row(y: float, placed: list[float], height: float = 15.0) -> float:
    """The first text row at or below ``y`` that does not overlap a label already placed."""
    for other in sorted(placed):
        if abs(other - y) < height:
            y = other + height
    placed.append(y)
    return y


def _draw_legend(
    draw: ImageDraw.ImageDraw,
    origin: tuple[int, int],
    text_lines: Sequence[str],
    font: ImageFont.ImageFont | ImageFont.FreeTypeFont,
    small: ImageFont.ImageFont | ImageFont.FreeTypeFont,
) -> None:
    x, y = origin
    draw.text((x, y), "Classes", fill=TEXT, font=font)
    y += 22
    for tissue in TISSUE_CLASSES:
        draw.rectangle((x, y + 2, x + 14, y + 16), fill=COLORS[tissue])
        draw.text((x + 22, y), f"{int(tissue)}  {tissue.display_name}", fill=TEXT, font=small)
        y += 20
    y += 10
    for line in text_lines:
        for row in _wrap(_plain(line), small, SIDE_PX - MARGIN_PX):
            draw.text((x, y), row, fill=TEXT, font=small)
            y += 17


def _plain(text: str) -> str:
    """Superscript digits as plain ones: the bundled font has no glyphs for them."""
    return text.translate(str.maketrans("²³", "23"))


def _wrap(
    text: str, font: ImageFont.ImageFont | ImageFont.FreeTypeFont, width_px: int
) -> list[str]:
    """Break ``text`` at spaces into rows no wider than ``width_px``; indent continuations."""
    rows: list[str] = []
    row = ""
    for word in text.split(" "):
        candidate = f"{row} {word}" if row else word
        if row and font.getlength(candidate) > width_px:
            rows.append(row)
            row = "   " + word
        else:
            row = candidate
    return [*rows, row]


def _mark_slices(marks: Sequence[Mark]) -> list[int]:
    slices: list[int] = []
    for mark in marks:
        slices += [mark.k_start, mark.k_end] if isinstance(mark, Band) else [mark.k]
    return slices


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)
