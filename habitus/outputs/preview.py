"""A one-page PNG to check a segmentation at a glance.

Layout: a title line (model, series, no patient identifiers); a grid of axial slices in the
soft-tissue window with the classes overlaid; a coronal overview through the body centre,
head up, with the axial levels ticked and the analytics' marks (lines such as L3, bands such
as the waist); a legend and an optional block of text (numbers from the analytics). The
limbs that the trunk measures exclude (``habitus.outputs.preview_limbs``) are hatched on
every view, as the legend shows. When the analysis measured PET uptake, each axial slice
has the same slice with the PET's SUVbw fused over it beside it (``habitus.outputs.preview_pet``,
not hatched so that the uptake stays visible), and the legend gains the colour bar.

The coronal view keeps true aspect unless the scan is so short that its marks would crowd:
it is then stretched head to foot, and its caption says by how much. Labels of marks and
ticks stack beside the view with leader lines to their levels; every text is fitted to its
box (``habitus.outputs.preview_text``), and the image grows to hold the whole text block.
Images follow the radiological convention: patient's right on the viewer's left, anterior up
in axial slices.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw
from scipy import ndimage as ndi

from habitus.errors import OutputError
from habitus.labels import COLORS, NUM_LABELS, TISSUE_CLASSES
from habitus.outputs.preview_limbs import excluded_limbs
from habitus.outputs.preview_pet import COLORBAR_HEIGHT_PX, draw_colorbar, fuse
from habitus.outputs.preview_text import Box, draw_fitted, ellipsize, font, spread, wrap
from habitus.pet.sample import SuvImage
from habitus.segment.base import ModelInfo
from habitus.volume import CTVolume

RGB = tuple[int, int, int]
Pixel = TypeVar("Pixel", bound=np.generic)

SOFT_TISSUE_WINDOW = (40.0, 400.0)  # level, width (HU)
OVERLAY_ALPHA = 0.45
PANEL_PX = 256  # side of one axial panel
CORONAL_BOX_PX = 512  # the coronal view fits in a square of this side (or the grid's height)
CORONAL_MIN_HEIGHT_PX = 160  # a shorter coronal view is stretched head to foot to this
SIDE_PX = 300  # legend and text column
MARGIN_PX = 12
TEXT_WIDTH_PX = SIDE_PX - MARGIN_PX  # the text block's rows end a margin before the edge
TITLE_PX = 34
CAPTION_PX = 18
TICK_PX = 30  # left of the coronal view: numbered ticks at the axial levels
MARK_LABEL_PX = 90  # right of the coronal view: labels of lines and bands
LEADER_PX = 14  # room for the leader line between a level and its label
LABEL_ROW_PX = 15  # height of one stacked label
TEXT_ROW_PX = 17  # height of one row of the text block
LEGEND_ROW_PX = 20
LEGEND_HEAD_PX = 22
SWATCH_PX = 15

TITLE_SIZE, HEADING_SIZE, LABEL_SIZE, MIN_SIZE = 16, 14, 12, 9  # font sizes; text shrinks to MIN

BACKGROUND: RGB = (16, 16, 20)
TEXT: RGB = (235, 235, 235)
MUTED: RGB = (150, 150, 160)
TICK: RGB = (120, 200, 255)
LIMB_COLOR: RGB = (255, 0, 255)  # the hatching of excluded limbs; no class uses it
HATCH_PERIOD_PX, HATCH_WIDTH_PX = 6, 2
LIMB_LEGEND = "Limbs (excluded from trunk measures)"


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
    limbs: NDArray[np.bool_] | None = None,
    pet: SuvImage | None = None,
) -> Image.Image:
    """The preview image; ``axial_slices`` default to four evenly spaced levels. ``limbs``,
    the voxels the trunk measures exclude, is found from ``labels`` when not given. ``pet``,
    the measured PET, adds a fused panel beside each axial slice and its colour bar."""
    if labels.shape != volume.shape:
        raise OutputError(
            f"expected a label map of the volume's shape {volume.shape}, found {labels.shape}"
        )
    if limbs is not None and limbs.shape != volume.shape:
        raise OutputError(
            f"expected a limb mask of the volume's shape {volume.shape}, found {limbs.shape}"
        )
    n_slices = volume.shape[0]
    slices = list(axial_slices) if axial_slices is not None else default_axial_slices(volume)
    for k in (*slices, *_mark_slices(marks)):
        if not 0 <= k < n_slices:
            raise OutputError(f"expected slice indices 0 to {n_slices - 1}, found {k}")
    if not slices:
        raise OutputError("expected at least one axial slice to show, found none")
    if limbs is None:
        limbs = excluded_limbs(volume, labels)

    small = font(LABEL_SIZE)
    text_rows = [row for line in text_lines for row in wrap(_plain(line), small, TEXT_WIDTH_PX)]
    # With PET each slice takes a row: the CT panel, then the fused panel beside it.
    panels = [(k, fused) for k in slices for fused in ((False, True) if pet else (False,))]
    columns = 2 if len(slices) <= 4 or pet else 3
    grid_rows = math.ceil(len(panels) / columns)
    grid_w = columns * PANEL_PX
    grid_h = grid_rows * (PANEL_PX + CAPTION_PX)
    box = max(CORONAL_BOX_PX, grid_h)
    width = MARGIN_PX * 4 + grid_w + box + SIDE_PX
    legend_h = _legend_height(len(text_rows)) + (COLORBAR_HEIGHT_PX + 10 if pet else 0)
    height = TITLE_PX + MARGIN_PX * 2 + max(grid_h, box, legend_h)
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    title_box = Box(MARGIN_PX, 8, width - 2 * MARGIN_PX, TITLE_PX - 8)
    draw_fitted(draw, _title(volume, model), title_box, TEXT, TITLE_SIZE, MIN_SIZE + 2)

    top = TITLE_PX + MARGIN_PX
    line_labels = {mark.k: mark.label for mark in marks if isinstance(mark, Line)}
    for index, (k, fused) in enumerate(panels):
        x = MARGIN_PX + (index % columns) * PANEL_PX
        y = top + (index // columns) * (PANEL_PX + CAPTION_PX)
        if fused and pet is not None:
            panel = _fused_panel(volume, pet, k)
        else:
            panel = _axial_panel(volume, labels, limbs, k)
        canvas.paste(panel, (x + (PANEL_PX - panel.width) // 2, y))
        number = slices.index(k) + 1
        caption = f"#{number}  k={k}  z={volume.geometry.z_of_slice(k):.1f} mm"
        if fused:
            caption = f"#{number}  PET SUVbw  z={volume.geometry.z_of_slice(k):.1f} mm"
        if k in line_labels:
            caption += f"  {line_labels[k]}"
        caption_box = Box(x + 4, y + PANEL_PX + 1, PANEL_PX - 8, CAPTION_PX - 1)
        draw_fitted(draw, caption, caption_box, MUTED, LABEL_SIZE, MIN_SIZE)

    coronal_x = MARGIN_PX * 2 + grid_w
    _draw_coronal(canvas, volume, labels, limbs, (coronal_x, top, box), slices, marks)
    _draw_legend(canvas, (coronal_x + box + MARGIN_PX, top), text_rows, pet)
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
    limbs: NDArray[np.bool_] | None = None,
    pet: SuvImage | None = None,
) -> Path:
    """Render the preview (see :func:`render_preview`) and save it as a PNG at ``path``."""
    image = render_preview(
        volume,
        labels,
        axial_slices=axial_slices,
        marks=marks,
        text_lines=text_lines,
        model=model,
        limbs=limbs,
        pet=pet,
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


def _hatch(image: Image.Image, mask: NDArray[np.bool_]) -> Image.Image:
    """``image`` with ``mask`` (on the grid the image was resized from) hatched and outlined
    in the limb colour, at display resolution so the stripes look the same on every view."""
    if not mask.any():
        return image
    scaled = Image.fromarray(mask.astype(np.uint8) * 255).resize(
        image.size, Image.Resampling.NEAREST
    )
    shown = np.asarray(scaled) > 0
    rows, cols = np.indices(shown.shape)
    stripes = (rows + cols) % HATCH_PERIOD_PX < HATCH_WIDTH_PX
    edge = shown & ~ndi.binary_erosion(shown)
    pixels = np.array(image)
    pixels[(shown & stripes) | edge] = LIMB_COLOR
    return Image.fromarray(pixels)


def _axial_panel(
    volume: CTVolume, labels: NDArray[np.integer], limbs: NDArray[np.bool_], k: int
) -> Image.Image:
    rgb, mask = _oriented(volume, _overlay(volume.hu[k], labels[k])), _oriented(volume, limbs[k])
    return _hatch(_axial_fit(volume, rgb), mask)


def _fused_panel(volume: CTVolume, pet: SuvImage, k: int) -> Image.Image:
    """Slice ``k`` in the soft-tissue window with the PET's SUVbw sampled at its pixels."""
    suv = pet.on_ct_slice(volume.geometry, k, (volume.shape[1], volume.shape[2]))
    return _axial_fit(volume, _oriented(volume, fuse(_window(volume.hu[k]), suv)))


