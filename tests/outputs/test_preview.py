from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from habitus.errors import OutputError
from habitus.labels import COLORS, TISSUE_CLASSES
from habitus.outputs import preview as pv
from habitus.outputs.preview import Band, Line, Mark, render_preview, save_preview
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
