"""The rule-based segmenter in the phantoms' pelvis: the muscle below S1 and the organs beside it.

    python bench/eval_rules_pelvic_organs.py [--seeds 1 2 3]

Phantoms of habitus/phantoms, abdomen to thighs, 3 mm slices and 1.5 mm pixels, as in
tests/segment/rules/test_pelvic_muscles.py. Below S1: the share of the muscle labelled
muscle, and of it the part in the slices that hold no organ (the perineum and the roots of
the thighs, below the pelvic floor); and for each organ, told by the material it was
painted with, the share labelled muscle. The product's bars (DESIGN.md section 2): each
muscle at least 0.90 muscle, no organ over 0.05 muscle.

Where an organ's voxels labelled muscle lie: the share of them in slices where the phantom
paints the organ against the bone (within a pixel of it, in the slice, no muscle or fat
between), and the share of them that touch the phantom's muscle in the slice (no fat plane).
On a real CT the inner face of the hip bones is lined by muscle (iliacus, obturator
internus, psoas, piriformis) with the extraperitoneal fat inside it, so an organ against the
bare bone, or a vessel against muscle with no fat between, is the phantom's painting, not
anatomy that a rule can tell apart from a muscle lining the bone.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from habitus.labels import Tissue  # noqa: E402
from habitus.phantoms.materials import Material  # noqa: E402
from habitus.segment.rules import RuleSegmenter  # noqa: E402
from tests.segment.rules.phantom_anatomy import LUMBAR, phantom_anatomy  # noqa: E402

SPACING = (3.0, 1.5, 1.5)
# A pixel's neighbours in its own slice.
IN_PLANE = np.array([[[0, 1, 0], [1, 1, 1], [0, 1, 0]]], dtype=bool)
ORGANS = {
    "bladder": Material.URINE,
    "bowel": Material.BOWEL,
    "prostate or uterus": Material.SOFT,
    "vessels": Material.BLOOD,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    for seed in args.seeds:
        anatomy = phantom_anatomy(seed, SPACING, "abdomen_pelvis")
        start = time.perf_counter()
        labels = RuleSegmenter().segment(anatomy.phantom.volume)
        print(f"phantom seed {seed}, segmented in {time.perf_counter() - start:.1f} s")
        below = anatomy.slices_of(LUMBAR["S1"], np.inf)
        reference = anatomy.phantom.labels[below]
        found = labels[below]
        muscle = reference == Tissue.MUSCLE
        missed = muscle & (found != Tissue.MUSCLE)
        no_organ = ~(reference == Tissue.IO).any(axis=(1, 2))
        print(f"  muscle below S1 labelled muscle: {1.0 - missed.sum() / muscle.sum():.3f}")
        share = missed[no_organ].sum() / muscle.sum()
        print(f"    missed in the slices without organs (perineum, thighs): {share:.3f}")
        materials = anatomy.phantom.materials[below]
        for name, material in ORGANS.items():
            organ = (materials == material) & (reference == Tissue.IO)
            if organ.any():
                taken = float((found[organ] == Tissue.MUSCLE).mean())
                print(f"  {name} below S1 labelled muscle: {taken:.3f} of {int(organ.sum())}")
                _where(organ & (found == Tissue.MUSCLE), organ, reference)


def _where(wrong: np.ndarray, organ: np.ndarray, reference: np.ndarray) -> None:
    """Where an organ's voxels labelled muscle lie, against the phantom's bone and muscle."""
    if not wrong.any():
        return
    on_bone = organ & ndimage.binary_dilation(reference == Tissue.BONE, IN_PLANE)
    slices_on_bone = on_bone.any(axis=(1, 2))
    on_muscle = ndimage.binary_dilation(reference == Tissue.MUSCLE, IN_PLANE)
    total = int(wrong.sum())
    in_slices = int(wrong[slices_on_bone].sum()) / total
    print(
        f"    of it: {in_slices:.2f} in the {int(slices_on_bone.sum())} slices where the organ"
        f" lies on the bone ({int(on_bone.sum())} voxels against it),"
        f" {float(on_muscle[wrong].mean()):.2f} touching the muscle"
    )


if __name__ == "__main__":
    main()