def _oriented(volume: CTVolume, image: NDArray[Pixel]) -> NDArray[Pixel]:
    """An axial slice (rows, columns, ...) turned to anterior up, patient right on the left."""
    matrix = volume.geometry.matrix
    if matrix[1, 1] < 0:  # rows run towards anterior: flip so anterior is up
        image = image[::-1]
    if matrix[0, 2] < 0:  # columns run towards patient right: flip so right is on the left
        image = image[:, ::-1]
    return image


def _axial_fit(volume: CTVolume, rgb: NDArray[np.generic]) -> Image.Image:
    _, row_mm, col_mm = volume.geometry.spacing
    height_mm, width_mm = rgb.shape[0] * row_mm, rgb.shape[1] * col_mm
    return _fit(Image.fromarray(rgb), height_mm, width_mm, (PANEL_PX, PANEL_PX))


def _fit(
    image: Image.Image, height_mm: float, width_mm: float, box: tuple[int, int]
) -> Image.Image:
    """Resize to square millimetres, as large as fits in ``box`` (width, height). Strong
    enlargements use nearest-neighbour so that thick slices stay visible as such."""
    box_w, box_h = box
    scale = min(box_w / width_mm, box_h / height_mm)
    size = (max(1, round(width_mm * scale)), max(1, round(height_mm * scale)))
    return _resize(image, size)


