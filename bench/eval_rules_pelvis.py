"""The rule-based segmenter on the phantoms' retroperitoneum and pelvis (which the shared scans
do not reach): psoas, iliacus and kidneys per lumbar level, and the muscle below S1.

    python bench/eval_rules_pelvis.py [--seeds 1 2 3]

Phantoms of habitus/phantoms, chest to pelvis, 3 mm slices and 1.5 mm pixels, as in
tests/segment/rules/test_pelvic_muscles.py. Per structure and level: the share of its voxels
given each class (shares under 0.02 left out). The product's bars (DESIGN.md section 2): each
muscle at least 0.90 muscle at every level, no organ over 0.05 muscle.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from habitus.labels import Tissue  # noqa: E402
from habitus.segment.rules import RuleSegmenter  # noqa: E402
from tests.segment.rules.phantom_anatomy import LUMBAR, PhantomAnatomy, phantom_anatomy  # noqa: E402

SPACING = (3.0, 1.5, 1.5)
MIN_LEVEL_VOXELS = 50


def _shares(labels: NDArray[np.uint8]) -> str:
    parts = [f"{t.name} {float((labels == t).mean()):.2f}" for t in Tissue]
    return ", ".join(p for p in parts if float(p.split()[-1]) >= 0.02)


def _per_level(anatomy: PhantomAnatomy, labels: NDArray[np.uint8], mask: NDArray[np.bool_]) -> None:
    for name, top in LUMBAR.items():
        slices = anatomy.slices_of(top, top + 1.0)
        inside = mask[slices]
        if inside.sum() >= MIN_LEVEL_VOXELS:
            print(f"    {name}: {_shares(labels[slices][inside])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    for seed in args.seeds:
        anatomy = phantom_anatomy(seed, SPACING, "abdomen_pelvis")
        start = time.perf_counter()
        labels = RuleSegmenter().segment(anatomy.phantom.volume)
        print(f"phantom seed {seed}, segmented in {time.perf_counter() - start:.1f} s")
        structures = {
            "psoas": anatomy.inner_muscle & ~anatomy.iliacus,
            "iliacus": anatomy.iliacus,
            "kidneys": anatomy.kidneys,
        }
        for name, mask in structures.items():
            print(f"  {name}")
            _per_level(anatomy, labels, mask)
        below = anatomy.slices_of(LUMBAR["S1"], np.inf)
        muscle = anatomy.phantom.labels[below] == Tissue.MUSCLE
        print(f"  all muscle below S1: {_shares(labels[below][muscle])}")
        above = int(((labels == Tissue.AVF) & anatomy.above_diaphragm).sum())
        print(f"  visceral fat above the diaphragm: {above} voxels")


if __name__ == "__main__":
    main()
