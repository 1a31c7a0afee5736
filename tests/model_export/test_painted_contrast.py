"""Contrast painted into a CT from its reference structures."""

from __future__ import annotations

import numpy as np
import pytest

from habitus.metrics.contrast import ContrastPhase
from model_export.painted_contrast import GROUPS, TARGET_HU, paint_contrast, structure_masks

SPACING = (3.0, 1.0, 1.0)


def _scan() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Soft tissue at 40 HU with noise; an aorta, a liver and a heart."""
    rng = np.random.default_rng(0)
    hu = np.rint(40 + rng.normal(0, 10, size=(12, 80, 80))).astype(np.int16)
    z, y, x = np.ogrid[:12, :80, :80]
    aorta = np.broadcast_to((y - 20) ** 2 + (x - 20) ** 2 <= 36, hu.shape).copy()
    liver = np.broadcast_to((y - 50) ** 2 + (x - 50) ** 2 <= 400, hu.shape).copy()
    heart = ((y - 20) ** 2 + (x - 55) ** 2 <= 225) & (z >= 6)
    hu[liver] += 15
    return hu, {"aorta": aorta, "liver": liver, "heart": heart, "not_a_structure": liver}


@pytest.mark.parametrize(
    "phase", [ContrastPhase.ARTERIAL, ContrastPhase.PORTAL_VENOUS, ContrastPhase.DELAYED]
)
def test_each_structure_reaches_its_phase_attenuation(phase: ContrastPhase) -> None:
    hu, structures = _scan()
    painted = paint_contrast(hu, structures, phase, SPACING, np.random.default_rng(1))
    for group, name in (("arteries", "aorta"), ("liver", "liver")):
        low, high = TARGET_HU[phase][group]
        target = painted.targets[group]
        assert low <= target <= high
        median = float(np.median(painted.hu[structures[name]]))
        assert abs(median - target) < 15, (group, median, target)
    # the texture stays: noise inside the aorta is about that of the scan (edges blur a bit)
    inner = structures["aorta"] & (np.roll(structures["aorta"], 3, axis=2))
    assert 6 < float(np.std(painted.hu[inner])) < 25
    # the heart's rim (myocardium) enhances less than its blood pool
    assert painted.targets["heart_blood"] > float(np.median(painted.hu[structures["heart"]])) - 1


def test_no_contrast_leaves_the_scan_as_it_is_and_far_tissue_is_untouched() -> None:
    hu, structures = _scan()
    same = paint_contrast(hu, structures, ContrastPhase.NONE, SPACING)
    np.testing.assert_array_equal(same.hu, hu)
    painted = paint_contrast(hu, structures, ContrastPhase.ARTERIAL, SPACING)
    far = np.ones(hu.shape, dtype=bool)
    far[:, :45, :75] = False  # around the aorta and heart
    far[:, 25:75, 25:75] = False  # around the liver
    np.testing.assert_array_equal(painted.hu[far], hu[far])


def test_painting_is_repeatable_with_a_seed_and_mid_range_without() -> None:
    hu, structures = _scan()
    a = paint_contrast(hu, structures, ContrastPhase.ARTERIAL, SPACING, np.random.default_rng(5))
    b = paint_contrast(hu, structures, ContrastPhase.ARTERIAL, SPACING, np.random.default_rng(5))
    np.testing.assert_array_equal(a.hu, b.hu)
    middle = paint_contrast(hu, structures, ContrastPhase.ARTERIAL, SPACING)
    assert middle.targets["arteries"] == sum(TARGET_HU[ContrastPhase.ARTERIAL]["arteries"]) / 2


def test_structure_masks_picks_the_enhancing_structures_of_a_label_map() -> None:
    labels = np.zeros((2, 4, 4), dtype=np.uint8)
    labels[0, 0, 0], labels[1, 1, 1], labels[1, 2, 2] = 52, 5, 25
    names = {52: "aorta", 5: "liver", 25: "sacrum", 1: "spleen"}
    masks = structure_masks(labels, names)
    assert set(masks) == {"aorta", "liver"}  # spleen absent, sacrum does not enhance
    assert masks["aorta"].sum() == 1
    assert all(name in {n for g in GROUPS.values() for n in g} for name in masks)