def _resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
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


@dataclass(frozen=True)
class _Label:
    """A text beside the coronal view, wanted at height ``y`` where its level is."""

    y: float
    text: str
    color: RGB


def _draw_coronal(
    canvas: Image.Image,
    volume: CTVolume,
    labels: NDArray[np.integer],
    limbs: NDArray[np.bool_],
    place: tuple[int, int, int],
    slices: Sequence[int],
    marks: Sequence[Mark],
) -> None:
    """The coronal view in a ``box``-sided square at (x0, y0): caption on top, slice ticks on
    the left, mark labels on the right."""
    x0, y0, box = place
    j = _body_centre_row(volume, labels)
    rgb, mask = _overlay(volume.hu[:, j, :], labels[:, j, :]), limbs[:, j, :]
    geometry = volume.geometry
    head_up = geometry.z_of_slice(0) < geometry.z_of_slice(volume.shape[0] - 1)
    if head_up:  # slice 0 is the most caudal: put the last slice at the top
        rgb, mask = rgb[::-1], mask[::-1]
    if geometry.matrix[0, 2] < 0:
        rgb, mask = rgb[:, ::-1], mask[:, ::-1]
    slice_mm, _, col_mm = geometry.spacing
    n_slices = volume.shape[0]
    area = (box - TICK_PX - MARK_LABEL_PX, box - CAPTION_PX)
    image = _fit(Image.fromarray(rgb), n_slices * slice_mm, rgb.shape[1] * col_mm, area)
    caption = f"coronal through row {j}, head up"
    if image.height < CORONAL_MIN_HEIGHT_PX:  # a short scan: room between its levels
        stretch = CORONAL_MIN_HEIGHT_PX / image.height
        image = _resize(image, (image.width, CORONAL_MIN_HEIGHT_PX))
        caption += f", height x{stretch:.1f}"
    image = _hatch(image, mask)
    left = x0 + TICK_PX + (area[0] - image.width) // 2
    top = y0 + CAPTION_PX + (area[1] - image.height) // 2
    canvas.paste(image, (left, top))
    draw = ImageDraw.Draw(canvas, "RGBA")
    caption_box = Box(x0 + TICK_PX, y0, box - TICK_PX, CAPTION_PX)
    draw_fitted(draw, caption, caption_box, MUTED, LABEL_SIZE, MIN_SIZE)

    def row_of(k: int) -> float:
        index = n_slices - 1 - k if head_up else k
        return top + (index + 0.5) * image.height / n_slices

    right = left + image.width
    mark_labels: list[_Label] = []
    for mark in marks:
        if isinstance(mark, Band):
            y_a, y_b = sorted((row_of(mark.k_start), row_of(mark.k_end)))
            draw.rectangle((left, y_a, right, y_b), fill=(*mark.color, 60), outline=mark.color)
            mark_labels.append(_Label(y_a, mark.label, mark.color))
        else:
            y = row_of(mark.k)
            draw.line((left, y, right, y), fill=mark.color, width=2)
            mark_labels.append(_Label(y, mark.label, mark.color))
    rows = (y0 + CAPTION_PX, y0 + box)
    _draw_labels(draw, mark_labels, (right, right + LEADER_PX, x0 + box), rows, "lm")
    ticks = [_Label(row_of(k), f"{index + 1}", TICK) for index, k in enumerate(slices)]
    for tick in ticks:
        draw.line((left - 8, tick.y, left - 2, tick.y), fill=TICK, width=2)
    _draw_labels(draw, ticks, (left - 8, left - 12, x0), rows, "rm")


