"""Contrast phase: the rules on figures, then the detection on the segmenter's output.

The real cases run what the pipeline runs (the rule-based segmenter, then
compute_body_composition) on the shared scans: the unenhanced upper abdomen, the real
portal-venous PET-CT, and arterial, portal-venous and delayed versions of both painted from
their reference structures (model_export.painted_contrast). Their reference masks give the aorta's
and the liver's true attenuation to hold the evidence to.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from habitus.anatomy import find_anatomy
from habitus.metrics import BodyComposition, compute_body_composition
from habitus.metrics.contrast import (
    UNKNOWN,
    ContrastAssessment,
    ContrastPhase,
    assess_contrast,
    decide_phase,
)
from habitus.metrics.contrast_structures import find_aorta
from habitus.outputs.report import PatientInfo
from habitus.phantoms import random_acquisition, random_spec, render
from habitus.phantoms.landmark_phantom import build_phantom
from habitus.segment.rules import RuleSegmenter
from tests.segment.rules.realdata import RealCase, petct, upper_abdomen, with_contrast

PATIENT = PatientInfo(height_cm=175.0, weight_kg=70.0, sex="M")
P = ContrastPhase

# --- The rules, on figures ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("aorta", "liver", "phase", "enhanced"),
    [
        (43.0, 46.0, P.NONE, False),  # unenhanced blood and liver
        (60.0, None, P.NONE, False),  # no liver needed to see unenhanced blood
        (320.0, 70.0, P.ARTERIAL, True),
        (260.0, None, P.ARTERIAL, True),
        (190.0, 70.0, P.ARTERIAL, True),  # aorta far above a barely enhanced liver
        (175.0, 115.0, P.PORTAL_VENOUS, True),
        (151.0, 93.0, P.PORTAL_VENOUS, True),  # the real PET-CT's reference figures
        (170.0, None, P.PORTAL_VENOUS, True),
        (120.0, 95.0, P.DELAYED, True),
        (138.0, 88.0, P.DELAYED, True),
        (120.0, None, UNKNOWN, True),  # enhanced, but portal-venous or delayed?
        (None, 50.0, P.NONE, False),  # no bright lumen and an unenhanced liver
        (None, 110.0, UNKNOWN, True),
        (None, 82.0, UNKNOWN, None),
        (None, None, UNKNOWN, None),
    ],
)
def test_phase_rules(
    aorta: float | None, liver: float | None, phase: str, enhanced: bool | None
) -> None:
    decided, is_enhanced, reason = decide_phase(aorta, liver)
    assert (decided, is_enhanced) == (phase, enhanced), reason
    if aorta is not None:
        assert f"aorta {aorta:.0f} HU" in reason


# --- Real scans through the segmenter ------------------------------------------------------

CASES = [
    ("upper_abdomen", None, P.NONE),
    ("upper_abdomen", P.ARTERIAL, P.ARTERIAL),
    ("upper_abdomen", P.PORTAL_VENOUS, P.PORTAL_VENOUS),
    ("upper_abdomen", P.DELAYED, P.DELAYED),
    ("petct", None, P.PORTAL_VENOUS),  # a real portal-venous scan
    ("petct", P.ARTERIAL, P.ARTERIAL),
    ("petct", P.PORTAL_VENOUS, P.PORTAL_VENOUS),
    ("petct", P.DELAYED, P.DELAYED),
]


@pytest.fixture(scope="module")
def real_cases(shared_data: Path) -> dict[str, RealCase]:
    return {"upper_abdomen": upper_abdomen(shared_data), "petct": petct(shared_data)}


def _case(cases: dict[str, RealCase], name: str, painted: ContrastPhase | None) -> RealCase:
    return cases[name] if painted is None else with_contrast(cases[name], painted)


def _analyse(case: RealCase) -> tuple[NDArray[np.uint8], BodyComposition]:
    labels = RuleSegmenter().segment(case.volume)
    return labels, compute_body_composition(labels, case.volume, PATIENT)


def _reference_median(case: RealCase, structure: str) -> float:
    return float(np.median(case.volume.hu[case.mask(structure)]))


@pytest.mark.parametrize(("name", "painted", "expected"), CASES)
def test_real_scans_get_their_phase_with_evidence(
    real_cases: dict[str, RealCase],
    name: str,
    painted: ContrastPhase | None,
    expected: ContrastPhase,
) -> None:
    case = _case(real_cases, name, painted)
    _, body = _analyse(case)
    contrast = body.contrast
    assert contrast is not None
    assert contrast.phase == expected, contrast.reason
    evidence = {e.structure: e for e in contrast.evidence}
    for structure, tolerance in (("aorta", 25.0), ("liver", 10.0)):
        item = evidence[structure]
        assert item.found and item.median_hu is not None, item.detail
        # The lumen's centre reads a little above the whole vessel's median (no wall).
        assert item.median_hu == pytest.approx(_reference_median(case, structure), abs=tolerance)
        assert item.slices is not None and item.z_mm is not None and item.measured_slices >= 3
    check = next(c for c in body.quality.checks if c.name == "contrast")
    if expected == P.NONE:
        assert check.status == "pass" and not contrast.enhanced
        assert not any("contrast" in r for r in body.quality.review_reasons)
    else:
        assert check.status == "warn" and contrast.enhanced
        assert check.message in body.quality.review_reasons
        assert expected.value.replace("_", "-") in check.message
        assert "not comparable with unenhanced norms" in check.message
    assert any(line.startswith("contrast: ") for line in body.summary_lines)


def test_arterial_aorta_is_found_whatever_the_segmenter_calls_it(
    real_cases: dict[str, RealCase],
) -> None:
    """An arterial aorta is as bright as bone: the lumens found still lie in the aorta."""
    case = with_contrast(real_cases["petct"], P.ARTERIAL)
    labels, _ = _analyse(case)
    anatomy = find_anatomy(labels, case.volume.geometry)
    aorta = find_aorta(labels, case.volume, anatomy)
    reference = anatomy.frame.canonical(case.mask("aorta"))
    inside = [bool(reference[c, m.row, m.col]) for c, m in aorta.lumens.items()]
    assert len(inside) >= 10 and all(inside)


@pytest.mark.parametrize("phase", [P.ARTERIAL, P.PORTAL_VENOUS, P.DELAYED])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_painted_phases_across_their_ranges(
    real_cases: dict[str, RealCase], phase: ContrastPhase, seed: int
) -> None:
    """Targets drawn anywhere in each phase's range (not only its middle) are still named."""
    case = with_contrast(real_cases["upper_abdomen"], phase, seed)
    labels = RuleSegmenter().segment(case.volume)
    anatomy = find_anatomy(labels, case.volume.geometry)
    result = assess_contrast(labels, case.volume, anatomy)
    assert result.phase == phase, result.reason


