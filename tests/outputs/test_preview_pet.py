"""The PET in the preview: SUVbw sampled at the CT's pixels, fused panels beside the axial
slices, the colour bar; and a preview without PET exactly as before."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from habitus.labels import Tissue
from habitus.outputs import preview as pv
from habitus.outputs import preview_pet as pp
from habitus.outputs.preview import Band, Line, render_preview
from habitus.pet.sample import SuvImage
from habitus.phantoms.pet import PetHeader, pet_image
from habitus.pipeline import AnalysisOptions, AnalysisResult, analyze
from habitus.segment.base import ModelInfo
from habitus.volume import CTVolume, Geometry
from tests.pet.study import Study, add_pet, write_ct
from tests.segment.known_labels import KnownLabels

HOT_ORGAN_SUV = 8.0  # the internal organs: far above the scale's top
COLD_SUV = 0.2  # every other class: below the floor, so the PET leaves it clear
SLICE = 12
# SHA-256 of the pixels of the CT-only preview of ``_ct_only`` as drawn before PET was shown.
CT_ONLY_PIXELS_SHA256 = "3637f6b2dd9450bcf7ad82090d588c9af58f71339488954730ea8728fc66f9e7"


def _suv_image(volume: CTVolume, labels: NDArray[np.uint8]) -> SuvImage:
    """A PET of twice the CT's voxel size: hot organs, everything else cold."""
    uptake = {tissue: COLD_SUV for tissue in Tissue if tissue != Tissue.BACKGROUND}
    uptake[Tissue.IO] = HOT_ORGAN_SUV
    values, geometry = pet_image(labels, volume.geometry, uptake, per_unit=1.0, noise=0.0)
    return SuvImage(values, geometry, "PET WB AC test")


def _panels(image: Image.Image) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """The CT panel and the fused panel of the first row of the grid."""
    pixels = np.asarray(image)
    top = pv.TITLE_PX + pv.MARGIN_PX
    rows = slice(top, top + pv.PANEL_PX)
    ct = pixels[rows, pv.MARGIN_PX : pv.MARGIN_PX + pv.PANEL_PX]
    fused = pixels[rows, pv.MARGIN_PX + pv.PANEL_PX : pv.MARGIN_PX + 2 * pv.PANEL_PX]
    return ct, fused


