"""The psoas and the iliacus on the phantoms, which reach the pelvis (the shared scans do not).

Two kinds of check. The phantom's anatomy itself: each kidney lies whole in its perirenal
fat (no muscle touches it) and the psoas lies in its own gutter in front of the transverse
processes, apart from the back muscles (it was once painted half inside them). And the
rule-based segmenter's figures on it (3 mm slices, 1.5 mm pixels, seeds 1-3), per lumbar
level.

The product's bars (DESIGN.md section 2; tests/segment/rules/test_retroperitoneum.py on
the real scans) are 0.90 of each muscle labelled muscle at every level and at most 0.05 of
any organ labelled muscle. On the phantoms (as of 2026-12-08: femora apart from the
acetabula, ribs falling from their heads) these are not reached everywhere yet: the psoas is
labelled muscle at 0.83-0.99 of its voxels per level (0.62-0.97 before slices were bridged
and bellies allowed to lie a radius and a half beyond the vertebral body, 0.73-0.98 before
its rim on the bone counted as muscle and the discs were judged from the bodies' front), the
iliacus at 0.63-0.89, and no kidney voxel is muscle (up to 0.24 before a kidney in its own
fat went back to the cavity, 0.32 before a rib stopped counting as the psoas's origin). The
psoas still missed is seed 3's at L1 (0.89) and at L4-S1 (0.83-0.88, its rim labelled
bone), and seed 1's at S1 (0.89). The floors below keep the figures from falling; they are
not the product's bars, except where a test says it holds the bar.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy import ndimage

from habitus.labels import Tissue
from habitus.segment.rules import RuleSegmenter

from .phantom_anatomy import LUMBAR, PhantomAnatomy, phantom_anatomy

SPACING = (3.0, 1.5, 1.5)
SEEDS = (1, 2, 3)
MIN_LEVEL_VOXELS = 50
PSOAS_FLOOR = 0.80  # met on every seed since the discs are judged from the bodies (0.82-0.99)
ILIACUS_FLOOR = 0.60  # before the iliacus rule (pelvis.py): 0.26-0.47 with the psoas
# All muscle below S1, a floor: 0.87-0.92 since the cavity ends at the pelvic floor (0.77-0.84
# before; 0.60 before the cavity was kept to the ring).
MUSCLE_BELOW_S1_FLOOR = 0.85
MAX_PSOAS_ON_BACK_MUSCLE = 0.03  # share of the psoas's voxels touching the wall's muscle
MUSCLE_BAR = 0.90  # the product's bar for every muscle at every level
# The psoas's rim on the bone, a floor: 0.8996-0.97 on seeds 1-3 since the phantoms' hip bone
# round the acetabulum is thick (seed 1's rim there, beside bowel painted on the bare bone,
# is taken as organ with it); 0.92-0.97 on the thinner hip bone before.
PSOAS_RIM_FLOOR = 0.88

Labelled = tuple[PhantomAnatomy, NDArray[np.uint8]]
IN_PLANE = np.array([[[0, 1, 0], [1, 1, 1], [0, 1, 0]]], dtype=bool)


@pytest.fixture(scope="module", params=SEEDS)
def labelled(request: pytest.FixtureRequest) -> Labelled:
    anatomy = phantom_anatomy(request.param, SPACING, "abdomen_pelvis")
    return anatomy, RuleSegmenter().segment(anatomy.phantom.volume)


def test_phantom_kidneys_lie_in_their_fat(labelled: Labelled) -> None:
    anatomy, _ = labelled
    labels = anatomy.phantom.labels
    assert anatomy.kidneys.sum() > 1000
    around = ndimage.binary_dilation(anatomy.kidneys, IN_PLANE)
    assert int((around & (labels == Tissue.MUSCLE)).sum()) == 0


def test_phantom_psoas_lies_apart_from_the_back_muscles(labelled: Labelled) -> None:
    anatomy, _ = labelled
    labels = anatomy.phantom.labels
    psoas = anatomy.inner_muscle & ~anatomy.iliacus
    wall_muscle = (labels == Tissue.MUSCLE) & ~anatomy.inner_muscle
    touching = psoas & ndimage.binary_dilation(wall_muscle, IN_PLANE)
    assert touching.sum() <= MAX_PSOAS_ON_BACK_MUSCLE * psoas.sum()


def _coverage(
    anatomy: PhantomAnatomy, labels: NDArray[np.uint8], muscle: NDArray[np.bool_]
) -> dict[str, float]:
    out = {}
    for name, top in LUMBAR.items():
        slices = anatomy.slices_of(top, top + 1.0)
        inside = muscle[slices]
        if inside.sum() >= MIN_LEVEL_VOXELS:
            out[name] = float((labels[slices][inside] == Tissue.MUSCLE).mean())
    return out


def test_psoas_is_muscle_at_every_level(labelled: Labelled) -> None:
    anatomy, labels = labelled
    levels = _coverage(anatomy, labels, anatomy.inner_muscle & ~anatomy.iliacus)
    assert {"L1", "L2", "L3", "L4", "L5"} <= set(levels)
    low = {k: round(v, 3) for k, v in levels.items() if v < PSOAS_FLOOR}
    assert not low, low


def test_psoas_beside_the_discs_of_l2_and_l3_meets_the_bar(labelled: Labelled) -> None:
    """At a disc the slice shows the arch alone; the psoas there is judged from the front of
    the bodies above and below. Held to the bar (0.90) at L2 and L3, met on every seed
    (0.94-0.99); before, 0.86-0.88 on seeds 1 and 2, lost beside the discs."""
    anatomy, labels = labelled
    levels = _coverage(anatomy, labels, anatomy.inner_muscle & ~anatomy.iliacus)
    low = {k: round(levels[k], 3) for k in ("L2", "L3") if levels[k] < MUSCLE_BAR}
    assert not low, low


def test_iliacus_is_muscle_at_every_level(labelled: Labelled) -> None:
    anatomy, labels = labelled
    levels = _coverage(anatomy, labels, anatomy.iliacus)
    assert levels
    low = {k: round(v, 3) for k, v in levels.items() if v < ILIACUS_FLOOR}
    assert not low, low


def test_muscle_around_the_hips_is_muscle(labelled: Labelled) -> None:
    """The glutei, hip and thigh muscles lie outside the bony pelvis, the perineum's below
    the pelvic floor: not organ. A floor (0.87-0.92 on seeds 1-3), not the bar (0.90): the
    lower anterior wall, 30-39 mm of muscle against the bowel on the phantoms, is still
    taken as organ beyond the wall rule's 20 mm."""
    anatomy, labels = labelled
    below = anatomy.slices_of(LUMBAR["S1"], np.inf)
    muscle = anatomy.phantom.labels[below] == Tissue.MUSCLE
    assert muscle.sum() > 10_000
    share = float((labels[below][muscle] == Tissue.MUSCLE).mean())
    assert share >= MUSCLE_BELOW_S1_FLOOR, round(share, 3)


@pytest.mark.parametrize("muscle", ["psoas", "iliacus"])
def test_muscle_rim_on_the_bone_is_muscle(labelled: Labelled, muscle: str) -> None:
    """The voxels of the psoas and the iliacus against the bone read denser than muscle by
    partial volume; they are the muscle's rim, not contrast in an organ. The iliacus's is held
    to the bar (0.90), the psoas's to a floor (the bar is not met on seed 1 below S1: see
    docs/accuracy.md); before the bone's partial volume was told from contrast, 0.39-0.82 of
    the psoas's rim and 0.60-0.90 of the iliacus's (voxels labelled bone left out)."""
    anatomy, labels = labelled
    reference = anatomy.phantom.labels
    mask = anatomy.iliacus if muscle == "iliacus" else anatomy.inner_muscle & ~anatomy.iliacus
    on_bone = ndimage.binary_dilation(reference == Tissue.BONE, IN_PLANE)
    rim = mask & on_bone & (labels != Tissue.BONE)
    assert rim.sum() > 500
    share = float((labels[rim] == Tissue.MUSCLE).mean())
    assert share >= (PSOAS_RIM_FLOOR if muscle == "psoas" else MUSCLE_BAR), round(share, 4)
