"""Waist, L3 and torso figures on the synthetic torso, against counts and formulas by hand.

In the phantom the muscle is an annulus between radii 95 and 110 mm in every trunk slice, so
its area in a slice is pi (110^2 - 95^2) up to the pixel grid. The pixels counted are those
whose centre lies in the annulus; the area they cover differs from the annulus's by at most
(P_outer + P_inner) h / sqrt(2) + pi h^2 (a pixel counted or missed lies within h / sqrt(2)
of a boundary circle).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from habitus.labels import Tissue
from habitus.metrics import BodyComposition, compute_body_composition
from habitus.outputs.report import PatientInfo
from habitus.phantoms import landmark_phantom as ph
from habitus.phantoms.landmark_phantom import Phantom, build_phantom

PATIENT = PatientInfo(height_cm=175.0, weight_kg=70.0, sex="M")
VOXEL_CM3 = ph.PIXEL_MM * ph.PIXEL_MM * ph.SLICE_MM / 1000.0
PIXEL_CM2 = ph.PIXEL_MM * ph.PIXEL_MM / 100.0


@pytest.fixture(scope="module")
def abdomen() -> Phantom:
    return build_phantom(z_top=480.0).crop(180.0, 480.0)


@pytest.fixture(scope="module")
def result(abdomen: Phantom) -> BodyComposition:
    labels, volume = abdomen.volume()
    return compute_body_composition(labels, volume, PATIENT)


def _count(phantom: Phantom, lo: int, hi: int, tissues: tuple[Tissue, ...]) -> int:
    return int(np.isin(phantom.labels[lo : hi + 1], [int(t) for t in tissues]).sum())


def _annulus_pixels(phantom: Phantom) -> int:
    yy, xx = phantom.grid_mm()
    r = np.hypot(xx, yy)
    return int(((r > ph.MUSCLE_INNER_R) & (r <= ph.SF_INNER_R)).sum())


def test_waist_runs_from_the_crest_to_the_last_rib(
    abdomen: Phantom, result: BodyComposition
) -> None:
    waist = result.waist
    assert waist.available and waist.range is not None
    assert waist.range.first_slice == result.regions.iliac_crest_slice
    assert waist.range.last_slice == result.regions.last_rib_slice
    slices = waist.range.last_slice - waist.range.first_slice + 1
    assert waist.range.slices == slices
    assert waist.length_cm == pytest.approx(slices * ph.SLICE_MM / 10.0)


def test_waist_volumes_match_voxel_counts(abdomen: Phantom, result: BodyComposition) -> None:
    assert result.waist.range is not None
    lo, hi = result.waist.range.first_slice, result.waist.range.last_slice
    muscle = _count(abdomen, lo, hi, (Tissue.MUSCLE,)) * VOXEL_CM3
    fat = _count(abdomen, lo, hi, (Tissue.AVF, Tissue.SF)) * VOXEL_CM3
    assert result.waist.muscle_cm3 == pytest.approx(muscle, rel=1e-3)
    assert result.waist.fat_cm3 == pytest.approx(fat, rel=1e-3)
    assert result.waist.visceral_fat_cm3 == pytest.approx(
        _count(abdomen, lo, hi, (Tissue.AVF,)) * VOXEL_CM3, rel=1e-3
    )


def test_average_areas_are_volume_over_length(result: BodyComposition) -> None:
    waist = result.waist
    assert waist.muscle_cm3 and waist.fat_cm3 and waist.length_cm
    assert waist.average_sma_cm2 == pytest.approx(waist.muscle_cm3 / waist.length_cm, rel=1e-3)
    assert waist.average_bfa_cm2 == pytest.approx(waist.fat_cm3 / waist.length_cm, rel=1e-3)


def test_average_muscle_area_is_the_annulus_area(abdomen: Phantom, result: BodyComposition) -> None:
    """Counted pixels exactly; pi (R^2 - r^2) within the grid's bound."""
    counted_cm2 = _annulus_pixels(abdomen) * PIXEL_CM2
    assert result.waist.average_sma_cm2 == pytest.approx(counted_cm2, rel=1e-3)
    exact_cm2 = math.pi * (ph.SF_INNER_R**2 - ph.MUSCLE_INNER_R**2) / 100.0
    h = ph.PIXEL_MM
    bound_cm2 = (
        (2 * math.pi * (ph.SF_INNER_R + ph.MUSCLE_INNER_R)) * h / math.sqrt(2) + math.pi * h**2
    ) / 100.0
    assert abs(result.waist.average_sma_cm2 - exact_cm2) <= bound_cm2