def _draw_labels(
    draw: ImageDraw.ImageDraw,
    labels: Sequence[_Label],
    columns: tuple[float, float, float],
    rows: tuple[float, float],
    anchor: str,
) -> None:
    """Labels stacked without overlap in a column, each joined to its level by a leader.

    ``columns``: where leaders start (the view's edge), where the text is anchored, and the
    far edge of the column; ``anchor`` "lm" writes rightward from the anchor, "rm" leftward.
    Labels beyond what the column's height holds are left out, their levels still drawn.
    """
    start, at, edge = columns
    face = font(LABEL_SIZE)
    centres = spread([label.y for label in labels], LABEL_ROW_PX, rows[0], rows[1])
    for label, centre in zip(labels, centres, strict=True):
        if centre is None:
            continue
        text = ellipsize(label.text, face, abs(edge - at))
        leader_end = at - 2 if anchor == "lm" else at + 2
        draw.line((start, label.y, leader_end, centre), fill=label.color, width=1)
        if text:
            draw.text((at, centre), text, fill=label.color, font=face, anchor=anchor)


def _legend_height(text_rows: int) -> int:
    classes = (len(TISSUE_CLASSES) + 1) * LEGEND_ROW_PX  # the classes and the excluded limbs
    return LEGEND_HEAD_PX + classes + 10 + text_rows * TEXT_ROW_PX


def _draw_legend(
    canvas: Image.Image,
    origin: tuple[int, int],
    text_rows: Sequence[str],
    pet: SuvImage | None = None,
) -> None:
    draw = ImageDraw.Draw(canvas)
    x, y = origin
    small = font(LABEL_SIZE)
    entry_x, entry_w = x + SWATCH_PX + 7, TEXT_WIDTH_PX - SWATCH_PX - 7
    draw_fitted(draw, "Classes", Box(x, y, entry_w, LEGEND_HEAD_PX), TEXT, HEADING_SIZE, MIN_SIZE)
    y += LEGEND_HEAD_PX
    for tissue in TISSUE_CLASSES:
        draw.rectangle((x, y + 2, x + SWATCH_PX - 1, y + SWATCH_PX + 1), fill=COLORS[tissue])
        entry = f"{int(tissue)}  {tissue.display_name}"
        entry_box = Box(entry_x, y, entry_w, LEGEND_ROW_PX)
        draw_fitted(draw, entry, entry_box, TEXT, LABEL_SIZE, MIN_SIZE)
        y += LEGEND_ROW_PX
    swatch = Image.new("RGB", (SWATCH_PX, SWATCH_PX), BACKGROUND)
    canvas.paste(_hatch(swatch, np.ones((SWATCH_PX, SWATCH_PX), dtype=bool)), (x, y + 2))
    limb_box = Box(entry_x, y, entry_w, LEGEND_ROW_PX)
    draw_fitted(draw, LIMB_LEGEND, limb_box, TEXT, LABEL_SIZE, MIN_SIZE)
    y += LEGEND_ROW_PX + 10
    if pet is not None:
        y += draw_colorbar(draw, (x, y), TEXT_WIDTH_PX, pet.description) + 10
    for row in text_rows:
        draw.text((x, y), row, fill=TEXT, font=small)
        y += TEXT_ROW_PX


def _plain(text: str) -> str:
    """Superscript digits as plain ones: the bundled font has no glyphs for them."""
    return text.translate(str.maketrans("²³", "23"))


def _mark_slices(marks: Sequence[Mark]) -> list[int]:
    slices: list[int] = []
    for mark in marks:
        slices += [mark.k_start, mark.k_end] if isinstance(mark, Band) else [mark.k]
    return slices