# --- Phantoms with known contrast ----------------------------------------------------------

# The phantom draws its blood per phase (unenhanced 35-48 HU, venous 130-190, arterial
# 180-320) and half the organ enhancement for "arterial": seeds whose draws lie inside the
# clinical ranges of their phase (not in the overlap of venous with delayed or arterial).
PHANTOMS = [
    (2, "none", P.NONE),
    (4, "none", P.NONE),
    (2, "venous", P.PORTAL_VENOUS),
    (4, "venous", P.PORTAL_VENOUS),
    (2, "arterial", P.ARTERIAL),
    (4, "arterial", P.ARTERIAL),
]


@pytest.mark.parametrize(("seed", "contrast", "expected"), PHANTOMS)
def test_phantoms_get_their_phase(seed: int, contrast: str, expected: ContrastPhase) -> None:
    spec = replace(random_spec(seed), contrast=contrast)  # type: ignore[arg-type]
    phantom = render(spec, random_acquisition(seed, (4.0, 2.0, 2.0), "upper_abdomen"))
    labels = RuleSegmenter().segment(phantom.volume)
    body = compute_body_composition(labels, phantom.volume, PATIENT)
    assert body.contrast is not None
    assert body.contrast.phase == expected, body.contrast.reason
    assert body.contrast.evidence[0].found  # the aorta


def test_scan_below_the_liver_and_aorta_is_unknown() -> None:
    """The pelvis alone: no aorta (only the iliac vessels) and no liver, so no verdict."""
    pelvis = build_phantom(z_top=480.0).crop(60.0, 200.0)
    labels, volume = pelvis.volume()
    result: ContrastAssessment = assess_contrast(
        labels, volume, find_anatomy(labels, volume.geometry)
    )
    assert result.phase == UNKNOWN and result.enhanced is None
    assert "aorta:" in result.reason and "liver:" in result.reason
    assert not any(e.found for e in result.evidence)