def test_indices_divide_by_height_squared_and_weight(result: BodyComposition) -> None:
    waist = result.waist
    assert waist.average_sma_cm2 and waist.average_bfa_cm2
    assert waist.smi_cm2_m2 == pytest.approx(waist.average_sma_cm2 / 1.75**2, abs=0.01)
    assert waist.bfi_cm2_kg == pytest.approx(waist.average_bfa_cm2 / 70.0, abs=0.001)
    assert waist.muscle_mean_hu == ph.HU[Tissue.MUSCLE]
    assert waist.missing == {}


def test_l3_slice_areas(abdomen: Phantom, result: BodyComposition) -> None:
    l3 = result.l3
    assert l3.available and l3.slice_index is not None
    lo, hi = abdomen.vertebrae["L3"]
    assert lo <= abdomen.z_mm[l3.slice_index] <= hi
    assert abs(abdomen.z_mm[l3.slice_index] - (lo + hi) / 2) <= ph.SLICE_MM
    k = l3.slice_index
    assert l3.sma_cm2 == pytest.approx(_annulus_pixels(abdomen) * PIXEL_CM2, rel=1e-3)
    vat = _count(abdomen, k, k, (Tissue.AVF,)) * PIXEL_CM2
    sat = _count(abdomen, k, k, (Tissue.SF,)) * PIXEL_CM2
    assert l3.vat_cm2 == pytest.approx(vat, rel=1e-3)
    assert l3.sat_cm2 == pytest.approx(sat, rel=1e-3)
    assert l3.vat_sat_ratio == pytest.approx(vat / sat, rel=1e-3)
    assert l3.muscle_mean_hu == ph.HU[Tissue.MUSCLE]
    assert l3.smi_cm2_m2 == pytest.approx(l3.sma_cm2 / 1.75**2, abs=0.01)


def test_partial_torso_gives_volumes_but_no_indices(
    abdomen: Phantom, result: BodyComposition
) -> None:
    torso = result.torso
    assert not torso.complete and torso.range is not None
    assert torso.smi_cm3_m2 is None and "torso not fully covered" in torso.missing["smi_cm3_m2"]
    assert torso.bfi_cm3_kg is None and "bfi_cm3_kg" in torso.missing
    lo, hi = torso.range.first_slice, torso.range.last_slice
    assert torso.muscle_cm3 == pytest.approx(
        _count(abdomen, lo, hi, (Tissue.MUSCLE,)) * VOXEL_CM3, rel=1e-3
    )
    muscle_row = next(c for c in torso.classes if c.label == Tissue.MUSCLE)
    assert muscle_row.volume_cm3 == pytest.approx(torso.muscle_cm3, rel=1e-3)
    assert muscle_row.mean_hu == ph.HU[Tissue.MUSCLE]
    assert "scan" in torso.top_limit


def test_whole_torso_gives_torso_indices() -> None:
    phantom = build_phantom(width_px=104)
    labels, volume = phantom.volume(head_ward=False)
    result = compute_body_composition(labels, volume, PATIENT)
    torso = result.torso
    assert torso.complete and torso.range is not None, torso.missing
    assert "torso top landmark" in torso.top_limit and "torso bottom landmark" in torso.bottom_limit
    canonical_lo = len(phantom.z_mm) - 1 - torso.range.last_slice
    canonical_hi = len(phantom.z_mm) - 1 - torso.range.first_slice
    muscle = _count(phantom, canonical_lo, canonical_hi, (Tissue.MUSCLE,)) * VOXEL_CM3
    fat = _count(phantom, canonical_lo, canonical_hi, (Tissue.AVF, Tissue.SF)) * VOXEL_CM3
    assert torso.muscle_cm3 == pytest.approx(muscle, rel=1e-3)
    assert torso.smi_cm3_m2 == pytest.approx(muscle / 1.75**2, rel=1e-3)
    assert torso.bfi_cm3_kg == pytest.approx(fat / 70.0, rel=1e-3)
    assert result.waist.available and result.l3.available
