"""Quality checks: each one triggered on purpose, and quiet on a clean scan."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from habitus.labels import Tissue
from habitus.metrics import BodyComposition, QualityCheck, compute_body_composition
from habitus.outputs.report import PatientInfo
from habitus.phantoms.landmark_phantom import Phantom, build_phantom
from tests.anatomy.real_data import petct, upper_abdomen

PATIENT = PatientInfo(height_cm=175.0, weight_kg=70.0, sex="M")


@pytest.fixture(scope="module")
def abdomen() -> Phantom:
    return build_phantom(z_top=480.0).crop(180.0, 480.0)


@pytest.fixture(scope="module")
def clean(abdomen: Phantom) -> BodyComposition:
    labels, volume = abdomen.volume()
    return compute_body_composition(labels, volume, PATIENT)


def _check(result: BodyComposition, name: str) -> QualityCheck:
    return next(c for c in result.quality.checks if c.name == name)


def _with_hu(abdomen: Phantom, change: object) -> BodyComposition:
    assert callable(change)
    hu = abdomen.hu()
    change(hu)
    labels, volume = abdomen.volume(hu=hu)
    return compute_body_composition(labels, volume, PATIENT)


def test_clean_scan_passes_the_scan_checks(clean: BodyComposition) -> None:
    for name in (
        "slice_thickness",
        "waist_coverage",
        "l3_coverage",
        "fov_truncation",
        "arms_in_field",
        "contrast",
        "metal",
        "tissue_balance",
        "landmark_consistency",
        "landmark_confidence",
    ):
        assert _check(clean, name).status == "pass", _check(clean, name).message
    # the crop leaves out the shoulders and the bottom of the pelvis
    assert _check(clean, "torso_coverage").status == "warn"
    assert clean.quality.review_required
    assert clean.quality.review_reasons == [_check(clean, "torso_coverage").message]


def test_thick_slices_warn(abdomen: Phantom) -> None:
    labels, volume = abdomen.volume()
    result = compute_body_composition(labels, replace(volume, slice_thickness_mm=7.0), PATIENT)
    check = _check(result, "slice_thickness")
    assert check.status == "warn" and check.value == 7.0
    assert check.message in result.quality.review_reasons


def test_body_cut_by_the_field_of_view_warns() -> None:
    narrow = build_phantom(z_top=480.0, width_px=90).crop(180.0, 480.0)  # 270 mm < 280 mm
    labels, volume = narrow.volume()
    check = _check(compute_body_composition(labels, volume, PATIENT), "fov_truncation")
    assert check.status == "warn" and check.value and check.value > 0


def test_arms_beside_the_waist_warn() -> None:
    with_arms = build_phantom(z_top=420.0, width_px=160, arms="apart").crop(180.0, 420.0)
    labels, volume = with_arms.volume()
    result = compute_body_composition(labels, volume, PATIENT)
    assert _check(result, "arms_in_field").status == "warn"
    assert result.waist.available  # the arms were left out, not mistaken for ribs


def test_enhanced_aorta_warns_of_contrast(abdomen: Phantom) -> None:
    aorta = abdomen.aorta()

    def enhance(hu: np.ndarray) -> None:
        hu[:, aorta] = np.where(abdomen.labels[:, aorta] == Tissue.IO, 250, hu[:, aorta])

    result = _with_hu(abdomen, enhance)
    check = _check(result, "contrast")
    assert check.status == "warn"
    assert check.value is not None and 150.0 < check.value <= 250.0
    assert check.message in result.quality.review_reasons
    # the evidence says where: the slices, and the vertebrae beside them where named
    assert result.contrast is not None and result.contrast.phase == "arterial"
    aorta = result.contrast.evidence[0]
    assert aorta.structure == "aorta" and aorta.median_hu == 250.0
    assert aorta.levels is not None and "L3" in str(result.summary_lines)
    assert any(
        line.startswith("contrast: arterial (aorta 250 HU at ") for line in result.summary_lines
    )


def test_metal_in_the_measured_slices_warns(abdomen: Phantom, clean: BodyComposition) -> None:
    assert clean.l3.slice_index is not None
    k = clean.l3.slice_index

    def implant(hu: np.ndarray) -> None:
        hu[k - 1 : k + 2, 40:44, 50:54] = 3071  # a 12 x 12 x 9 mm screw head

    check = _check(_with_hu(abdomen, implant), "metal")
    assert check.status == "warn"
    assert check.value == pytest.approx(3 * 16 * 27 / 1000.0, abs=0.01)


def test_no_muscle_is_an_implausible_balance(abdomen: Phantom) -> None:
    labels, volume = abdomen.volume()
    labels = np.where(labels == Tissue.MUSCLE, Tissue.IO, labels).astype(np.uint8)
    result = compute_body_composition(labels, volume, PATIENT)
    check = _check(result, "tissue_balance")
    assert check.status == "warn" and "muscle is 0%" in check.message
    assert result.waist.average_sma_cm2 == 0.0


def test_real_contrast_phase_is_recognised(shared_data: Path) -> None:
    """The upper-abdomen CT is unenhanced; the PET-CT's CT has its aorta at about 150 HU."""
    plain = upper_abdomen(shared_data)
    enhanced = petct(shared_data)
    plain_check = _check(compute_body_composition(plain.labels, plain.volume, PATIENT), "contrast")
    enhanced_check = _check(
        compute_body_composition(enhanced.labels, enhanced.volume, PATIENT), "contrast"
    )
    assert plain_check.status == "pass"
    assert enhanced_check.status == "warn"
