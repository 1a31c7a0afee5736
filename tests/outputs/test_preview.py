from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from habitus.anatomy import find_anatomy
from habitus.errors import OutputError
from habitus.labels import COLORS, TISSUE_CLASSES
from habitus.outputs import preview as pv
from habitus.outputs.preview import Band, Line, Mark, render_preview, save_preview
from habitus.outputs.preview_limbs import excluded_limbs
from habitus.outputs.preview_text import ELLIPSIS, Box, fit, font, spread, text_size, wrap
from habitus.phantoms.landmark_phantom import build_phantom
from habitus.segment.base import ModelInfo
from habitus.volume import CTVolume, Geometry
from tests.outputs.conftest import direction_rows

MAGENTA = (255, 0, 255)
CYAN = (0, 255, 255)


def _expected_size(n_slices: int) -> tuple[int, int]:
    columns = 2 if n_slices <= 4 else 3
    grid_h = -(-n_slices // columns) * (pv.PANEL_PX + pv.CAPTION_PX)
    box = max(pv.CORONAL_BOX_PX, grid_h)
    width = pv.MARGIN_PX * 4 + columns * pv.PANEL_PX + box + pv.SIDE_PX
    return width, pv.TITLE_PX + pv.MARGIN_PX * 2 + max(grid_h, box)


def _rows_with(image: Image.Image, colour: tuple[int, int, int]) -> NDArray[np.intp]:
    """Rows of the coronal column of the layout that contain ``colour``."""
    pixels = np.asarray(image)
    left = pv.MARGIN_PX * 2 + 2 * pv.PANEL_PX
    region = pixels[:, left : left + pv.CORONAL_BOX_PX]
    return np.nonzero(np.all(region == colour, axis=-1).any(axis=1))[0]


def _reversed(volume: CTVolume) -> CTVolume:
    """The same scan with its slices in the opposite order (head first)."""
    g = volume.geometry
    matrix = g.matrix.copy()
    matrix[:, 0] *= -1
    last = g.slice_position(volume.shape[0] - 1)
    geometry = Geometry(
        spacing=g.spacing,
        origin=(float(last[0]), float(last[1]), float(last[2])),
        direction=direction_rows(matrix),
    )
    return replace(volume, hu=volume.hu[::-1].copy(), geometry=geometry)


def test_default_layout_size_and_content(
    synthetic_volume: CTVolume, synthetic_label_map: NDArray[np.uint8], model: ModelInfo
) -> None:
    image = render_preview(synthetic_volume, synthetic_label_map, model=model)
    assert image.mode == "RGB"
    assert image.size == _expected_size(4)
    pixels = np.asarray(image)
    assert pixels.std() > 20  # not blank
    colours = {tuple(p) for p in pixels.reshape(-1, 3)}
    assert all(COLORS[tissue] in colours for tissue in TISSUE_CLASSES)  # the legend swatches


def test_more_slices_widen_the_grid(
    synthetic_volume: CTVolume, synthetic_label_map: NDArray[np.uint8]
) -> None:
    image = render_preview(
        synthetic_volume, synthetic_label_map, axial_slices=[3, 6, 9, 12, 15, 18]
    )
    assert image.size == _expected_size(6)


def test_overlay_shows_the_classes_on_the_axial_panel(
    synthetic_volume: CTVolume, synthetic_label_map: NDArray[np.uint8]
) -> None:
    k = 12
    image = render_preview(synthetic_volume, synthetic_label_map, axial_slices=[k])
    top = pv.TITLE_PX + pv.MARGIN_PX
    panel = np.asarray(image)[top : top + pv.PANEL_PX, pv.MARGIN_PX : pv.MARGIN_PX + pv.PANEL_PX]
    centre = panel[pv.PANEL_PX // 2, pv.PANEL_PX // 2].astype(float)
    # The centre of the phantom is internal organs: green dominates the blended colour.
    assert centre[1] > centre[0] + 20 and centre[1] > centre[2] + 20


@pytest.mark.parametrize("head_first", [False, True])
def test_coronal_view_has_the_head_up(
    head_first: bool, synthetic_volume: CTVolume, synthetic_label_map: NDArray[np.uint8]
) -> None:
    volume, labels = synthetic_volume, synthetic_label_map
    if head_first:
        volume, labels = _reversed(volume), labels[::-1].copy()
    n = volume.shape[0]
    cranial = int(np.argmax([volume.geometry.z_of_slice(k) for k in range(n)]))
    caudal = n - 1 - cranial
    marks: list[Mark] = [Line(cranial, "top", MAGENTA), Line(caudal, "bottom", CYAN)]
    image = render_preview(volume, labels, marks=marks)
    assert _rows_with(image, MAGENTA).mean() < _rows_with(image, CYAN).mean()


def test_bands_and_lines_are_drawn_and_captioned(
    synthetic_volume: CTVolume, synthetic_label_map: NDArray[np.uint8]
) -> None:
    marks: list[Mark] = [Band(6, 14, "waist", MAGENTA), Line(10, "L3", CYAN)]
    image = render_preview(
        synthetic_volume,
        synthetic_label_map,
        axial_slices=[10],
        marks=marks,
        text_lines=["SMI 41.0 cm2/m2"],
    )
    band_rows, line_rows = _rows_with(image, MAGENTA), _rows_with(image, CYAN)
    assert band_rows.size and line_rows.size
    assert band_rows.min() < line_rows.mean() < band_rows.max()


def test_slices_out_of_range_are_refused(
    synthetic_volume: CTVolume, synthetic_label_map: NDArray[np.uint8]
) -> None:
    n = synthetic_volume.shape[0]
    with pytest.raises(OutputError, match="slice indices"):
        render_preview(synthetic_volume, synthetic_label_map, axial_slices=[n])
    with pytest.raises(OutputError, match="slice indices"):
        render_preview(synthetic_volume, synthetic_label_map, marks=[Band(-1, 3, "x")])
    with pytest.raises(OutputError, match="shape"):
        render_preview(synthetic_volume, synthetic_label_map[1:])


def test_save_preview_writes_a_png(
    petct_volume: CTVolume, petct_labels: NDArray[np.uint8], model: ModelInfo, tmp_path: Path
) -> None:
    path = save_preview(tmp_path / "preview.png", petct_volume, petct_labels, model=model)
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == _expected_size(4)


# --- Excluded limbs, short scans, text that fits ------------------------------------------------

RED, GREEN, BLUE, ORANGE = (250, 10, 10), (10, 250, 10), (10, 10, 250), (250, 150, 10)
ARM_OFFSET_MM = 140.0 + 6.0 + 40.0  # the phantom's arms: trunk radius + gap + arm radius


def _phantom_scan(arms: str, z_lo: float, z_hi: float) -> tuple[NDArray[np.uint8], CTVolume]:
    """A stretch of the anatomy phantom (3 mm pixels and slices): labels and CT."""
    return build_phantom(z_top=max(420.0, z_hi), width_px=160, arms=arms).crop(z_lo, z_hi).volume()


@pytest.fixture(scope="module")
def short_scan_with_arms() -> tuple[NDArray[np.uint8], CTVolume]:
    """27 slices from L4 to L2 (81 mm), arms beside the trunk."""
    return _phantom_scan("apart", 270.0, 350.0)


def _coronal_column(n_axial: int) -> tuple[int, int, int]:
    """(left edge, top, side) of the coronal box for a preview with ``n_axial`` panels."""
    columns = 2 if n_axial <= 4 else 3
    grid_h = -(-n_axial // columns) * (pv.PANEL_PX + pv.CAPTION_PX)
    return (
        pv.MARGIN_PX * 2 + columns * pv.PANEL_PX,
        pv.TITLE_PX + pv.MARGIN_PX,
        max(pv.CORONAL_BOX_PX, grid_h),
    )


def _is(pixels: NDArray[np.uint8], colour: tuple[int, int, int]) -> NDArray[np.bool_]:
    return np.all(pixels == colour, axis=-1)


def _tinted(pixels: NDArray[np.uint8], colour: tuple[int, int, int]) -> NDArray[np.bool_]:
    """Pixels of ``colour`` over the background at half strength or more (anti-aliased text)."""
    background = np.asarray(pv.BACKGROUND, dtype=float)
    towards = np.asarray(colour, dtype=float) - background
    offset = pixels.astype(float) - background
    strength = offset @ towards / float(towards @ towards)
    residual = np.linalg.norm(offset - strength[..., np.newaxis] * towards, axis=-1)
    return (strength > 0.5) & (residual < 24)


def _runs(rows: NDArray[np.intp]) -> list[tuple[int, int]]:
    """Consecutive row indices grouped as (first, last)."""
    runs: list[tuple[int, int]] = []
    for row in rows.tolist():
        if runs and row == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], row)
        else:
            runs.append((row, row))
    return runs


def test_excluded_limbs_are_the_arms_the_trunk_leaves_out(
    short_scan_with_arms: tuple[NDArray[np.uint8], CTVolume],
) -> None:
    labels, volume = short_scan_with_arms
    limbs = excluded_limbs(volume, labels)
    centre = (volume.shape[2] - 1) / 2
    offset = ARM_OFFSET_MM / pv_pixel_mm(volume)
    row = volume.shape[1] // 2
    for column in (round(centre - offset), round(centre + offset)):
        assert limbs[:, row, column].all()
    trunk = slice(round(centre - 130 / 3), round(centre + 130 / 3))
    assert not limbs[:, :, trunk].any()
    # exactly the labelled voxels outside the trunk mask that the metrics measure in
    anatomy = find_anatomy(labels, volume.geometry)
    canonical_labels, canonical_limbs = (anatomy.frame.canonical(a) for a in (labels, limbs))
    full_yx = (volume.shape[1], volume.shape[2])
    for c in range(volume.shape[0]):
        outside = (canonical_labels[c] > 0) & ~anatomy.trunk_slice(c, full_yx)
        assert np.array_equal(canonical_limbs[c], outside)


def pv_pixel_mm(volume: CTVolume) -> float:
    return float(volume.geometry.spacing[2])


def test_excluded_arms_are_hatched_on_the_views_as_in_the_legend(
    short_scan_with_arms: tuple[NDArray[np.uint8], CTVolume],
) -> None:
    labels, volume = short_scan_with_arms
    k = volume.shape[0] // 2
    pixels = np.asarray(render_preview(volume, labels, axial_slices=[k]))
    limb = _is(pixels, pv.LIMB_COLOR)
    top = pv.TITLE_PX + pv.MARGIN_PX
    panel = limb[top : top + pv.PANEL_PX, pv.MARGIN_PX : pv.MARGIN_PX + pv.PANEL_PX]
    # 480 mm of field in 256 px: the arms' centres lie ARM_OFFSET_MM either side of the middle
    half, offset = pv.PANEL_PX // 2, round(ARM_OFFSET_MM * pv.PANEL_PX / 480.0)
    for column in (half - offset, half + offset):
        share = panel[half - 8 : half + 8, column - 8 : column + 8].mean()
        assert 0.2 < share < 0.8  # hatched: stripes over the arm, not a flat fill
    assert not panel[half - 60 : half + 60, half - 60 : half + 60].any()  # the trunk is not
    x0, y0, box = _coronal_column(1)
    coronal = limb[y0 : y0 + box, x0 : x0 + box]
    middle = (pv.TICK_PX + box - pv.MARK_LABEL_PX) // 2
    assert coronal[:, : middle - 100].any() and coronal[:, middle + 100 :].any()
    assert not coronal[:, middle - 60 : middle + 60].any()
    # the legend's swatch: the same hatching, below the seven classes
    legend_x = x0 + box + pv.MARGIN_PX
    swatch_y = y0 + pv.LEGEND_HEAD_PX + len(TISSUE_CLASSES) * pv.LEGEND_ROW_PX + 2
    swatch = limb[swatch_y : swatch_y + pv.SWATCH_PX, legend_x : legend_x + pv.SWATCH_PX]
    assert 0.3 < swatch.mean() < 0.8


def test_no_hatching_without_limbs() -> None:
    labels, volume = _phantom_scan("none", 270.0, 350.0)
    pixels = np.asarray(render_preview(volume, labels))
    x0, _, box = _coronal_column(4)
    assert not _is(pixels[:, : x0 + box], pv.LIMB_COLOR).any()  # drawn in the legend only
    assert _is(pixels[:, x0 + box :], pv.LIMB_COLOR).any()


def test_a_given_limb_mask_is_drawn_and_checked(
    synthetic_volume: CTVolume, synthetic_label_map: NDArray[np.uint8]
) -> None:
    limbs = np.zeros(synthetic_volume.shape, dtype=bool)
    limbs[:, 20:40, 20:40] = True
    image = render_preview(synthetic_volume, synthetic_label_map, axial_slices=[5], limbs=limbs)
    assert _is(np.asarray(image)[:, : pv.MARGIN_PX + pv.PANEL_PX], pv.LIMB_COLOR).any()
    with pytest.raises(OutputError, match="limb mask"):
        render_preview(synthetic_volume, synthetic_label_map, limbs=limbs[1:])


def test_labels_on_a_short_scan_are_apart_joined_to_their_levels_and_inside(
    short_scan_with_arms: tuple[NDArray[np.uint8], CTVolume],
) -> None:
    labels, volume = short_scan_with_arms
    n = volume.shape[0]
    marks: list[Mark] = [
        Band(0, n - 1, "torso", BLUE),
        Band(4, 20, "waist", ORANGE),
        Line(12, "L3", RED),
        Line(13, "middle of the third lumbar vertebra", GREEN),  # one slice above L3
    ]
    axial = [3, 5, 7, 9, 11, 12]
    pixels = np.asarray(render_preview(volume, labels, axial_slices=axial, marks=marks))
    x0, y0, box = _coronal_column(len(axial))
    left = x0 + pv.TICK_PX  # the scan is wide and short: its view fills the box's width
    right = x0 + box - pv.MARK_LABEL_PX
    text_from = right + pv.LEADER_PX
    spans = []
    for mark in marks:
        colour = _is(pixels, mark.color)
        text_rows = np.flatnonzero(_tinted(pixels[:, text_from : x0 + box], mark.color).any(1))
        assert text_rows.size, f"{mark.label}: no label"
        assert y0 + pv.CAPTION_PX <= text_rows.min() and text_rows.max() < y0 + box
        assert not _tinted(pixels[:, x0 + box :], mark.color).any(), f"{mark.label}: too long"
        # a leader crosses every column between the level's end and its label
        assert colour[:, right + 1 : text_from - 3].any(axis=0).all(), f"{mark.label}: no leader"
        spans.append((int(text_rows.min()), int(text_rows.max())))
    spans.sort()
    assert all(a[1] < b[0] for a, b in zip(spans, spans[1:], strict=False)), spans
    # levels one slice apart are drawn as separate lines
    l3, above = (
        np.flatnonzero(_is(pixels[:, left + 5 : right - 5], c).all(axis=1)) for c in (RED, GREEN)
    )
    assert l3.size and above.size and above.max() + 2 < l3.min()
    # six ticks, six separate numbers, all inside the box
    below_caption = y0 + pv.CAPTION_PX
    tick_text = ~_is(pixels[below_caption:, x0 : left - 12], pv.BACKGROUND)
    tick_rows = below_caption + np.flatnonzero(tick_text.any(axis=1))
    assert len(_runs(tick_rows)) == len(axial) and tick_rows.max() < y0 + box


def test_labels_crowded_at_the_bottom_of_a_long_scan_stay_inside() -> None:
    labels, volume = _phantom_scan("none", 0.0, 740.0)  # the view fills the box's height
    colours = [RED, GREEN, BLUE, ORANGE, CYAN, (250, 250, 250)]
    marks: list[Mark] = [Line(2 * i, f"level {2 * i}", c) for i, c in enumerate(colours)]
    pixels = np.asarray(render_preview(volume, labels, axial_slices=[0, 1, 2, 3], marks=marks))
    x0, y0, box = _coronal_column(4)
    for colour in colours:
        drawn = _is(pixels[:, x0 : x0 + box], colour)
        line_row = int(np.argmax(drawn.sum(axis=1)))
        right = int(np.flatnonzero(drawn[line_row]).max()) + 1  # the view's right edge
        text = _tinted(pixels[:, x0 + right + pv.LEADER_PX : x0 + box], colour)
        rows = np.flatnonzero(text.any(axis=1))
        assert rows.size and rows.max() < y0 + box, colour
    left = x0 + int(np.flatnonzero(drawn[line_row]).min())
    below_caption = y0 + pv.CAPTION_PX
    tick_text = ~_is(pixels[below_caption:, x0 : left - 12], pv.BACKGROUND)
    tick_rows = below_caption + np.flatnonzero(tick_text.any(axis=1))
    assert len(_runs(tick_rows)) == 4 and tick_rows.max() < y0 + box


def test_long_texts_fit_their_boxes(
    synthetic_volume: CTVolume, synthetic_label_map: NDArray[np.uint8], model: ModelInfo
) -> None:
    assert synthetic_volume.source is not None
    source = replace(synthetic_volume.source, description="Thorax abdomen pelvis " * 20)
    volume = replace(synthetic_volume, source=source)
    text = [
        "waist " + "x" * 400,
        *[f"line {i}: SMI 41.0 cm²/m², BFI 4.1 cm²/kg" for i in range(60)],
    ]
    image = render_preview(
        volume,
        synthetic_label_map,
        axial_slices=[10],
        marks=[Line(10, "L3 " + "long label " * 20, CYAN)],
        text_lines=text,
        model=model,
    )
    pixels = np.asarray(image)
    drawn = ~_is(pixels, pv.BACKGROUND)
    assert not drawn[:, -pv.MARGIN_PX :].any()  # title and text block end before the edge
    assert not drawn[-pv.MARGIN_PX :].any()  # the text block ends above the bottom
    assert image.height > _expected_size(1)[1]  # the image grew to hold all 61 lines
    top = pv.TITLE_PX + pv.MARGIN_PX
    caption_strip = drawn[top + pv.PANEL_PX : top + pv.PANEL_PX + pv.CAPTION_PX]
    assert caption_strip[:, pv.MARGIN_PX : pv.MARGIN_PX + pv.PANEL_PX].any()
    beside = pv.MARGIN_PX + pv.PANEL_PX  # the empty second column of the grid
    assert not caption_strip[:, beside : beside + pv.PANEL_PX].any()
    x0, _, box = _coronal_column(1)
    assert not _tinted(pixels[:, x0 + box :], CYAN).any()  # the label stays in its column


@pytest.mark.parametrize(
    "text", ["L3", "average skeletal muscle area in the waist " * 4, "x" * 300, ""]
)
def test_fit_shrinks_then_ellipsizes(text: str) -> None:
    box = Box(0, 0, 120, 16)
    shown, face = fit(text, box, 12, 9)
    width, height = text_size(shown, face)
    assert width <= box.width and height <= box.height
    if text_size(text, font(9))[0] <= box.width:
        assert shown == text
    else:
        assert shown.endswith(ELLIPSIS) and text.startswith(shown[:-1].rstrip())


def test_wrap_keeps_every_character_within_the_width() -> None:
    face = font(12)
    text = "waist (instances 42-84): " + "y" * 120 + " average SMA 144.8 cm2, SMI 47.29"
    rows = wrap(text, face, 150)
    assert len(rows) > 3
    assert all(text_size(row, face)[0] <= 150 for row in rows)
    assert "".join(rows).replace(" ", "") == text.replace(" ", "")


def test_spread_stacks_labels_apart_inside_the_range() -> None:
    assert spread([50.0], 15, 0, 100) == [50.0]
    centres = spread([40.0, 41.0, 42.0, 99.0], 15, 0, 100)
    placed = [c for c in centres if c is not None]
    assert len(placed) == 4
    assert all(7.5 <= c <= 92.5 for c in placed)  # whole labels inside 0..100
    ordered = sorted(placed)
    assert all(b - a >= 15 - 1e-9 for a, b in zip(ordered, ordered[1:], strict=False))
    assert centres[0] is not None and centres[1] is not None and centres[0] < centres[1]
    assert spread([10.0] * 8, 15, 0, 100)[6:] == [None, None]  # six fit: the rest thinned out