def _on_panel(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """A mask of one 64 x 64 synthetic slice on its 256-pixel panel (no flips: rows run
    posterior, columns to the patient's left)."""
    scale = pv.PANEL_PX // mask.shape[0]
    return np.repeat(np.repeat(mask, scale, axis=0), scale, axis=1)


def test_suv_is_sampled_trilinearly_at_the_ct_pixel_centres() -> None:
    """A linear field is reproduced exactly by trilinear interpolation: each CT pixel gets the
    field's value at its own patient position, and no value where the PET does not reach."""
    ct = Geometry((2.0, 0.8, 0.8), (-20.0, -30.0, -50.0))
    pet = Geometry((4.0, 3.0, 3.0), (-21.0, -31.5, -52.0))
    field = np.asarray([0.01, 0.02, 0.03])  # SUV per mm along x, y, z

    def linear(points: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.asarray(1.0 + field @ points)

    k, j, i = np.indices((20, 20, 20)).reshape(3, -1)
    centres = (pet.affine @ np.vstack([k, j, i, np.ones_like(k)]))[:3]
    suv = SuvImage(linear(centres).reshape(20, 20, 20).astype(np.float32), pet)
    sampled = suv.on_ct_slice(ct, 5, (90, 90))
    rows, columns = np.indices((90, 90)).reshape(2, -1)
    points = (ct.affine @ np.vstack([np.full_like(rows, 5), rows, columns, np.ones_like(rows)]))[:3]
    expected = linear(points).reshape(90, 90)
    pet_box = pet.affine @ np.asarray([[-0.5, 19.5]] * 3 + [[1.0, 1.0]])
    inside = np.all(
        (points >= pet_box[:3, :1] - 1e-9) & (points <= pet_box[:3, 1:] + 1e-9), axis=0
    ).reshape(90, 90)
    assert inside.any() and not inside.all()
    # within the outer voxel centres the field is exact; in the last half voxel it is held
    core = np.all(
        (points >= pet.affine[:3, 3:4]) & (points <= (pet.affine @ [19, 19, 19, 1])[:3, None]),
        axis=0,
    ).reshape(90, 90)
    np.testing.assert_allclose(sampled[core], expected[core], rtol=1e-5, atol=1e-5)
    assert np.isfinite(sampled[inside]).all()
    assert np.isnan(sampled[~inside]).all()


def test_fused_panel_shows_the_hot_organ_in_the_colour_maps_high_end(
    synthetic_volume: CTVolume, synthetic_label_map: NDArray[np.uint8], model: ModelInfo
) -> None:
    pet = _suv_image(synthetic_volume, synthetic_label_map)
    image = render_preview(
        synthetic_volume, synthetic_label_map, axial_slices=[SLICE], model=model, pet=pet
    )
    ct_panel, fused = _panels(image)
    suv = pet.on_ct_slice(synthetic_volume.geometry, SLICE, synthetic_volume.shape[1:])
    grey = np.clip((synthetic_volume.hu[SLICE].astype(np.float32) + 160.0) / 400.0 * 255.0, 0, 255)

    saturated = _on_panel(suv >= pp.SUV_MAX)
    assert saturated.sum() > 500  # the organs' core, not just a rim
    top = pp.hot(np.asarray([1.0]))[0]  # white: the scale's top
    expected = top * pp.ALPHA_HIGH + _on_panel(grey)[..., None] * (1.0 - pp.ALPHA_HIGH)
    assert np.abs(fused[saturated].astype(float) - expected[saturated]).max() <= 1.0
    # the CT-only panel shows the organs' class colour there, not the PET's white
    assert (np.abs(ct_panel[saturated].astype(int) - fused[saturated]).sum(axis=-1) > 60).all()

    clear = _on_panel(np.nan_to_num(suv, nan=0.0) < pp.SUV_FLOOR)
    assert clear.sum() > 5000  # air and the cold tissues
    shown = np.repeat(_on_panel(grey).round()[..., None], 3, axis=-1)
    assert (fused[clear] == shown[clear]).all()  # below the floor the CT is untouched


def test_colour_bar_and_its_labels_stay_in_their_place() -> None:
    """Everything the colour bar draws lies in its column, ticks and end labels included."""
    width, height = pv.TEXT_WIDTH_PX, pp.COLORBAR_HEIGHT_PX
    canvas = Image.new("RGB", (width + 40, height + 40), pv.BACKGROUND)
    used = pp.draw_colorbar(ImageDraw.Draw(canvas), (20, 20), width, "PET WB AC " * 8)
    assert used == height
    pixels = np.asarray(canvas)
    drawn = np.any(pixels != pv.BACKGROUND, axis=-1)
    box = np.zeros_like(drawn)
    box[20 : 20 + height, 20 : 20 + width] = True
    assert drawn.any() and not (drawn & ~box).any()
    # the bar runs from the scale's bottom (black) to its top (white), left to right
    bar_row = pixels[20 + pp.HEAD_PX + pp.ROW_PX + pp.BAR_PX // 2, 20:-20]
    ramp = [tuple(p) for p in bar_row if tuple(p) != pv.BACKGROUND]
    assert (0, 0, 0) in ramp[:3] and (255, 255, 255) in ramp[-3:]
    # tick labels under the bar: text in the rows below it, at both ends
    labels = drawn[20 + pp.HEAD_PX + pp.ROW_PX + pp.BAR_PX + 4 : 20 + height - pp.ROW_PX]
    columns = np.nonzero(labels.any(axis=0))[0]
    assert columns.min() < 20 + 20 and columns.max() > 20 + width - 20


def test_preview_with_pet_draws_the_colour_bar_inside_the_image(
    synthetic_volume: CTVolume, synthetic_label_map: NDArray[np.uint8], model: ModelInfo
) -> None:
    pet = _suv_image(synthetic_volume, synthetic_label_map)
    lines = [f"row {n} of the numbers, long enough to wrap over two rows" for n in range(20)]
    image = render_preview(
        synthetic_volume, synthetic_label_map, text_lines=lines, model=model, pet=pet
    )
    pixels = np.asarray(image)
    side = (
        pv.MARGIN_PX * 3
        + 2 * pv.PANEL_PX
        + max(pv.CORONAL_BOX_PX, 4 * (pv.PANEL_PX + pv.CAPTION_PX))
    )
    column = pixels[:, side:]
    white = np.nonzero(np.all(column == (255, 255, 255), axis=-1).any(axis=1))[0]
    assert white.size  # the bar's top end
    bottom_text = np.nonzero(np.all(column == pv.TEXT, axis=-1).any(axis=1))[0].max()
    assert bottom_text < image.height - pv.MARGIN_PX // 2  # the last row of numbers fits below
    # four slices, each with its fused panel beside it: four rows of two panels
    assert image.height >= pv.TITLE_PX + 4 * (pv.PANEL_PX + pv.CAPTION_PX)


def _ct_only(volume: CTVolume, labels: NDArray[np.uint8], model: ModelInfo) -> Image.Image:
    return render_preview(
        volume,
        labels,
        axial_slices=[8, 12, 16],
        marks=[Band(8, 16, "waist"), Line(12, "L3")],
        text_lines=["SMI 47.2 cm²/m²", "a b c"],
        model=model,
    )


def test_preview_without_pet_is_unchanged(
    synthetic_volume: CTVolume, synthetic_label_map: NDArray[np.uint8], model: ModelInfo
) -> None:
    pixels = np.asarray(_ct_only(synthetic_volume, synthetic_label_map, model))
    assert hashlib.sha256(pixels.tobytes()).hexdigest() == CT_ONLY_PIXELS_SHA256


# --- Through the pipeline ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def ct(tmp_path_factory: pytest.TempPathFactory) -> Study:
    return write_ct(tmp_path_factory.mktemp("petct-preview"))


def _analyse(ct: Study, out: Path, header: PetHeader | None) -> AnalysisResult:
    study = Study(out, ct.labels, ct.geometry)
    if header is not None:
        add_pet(study, header)
    sources = [ct.root / "ct", *sorted(out.glob("pet*"))]
    return analyze(sources, out / "out", AnalysisOptions(), segmenter=KnownLabels(ct.labels))


def test_pipeline_preview_shows_the_measured_pet_and_not_a_refused_one(
    ct: Study, tmp_path: Path
) -> None:
    ct_only = _analyse(ct, tmp_path / "ct", None)
    refused = _analyse(ct, tmp_path / "refused", PetHeader(dose_bq=None))
    measured = _analyse(ct, tmp_path / "measured", PetHeader())
    assert refused.report.pet is not None and refused.report.pet.refusal == "dose_missing"
    assert measured.report.pet is not None and measured.report.pet.analysed

    plain = np.asarray(Image.open(ct_only.files["preview"]))
    assert np.array_equal(np.asarray(Image.open(refused.files["preview"])), plain)
    with_pet = Image.open(measured.files["preview"])
    assert with_pet.size != Image.open(ct_only.files["preview"]).size
    ct_panel, fused = _panels(with_pet)
    # the fused panel holds the PET's colours: red dominates where the CT panel has none
    warm = (fused[..., 0].astype(int) - fused[..., 2]) > 60
    assert warm.sum() > 1000
    assert not np.array_equal(ct_panel, fused)
