"""Contrast-enhanced blood and organs are never bone (the rule-based segmenter).

The bar: on the arterial, portal-venous and delayed versions of both shared scans (contrast
painted into their reference structures) and on arterial and venous phantoms, at least 95 %
of the heart chambers, aorta and great veins are internal organs and vessels (IO); bone Dice
stays within 0.02 of the same scan without contrast; under 2 % of the spleen, kidneys and
liver is bone.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from habitus.labels import Tissue
from habitus.metrics.contrast import ContrastPhase
from habitus.phantoms.generator import Phantom, render
from habitus.phantoms.materials import Material
from habitus.phantoms.spec import random_acquisition, random_spec
from habitus.phantoms.structures import VERTEBRA_INV
from habitus.segment.rules import RuleSegmenter

from .evaluation import BONES, GREAT_VESSELS, coverage, dice
from .realdata import RealCase, petct, upper_abdomen, with_contrast

MIN_BLOOD_IO = 0.95
MAX_BONE_DICE_LOSS = 0.02
MAX_ORGAN_BONE = 0.02

ORGANS = ("spleen", "kidney_left", "kidney_right", "liver")
PHASES = (ContrastPhase.ARTERIAL, ContrastPhase.PORTAL_VENOUS, ContrastPhase.DELAYED)
CASES = ("ts-upper-abdomen", "ts-petct-dicom")
LOADERS = {"ts-upper-abdomen": upper_abdomen, "ts-petct-dicom": petct}


Segmented = dict[tuple[str, ContrastPhase], tuple[RealCase, NDArray[np.uint8]]]
Phantoms = dict[str, tuple[Phantom, NDArray[np.uint8], NDArray[np.uint8]]]


@pytest.fixture(scope="module")
def segmented(shared_data: Path) -> Segmented:
    """Each shared case without contrast and in each painted phase, with its labels."""
    out: Segmented = {}
    segmenter = RuleSegmenter()
    for name in CASES:
        base = LOADERS[name](shared_data)
        for phase in (ContrastPhase.NONE, *PHASES):
            case = with_contrast(base, phase)
            out[name, phase] = (case, segmenter.segment(case.volume))
    return out


@pytest.mark.parametrize("phase", PHASES, ids=lambda p: p.value)
@pytest.mark.parametrize("name", CASES)
def test_enhanced_heart_and_great_vessels_are_internal_organs(
    name: str, phase: ContrastPhase, segmented: Segmented
) -> None:
    case, labels = segmented[name, phase]
    vessels = case.mask(*GREAT_VESSELS)
    assert coverage(labels, vessels, Tissue.IO) >= MIN_BLOOD_IO


def test_the_real_portal_venous_scan_keeps_its_vessels(segmented: Segmented) -> None:
    """The PET-CT is itself a portal-venous scan (aorta about 151 HU, with calcified
    plaque): its own great vessels are IO too."""
    case, labels = segmented["ts-petct-dicom", ContrastPhase.NONE]
    assert coverage(labels, case.mask(*GREAT_VESSELS), Tissue.IO) >= MIN_BLOOD_IO


@pytest.mark.parametrize("phase", PHASES, ids=lambda p: p.value)
@pytest.mark.parametrize("name", CASES)
def test_bone_is_the_bone_of_the_unenhanced_scan(
    name: str, phase: ContrastPhase, segmented: Segmented
) -> None:
    _, plain = segmented[name, ContrastPhase.NONE]
    case, labels = segmented[name, phase]
    reference = case.mask(*BONES)
    plain_dice = dice(plain == Tissue.BONE, reference)
    assert dice(labels == Tissue.BONE, reference) >= plain_dice - MAX_BONE_DICE_LOSS


@pytest.mark.parametrize("phase", PHASES, ids=lambda p: p.value)
@pytest.mark.parametrize("name", CASES)
def test_enhanced_spleen_kidneys_and_liver_are_not_bone(
    name: str, phase: ContrastPhase, segmented: Segmented
) -> None:
    case, labels = segmented[name, phase]
    for organ in ORGANS:
        mask = case.mask(organ)
        if mask.any():
            assert coverage(labels, mask, Tissue.BONE) < MAX_ORGAN_BONE, organ


# Phantoms: exact labels, and the material of every voxel says which is blood.

PHANTOM_SEED = 1
PHANTOM_SPACING = (3.0, 2.0, 2.0)
PHANTOM_RANGE = "chest_abdomen_pelvis"  # heart, aorta, venae cavae, kidneys, spleen, liver
AORTIC_BIFURCATION = 22.5  # the phantom's vertebral count (L4)


@pytest.fixture(scope="module")
def phantoms() -> Phantoms:
    """The same body without contrast and in the venous and arterial phases: the phantom,
    its materials and the segmenter's labels."""
    acquisition = random_acquisition(PHANTOM_SEED, PHANTOM_SPACING, PHANTOM_RANGE)
    out: Phantoms = {}
    for contrast in ("none", "venous", "arterial"):
        spec = replace(random_spec(PHANTOM_SEED), contrast=contrast)
        phantom = render(spec, acquisition)
        out[contrast] = (phantom, phantom.materials, RuleSegmenter().segment(phantom.volume))
    return out


@pytest.mark.slow
def test_phantom_materials_match_its_labels(phantoms: Phantoms) -> None:
    phantom, materials, _ = phantoms["none"]
    blood = np.isin(materials, [Material.BLOOD, Material.HEART]) & (phantom.labels > 0)
    assert blood.sum() > 10_000
    assert (phantom.labels[blood] == Tissue.IO).mean() > 0.99


def _above_aortic_bifurcation(phantom: Phantom) -> NDArray[np.bool_]:
    """Slices above the level where the phantom's aorta divides (the middle of L4): the
    heart, aorta and venae cavae, not the iliac vessels."""
    geometry = phantom.volume.geometry
    z = geometry.origin[2] + np.arange(phantom.volume.hu.shape[0]) * geometry.spacing[0]
    level = -float(VERTEBRA_INV(np.asarray(AORTIC_BIFURCATION))) * phantom.spec.height_mm
    return np.asarray(z >= level)[:, np.newaxis, np.newaxis]


@pytest.mark.slow
@pytest.mark.parametrize("contrast", ["venous", "arterial"])
def test_phantom_enhanced_blood_is_internal_organs(contrast: str, phantoms: Phantoms) -> None:
    phantom, materials, labels = phantoms[contrast]
    blood = np.isin(materials, [Material.BLOOD, Material.HEART]) & (phantom.labels == Tissue.IO)
    blood &= _above_aortic_bifurcation(phantom)
    assert coverage(labels, blood, Tissue.IO) >= MIN_BLOOD_IO
    organs = np.isin(materials, [Material.SPLEEN, Material.KIDNEY, Material.LIVER]) & (
        phantom.labels == Tissue.IO
    )
    assert coverage(labels, organs, Tissue.BONE) < MAX_ORGAN_BONE


@pytest.mark.slow
@pytest.mark.parametrize("contrast", ["venous", "arterial"])
def test_phantom_bone_is_the_bone_without_contrast(contrast: str, phantoms: Phantoms) -> None:
    phantom, _, labels = phantoms[contrast]
    _, _, plain = phantoms["none"]
    reference = phantom.labels == Tissue.BONE
    plain_dice = dice(plain == Tissue.BONE, reference)
    assert dice(labels == Tissue.BONE, reference) >= plain_dice - MAX_BONE_DICE_LOSS
