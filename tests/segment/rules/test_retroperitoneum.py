"""Muscles inside the body wall, organs against it, and fat above the diaphragm, on real scans.

The bars come from the product's definitions (DESIGN.md section 2), not from today's
figures: the psoas and the back muscles are skeletal muscle at every vertebral level (at
least 90 % of their reference voxels), no organ is muscle (at most 5 % of its voxels), and
fat above the diaphragm is never visceral. Levels are the reference vertebrae's slices;
the shared scans reach T11 to L2, so the lower lumbar levels and the pelvis are not covered
here. The PET-CT is also judged resampled to 3 mm voxels (its psoas rule once took a lobe
of the spleen and the vena cava there). The README's accuracy figures are compared with
`python bench/eval_rules_real.py`, not held here at today's values; the bars a user needs
for them are in test_real_data.py.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy import ndimage

from habitus.labels import Tissue
from habitus.metrics.contrast import ContrastPhase
from habitus.segment.orientation import CanonicalFrame
from habitus.segment.rules import RuleSegmenter
from habitus.volume import CTVolume, Geometry

from .evaluation import above_diaphragm
from .realdata import RealCase, petct, upper_abdomen, with_contrast

MIN_MUSCLE_COVERAGE = 0.90
MAX_ORGAN_AS_MUSCLE = 0.05
MIN_LEVEL_VOXELS = 50  # a level where a muscle shows fewer reference voxels is not judged
ORGANS = (
    "liver", "spleen", "kidney_left", "kidney_right", "stomach", "pancreas", "gallbladder",
    "duodenum", "small_bowel", "colon", "esophagus", "adrenal_gland_left",
    "adrenal_gland_right", "aorta", "inferior_vena_cava", "portal_vein_and_splenic_vein",
)  # fmt: skip

Labelled = tuple[RealCase, NDArray[np.uint8]]


def _labelled(case: RealCase) -> Labelled:
    return case, RuleSegmenter().segment(case.volume)


@pytest.fixture(scope="module")
def abdomen(shared_data: Path) -> Labelled:
    return _labelled(upper_abdomen(shared_data))


@pytest.fixture(scope="module")
def abdomen_enhanced(shared_data: Path) -> Labelled:
    return _labelled(with_contrast(upper_abdomen(shared_data), ContrastPhase.PORTAL_VENOUS, 1))


@pytest.fixture(scope="module")
def pet(shared_data: Path) -> Labelled:
    return _labelled(petct(shared_data))


def resampled(case: RealCase, spacing_mm: float) -> RealCase:
    """The case on an isotropic grid (linear for HU, nearest for the reference labels)."""
    geometry = case.volume.geometry
    zoom = tuple(s / spacing_mm for s in geometry.spacing)
    hu = ndimage.zoom(case.volume.hu.astype(np.float32), zoom, order=1)
    volume = CTVolume(
        hu=np.round(hu).astype(np.int16),
        geometry=Geometry(
            spacing=(spacing_mm,) * 3, origin=geometry.origin, direction=geometry.direction
        ),
    )
    structures = ndimage.zoom(case.structures, zoom, order=0)
    return replace(
        case, name=f"{case.name} at {spacing_mm:g} mm", volume=volume, structures=structures
    )


@pytest.fixture(scope="module")
def pet_3mm(shared_data: Path) -> Labelled:
    return _labelled(resampled(petct(shared_data), 3.0))


@pytest.fixture(params=["abdomen", "abdomen_enhanced", "pet", "pet_3mm"])
def labelled(request: pytest.FixtureRequest) -> Labelled:
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


def coverage_per_level(case: RealCase, labels: NDArray[np.uint8], muscle: str) -> dict[str, float]:
    """Share of the reference muscle labelled muscle in the slices of each vertebra."""
    frame = CanonicalFrame.of(case.volume.geometry)
    reference = frame.to_canonical(case.mask(muscle))
    canonical = frame.to_canonical(labels)
    out: dict[str, float] = {}
    for name in sorted({n for n in case.names.values() if n.startswith("vertebrae_")}):
        slices = np.nonzero(frame.to_canonical(case.mask(name)).any(axis=(1, 2)))[0]
        inside = reference[slices]
        if inside.sum() >= MIN_LEVEL_VOXELS:
            out[name] = float((canonical[slices][inside] == Tissue.MUSCLE).mean())
    return out


@pytest.mark.parametrize("muscle", ["iliopsoas*", "autochthon*"])
def test_psoas_and_back_muscles_are_muscle_at_every_level(labelled: Labelled, muscle: str) -> None:
    """Before the psoas rule, 0.61 (L1) and 0.70 (L2) of the psoas of ts-upper-abdomen."""
    case, labels = labelled
    levels = coverage_per_level(case, labels, muscle)
    if case.mask(muscle).sum() >= MIN_LEVEL_VOXELS:
        assert levels, f"no vertebral level holds {muscle} in {case.name}"
    low = {level: round(share, 3) for level, share in levels.items() if share < MIN_MUSCLE_COVERAGE}
    assert not low, f"{muscle} in {case.name}: {low}"


def test_no_organ_is_muscle(labelled: Labelled) -> None:
    """Before, 0.09 of the PET-CT's spleen lay in the wall (an oblique rib carried it in)."""
    case, labels = labelled
    shares = {}
    for organ in ORGANS:
        mask = case.mask(organ)
        if mask.any():
            shares[organ] = float((labels[mask] == Tissue.MUSCLE).mean())
    high = {o: round(s, 3) for o, s in shares.items() if s > MAX_ORGAN_AS_MUSCLE}
    assert not high, f"{case.name}: {high}"


@pytest.mark.parametrize("which", ["abdomen", "abdomen_enhanced"])
def test_no_fat_above_the_diaphragm_is_visceral(which: str, request: pytest.FixtureRequest) -> None:
    case, labels = request.getfixturevalue(which)
    above = above_diaphragm(case)
    assert above.any()
    assert int(((labels == Tissue.AVF) & above).sum()) == 0


def test_no_visceral_fat_above_the_liver(pet: Labelled) -> None:
    """The PET-CT has no reference lungs: the top of the liver stands for the domes."""
    case, labels = pet
    frame = CanonicalFrame.of(case.volume.geometry)
    liver = frame.to_canonical(case.mask("liver"))
    top = int(np.nonzero(liver.any(axis=(1, 2)))[0].max())
    assert not (frame.to_canonical(labels)[top + 1 :] == Tissue.AVF).any()
